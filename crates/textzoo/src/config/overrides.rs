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

    /// Property tests: the parser takes any text the command line can carry.
    mod props {
        use super::*;
        use proptest::prelude::*;

        /// A value and the override text that encodes it.
        fn encoded_value() -> impl Strategy<Value = (Value, String)> {
            let word = "[a-z][a-z_]{0,10}".prop_filter("YAML keywords", |w| {
                !["true", "false", "null"].contains(&w.as_str())
            });
            prop_oneof![
                any::<i64>().prop_map(|n| (json!(n), n.to_string())),
                any::<bool>().prop_map(|b| (json!(b), b.to_string())),
                Just((Value::Null, "null".to_string())),
                word.clone().prop_map(|w| (json!(w), w)),
                // Double-quoted YAML accepts JSON's string escapes.
                any::<String>().prop_map(|s| (json!(s), json!(s).to_string())),
                (-1e300f64..1e300).prop_map(|f| (json!(f), format!("{f:?}"))),
                prop::collection::vec(word, 0..4)
                    .prop_map(|ws| (json!(ws), format!("[{}]", ws.join(",")))),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_text_parses_or_is_an_error(raw in any::<String>()) {
                if let Ok(o) = Override::parse(&raw) {
                    let _ = o.apply(&mut Map::new());
                }
            }

            #[test]
            fn key_like_text_parses_or_is_an_error(raw in "[a-z_.=\\-]{0,6}=[\\[\\]{}:,'\" a-z0-9#&*!|>%@`.=-]{0,24}") {
                if let Ok(o) = Override::parse(&raw) {
                    let _ = o.apply(&mut Map::new());
                }
            }

            #[test]
            fn generated_overrides_round_trip(
                path in prop::collection::vec("[a-z_][a-z0-9_-]{0,8}", 1..4),
                (value, text) in encoded_value(),
            ) {
                let raw = format!("{}={text}", path.join("."));
                let o = Override::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&o.path, &path);
                match (&o.value, &value) {
                    (Value::Number(a), Value::Number(b)) if b.is_f64() => {
                        prop_assert_eq!(a.as_f64(), b.as_f64(), "{}", raw)
                    }
                    _ => prop_assert_eq!(&o.value, &value, "{}", raw),
                }
                let mut tree = Map::new();
                o.apply(&mut tree).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut node = &Value::Object(tree);
                for p in &path {
                    node = &node[p.as_str()];
                }
                prop_assert_eq!(node, &o.value);
            }
        }
    }
}
