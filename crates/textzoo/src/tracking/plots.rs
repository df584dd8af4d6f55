//! SVG plots of a run in `<run_dir>/plots/`: training curves, float vs int8 metrics, per-layer
//! memory. SVG because it needs no fonts or rasteriser at build time (plotters' SVG backend
//! leaves text to the viewer) and inlines into the HTML report as is.

use super::record::Record;
use crate::util::Metrics;
use plotters::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;

type PlotResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The colours of the series; the report test looks for them in a screenshot.
pub const TRAIN: RGBColor = RGBColor(31, 119, 180);
pub const VALIDATION: RGBColor = RGBColor(255, 127, 14);
pub const EXTRA: RGBColor = RGBColor(44, 160, 44);
const GROUP_COLORS: [RGBColor; 4] = [TRAIN, VALIDATION, EXTRA, RGBColor(214, 39, 40)];

const WIDTH: u32 = 800;
const HEIGHT: u32 = 400;

/// One written plot, for the report.
#[derive(Debug, Clone)]
pub struct Plot {
    pub title: String,
    /// File name under `plots/`.
    pub file: String,
    pub svg: String,
}

struct Line<'a> {
    name: &'a str,
    color: RGBColor,
    points: Vec<(u64, f64)>,
    markers: bool,
}

/// Draws every plot the run has data for; a plot that fails is skipped with a warning.
pub fn write_all(run_dir: &Path, record: &Record, metrics: &Metrics) -> Vec<Plot> {
    let mut wanted: Vec<(&str, &str, PlotResult<Option<String>>)> = Vec::new();
    let train = record.series("train_loss");
    let val = record.series("val_loss");
    wanted.push((
        "Loss",
        "loss.svg",
        line_chart(
            "Loss",
            "cross-entropy",
            vec![
                Line {
                    name: "train",
                    color: TRAIN,
                    points: train.clone(),
                    markers: false,
                },
                Line {
                    name: "validation",
                    color: VALIDATION,
                    points: val,
                    markers: true,
                },
            ],
        ),
    ));
    let train_ppl: Vec<(u64, f64)> = train
        .iter()
        .map(|&(s, l)| (s, l.exp()))
        .filter(|p| p.1.is_finite())
        .collect();
    wanted.push((
        "Perplexity",
        "perplexity.svg",
        line_chart(
            "Perplexity",
            "perplexity",
            vec![
                Line {
                    name: "train",
                    color: TRAIN,
                    points: train_ppl,
                    markers: false,
                },
                Line {
                    name: "validation",
                    color: VALIDATION,
                    points: record.series("val_perplexity"),
                    markers: true,
                },
            ],
        ),
    ));
    wanted.push((
        "Learning rate",
        "learning_rate.svg",
        line_chart(
            "Learning rate",
            "learning rate",
            vec![Line {
                name: "learning rate",
                color: EXTRA,
                points: record.series("learning_rate"),
                markers: false,
            }],
        ),
    ));
    wanted.push((
        "Gradient norm",
        "grad_norm.svg",
        line_chart(
            "Gradient norm (before clipping)",
            "L2 norm",
            vec![Line {
                name: "gradient norm",
                color: EXTRA,
                points: record.series("grad_norm"),
                markers: false,
            }],
        ),
    ));
    wanted.push((
        "Float vs int8",
        "float_vs_int8.svg",
        float_vs_int8(metrics.section("float"), metrics.section("int8")),
    ));
    // The full report has the per-layer table; metrics.json only its totals.
    let benchmark = std::fs::read_to_string(run_dir.join(crate::util::layout::BENCHMARK_FILE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .or_else(|| metrics.section("benchmark").cloned().map(Value::Object));
    wanted.push((
        "Memory per layer",
        "memory.svg",
        benchmark.as_ref().map_or(Ok(None), memory_per_layer),
    ));
    let mut out = Vec::new();
    for (title, file, result) in wanted {
        match result {
            Ok(Some(svg)) => {
                let path = run_dir.join("plots").join(file);
                match crate::util::write_atomic(&path, svg.as_bytes()) {
                    Ok(()) => out.push(Plot {
                        title: title.to_string(),
                        file: file.to_string(),
                        svg,
                    }),
                    Err(err) => tracing::warn!("tracking: plot {file} not written: {err}"),
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!("tracking: plot {file} not drawn: {err}"),
        }
    }
    out
}

/// A line chart over steps; `None` when no line has a point.
fn line_chart(title: &str, y_desc: &str, lines: Vec<Line>) -> PlotResult<Option<String>> {
    let lines: Vec<Line> = lines.into_iter().filter(|l| !l.points.is_empty()).collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let xs = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0 as f64));
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let (x0, x1) = padded(xs, 0.0);
    let (y0, y1) = padded(ys, 0.05);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        for line in &lines {
            let color = line.color;
            let points: Vec<(f64, f64)> = line.points.iter().map(|&(s, v)| (s as f64, v)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            if line.markers || points.len() == 1 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(Some(svg))
}

/// The metrics both sections have, one small bar panel each (their scales differ too much
/// for one axis).
fn float_vs_int8(
    float: Option<&Map<String, Value>>,
    int8: Option<&Map<String, Value>>,
) -> PlotResult<Option<String>> {
    const KEYS: [&str; 9] = [
        "val_loss",
        "val_perplexity",
        "val_accuracy",
        "val_top5_accuracy",
        "test_loss",
        "test_perplexity",
        "test_accuracy",
        "test_top5_accuracy",
        "model_size_bytes",
    ];
    let (Some(float), Some(int8)) = (float, int8) else {
        return Ok(None);
    };
    let pairs: Vec<(&str, f64, f64)> = KEYS
        .iter()
        .filter_map(|&k| {
            let f = float.get(k)?.as_f64()?;
            let q = int8.get(k)?.as_f64()?;
            (f.is_finite() && q.is_finite()).then_some((k, f, q))
        })
        .collect();
    let groups: Vec<(String, Vec<(String, f64)>)> = pairs
        .into_iter()
        .map(|(k, f, q)| (k.to_string(), vec![("float".into(), f), ("int8".into(), q)]))
        .collect();
    bar_panels("Float vs int8", &["float", "int8"], &groups)
}

/// Panels of bars side by side: one panel per group, one bar per series in each.
fn bar_panels(
    title: &str,
    series: &[&str],
    groups: &[(String, Vec<(String, f64)>)],
) -> PlotResult<Option<String>> {
    if groups.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        let (legend, body) = root.split_vertically(28);
        for (i, name) in series.iter().enumerate() {
            let x = 20 + 110 * i as i32;
            let color = GROUP_COLORS[i % GROUP_COLORS.len()];
            legend.draw(&Rectangle::new([(x, 8), (x + 14, 22)], color.filled()))?;
            legend.draw(&Text::new(
                name.to_string(),
                (x + 20, 8),
                ("sans-serif", 14),
            ))?;
        }
        let panels = body.split_evenly((1, groups.len()));
        for (panel, (label, bars)) in panels.iter().zip(groups) {
            let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
            let top = if max > 0.0 { max * 1.2 } else { 1.0 };
            let n = bars.len() as f64;
            let mut chart = ChartBuilder::on(panel)
                .caption(label, ("sans-serif", 13))
                .margin(6)
                .y_label_area_size(45)
                .x_label_area_size(10)
                .build_cartesian_2d(0.0..n, 0.0..top)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_labels(5)
                .y_label_formatter(&|v| short_number(*v))
                .draw()?;
            for (i, (_, value)) in bars.iter().enumerate() {
                let color = GROUP_COLORS[i % GROUP_COLORS.len()];
                let x = i as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.15, 0.0), (x + 0.85, *value)],
                    color.filled(),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    short_number(*value),
                    (x + 0.15, *value + top * 0.06),
                    ("sans-serif", 11),
                )))?;
            }
        }
        root.present()?;
    }
    Ok(Some(svg))
}

/// Per-layer memory from a benchmark report: the first list of objects that name a layer
/// (`name` or `layer`) and have `*_bytes` numbers, one panel per layer.
fn memory_per_layer(benchmark: &Value) -> PlotResult<Option<String>> {
    let Some(layers) = find_layers(benchmark) else {
        return Ok(None);
    };
    let mut fields: Vec<String> = Vec::new();
    for layer in &layers {
        for (k, v) in layer {
            if k.ends_with("_bytes") && v.is_number() && !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    let groups: Vec<(String, Vec<(String, f64)>)> = layers
        .iter()
        .map(|layer| {
            let name = layer
                .get("name")
                .or_else(|| layer.get("layer"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let bars = fields
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        layer.get(f).and_then(Value::as_f64).unwrap_or(0.0),
                    )
                })
                .collect();
            (name, bars)
        })
        .collect();
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    bar_panels("Memory per layer (bytes)", &names, &groups)
}

fn find_layers(value: &Value) -> Option<Vec<Map<String, Value>>> {
    match value {
        Value::Array(items) => {
            let layers: Vec<Map<String, Value>> = items
                .iter()
                .filter_map(|v| v.as_object().cloned())
                .filter(|o| {
                    (o.get("name").is_some_and(Value::is_string)
                        || o.get("layer").is_some_and(Value::is_string))
                        && o.iter()
                            .any(|(k, v)| k.ends_with("_bytes") && v.is_number())
                })
                .collect();
            if !layers.is_empty() && layers.len() == items.len() {
                return Some(layers);
            }
            items.iter().find_map(find_layers)
        }
        Value::Object(map) => map.values().find_map(find_layers),
        _ => None,
    }
}

/// A scatter plot of labelled points with one highlighted subset joined by a line (a sweep's
/// Pareto front); `None` when there is no point. Used by the sweep report.
pub fn scatter_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64, String)],
    front: &[(f64, f64, String)],
) -> std::result::Result<Option<String>, String> {
    scatter(title, x_desc, y_desc, points, front).map_err(|e| e.to_string())
}

fn scatter(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64, String)],
    front: &[(f64, f64, String)],
) -> PlotResult<Option<String>> {
    let finite = |p: &&(f64, f64, String)| p.0.is_finite() && p.1.is_finite();
    let points: Vec<&(f64, f64, String)> = points.iter().filter(finite).collect();
    if points.is_empty() {
        return Ok(None);
    }
    let (x0, x1) = padded(points.iter().map(|p| p.0), 0.08);
    let (y0, y1) = padded(points.iter().map(|p| p.1), 0.08);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, TRAIN.mix(0.6).filled())),
            )?
            .label("job")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, TRAIN.filled()));
        let mut line: Vec<(f64, f64)> = front
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| (p.0, p.1))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !line.is_empty() {
            chart
                .draw_series(LineSeries::new(line.clone(), VALIDATION.stroke_width(2)))?
                .label("Pareto front")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], VALIDATION.stroke_width(2))
                });
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 5, VALIDATION.filled())))?;
        }
        chart.draw_series(points.iter().map(|p| {
            Text::new(
                p.2.clone(),
                (p.0, p.1),
                ("sans-serif", 11).into_font().color(&BLACK),
            )
        }))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
    }
    Ok(Some(svg))
}

/// The range of `values` widened by `pad` (a fraction), never empty.
fn padded(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * pad;
    (lo - d, hi + d)
}

/// Axis and bar labels: 4 significant digits, scientific for very small or large values.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a < 1e-15 {
        // Rounding residue of an axis tick at zero, not a value.
        return "0".into();
    }
    if !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn line_chart_draws_lines_in_the_series_colours() {
        let svg = line_chart(
            "Loss",
            "loss",
            vec![Line {
                name: "train",
                color: TRAIN,
                points: vec![(1, 3.0), (2, 2.5), (3, 2.0)],
                markers: false,
            }],
        )
        .unwrap()
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("#1F77B4"), "train colour missing");
        assert!(svg.contains("Loss"));
        assert!(line_chart("x", "y", vec![]).unwrap().is_none());
    }

    #[test]
    fn bars_for_float_and_int8_and_for_layers() {
        let f = json!({"val_loss": 6.0, "val_accuracy": 0.2, "only_float": 1.0});
        let q = json!({"val_loss": 6.01, "val_accuracy": 0.19});
        let svg = float_vs_int8(f.as_object(), q.as_object())
            .unwrap()
            .unwrap();
        assert!(svg.contains("val_loss") && svg.contains("val_accuracy"));
        assert!(!svg.contains("only_float"));
        assert!(float_vs_int8(f.as_object(), None).unwrap().is_none());
        let bench = json!({"static": {"layers": [
            {"name": "embedding", "weights_bytes": 1000, "activation_bytes": 64},
            {"name": "block0", "weights_bytes": 5000, "activation_bytes": 256}
        ]}});
        let svg = memory_per_layer(&bench).unwrap().unwrap();
        assert!(svg.contains("block0") && svg.contains("weights_bytes"));
        assert!(memory_per_layer(&json!({"layers": []})).unwrap().is_none());
    }

    #[test]
    fn numbers_and_ranges() {
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(406.5746), "406.5746");
        assert_eq!(short_number(182864.0), "182864");
        assert_eq!(short_number(1e-5), "1.00e-5");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(padded([2.0, 2.0].into_iter(), 0.05), (1.8, 2.2));
        assert_eq!(padded(std::iter::empty(), 0.05), (0.0, 1.0));
    }
}
