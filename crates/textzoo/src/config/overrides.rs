//! Command-line overrides in the Hydra style: `section.key=value`.

use super::error::ConfigError;
use serde_json::{Map, Value};

/// One parsed `key.path=value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: Vec<String>,
    pub value: Value,
    /// The text as given, recorded in `.hydra/overrides.yaml`.
    pub raw: String,
}

impl Override {
    /// Parses `a.b.c=value`; the value is read as a YAML scalar or flow list, so `64` is a
    /// number, `null` is null, `[a,b]` a list, and anything else (spaces included) a string.
    /// `key=` sets an empty string, like Hydra.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let syntax = || ConfigError::OverrideSyntax { given: raw.into() };
        let (key, text) = raw.split_once('=').ok_or_else(syntax)?;
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        let valid = |p: &String| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        };
        if !path.iter().all(valid) {
            return Err(syntax());
        }
        let value = parse_value(text).map_err(|message| ConfigError::OverrideValue {
            given: raw.into(),
            message,
        })?;
        Ok(Self {
            path,
            value,
            raw: raw.into(),
        })
    }

    /// Sets the value in `tree`, creating intermediate sections that do not exist yet (the key
    /// check that follows reports them if they are unknown).
    pub fn apply(&self, tree: &mut Map<String, Value>) -> Result<(), ConfigError> {
        let (last, parents) =
            self.path
                .split_last()
                .ok_or_else(|| ConfigError::OverrideSyntax {
                    given: self.raw.clone(),
                })?;
        let mut node = tree;
        for (i, part) in parents.iter().enumerate() {
            let entry = node
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if entry.is_null() {
                *entry = Value::Object(Map::new());
            }
            node = match entry {
                Value::Object(map) => map,
                other => {
                    return Err(ConfigError::NotASection {
                        key: self.path[..=i].join("."),
                        value: other.to_string(),
                    })
                }
            };
        }
        node.insert(last.clone(), self.value.clone());
        Ok(())
    }
}

fn parse_value(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Value::String(String::new()));
    }
    serde_saphyr::from_str_with_options::<Value>(trimmed, super::yaml_options())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value_of(raw: &str) -> Value {
        Override::parse(raw).unwrap().value
    }

    #[test]
    fn values_are_yaml_scalars_and_lists() {
        assert_eq!(value_of("a.b=64"), json!(64));
        assert_eq!(value_of("a.b=1e-3"), json!(0.001));
        assert_eq!(value_of("a.b=true"), json!(true));
        assert_eq!(value_of("a.b=no"), json!("no"));
        assert_eq!(value_of("a.b=null"), Value::Null);
        assert_eq!(value_of("a.b=[x,y]"), json!(["x", "y"]));
        assert_eq!(value_of("a.b=to be or not"), json!("to be or not"));
        assert_eq!(value_of("a.b=\"42\""), json!("42"));
        assert_eq!(value_of("a.b="), json!(""));
        assert_eq!(value_of("a.b=x=y"), json!("x=y"));
    }

    #[test]
    fn bad_syntax_is_rejected() {
        for raw in ["novalue", "=3", "a..b=1", "a b=1"] {
            assert!(Override::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn apply_creates_sections_and_refuses_scalars_as_sections() {
        let mut tree = Map::new();
        Override::parse("a.b.c=1")
            .unwrap()
            .apply(&mut tree)
            .unwrap();
        assert_eq!(Value::Object(tree.clone()), json!({"a": {"b": {"c": 1}}}));
        let err = Override::parse("a.b.c.d=1")
            .unwrap()
            .apply(&mut tree)
            .unwrap_err();
        assert!(err.to_string().contains("a.b.c"), "{err}");
    }
}
