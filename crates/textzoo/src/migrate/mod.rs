//! `textzoo migrate-config`: an STM32 model zoo configuration (text generation layout:
//! `dataset.corpus_path`, `training.model.*`, `training.optimizer.Adam.*`,
//! `training.callbacks.*`, `quantization.quantizer`, `evaluation.sample_text`,
//! `deployment.hardware_setup.serie`, …) turned into the equivalent textzoo file.
//!
//! textzoo's schema stays strict (`config` refuses unknown keys and points zoo files here);
//! this is the one place that knows the zoo's names. Every key of the old file is accounted
//! for: mapped (to which textzoo key, with a note when the meaning shifts) or dropped (and
//! why). Relative paths in the old file are read from the old file's folder, as the zoo reads
//! them from where its scripts run next to the file, and written absolute, so the new file
//! works from any directory.

mod boards;
mod rules;

use crate::config::ConfigError;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One key of the old file mapped to textzoo keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub from: String,
    /// The textzoo keys written, with their values.
    pub to: Vec<(String, Value)>,
    pub note: Option<String>,
}

/// One key of the old file with no textzoo counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub from: String,
    pub why: String,
}

/// The outcome of a migration: the new configuration and the account of every old key.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The textzoo configuration, as a YAML tree.
    pub tree: Map<String, Value>,
    pub mapped: Vec<Mapped>,
    pub dropped: Vec<Dropped>,
    /// Things to fix before running (a corpus that does not exist, …).
    pub warnings: Vec<String>,
}

/// Reads the zoo file at `path` and migrates it; relative paths are read from its folder.
pub fn migrate_file(path: &Path) -> Result<Migration> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let origin = path.display().to_string();
    let tree = crate::config::parse_yaml_tree(&text, &origin)?;
    let base = absolute(path.parent().unwrap_or(Path::new(".")));
    let migration = migrate(&tree, &base)?;
    // The result must load under textzoo's strict schema and ranges: a value that does not
    // (a model kind textzoo lacks, a negative size) is refused here, naming the old key.
    check(&migration)?;
    Ok(migration)
}

/// Migrates a parsed zoo tree; relative paths are resolved against `base`.
pub fn migrate(tree: &Map<String, Value>, base: &Path) -> Result<Migration> {
    let leaves = flatten(tree);
    let cx = rules::Context::new(&leaves, base);
    let mut m = Migration {
        tree: Map::new(),
        mapped: Vec::new(),
        dropped: Vec::new(),
        warnings: Vec::new(),
    };
    for (key, value) in &leaves {
        match rules::rule(key, value, &cx).map_err(|message| {
            Error::Config(ConfigError::Invalid {
                key: key.clone(),
                message,
                suggestion: None,
            })
        })? {
            rules::Outcome::Map(to, note) => m.mapped.push(Mapped {
                from: key.clone(),
                to,
                note,
            }),
            rules::Outcome::Drop(why) => m.dropped.push(Dropped {
                from: key.clone(),
                why,
            }),
        }
    }
    m.mapped.extend(rules::implied(&cx));
    m.warnings.extend(rules::warnings(&cx, &m.mapped));
    for mapped in &m.mapped {
        for (key, value) in &mapped.to {
            set(&mut m.tree, key, value.clone());
        }
    }
    Ok(m)
}

/// The new file's text: a header naming the source and the account, then the configuration.
pub fn render(m: &Migration, source: &Path) -> Result<String> {
    let body = serde_saphyr::to_string(&Value::Object(m.tree.clone()))
        .map_err(|e| Error::Internal(format!("writing the migrated configuration: {e}")))?;
    let mut out = format!(
        "# Migrated by `textzoo migrate-config` from the STM32 model zoo configuration\n# {}\n",
        source.display()
    );
    out += "# Relative paths of the old file were read from its folder and are written absolute.\n";
    for w in &m.warnings {
        out += &format!("# WARNING: {w}\n");
    }
    out += "# Dropped (no textzoo counterpart):\n";
    for d in &m.dropped {
        out += &format!("#   {}: {}\n", d.from, d.why);
    }
    out += "\n";
    out += &body;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The report printed to the console: every key mapped, every key dropped and why.
pub fn report(m: &Migration) -> String {
    let mut out = format!("mapped ({}):\n", m.mapped.len());
    for mapped in &m.mapped {
        let to: Vec<String> = mapped
            .to
            .iter()
            .map(|(k, v)| format!("{k} = {}", scalar(v)))
            .collect();
        out += &format!("  {} -> {}", mapped.from, to.join(", "));
        if let Some(note) = &mapped.note {
            out += &format!("  ({note})");
        }
        out += "\n";
    }
    out += &format!("dropped ({}):\n", m.dropped.len());
    for d in &m.dropped {
        out += &format!("  {}: {}\n", d.from, d.why);
    }
    for w in &m.warnings {
        out += &format!("warning: {w}\n");
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Loads the migrated tree as textzoo would (schema, types, ranges); a failure names the old
/// key the offending value came from.
fn check(m: &Migration) -> Result<()> {
    let text = serde_saphyr::to_string(&Value::Object(m.tree.clone()))
        .map_err(|e| Error::Internal(format!("writing the migrated configuration: {e}")))?;
    let err =
        match crate::config::parse_str(&text, "the migrated configuration", chrono::Local::now()) {
            Ok(cfg) => match crate::config::validate_values(&cfg) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Err(e) => e,
        };
    let text = err.to_string();
    let origin = m
        .mapped
        .iter()
        .find(|mapped| mapped.to.iter().any(|(k, _)| text.contains(k.as_str())))
        .map(|mapped| format!(" (from the old file's `{}`)", mapped.from))
        .unwrap_or_default();
    Err(Error::Usage(format!(
        "the migrated configuration is not valid{origin}: {text}"
    )))
}

/// Dotted keys and their values, in file order; an empty mapping is a leaf.
fn flatten(tree: &Map<String, Value>) -> Vec<(String, Value)> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
        for (k, v) in map {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => walk(&key, inner, out),
                other => out.push((key, other.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk("", tree, &mut out);
    out
}

/// Sets a dotted key in a tree of mappings.
fn set(tree: &mut Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            tree.insert(dotted.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = tree
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set(inner, rest, value);
            }
        }
    }
}

/// `path` made absolute against the current directory, lexically (`.` and `..` folded), so a
/// path that does not exist yet still has one spelling.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    normalize(&joined)
}

/// `.` and `..` components folded without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
