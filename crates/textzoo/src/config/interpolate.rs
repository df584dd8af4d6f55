//! `${section.key}` and `${now:FORMAT}` interpolation, resolved once over the whole tree.
//!
//! As in OmegaConf, a string that is exactly one `${…}` takes the referenced value with its
//! type; inside a longer string the value is substituted as text.

use super::error::ConfigError;
use chrono::{DateTime, Local};
use serde_json::Value;

const MAX_DEPTH: usize = 16;

/// Resolves every interpolation in `tree`, reading references from the tree itself.
pub fn resolve(tree: &Value, now: DateTime<Local>) -> Result<Value, ConfigError> {
    let resolver = Resolver { root: tree, now };
    resolver.value(tree, "", 0)
}

struct Resolver<'a> {
    root: &'a Value,
    now: DateTime<Local>,
}

impl Resolver<'_> {
    fn value(&self, v: &Value, key: &str, depth: usize) -> Result<Value, ConfigError> {
        Ok(match v {
            Value::String(s) => self.string(s, key, depth)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.value(x, &format!("{key}[{i}]"), depth))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, x)| {
                        let child = if key.is_empty() {
                            k.clone()
                        } else {
                            format!("{key}.{k}")
                        };
                        Ok((k.clone(), self.value(x, &child, depth)?))
                    })
                    .collect::<Result<_, ConfigError>>()?,
            ),
            other => other.clone(),
        })
    }

    fn string(&self, s: &str, key: &str, depth: usize) -> Result<Value, ConfigError> {
        let pieces = split(s).map_err(|message| ConfigError::Interpolation {
            key: key.into(),
            reference: s.into(),
            message,
        })?;
        if let [Piece::Ref(reference)] = pieces.as_slice() {
            return self.reference(reference, key, depth);
        }
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(r) => match self.reference(r, key, depth)? {
                    Value::String(t) => out.push_str(&t),
                    Value::Null => out.push_str("null"),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Ok(Value::String(out))
    }

    fn reference(&self, reference: &str, key: &str, depth: usize) -> Result<Value, ConfigError> {
        let fail = |message: String| ConfigError::Interpolation {
            key: key.into(),
            reference: reference.into(),
            message,
        };
        if depth >= MAX_DEPTH {
            return Err(fail(
                "interpolations nest too deeply (a reference cycle?)".into(),
            ));
        }
        if let Some(format) = reference.strip_prefix("now:") {
            return format_now(self.now, format)
                .map(Value::String)
                .map_err(fail);
        }
        let mut node = self.root;
        for part in reference.split('.') {
            node = node
                .get(part)
                .ok_or_else(|| fail(format!("`{reference}` is not a key of the configuration")))?;
        }
        self.value(node, reference, depth + 1)
    }
}

fn format_now(now: DateTime<Local>, format: &str) -> Result<String, String> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", now.format(format))
        .map_err(|_| format!("`{format}` is not a valid strftime format"))?;
    Ok(out)
}

enum Piece<'a> {
    Text(&'a str),
    Ref(&'a str),
}

fn split(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated `${`")?;
        pieces.push(Piece::Ref(after[..end].trim()));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 29, 8, 5, 3).unwrap()
    }

    #[test]
    fn references_keep_types_and_substitute_in_text() {
        let tree = json!({
            "a": {"n": 64, "name": "zoo"},
            "b": {"n": "${a.n}", "path": "out/${a.name}/${a.n}", "when": "${now:%Y_%m_%d_%H_%M_%S}"},
            "c": {"chain": "${b.path}"}
        });
        let r = resolve(&tree, now()).unwrap();
        assert_eq!(r["b"]["n"], json!(64));
        assert_eq!(r["b"]["path"], json!("out/zoo/64"));
        assert_eq!(r["b"]["when"], json!("2026_11_29_08_05_03"));
        assert_eq!(r["c"]["chain"], json!("out/zoo/64"));
    }

    #[test]
    fn unknown_references_and_cycles_are_errors() {
        let err = resolve(&json!({"a": {"x": "${a.nope}"}}), now()).unwrap_err();
        assert!(err.to_string().contains("a.nope"), "{err}");
        let err = resolve(&json!({"a": {"x": "${a.y}", "y": "${a.x}"}}), now()).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        assert!(resolve(&json!({"a": "${oops"}), now()).is_err());
    }
}
