//! `metrics.json`: one JSON object with a section per stage, which the pipeline rewrites
//! atomically after every stage so a later failure loses nothing.

use super::files::write_atomic;
use super::layout::METRICS_FILE;
use crate::error::Result;
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    sections: Map<String, Value>,
}

impl Metrics {
    /// Sets `section.key`.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<Value>) {
        let entry = self
            .sections
            .entry(section.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key.to_string(), value.into());
        }
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&Value> {
        self.sections.get(section)?.get(key)
    }

    pub fn section(&self, section: &str) -> Option<&Map<String, Value>> {
        self.sections.get(section)?.as_object()
    }

    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.sections).unwrap_or_else(|_| "{}".into());
        write_atomic(&run_dir.join(METRICS_FILE), text.as_bytes())
    }
}
