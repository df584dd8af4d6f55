//! The library's error type and the exit code each kind of failure maps to.

use crate::config::ConfigError;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; nothing has been written.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// A file the user gave (corpus, tokenizer, model, prompt) is unusable.
    #[error("invalid input {}: {message}", .path.display())]
    Input { path: PathBuf, message: String },
    /// A value the user gave is unusable for this model or data (e.g. a prompt).
    #[error("invalid input: {0}")]
    Usage(String),
    #[error("{context}: {err}")]
    Io {
        context: String,
        err: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
    /// Experiment tracking (MLflow, TensorBoard, plots) failed. Only ever logged as a warning:
    /// the run's own results are complete without it.
    #[error("{0}")]
    Tracking(String),
    #[error("{0}")]
    Internal(String),
}

// Not `#[from]`: that would also make the ConfigError a `source`, and `{:#}` would print the
// message twice.
impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl Error {
    /// 2 for invalid configuration or input, 1 for a failure while working.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Input { .. } | Error::Usage(_) => 2,
            Error::Interrupted => 130,
            _ => 1,
        }
    }

    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            err: source,
        }
    }
}
