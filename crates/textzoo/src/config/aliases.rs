//! Keys of the model zoo accepted beside textzoo's own names for the same setting, folded into
//! the one textzoo reads so no stage has to know both.

use super::error::ConfigError;
use super::schema::Config;
use std::path::Path;

/// `model.float_model_path` (the zoo's name) is `general.model_path`: either may be given, or
/// both with the same file; two different files would leave it unclear which model the run
/// starts from, so that is refused with both keys and values.
pub fn resolve(cfg: &mut Config) -> Result<(), ConfigError> {
    let zoo = cfg.model.float_model_path.clone();
    match (&cfg.general.model_path, zoo) {
        (_, None) => Ok(()),
        (None, Some(path)) => {
            cfg.general.model_path = Some(path);
            Ok(())
        }
        (Some(ours), Some(theirs)) if same_file(ours, &theirs) => Ok(()),
        (Some(ours), Some(theirs)) => Err(ConfigError::OutOfRange {
            key: "model.float_model_path".into(),
            value: theirs.display().to_string(),
            allowed: format!(
                "is the model zoo's name for general.model_path, which is {}; give one of the two keys, or both with the same file",
                ours.display()
            ),
        }),
    }
}

/// The same path as written, or two spellings of one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(general: Option<&str>, zoo: Option<&str>) -> Config {
        let mut c = Config::default();
        c.general.model_path = general.map(PathBuf::from);
        c.model.float_model_path = zoo.map(PathBuf::from);
        c
    }

    #[test]
    fn either_key_or_both_equal_set_the_model_path() {
        for (g, z) in [
            (Some("m.safetensors"), None),
            (None, Some("m.safetensors")),
            (Some("m.safetensors"), Some("m.safetensors")),
        ] {
            let mut c = config(g, z);
            resolve(&mut c).unwrap();
            assert_eq!(c.general.model_path, Some(PathBuf::from("m.safetensors")));
        }
        let mut c = config(None, None);
        resolve(&mut c).unwrap();
        assert_eq!(c.general.model_path, None);
    }

    #[test]
    fn two_different_files_name_both_keys_and_values() {
        let mut c = config(Some("a.safetensors"), Some("b.safetensors"));
        let text = resolve(&mut c).unwrap_err().to_string();
        for part in [
            "model.float_model_path",
            "general.model_path",
            "a.safetensors",
            "b.safetensors",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
