//! The sweep report: `sweep.csv` and `sweep.html` in the sweep directory.
//!
//! One row per job: its swept values, float and int8 validation perplexity, parameters, flash
//! and RAM of its int8 model's C project against each board (the deployment's own fit check,
//! on the model file the job wrote), whether it fits, and the emulated tokens/s when the job
//! benchmarked. Then, per board, the Pareto front of perplexity against flash and against
//! tokens/s, and the best model that fits. Everything is read back from the job directories,
//! so the report can be rebuilt at any time (`textzoo sweep-report DIR`).

use super::manifest::{JobState, JobStatus, Manifest};
use crate::artifact::ModelFile;
use crate::config::{self, Board};
use crate::deployment::{boards, fit_on};
use crate::error::{Error, Result};
use crate::tracking::{html_escape as esc, scatter_chart};
use crate::util::layout::{CONFIG_FILE, INT8_MODEL_FILE, METRICS_FILE, SWEEP_CSV, SWEEP_HTML};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A model's footprint against one board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardFit {
    pub flash_bytes: u64,
    pub ram_bytes: u64,
    pub fits: bool,
}

/// One job's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub num: usize,
    /// `finished`, `failed`, `interrupted`, `running`, or `not run`.
    pub state: String,
    pub swept: BTreeMap<String, String>,
    pub run_dir: Option<PathBuf>,
    pub float_ppl: Option<f64>,
    pub int8_ppl: Option<f64>,
    pub parameters: Option<u64>,
    /// Per board of [`SweepReport::boards`], when the job left an int8 model.
    pub fits: Vec<Option<BoardFit>>,
    /// The board the job benchmarked on, and the tokens/s its emulated run implies there.
    pub benchmark: Option<(Board, f64)>,
    pub int8_model: Option<PathBuf>,
    pub error: Option<String>,
}

impl Row {
    /// The perplexity the report ranks by: the int8 model's (what is deployed), else the float's.
    pub fn ppl(&self) -> Option<f64> {
        self.int8_ppl.or(self.float_ppl)
    }
}

#[derive(Debug, Clone)]
pub struct SweepReport {
    pub dir: PathBuf,
    pub swept_keys: Vec<String>,
    pub boards: Vec<Board>,
    pub rows: Vec<Row>,
}

impl SweepReport {
    /// Reads every job's results from the sweep directory.
    pub fn collect(manifest: &Manifest) -> Result<Self> {
        let mut rows = Vec::new();
        let mut boards: Vec<Board> = Vec::new();
        let mut configs = Vec::new();
        for job in &manifest.jobs {
            let status =
                JobStatus::load(&manifest.dir, job.num).filter(|s| s.overrides == job.overrides);
            let run_dir = status.as_ref().and_then(|s| s.run_dir.clone());
            let config = run_dir.as_deref().and_then(job_config);
            if let Some(c) = &config {
                let wanted = if c.hydra.sweep.boards.is_empty() {
                    vec![c.deployment.hardware_setup.board]
                } else {
                    c.hydra.sweep.boards.clone()
                };
                for b in wanted {
                    if !boards.contains(&b) {
                        boards.push(b);
                    }
                }
            }
            configs.push((job, status, run_dir, config));
        }
        if boards.is_empty() {
            boards.push(Board::default());
        }
        for (job, status, run_dir, config) in configs {
            let metrics = run_dir.as_deref().map(read_metrics).unwrap_or(Value::Null);
            let num = |section: &str, key: &str| metrics[section][key].as_f64();
            let int8_model = run_dir
                .as_deref()
                .map(|d| d.join(INT8_MODEL_FILE))
                .filter(|p| p.is_file());
            let max_tokens = config.as_ref().map_or(50, |c| c.prediction.max_tokens);
            let fits = match int8_model.as_deref().map(ModelFile::open) {
                Some(Ok(ModelFile::Int8(int8))) => boards
                    .iter()
                    .map(|&b| {
                        let fit = fit_on(&int8, b, max_tokens);
                        Some(BoardFit {
                            flash_bytes: fit.flash.needed,
                            ram_bytes: fit.ram.needed,
                            fits: fit.flash.fits() && fit.ram.fits(),
                        })
                    })
                    .collect(),
                Some(Err(e)) => {
                    tracing::warn!("sweep report: job {}: {e}", job.num);
                    vec![None; boards.len()]
                }
                _ => vec![None; boards.len()],
            };
            let benchmark = metrics["benchmark"]["board"].as_str().and_then(|name| {
                let board = board_by_profile_name(name)?;
                let tps = metrics["benchmark"]["estimated board tokens/s"].as_f64()?;
                Some((board, tps))
            });
            let parameters = metrics["training"]["parameters"]
                .as_u64()
                .or(metrics["benchmark"]["Params"].as_u64());
            rows.push(Row {
                num: job.num,
                state: status
                    .as_ref()
                    .map_or("not run", |s| s.state.name())
                    .to_string(),
                swept: job.swept.clone(),
                run_dir,
                float_ppl: num("float", "val_perplexity"),
                int8_ppl: num("int8", "val_perplexity"),
                parameters,
                fits,
                benchmark,
                int8_model,
                error: status.and_then(|s| s.error),
            });
        }
        Ok(SweepReport {
            dir: manifest.dir.clone(),
            swept_keys: manifest.swept_keys.clone(),
            boards,
            rows,
        })
    }

    pub fn count(&self, state: JobState) -> usize {
        self.rows.iter().filter(|r| r.state == state.name()).count()
    }

    /// The finished job with the lowest perplexity whose model fits board `b` (index into
    /// `boards`).
    pub fn best(&self, b: usize) -> Option<&Row> {
        self.rows
            .iter()
            .filter(|r| r.state == "finished" && r.fits[b].is_some_and(|f| f.fits))
            .filter(|r| r.ppl().is_some())
            .min_by(|x, y| {
                x.ppl()
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&y.ppl().unwrap_or(f64::INFINITY))
            })
    }

    /// Jobs on the Pareto front of (perplexity ↓, flash on board `b` ↓).
    pub fn flash_front(&self, b: usize) -> Vec<&Row> {
        let points: Vec<(&Row, f64, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r, r.ppl()?, r.fits[b]?.flash_bytes as f64)))
            .collect();
        pareto(&points, |a, c| a <= c)
    }

    /// Jobs on the Pareto front of (perplexity ↓, emulated tokens/s on board `b` ↑).
    pub fn speed_front(&self, b: usize) -> Vec<&Row> {
        let points = self.speed_points(b);
        pareto(&points, |a, c| a >= c)
    }

    fn speed_points(&self, b: usize) -> Vec<(&Row, f64, f64)> {
        let board = self.boards[b];
        self.rows
            .iter()
            .filter_map(|r| {
                let (bb, tps) = r.benchmark?;
                (bb == board).then_some((r, r.ppl()?, tps))
            })
            .collect()
    }

    /// Writes `sweep.csv` and `sweep.html`; returns their paths.
    pub fn write(&self) -> Result<(PathBuf, PathBuf)> {
        let csv_path = self.dir.join(SWEEP_CSV);
        crate::util::write_atomic(&csv_path, &self.csv()?)?;
        let html_path = self.dir.join(SWEEP_HTML);
        crate::util::write_atomic(&html_path, self.html().as_bytes())?;
        Ok((csv_path, html_path))
    }

    fn header(&self) -> Vec<String> {
        let mut h = vec!["job".to_string(), "status".into()];
        h.extend(self.swept_keys.iter().cloned());
        h.extend(["float_val_perplexity", "int8_val_perplexity", "parameters"].map(String::from));
        for b in &self.boards {
            let b = board_name(*b);
            h.push(format!("{b}_flash_bytes"));
            h.push(format!("{b}_ram_bytes"));
            h.push(format!("{b}_fits"));
        }
        h.extend(
            [
                "benchmark_board",
                "emulated_tokens_per_s",
                "run_dir",
                "int8_model",
            ]
            .map(String::from),
        );
        h
    }

    fn cells(&self, r: &Row) -> Vec<String> {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        let mut c = vec![r.num.to_string(), r.state.clone()];
        c.extend(
            self.swept_keys
                .iter()
                .map(|k| r.swept.get(k).cloned().unwrap_or_default()),
        );
        c.push(opt(r.float_ppl));
        c.push(opt(r.int8_ppl));
        c.push(r.parameters.map_or(String::new(), |p| p.to_string()));
        for f in &r.fits {
            match f {
                Some(f) => {
                    c.push(f.flash_bytes.to_string());
                    c.push(f.ram_bytes.to_string());
                    c.push(f.fits.to_string());
                }
                None => c.extend([String::new(), String::new(), String::new()]),
            }
        }
        c.push(r.benchmark.map_or(String::new(), |(b, _)| board_name(b)));
        c.push(opt(r.benchmark.map(|(_, t)| t)));
        c.push(path_text(r.run_dir.as_deref()));
        c.push(path_text(r.int8_model.as_deref()));
        c
    }

    pub fn csv(&self) -> Result<Vec<u8>> {
        let fail = |e: csv::Error| Error::Internal(format!("writing sweep.csv: {e}"));
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.header()).map_err(fail)?;
        for r in &self.rows {
            w.write_record(self.cells(r)).map_err(fail)?;
        }
        w.into_inner()
            .map_err(|e| Error::Internal(format!("writing sweep.csv: {e}")))
    }

    /// A plain-text summary for the console: the best model per board.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "sweep: {} jobs, {} finished, {} failed, {} interrupted, {} not run\n",
            self.rows.len(),
            self.count(JobState::Finished),
            self.count(JobState::Failed),
            self.count(JobState::Interrupted),
            self.rows.iter().filter(|r| r.state == "not run").count()
        );
        for (b, board) in self.boards.iter().enumerate() {
            match self.best(b) {
                Some(r) => {
                    let fit = r.fits[b].unwrap_or(BoardFit {
                        flash_bytes: 0,
                        ram_bytes: 0,
                        fits: true,
                    });
                    let _ = writeln!(
                        s,
                        "best for {}: job {} ({}) perplexity {:.2}, flash {:.1} KiB, RAM {:.1} KiB: {}",
                        board_name(*board),
                        r.num,
                        swept_text(r),
                        r.ppl().unwrap_or(f64::NAN),
                        fit.flash_bytes as f64 / 1024.0,
                        fit.ram_bytes as f64 / 1024.0,
                        path_text(r.int8_model.as_deref())
                    );
                }
                None => {
                    let _ = writeln!(s, "best for {}: no finished model fits", board_name(*board));
                }
            }
        }
        s
    }

    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("textzoo sweep {}", self.dir.display());
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p class=\"meta\">{summary}</p>\n",
            t = esc(&title),
            summary = esc(self.summary().lines().next().unwrap_or(""))
        );
        h.push_str("<h2>Best model per board</h2>\n<table><tr><th>board</th><th>job</th><th>values</th><th>perplexity</th><th>flash</th><th>RAM</th><th>int8 model</th></tr>\n");
        for (b, board) in self.boards.iter().enumerate() {
            let name = esc(&board_name(*board));
            match self.best(b) {
                Some(r) => {
                    let f = r.fits[b];
                    let _ = writeln!(
                        h,
                        "<tr><td>{name}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
                        r.num,
                        esc(&swept_text(r)),
                        number(r.ppl()),
                        kib(f.map(|f| f.flash_bytes)),
                        kib(f.map(|f| f.ram_bytes)),
                        esc(&path_text(r.int8_model.as_deref()))
                    );
                }
                None => {
                    let _ = writeln!(
                        h,
                        "<tr><td>{name}</td><td colspan=\"6\">no finished model fits</td></tr>"
                    );
                }
            }
        }
        h.push_str("</table>\n");
        for (b, board) in self.boards.iter().enumerate() {
            let name = board_name(*board);
            let _ = writeln!(
                h,
                "<h2>Pareto fronts on {}</h2>\n<div class=\"plots\">",
                esc(&name)
            );
            let label = |r: &Row| format!("{}", r.num);
            let points: Vec<(f64, f64, String)> = self
                .rows
                .iter()
                .filter_map(|r| Some((r.fits[b]?.flash_bytes as f64 / 1024.0, r.ppl()?, label(r))))
                .collect();
            let front: Vec<(f64, f64, String)> = self
                .flash_front(b)
                .into_iter()
                .filter_map(|r| Some((r.fits[b]?.flash_bytes as f64 / 1024.0, r.ppl()?, label(r))))
                .collect();
            plot(
                &mut h,
                &format!("perplexity vs flash on {name}"),
                "flash (KiB)",
                &points,
                &front,
            );
            let points: Vec<(f64, f64, String)> = self
                .speed_points(b)
                .into_iter()
                .map(|(r, p, t)| (t, p, label(r)))
                .collect();
            let front: Vec<(f64, f64, String)> = self
                .speed_front(b)
                .into_iter()
                .filter_map(|r| Some((r.benchmark?.1, r.ppl()?, label(r))))
                .collect();
            if points.is_empty() {
                h.push_str("<p class=\"meta\">no job benchmarked on this board (a chain_tqeb sweep benchmarks on benchmarking.board, default the deployment board)</p>");
            } else {
                plot(
                    &mut h,
                    &format!("perplexity vs emulated tokens/s on {name}"),
                    "tokens/s (estimate)",
                    &points,
                    &front,
                );
            }
            h.push_str("</div>\n<p>Pareto front (perplexity against flash): ");
            let ids: Vec<String> = self
                .flash_front(b)
                .iter()
                .map(|r| format!("job {}", r.num))
                .collect();
            h.push_str(&esc(&ids.join(", ")));
            h.push_str("</p>\n");
        }
        h.push_str("<h2>Jobs</h2>\n<table><tr>");
        for c in self.header() {
            let _ = write!(h, "<th>{}</th>", esc(&c));
        }
        h.push_str("</tr>\n");
        for r in &self.rows {
            h.push_str("<tr>");
            for c in self.cells(r) {
                let _ = write!(h, "<td>{}</td>", esc(&c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
        let failed: Vec<&Row> = self.rows.iter().filter(|r| r.error.is_some()).collect();
        if !failed.is_empty() {
            h.push_str("<h2>Failures</h2>\n<ul>");
            for r in failed {
                let _ = write!(
                    h,
                    "<li>job {}: <code>{}</code></li>",
                    r.num,
                    esc(r.error.as_deref().unwrap_or(""))
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; margin-top: 26px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; font-size: 0.85em; }
td.num { text-align: right; font-family: monospace; }
.meta { color: #555; } .plots { display: flex; flex-wrap: wrap; gap: 12px; }
.plot svg { width: 560px; height: auto; border: 1px solid #eee; }
";

fn plot(
    h: &mut String,
    title: &str,
    x: &str,
    points: &[(f64, f64, String)],
    front: &[(f64, f64, String)],
) {
    match scatter_chart(title, x, "validation perplexity", points, front) {
        Ok(Some(svg)) => {
            let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
            let _ = write!(h, "<div class=\"plot\">{svg}</div>");
        }
        Ok(None) => {
            let _ = write!(h, "<p class=\"meta\">{}: no data</p>", esc(title));
        }
        Err(e) => tracing::warn!("sweep report: plot {title:?} not drawn: {e}"),
    }
}

/// The non-dominated points: lower perplexity (`.1`) and a better `.2` (`better_or_equal`).
fn pareto<'a>(
    points: &[(&'a Row, f64, f64)],
    better_or_equal: impl Fn(f64, f64) -> bool,
) -> Vec<&'a Row> {
    let mut front: Vec<(&Row, f64)> = points
        .iter()
        .filter(|(_, p, x)| {
            !points
                .iter()
                .any(|(_, q, y)| *q <= *p && better_or_equal(*y, *x) && (*q < *p || *y != *x))
        })
        .map(|(r, _, x)| (*r, *x))
        .collect();
    front.sort_by(|a, b| a.1.total_cmp(&b.1));
    front.into_iter().map(|(r, _)| r).collect()
}

fn job_config(run_dir: &Path) -> Option<config::Config> {
    let path = run_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    config::parse_str(&text, &path.display().to_string(), chrono::Local::now()).ok()
}

fn read_metrics(run_dir: &Path) -> Value {
    std::fs::read_to_string(run_dir.join(METRICS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The board whose profile (board name in `benchmark.json`) is `name`.
fn board_by_profile_name(name: &str) -> Option<Board> {
    [
        Board::Stm32H7,
        Board::Stm32N6,
        Board::Stm32Mp157,
        Board::Stm32Mp257,
        Board::Host,
    ]
    .into_iter()
    .find(|&b| boards::profile(b).name == name)
}

/// The configuration's spelling of a board (`STM32H7`).
pub fn board_name(board: Board) -> String {
    match serde_json::to_value(board) {
        Ok(Value::String(s)) => s,
        _ => format!("{board:?}"),
    }
}

fn swept_text(r: &Row) -> String {
    r.swept
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn path_text(p: Option<&Path>) -> String {
    p.map_or(String::new(), |p| p.display().to_string())
}

fn number(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.3}"))
}

fn kib(v: Option<u64>) -> String {
    v.map_or(String::new(), |v| format!("{:.1} KiB", v as f64 / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(num: usize, ppl: f64) -> Row {
        Row {
            num,
            state: "finished".into(),
            swept: BTreeMap::new(),
            run_dir: None,
            float_ppl: None,
            int8_ppl: Some(ppl),
            parameters: None,
            fits: vec![],
            benchmark: None,
            int8_model: None,
            error: None,
        }
    }

    #[test]
    fn pareto_keeps_only_undominated_points() {
        let rows: Vec<Row> = (0..5).map(|i| row(i, 0.0)).collect();
        // (perplexity, flash): 1 dominates 2; 3 ties 0 on flash with worse perplexity.
        let pts = vec![
            (&rows[0], 10.0, 100.0),
            (&rows[1], 8.0, 200.0),
            (&rows[2], 9.0, 250.0),
            (&rows[3], 12.0, 100.0),
            (&rows[4], 5.0, 400.0),
        ];
        let front: Vec<usize> = pareto(&pts, |a, c| a <= c).iter().map(|r| r.num).collect();
        assert_eq!(front, [0, 1, 4]);
        // Higher is better (tokens/s): the same points read as speed.
        let front: Vec<usize> = pareto(&pts, |a, c| a >= c).iter().map(|r| r.num).collect();
        assert_eq!(front, [4]);
    }

    #[test]
    fn boards_round_trip_through_their_names() {
        assert_eq!(board_name(Board::Stm32H7), "STM32H7");
        assert_eq!(
            board_by_profile_name(boards::profile(Board::Stm32N6).name),
            Some(Board::Stm32N6)
        );
        assert_eq!(board_by_profile_name("nope"), None);
    }
}
