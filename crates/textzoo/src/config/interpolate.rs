//! `${section.key}` and `${now:FORMAT}` interpolation, resolved once over the whole tree.
//!
//! As in OmegaConf, a string that is exactly one `${…}` takes the referenced value with its
//! type; inside a longer string the value is substituted as text.

use super::error::ConfigError;
use chrono::{DateTime, Local};
use serde_json::Value;
use std::cell::Cell;

const MAX_DEPTH: usize = 16;

/// How much resolution may produce, counted as values plus characters of text. References
/// that each repeat the next one (`a: ${b}${b}`, `b: ${c}${c}`, …) multiply at every level of
/// [`MAX_DEPTH`]: without a budget a few lines of YAML take hours and gigabytes. Real
/// configurations use a few thousand units.
const BUDGET: usize = 1 << 22;

/// Resolves every interpolation in `tree`, reading references from the tree itself.
pub fn resolve(tree: &Value, now: DateTime<Local>) -> Result<Value, ConfigError> {
    let resolver = Resolver {
        root: tree,
        now,
        spent: Cell::new(0),
    };
    resolver.value(tree, "", 0)
}

struct Resolver<'a> {
    root: &'a Value,
    now: DateTime<Local>,
    /// Units of [`BUDGET`] used so far.
    spent: Cell<usize>,
}

impl Resolver<'_> {
    /// Counts `units` against [`BUDGET`]; past it, the value being resolved is an error.
    fn spend(&self, units: usize, key: &str, text: &str) -> Result<(), ConfigError> {
        let spent = self.spent.get().saturating_add(units);
        self.spent.set(spent);
        if spent > BUDGET {
            return Err(ConfigError::Interpolation {
                key: key.into(),
                reference: text.into(),
                message: format!(
                    "interpolations expand to more than {BUDGET} values and characters \
                     (references that repeat each other?)"
                ),
            });
        }
        Ok(())
    }

    fn value(&self, v: &Value, key: &str, depth: usize) -> Result<Value, ConfigError> {
        self.spend(1, key, "")?;
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
            let before = out.len();
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(r) => match self.reference(r, key, depth)? {
                    Value::String(t) => out.push_str(&t),
                    Value::Null => out.push_str("null"),
                    other => out.push_str(&other.to_string()),
                },
            }
            self.spend(out.len() - before, key, s)?;
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

    /// Every key repeating the next one four times took 4^15 resolutions (and a gigabyte
    /// string) before the budget; `props::reference_dags_end_quickly` generates such chains.
    #[test]
    fn multiplying_references_are_refused_quickly() {
        let mut section = serde_json::Map::new();
        for i in 0..16 {
            let text = match i {
                15 => "x".to_string(),
                _ => format!("${{s.k{}}}", i + 1).repeat(4),
            };
            section.insert(format!("k{i}"), json!(text));
        }
        let start = std::time::Instant::now();
        let err = resolve(&json!({ "s": section }), now()).unwrap_err();
        assert!(err.to_string().contains("expand to more than"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Whole sections repeated into each other multiply the same way.
        let mut tree = serde_json::Map::new();
        for i in 0..16 {
            let v = match i {
                15 => json!({"x": 1}),
                _ => {
                    let next = format!("${{k{}}}", i + 1);
                    json!({"a": next, "b": next, "c": next, "d": next})
                }
            };
            tree.insert(format!("k{i}"), v);
        }
        assert!(resolve(&Value::Object(tree), now()).is_err());
    }

    /// Property tests: interpolation of any tree ends, with a value or an error.
    mod props {
        use super::*;
        use proptest::prelude::*;
        use serde_json::Map;
        use std::time::{Duration, Instant};

        const KEYS: [&str; 16] = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
        ];

        /// A string of text and references to the keys `s.a` … `s.p` (and some that do not
        /// exist).
        fn templated() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                1 => "[a-z/ _]{0,4}",
                4 => (0..KEYS.len() + 1).prop_map(|i| match KEYS.get(i) {
                    Some(k) => format!("${{s.{k}}}"),
                    None => "${s.nope}".to_string(),
                }),
                1 => Just("${now:%Y}".to_string()),
            ];
            prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_string_resolves_or_is_an_error(s in any::<String>(), t in "[${}a-z.:%]{0,16}") {
                let _ = resolve(&json!({"x": s, "y": t}), now());
            }

            /// Random reference graphs (chains, diamonds, cycles, dangling references) end
            /// quickly: a cycle or a dangling reference is an error, the rest resolves.
            #[test]
            fn reference_graphs_end_quickly(values in prop::collection::vec(templated(), KEYS.len())) {
                let section: Map<String, Value> = KEYS
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                let start = Instant::now();
                let result = resolve(&json!({ "s": section }), now());
                prop_assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
                if let Ok(tree) = result {
                    prop_assert!(!tree.to_string().contains("${"), "unresolved: {}", tree);
                }
            }

            /// Reference DAGs (each key refers only to later keys, mostly the next one, often
            /// several times) resolve or exceed the budget, and quickly.
            #[test]
            fn reference_dags_end_quickly(
                refs in prop::collection::vec(prop::collection::vec((prop::bool::weighted(0.8), 0usize..3), 0..6), KEYS.len()),
            ) {
                let section: Map<String, Value> = refs
                    .iter()
                    .enumerate()
                    .map(|(i, pieces)| {
                        let later = KEYS.len() - i - 1;
                        let text: String = pieces
                            .iter()
                            .map(|&(is_ref, r)| match is_ref && later > 0 {
                                true => format!("${{s.{}}}", KEYS[i + 1 + r % later]),
                                false => "x".to_string(),
                            })
                            .collect();
                        (KEYS[i].to_string(), json!(text))
                    })
                    .collect();
                let start = Instant::now();
                let result = resolve(&json!({ "s": section }), now());
                prop_assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
                if let Err(e) = result {
                    prop_assert!(e.to_string().contains("expand to more than"), "{}", e);
                }
            }

            #[test]
            fn unknown_references_are_errors(key in "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,3}") {
                let tree = json!({"known": {"x": 1}, "v": format!("${{zz{key}}}")});
                let err = resolve(&tree, now()).unwrap_err();
                prop_assert!(err.to_string().contains("is not a key"), "{}", err);
            }

            #[test]
            fn cycles_are_errors(len in 1usize..8, text in "[a-z]{0,3}") {
                let section: Map<String, Value> = (0..len)
                    .map(|i| (format!("k{i}"), json!(format!("{text}${{s.k{}}}", (i + 1) % len))))
                    .collect();
                let err = resolve(&json!({ "s": section }), now()).unwrap_err();
                prop_assert!(err.to_string().contains("cycle"), "{}", err);
            }
        }
    }
}
