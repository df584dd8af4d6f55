//! `<run_dir>/report.html`: one self-contained page per run (styles and SVG plots inline, no
//! scripts, nothing fetched), so it opens from a copied run directory or an MLflow artifact
//! view without a network.

use super::plots::Plot;
use super::record::Record;
use crate::error::{Error, Result};
use crate::util::Metrics;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// Longer generated texts are cut in the report (the whole text stays in `generated.txt`).
const MAX_GENERATED_CHARS: usize = 20_000;

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 4px; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 10px; text-align: left; font-size: 0.9em; }
td.num { text-align: right; font-family: monospace; }
.meta { color: #555; }
.status-finished { color: #1a7f37; } .status-failed, .status-killed { color: #c62828; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.plot svg { width: 540px; height: auto; border: 1px solid #eee; }
pre { background: #f6f8fa; padding: 10px; white-space: pre-wrap; word-wrap: break-word; font-size: 0.85em; }
";

/// Writes the report; `error` is the run's failure, shown at the top.
pub fn write(
    run_dir: &Path,
    record: &Record,
    metrics: &Metrics,
    plots: &[Plot],
    error: Option<&Error>,
) -> Result<()> {
    let html = render(run_dir, record, metrics, plots, error);
    crate::util::write_atomic(
        &run_dir.join(crate::util::layout::REPORT_FILE),
        html.as_bytes(),
    )
}

fn render(
    run_dir: &Path,
    record: &Record,
    metrics: &Metrics,
    plots: &[Plot],
    error: Option<&Error>,
) -> String {
    let mut h = String::new();
    let status = record.status.name().to_lowercase();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>textzoo run {name}</title><style>{STYLE}</style></head><body>\n\
         <h1>textzoo run {name}</h1>\n<p class=\"meta\">experiment <b>{exp}</b> · mode <b>{mode}</b> · \
         status <b class=\"status-{status}\">{status}</b> · {when} · textzoo {version}</p>\n\
         <p class=\"meta\">run directory <code>{dir}</code></p>\n",
        name = esc(&record.run_name),
        exp = esc(&record.experiment),
        mode = esc(record.params.get("operation_mode").map_or("", String::as_str)),
        when = esc(&format_time(record.start_ms)),
        version = env!("CARGO_PKG_VERSION"),
        dir = esc(&run_dir.display().to_string()),
    );
    if let Some(err) = error {
        let _ = writeln!(h, "<h2>Error</h2>\n<pre>{}</pre>", esc(&format!("{err}")));
    }
    if let (Some(f), Some(q)) = (metrics.section("float"), metrics.section("int8")) {
        h.push_str("<h2>Float vs int8</h2>\n");
        h.push_str(&comparison_table(f, q));
    }
    if !plots.is_empty() {
        h.push_str("<h2>Plots</h2>\n<div class=\"plots\">\n");
        for plot in plots {
            let _ = writeln!(
                h,
                "<div class=\"plot\" title=\"{} (plots/{})\">{}</div>",
                esc(&plot.title),
                esc(&plot.file),
                strip_xml_prolog(&plot.svg)
            );
        }
        h.push_str("</div>\n");
    }
    for section in [
        "training",
        "float",
        "int8",
        "benchmark",
        "preprocessing",
        "run",
    ] {
        if let Some(map) = metrics.section(section) {
            let _ = writeln!(h, "<h2>Metrics: {section}</h2>");
            h.push_str(&leaf_table(map));
        }
    }
    if let Ok(text) = std::fs::read_to_string(run_dir.join(crate::util::layout::GENERATED_FILE)) {
        let shown: String = text.chars().take(MAX_GENERATED_CHARS).collect();
        let cut = if shown.len() < text.len() {
            " (cut; the whole text is in generated.txt)"
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<h2>Generated text{cut}</h2>\n<pre>{}</pre>",
            esc(&shown)
        );
    }
    h.push_str("<h2>Configuration</h2>\n");
    match std::fs::read_to_string(run_dir.join(".hydra/config.yaml")) {
        Ok(text) => {
            let _ = writeln!(h, "<pre>{}</pre>", esc(&text));
        }
        Err(_) => {
            h.push_str("<table>\n");
            for (k, v) in &record.params {
                let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
            }
            h.push_str("</table>\n");
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn comparison_table(float: &Map<String, Value>, int8: &Map<String, Value>) -> String {
    let mut h = String::from("<table>\n<tr><th>metric</th><th>float</th><th>int8</th></tr>\n");
    for (key, f) in float {
        let Some(f) = f.as_f64() else { continue };
        let Some(q) = int8.get(key).and_then(Value::as_f64) else {
            continue;
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(key),
            number(f),
            number(q)
        );
    }
    h.push_str("</table>\n");
    h
}

/// Every leaf of a section as `dotted.key | value`; lists of objects (the training history)
/// are summarised, since the plots show them.
fn leaf_table(map: &Map<String, Value>) -> String {
    fn walk(prefix: &str, v: &Value, rows: &mut Vec<(String, String, bool)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, rows);
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                rows.push((prefix.into(), format!("{} entries", items.len()), false));
            }
            Value::Number(n) => rows.push((
                prefix.into(),
                n.as_f64().map_or_else(|| n.to_string(), number),
                true,
            )),
            Value::String(s) => rows.push((prefix.into(), s.clone(), false)),
            other => rows.push((prefix.into(), other.to_string(), false)),
        }
    }
    let mut rows = Vec::new();
    walk("", &Value::Object(map.clone()), &mut rows);
    let mut h = String::from("<table>\n");
    for (k, v, numeric) in rows {
        let class = if numeric { " class=\"num\"" } else { "" };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td{class}>{}</td></tr>",
            esc(&k),
            esc(&v)
        );
    }
    h.push_str("</table>\n");
    h
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1e-3 {
        format!("{v:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v:.4e}")
    }
}

fn strip_xml_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// HTML escaping for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(30.0), "30");
        assert_eq!(number(6.007767535677822), "6.007768");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1e-5), "1.0000e-5");
    }
}
