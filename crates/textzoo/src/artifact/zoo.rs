//! The bundled model zoo: `pretrained_models/<name>/` folders, each holding a float model
//! (`model.safetensors`), its int8 twin (`model_int8.safetensors`), the configuration that
//! trained them (`config.yaml`) and a model card (`README.md`).
//!
//! A mode that starts from a model and is given no `general.model_path` picks one from here,
//! by `model.name` and `general.pretrained` (`board`, `reference`, or a folder's name), so the
//! model zoo's workflows work as typed on a fresh clone. The folder is looked up where a user
//! would keep it: `TEXTZOO_PRETRAINED_DIR`, then `./pretrained_models`, then the one in the
//! source tree the binary was built from.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming the zoo folder, for installs outside the source tree.
pub const ZOO_ENV: &str = "TEXTZOO_PRETRAINED_DIR";
/// The float model's file name inside a zoo entry.
pub const FLOAT_FILE: &str = "model.safetensors";
/// The int8 model's file name inside a zoo entry.
pub const INT8_FILE: &str = "model_int8.safetensors";
/// The two size classes `general.pretrained` names; an entry is `<model.name>_<size>`.
pub const SIZES: [&str; 2] = ["board", "reference"];

/// One bundled model: a folder with a float and an int8 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooEntry {
    pub name: String,
    pub dir: PathBuf,
}

impl ZooEntry {
    pub fn float_path(&self) -> PathBuf {
        self.dir.join(FLOAT_FILE)
    }

    pub fn int8_path(&self) -> PathBuf {
        self.dir.join(INT8_FILE)
    }
}

/// The zoo folder: the first of `TEXTZOO_PRETRAINED_DIR`, `./pretrained_models`, and the
/// source tree's `pretrained_models` that exists.
pub fn locate() -> Option<PathBuf> {
    let env = std::env::var_os(ZOO_ENV).map(PathBuf::from);
    let here = PathBuf::from("pretrained_models");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pretrained_models");
    env.into_iter()
        .chain([here, source])
        .find(|dir| dir.is_dir())
}

/// Every entry of the zoo folder `root` (folders holding a float model), sorted by name.
pub fn entries(root: &Path) -> Vec<ZooEntry> {
    let Ok(read) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<ZooEntry> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|dir| dir.join(FLOAT_FILE).is_file())
        .filter_map(|dir| {
            let name = dir.file_name()?.to_str()?.to_string();
            Some(ZooEntry { name, dir })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The entry `choice` names for `model_name`: `board` / `reference` pick
/// `<model_name>_<choice>`, anything else is an entry's own name.
pub fn pick(root: &Path, model_name: &str, choice: &str) -> Result<ZooEntry> {
    let wanted = if SIZES.contains(&choice) {
        format!("{model_name}_{choice}")
    } else {
        choice.to_string()
    };
    let all = entries(root);
    if let Some(entry) = all.iter().find(|e| e.name == wanted) {
        return Ok(entry.clone());
    }
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    Err(Error::Usage(format!(
        "general.pretrained={choice}: no bundled model `{wanted}` in {} (bundled: {}); set general.pretrained to one of them, or general.model_path to your own model file",
        root.display(),
        if names.is_empty() { "none".to_string() } else { names.join(", ") },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoo(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::create_dir_all(dir.path().join(n)).unwrap();
            std::fs::write(dir.path().join(n).join(FLOAT_FILE), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("not_a_model")).unwrap();
        dir
    }

    #[test]
    fn sizes_pick_by_model_name_and_other_choices_by_entry_name() {
        let dir = zoo(&["tiny_gpt_board", "tiny_gpt_reference", "gru_board"]);
        let e = pick(dir.path(), "tiny_gpt", "board").unwrap();
        assert_eq!(e.name, "tiny_gpt_board");
        assert!(e
            .int8_path()
            .ends_with("tiny_gpt_board/model_int8.safetensors"));
        assert_eq!(
            pick(dir.path(), "tiny_gpt", "reference").unwrap().name,
            "tiny_gpt_reference"
        );
        assert_eq!(
            pick(dir.path(), "tiny_gpt", "gru_board").unwrap().name,
            "gru_board"
        );
        let names: Vec<String> = entries(dir.path()).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["gru_board", "tiny_gpt_board", "tiny_gpt_reference"]);
    }

    #[test]
    fn a_missing_entry_names_what_is_bundled() {
        let dir = zoo(&["tiny_gpt_board", "gru_board"]);
        let err = pick(dir.path(), "lstm", "reference").unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.exit_code(), 2);
        assert!(msg.contains("lstm_reference"), "{msg}");
        assert!(msg.contains("gru_board, tiny_gpt_board"), "{msg}");
    }
}
