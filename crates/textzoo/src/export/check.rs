//! Model checks (`textzoo check FILE`): in progress.

use crate::error::{Error, Result};
use std::path::Path;

pub struct CheckReport {
    lines: Vec<String>,
    errors: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
    pub fn render(&self) -> String {
        self.lines.join("\n")
    }
    pub fn verdict(&self) -> String {
        self.errors.join("; ")
    }
}

pub fn check_file(path: &Path, _board: Option<&str>) -> Result<CheckReport> {
    Err(Error::input(path, "textzoo check is not implemented yet"))
}
