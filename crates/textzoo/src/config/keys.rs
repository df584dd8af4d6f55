//! Unknown-key check: every key the user wrote must exist in the schema.
//!
//! The schema's key tree is read off the serialized defaults, so it can never drift from the
//! structs. Doing this before deserializing gives the full dotted key and a "did you mean".

use super::error::{did_you_mean, ConfigError};
use serde_json::{Map, Value};

/// The one free-form mapping of the schema: `hydra.sweeper.params`.
const SWEEP_PARAMS: &str = "hydra.sweeper.params";

/// Checks `user` against `schema` (the serialized default configuration).
pub fn check(user: &Map<String, Value>, schema: &Map<String, Value>) -> Result<(), ConfigError> {
    walk(user, schema, "")
}

fn walk(
    user: &Map<String, Value>,
    schema: &Map<String, Value>,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (key, value) in user {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(expected) = schema.get(key) else {
            return Err(ConfigError::UnknownKey {
                key: dotted,
                suggestion: did_you_mean(key, schema.keys().map(String::as_str)),
                allowed: schema
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        match (value, expected) {
            // Its keys are the dotted keys of other settings, checked when a sweep plans.
            (Value::Object(_), _) if dotted == SWEEP_PARAMS => {}
            (Value::Object(inner), Value::Object(inner_schema)) => {
                walk(inner, inner_schema, &dotted)?
            }
            (Value::Null, Value::Object(_)) => {}
            (other, Value::Object(_)) => {
                return Err(ConfigError::NotASection {
                    key: dotted,
                    value: other.to_string(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_the_dotted_key_and_suggests() {
        let schema =
            map(json!({"training": {"batch_size": 1, "epochs": 1}, "model": {"name": "x"}}));
        let err = check(&map(json!({"training": {"bach_size": 3}})), &schema).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("training.bach_size"), "{text}");
        assert!(text.contains("did you mean `batch_size`"), "{text}");
        let err = check(&map(json!({"trainig": {}})), &schema).unwrap_err();
        assert!(err.to_string().contains("did you mean `training`"), "{err}");
        let err = check(&map(json!({"model": 3})), &schema).unwrap_err();
        assert!(err.to_string().contains("must be a mapping"), "{err}");
        assert!(check(
            &map(json!({"model": null, "training": {"epochs": 2}})),
            &schema
        )
        .is_ok());
    }
}
