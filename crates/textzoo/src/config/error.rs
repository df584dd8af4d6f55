//! Configuration errors: each names the dotted key, the offending value and what is allowed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {err}", .path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("configuration file {path} is not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("configuration file {path} must be a mapping of sections at the top level")]
    NotAMapping { path: String },
    #[error("override `{given}` is not of the form key.path=value (e.g. training.batch_size=64)")]
    OverrideSyntax { given: String },
    #[error("override `{given}`: the value is not a valid YAML scalar or list: {message}")]
    OverrideValue { given: String, message: String },
    #[error("unknown key `{key}`{}; allowed here: {allowed}", hint(.suggestion))]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
        allowed: String,
    },
    #[error(
        "{path} looks like an STM32 model zoo configuration (`{key}` is the zoo's key, not \
         textzoo's); convert it with `textzoo migrate-config {path} -o NEW.yaml`, which prints \
         what each key becomes"
    )]
    ZooLayout { path: String, key: String },
    #[error("`{key}` must be a mapping (a section), got {value}")]
    NotASection { key: String, value: String },
    #[error("`{key}`: {message}{}", hint(.suggestion))]
    Invalid {
        key: String,
        message: String,
        suggestion: Option<String>,
    },
    #[error("`{key}` = {value}: {allowed}")]
    OutOfRange {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("`{key}` is required for operation_mode={mode}: {why}")]
    Missing {
        key: String,
        mode: String,
        why: String,
    },
    #[error("`{key}` = {}: no such file or directory", .path.display())]
    MissingPath { key: String, path: PathBuf },
    #[error("sweep override `{given}`: {message}")]
    Sweep { given: String, message: String },
    #[error("sweep job {job} ({overrides}): {err}")]
    InJob {
        job: usize,
        overrides: String,
        err: Box<ConfigError>,
    },
    #[error("interpolation `${{{reference}}}` in `{key}`: {message}")]
    Interpolation {
        key: String,
        reference: String,
        message: String,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// The closest candidate to `given`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["training", "evaluation", "model"];
        assert_eq!(did_you_mean("trainig", keys), Some("training".into()));
        assert_eq!(did_you_mean("modle", keys), Some("model".into()));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
