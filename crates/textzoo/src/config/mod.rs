//! Configuration: YAML file + command-line overrides → interpolation → typed, validated
//! [`Config`]. Everything here runs before any work starts, so a bad configuration never
//! leaves a run directory behind.

mod aliases;
mod error;
mod interpolate;
mod keys;
pub mod modes;
mod overrides;
pub mod schema;
mod validate;
mod zoo;

pub use error::{did_you_mean, ConfigError};
pub use modes::{mode_name, services, Service, MODES};
pub use overrides::Override;
pub use schema::*;
pub use validate::{ranges as validate_values, required_paths as check_paths, MAX_VOCAB};

use chrono::{DateTime, Local};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The file looked for in the current directory when no `--config-name` is given.
pub const DEFAULT_CONFIG_NAME: &str = "user_config.yaml";

/// Where the configuration comes from, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub config_path: Option<PathBuf>,
    pub config_name: Option<String>,
    pub overrides: Vec<String>,
}

/// A configuration ready to run, with what it was made from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    /// The overrides as given, for `.hydra/overrides.yaml`.
    pub overrides: Vec<String>,
    /// The file read, or `None` for the built-in defaults.
    pub file: Option<PathBuf>,
}

/// Reads, overrides, interpolates, types and validates the configuration's values; the
/// files it names are checked by [`check_paths`].
pub fn load(source: &ConfigSource, now: DateTime<Local>) -> Result<Resolved, ConfigError> {
    let file = config_file(source)?;
    let mut user = match &file {
        Some(path) => read_yaml(path)?,
        None => Map::new(),
    };
    if let (Some(path), Some(key)) = (&file, zoo::zoo_key(&user)) {
        return Err(ConfigError::ZooLayout {
            path: path.display().to_string(),
            key: key.into(),
        });
    }
    let overrides = source
        .overrides
        .iter()
        .map(|raw| Override::parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    for o in &overrides {
        o.apply(&mut user)?;
    }
    let config = from_tree(user, now)?;
    validate::ranges(&config)?;
    Ok(Resolved {
        config,
        overrides: source.overrides.clone(),
        file,
    })
}

/// Parses a YAML configuration text (no overrides, no path checks); used by tests and by the
/// example files' validation.
pub fn parse_str(text: &str, origin: &str, now: DateTime<Local>) -> Result<Config, ConfigError> {
    let tree = parse_yaml(text, origin)?;
    if let Some(key) = zoo::zoo_key(&tree) {
        return Err(ConfigError::ZooLayout {
            path: origin.into(),
            key: key.into(),
        });
    }
    from_tree(tree, now)
}

fn from_tree(user: Map<String, Value>, now: DateTime<Local>) -> Result<Config, ConfigError> {
    let Value::Object(schema) = defaults_tree() else {
        unreachable!("Config serializes to a mapping");
    };
    keys::check(&user, &schema)?;
    let mut merged = Value::Object(schema);
    merge(&mut merged, Value::Object(user));
    let resolved = interpolate::resolve(&merged, now)?;
    let mut config = typed(resolved)?;
    aliases::resolve(&mut config)?;
    Ok(config)
}

fn defaults_tree() -> Value {
    // Serializing plain structs of strings, numbers and enums cannot fail.
    serde_json::to_value(Config::default()).unwrap_or(Value::Null)
}

fn config_file(source: &ConfigSource) -> Result<Option<PathBuf>, ConfigError> {
    if source.config_path.is_none() && source.config_name.is_none() {
        let default = PathBuf::from(DEFAULT_CONFIG_NAME);
        return Ok(default.exists().then_some(default));
    }
    let dir = source
        .config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let name = source.config_name.as_deref().unwrap_or(DEFAULT_CONFIG_NAME);
    let mut path = dir.join(name);
    if !path.exists() && path.extension().is_none() {
        path.set_extension("yaml");
    }
    if !path.is_file() {
        return Err(ConfigError::Read {
            err: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            path,
        });
    }
    Ok(Some(path))
}

fn read_yaml(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    parse_yaml(&text, &path.display().to_string())
}

/// A YAML configuration text as a tree, unchecked against the schema (for `migrate-config`,
/// which reads files in the zoo's layout).
pub fn parse_yaml_tree(text: &str, origin: &str) -> Result<Map<String, Value>, ConfigError> {
    parse_yaml(text, origin)
}

fn parse_yaml(text: &str, origin: &str) -> Result<Map<String, Value>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_saphyr::from_str_with_options::<Value>(text, yaml_options()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(ConfigError::NotAMapping {
            path: origin.into(),
        }),
        Err(e) => Err(ConfigError::Yaml {
            path: origin.into(),
            message: e.to_string(),
        }),
    }
}

/// The deepest nesting a configuration text may have. The schema is three levels deep; the
/// parser's own limit (2,000) lets a few lines of brackets overflow a thread's stack in the
/// recursive steps after parsing (the tree's deserialization, merge, key check, interpolation).
const MAX_YAML_DEPTH: usize = 64;

/// YAML 1.2 booleans only: `y`, `no`, `on` stay strings (no "Norway problem"); nesting
/// bounded by [`MAX_YAML_DEPTH`].
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::Options {
        strict_booleans: true,
        budget: Some(serde_saphyr::Budget {
            max_depth: MAX_YAML_DEPTH,
            ..serde_saphyr::Budget::default()
        }),
        ..serde_saphyr::Options::default()
    }
}

/// Deep merge: mappings merge key by key, a null section keeps the defaults, anything else
/// replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(_), Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn typed(tree: Value) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let message = e.inner().to_string();
        let suggestion = variant_suggestion(&message);
        ConfigError::Invalid {
            key,
            message,
            suggestion,
        }
    })
}

/// For serde's "unknown variant `x`, expected one of `a`, `b`", the closest allowed variant.
fn variant_suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (given, allowed) = rest.split_once('`')?;
    let names: Vec<&str> = allowed.split('`').skip(1).step_by(2).collect();
    did_you_mean(given, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local::now()
    }

    #[test]
    fn empty_text_gives_defaults() {
        let mut cfg = parse_str("hydra:\n  run:\n    dir: out\n", "t", now()).unwrap();
        cfg.hydra = Hydra::default();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn wrong_type_names_key_and_expectation() {
        let err = parse_str("training:\n  batch_size: lots\n", "t", now())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("training.batch_size") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn unknown_variant_suggests_the_closest() {
        let err = parse_str("model:\n  name: tiny_gtp\n", "t", now())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.name") && err.contains("did you mean `tiny_gpt`"),
            "{err}"
        );
        let err = parse_str("operation_mode: chain_tq\n", "t", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("operation_mode"), "{err}");
    }

    #[test]
    fn null_section_keeps_defaults_and_partial_section_merges() {
        let cfg = parse_str("training:\nmodel:\n  embed_dim: 64\n", "t", now()).unwrap();
        assert_eq!(cfg.training, Training::default());
        assert_eq!(cfg.model.embed_dim, 64);
        assert_eq!(cfg.model.num_heads, Model::default().num_heads);
    }

    /// Found by `tests/fuzz_inputs.rs`: 2,000 nested brackets (the parser's own limit)
    /// overflowed a test thread's stack after parsing.
    #[test]
    fn deep_nesting_is_a_yaml_error() {
        let text = format!("general: {}1{}", "[".repeat(2000), "]".repeat(2000));
        let err = parse_str(&text, "t", now()).unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
        let deep = format!("a.b={}1{}", "[".repeat(2000), "]".repeat(2000));
        assert!(Override::parse(&deep).is_err());
        let ok = format!("general: {}1{}", "[".repeat(60), "]".repeat(60));
        assert!(!matches!(
            parse_str(&ok, "t", now()),
            Err(ConfigError::Yaml { .. })
        ));
    }

    #[test]
    fn resolved_config_round_trips_through_yaml() {
        let cfg = parse_str("general:\n  model_path: a/b.safetensors\n", "t", now()).unwrap();
        let text = serde_saphyr::to_string(&cfg).unwrap();
        assert_eq!(parse_str(&text, "t", now()).unwrap(), cfg);
    }
}
