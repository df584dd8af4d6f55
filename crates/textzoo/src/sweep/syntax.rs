//! `--multirun` override values as Hydra writes them:
//!
//! - `key=a,b,c` — a comma list: one job per value;
//! - `key=range(start,stop[,step])` — Python's `range` (stop excluded), integers or floats;
//! - `key=choice(a,b)` — the same as a comma list, spelled as a function;
//! - `key='a,b'` or `key="a,b"` — quoted: one value, commas and all; `\,` escapes one comma;
//! - `key=[a,b]` / `key={a: 1}` — a list or mapping: one value (commas inside brackets do not
//!   split);
//! - anything else — one value, exactly as a single run reads it.
//!
//! Hydra's `glob(…)`, `interval(…)`, `sort(…)`, `shuffle(…)` and `tag(…)` are refused by name.
//! Every value comes out as override text (`key=value`) that a single run parses the usual way,
//! so a job's overrides are the ones a user could have typed for that job alone.

use crate::config::{ConfigError, Override};

/// One command-line override of a sweep, expanded to its values.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOverride {
    /// The dotted key.
    pub key: String,
    /// Override texts, one per value, each `key=value`.
    pub choices: Vec<String>,
    /// The value texts alone, for reports (`48`, `bpe`, …).
    pub values: Vec<String>,
    /// Whether the value was a list, range or choice (a single-element `choice(a)` still
    /// counts as swept).
    pub swept: bool,
    pub raw: String,
}

/// Hydra's sweep functions that textzoo does not offer.
const UNSUPPORTED: [(&str, &str); 5] = [
    ("glob", "textzoo expands no globs: list the values"),
    (
        "interval",
        "needs an optimizing sweeper (Optuna, Nevergrad); use range(…) or choice(…)",
    ),
    ("sort", "list the values in the order you want"),
    ("shuffle", "use hydra.sweeper.name=random"),
    ("tag", "tags are not supported"),
];

/// Parses one override of a `--multirun` command line.
pub fn parse(raw: &str) -> Result<SweepOverride, ConfigError> {
    let fail = |message: String| ConfigError::Sweep {
        given: raw.to_string(),
        message,
    };
    let (key, text) = raw
        .split_once('=')
        .ok_or_else(|| ConfigError::OverrideSyntax { given: raw.into() })?;
    // The key's syntax is the single run's.
    Override::parse(&format!("{key}=0"))?;
    let text = text.trim();
    let (values, swept) = match function_call(text) {
        Some((name, args)) => (call(name, args).map_err(fail)?, true),
        None => {
            let parts = split_top_level(text).map_err(fail)?;
            let swept = parts.len() > 1;
            (parts, swept)
        }
    };
    if values.is_empty() {
        return Err(fail("the sweep has no values".into()));
    }
    let mut choices = Vec::with_capacity(values.len());
    for value in &values {
        let choice = format!("{key}={value}");
        // Each value must be one a single run accepts.
        Override::parse(&choice).map_err(|e| fail(format!("value `{value}`: {e}")))?;
        choices.push(choice);
    }
    Ok(SweepOverride {
        key: key.to_string(),
        choices,
        values,
        swept,
        raw: raw.to_string(),
    })
}

/// `name(args)` when `text` is one function call; the args are between the outer parentheses.
fn function_call(text: &str) -> Option<(&str, &str)> {
    let open = text.find('(')?;
    let name = &text[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let inner = text[open + 1..].strip_suffix(')')?;
    Some((name, inner))
}

fn call(name: &str, args: &str) -> Result<Vec<String>, String> {
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        return Err(format!("{name}(…) is not supported: {why}"));
    }
    let parts = split_top_level(args)?;
    match name {
        "choice" => Ok(parts),
        "range" => range(&parts),
        other => Err(format!(
            "unknown sweep function `{other}(…)`; allowed: a comma list a,b,c, range(start,stop[,step]), choice(a,b,…)"
        )),
    }
}

/// Python's `range` over integers, or over floats when any bound is one (`start + i·step`,
/// as Hydra computes it).
fn range(parts: &[String]) -> Result<Vec<String>, String> {
    const USAGE: &str = "range takes range(start,stop) or range(start,stop,step)";
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("{USAGE}; got {} arguments", parts.len()));
    }
    let ints: Option<Vec<i64>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    if let Some(n) = ints {
        let (start, stop, step) = (n[0], n[1], n.get(2).copied().unwrap_or(1));
        if step == 0 {
            return Err("range step must not be 0".into());
        }
        let mut out = Vec::new();
        let mut x = start;
        while (step > 0 && x < stop) || (step < 0 && x > stop) {
            out.push(x.to_string());
            if out.len() > MAX_VALUES {
                return Err(format!("range has more than {MAX_VALUES} values"));
            }
            x = x.checked_add(step).ok_or("range overflows")?;
        }
        if out.is_empty() {
            return Err(format!("range({}) is empty", parts.join(",")));
        }
        return Ok(out);
    }
    let floats: Vec<f64> = parts
        .iter()
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("{USAGE}: `{}` is not a number", p.trim()))
        })
        .collect::<Result<_, _>>()?;
    let (start, stop, step) = (floats[0], floats[1], floats.get(2).copied().unwrap_or(1.0));
    if step == 0.0 {
        return Err("range step must not be 0".into());
    }
    let mut out = Vec::new();
    for i in 0.. {
        let x = start + i as f64 * step;
        if !((step > 0.0 && x < stop) || (step < 0.0 && x > stop)) {
            break;
        }
        if out.len() >= MAX_VALUES {
            return Err(format!("range has more than {MAX_VALUES} values"));
        }
        out.push(format!("{x:?}"));
    }
    if out.is_empty() {
        return Err(format!("range({}) is empty", parts.join(",")));
    }
    Ok(out)
}

/// More values than one key could sensibly take (and than any sweep may run).
const MAX_VALUES: usize = 100_000;

/// Splits at commas outside quotes, brackets, braces and parentheses. Quoted parts keep their
/// quotes (YAML then reads them as strings); `\x` outside quotes is `x` taken literally, and a
/// part that used an escape is written back as a double-quoted string.
fn split_top_level(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped_part = false;
    let mut depth: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    let finish = |current: &mut String, escaped: &mut bool, parts: &mut Vec<String>| {
        let part = current.trim().to_string();
        let part = if *escaped {
            serde_json::Value::String(part).to_string()
        } else {
            part
        };
        parts.push(part);
        current.clear();
        *escaped = false;
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.push(c);
            if c == '\\' && q == '"' {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\\' if depth.is_empty() => match chars.next() {
                Some(next) => {
                    current.push(next);
                    escaped_part = true;
                }
                None => return Err("a trailing `\\` escapes nothing".into()),
            },
            '\'' | '"' => {
                quote = Some(c);
                current.push(c);
            }
            '[' | '{' | '(' => {
                depth.push(c);
                current.push(c);
            }
            ']' | '}' | ')' => {
                let open = match c {
                    ']' => '[',
                    '}' => '{',
                    _ => '(',
                };
                if depth.pop() != Some(open) {
                    return Err(format!("unbalanced `{c}`"));
                }
                current.push(c);
            }
            ',' if depth.is_empty() => {
                if current.trim().is_empty() {
                    return Err("empty value in the list (two commas, or a comma at an end)".into());
                }
                finish(&mut current, &mut escaped_part, &mut parts);
            }
            c => current.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed quote {q}"));
    }
    if let Some(open) = depth.last() {
        return Err(format!("unclosed `{open}`"));
    }
    if current.trim().is_empty() && !parts.is_empty() {
        return Err("empty value in the list (two commas, or a comma at an end)".into());
    }
    finish(&mut current, &mut escaped_part, &mut parts);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(raw: &str) -> Vec<String> {
        parse(raw).unwrap().values
    }

    #[test]
    fn comma_lists_sweep_and_single_values_do_not() {
        let o = parse("model.embed_dim=48,64,128").unwrap();
        assert_eq!(o.values, ["48", "64", "128"]);
        assert_eq!(
            o.choices,
            [
                "model.embed_dim=48",
                "model.embed_dim=64",
                "model.embed_dim=128"
            ]
        );
        assert!(o.swept);
        let single = parse("training.max_steps=3").unwrap();
        assert_eq!(single.choices, ["training.max_steps=3"]);
        assert!(!single.swept);
        assert_eq!(values("a.b= x , y "), ["x", "y"]);
    }

    #[test]
    fn ranges_are_pythons() {
        assert_eq!(values("a.b=range(1,5)"), ["1", "2", "3", "4"]);
        assert_eq!(values("a.b=range(0,10,4)"), ["0", "4", "8"]);
        assert_eq!(values("a.b=range(5,1,-2)"), ["5", "3"]);
        assert_eq!(values("a.b=range(0.5,1.5,0.5)"), ["0.5", "1.0"]);
        assert_eq!(values("a.b=range(1, 3)"), ["1", "2"]);
    }

    #[test]
    fn choice_is_a_list_and_may_hold_one_value() {
        assert_eq!(values("p.t=choice(word,bpe)"), ["word", "bpe"]);
        let one = parse("p.t=choice(bpe)").unwrap();
        assert!(one.swept);
        assert_eq!(one.values, ["bpe"]);
    }

    #[test]
    fn quotes_brackets_and_escapes_keep_commas() {
        assert_eq!(values("p.prompt='to be, or not'"), ["'to be, or not'"]);
        assert_eq!(values("p.prompt=\"a,b\",c"), ["\"a,b\"", "c"]);
        assert_eq!(values("a.b=[1,2],[3]"), ["[1,2]", "[3]"]);
        assert_eq!(values("a.b={x: 1, y: 2}"), ["{x: 1, y: 2}"]);
        assert_eq!(values(r"a.b=x\,y,z"), ["\"x,y\"", "z"]);
        assert!(!parse(r"a.b=x\,y").unwrap().swept);
        assert_eq!(values("a.b=choice('a,b',c)"), ["'a,b'", "c"]);
        // Every value text is one a single run reads: the quoted one as a string with a comma.
        let o = Override::parse(&parse("p.x='a,b',c").unwrap().choices[0]).unwrap();
        assert_eq!(o.value, serde_json::json!("a,b"));
        let o = Override::parse(&parse(r"p.x=a\,b,c").unwrap().choices[0]).unwrap();
        assert_eq!(o.value, serde_json::json!("a,b"));
    }

    #[test]
    fn errors_name_the_override_and_what_is_wrong() {
        for (raw, wanted) in [
            ("a.b=1,,2", "empty value"),
            ("a.b=1,", "empty value"),
            ("a.b=range(1)", "range takes"),
            ("a.b=range(1,2,0)", "must not be 0"),
            ("a.b=range(5,1)", "is empty"),
            ("a.b=range(a,3)", "not a number"),
            ("a.b=glob(*)", "glob(…) is not supported"),
            ("a.b=interval(0,1)", "optimizing sweeper"),
            ("a.b=shuffle(1,2)", "hydra.sweeper.name=random"),
            ("a.b=frobnicate(1)", "unknown sweep function"),
            ("a.b='x,y", "unclosed quote"),
            ("a.b=[1,2", "unclosed `[`"),
            ("a.b=1],2", "unbalanced"),
        ] {
            let err = parse(raw).unwrap_err().to_string();
            assert!(
                err.contains(raw) && err.contains(wanted),
                "{raw}: {err} (wanted {wanted})"
            );
        }
        assert!(parse("novalue").is_err());
        assert!(parse("a..b=1,2").is_err());
    }
}
