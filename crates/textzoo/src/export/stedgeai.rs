//! The hand-off to ST Edge AI (optional; textzoo's own C deployment needs none of it): when
//! `tools.stedgeai.path_to_stedgeai` (or the older `tools.stm32ai.path_to_stm32ai`) names an
//! installed `stedgeai`, benchmarking runs `stedgeai analyze` and deployment `stedgeai
//! generate` on the run's exported `.tflite` for the board's target, and the tool's figures
//! (MACC, weights and activations in total and per layer) go beside textzoo's own.
//!
//! The report parser reads the summary lines (`macc`, `weights (ro)`, `activations (rw)`) and
//! the per-layer table rows (`m_id  name (Type, ORIGINAL)  shape  param/size  macc …`) of the
//! analyze report. This path has been run only against a stand-in executable, never against
//! the real tool.

use crate::config::Board;
use crate::error::{Error, Result};
use crate::util::Metrics;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which `stedgeai` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Analyze,
    Generate,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Analyze => "analyze",
            Action::Generate => "generate",
        }
    }
}

pub struct StEdgeAiInput<'a> {
    pub exe: &'a Path,
    pub model: &'a Path,
    pub board: Board,
    pub optimization: &'a str,
    pub action: Action,
    /// Output directory (`--output`); the workspace goes to `<output>/workspace`.
    pub output: PathBuf,
}

/// ST Edge AI's `--target` for a board (`None` for the host, which it does not target).
pub fn target(board: Board) -> Option<&'static str> {
    match board {
        Board::Stm32H7 => Some("stm32h7"),
        Board::Stm32N6 => Some("stm32n6"),
        Board::Stm32Mp157 => Some("stm32mp1"),
        Board::Stm32Mp257 => Some("stm32mp25"),
        Board::Host => None,
    }
}

/// The arguments `stedgeai` is run with.
pub fn arguments(input: &StEdgeAiInput) -> Result<Vec<String>> {
    let target = target(input.board).ok_or_else(|| {
        Error::Usage("ST Edge AI has no target for board `host`; choose an STM32 board".into())
    })?;
    Ok(vec![
        input.action.name().into(),
        "--model".into(),
        input.model.display().to_string(),
        "--target".into(),
        target.into(),
        "--optimization".into(),
        input.optimization.into(),
        "--output".into(),
        input.output.display().to_string(),
        "--workspace".into(),
        input.output.join("workspace").display().to_string(),
    ])
}

/// One layer as the tool reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub id: u32,
    pub name: String,
    pub kind: String,
    pub macc: u64,
    pub weights_bytes: u64,
}

/// The tool's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StEdgeAiReport {
    pub command: Vec<String>,
    pub macc: Option<u64>,
    pub weights_bytes: Option<u64>,
    pub activations_bytes: Option<u64>,
    pub layers: Vec<Layer>,
    /// Where the tool's own report and outputs are.
    pub output: PathBuf,
}

impl StEdgeAiReport {
    pub fn record(&self, m: &mut Metrics) {
        if let Some(v) = self.macc {
            m.set("stedgeai", "macc", v);
        }
        if let Some(v) = self.weights_bytes {
            m.set("stedgeai", "weights_bytes", v);
        }
        if let Some(v) = self.activations_bytes {
            m.set("stedgeai", "activations_bytes", v);
        }
        m.set("stedgeai", "layers", self.layers.len());
        m.set("stedgeai", "output", self.output.display().to_string());
    }

    pub fn render(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        let mut s = format!(
            "ST Edge AI: MACC {}, weights {} B, activations {} B ({})\n",
            opt(self.macc),
            opt(self.weights_bytes),
            opt(self.activations_bytes),
            self.output.display()
        );
        for l in &self.layers {
            s.push_str(&format!(
                "  {:>3} {:<28} {:<16} macc {:>10}  weights {:>8} B\n",
                l.id, l.name, l.kind, l.macc, l.weights_bytes
            ));
        }
        s
    }
}

/// The leading integer of `s` with thousands separators (`1,234,567` → 1234567).
fn number(s: &str) -> Option<u64> {
    let digits: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '_')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Parses the analyze report text (see the module notes).
pub fn parse_report(text: &str) -> StEdgeAiReport {
    let mut r = StEdgeAiReport::default();
    for line in text.lines() {
        let t = line.trim();
        if let Some((key, value)) = t.split_once(':') {
            match key.trim() {
                "macc" => r.macc = r.macc.or(number(value)),
                "weights (ro)" => r.weights_bytes = r.weights_bytes.or(number(value)),
                "activations (rw)" => r.activations_bytes = r.activations_bytes.or(number(value)),
                _ => {}
            }
        }
        if let Some(layer) = parse_layer(t) {
            r.layers.push(layer);
        }
    }
    r
}

/// `m_id  name (Type, ORIGINAL)  shape  param/size  macc  connected-to…`: the id, the name,
/// the type, the bytes of the `param/size` column (`count/bytes`) and the MACC that follows.
fn parse_layer(t: &str) -> Option<Layer> {
    let (id, rest) = t.split_once(char::is_whitespace)?;
    let id: u32 = id.parse().ok()?;
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let name = rest[..open].trim().to_string();
    let kind = rest[open + 1..close].split(',').next()?.trim().to_string();
    let tail: Vec<&str> = rest[close + 1..].split_whitespace().collect();
    let size_at = tail.iter().position(|w| w.contains('/'));
    let weights_bytes = size_at
        .and_then(|i| tail[i].split('/').nth(1))
        .and_then(number)
        .unwrap_or(0);
    let after = size_at.map_or(0, |i| i + 1);
    let macc = tail[after.min(tail.len())..]
        .iter()
        .find_map(|w| number(w))
        .unwrap_or(0);
    if name.is_empty() {
        return None;
    }
    Some(Layer {
        id,
        name,
        kind,
        macc,
        weights_bytes,
    })
}

/// Checks the configured executable before any work.
pub fn check_exe(exe: &Path) -> Result<()> {
    if !exe.is_file() {
        return Err(Error::Usage(format!(
            "tools.stedgeai.path_to_stedgeai: {} is not a file; give the path of an installed `stedgeai` executable, or leave the key empty (textzoo's own deployment needs none)",
            exe.display()
        )));
    }
    Ok(())
}

/// Runs the tool and reads its report (`<output>/network_<action>_report.txt` if it wrote one,
/// else what it printed).
pub fn run(input: &StEdgeAiInput) -> Result<StEdgeAiReport> {
    let args = arguments(input)?;
    std::fs::create_dir_all(&input.output)
        .map_err(|e| Error::io(format!("creating {}", input.output.display()), e))?;
    tracing::info!("running {} {}", input.exe.display(), args.join(" "));
    let out = std::process::Command::new(input.exe)
        .args(&args)
        .output()
        .map_err(|e| Error::io(format!("running {}", input.exe.display()), e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Internal(format!(
            "stedgeai {} failed ({}): {}",
            input.action.name(),
            out.status,
            err.lines().last().unwrap_or("")
        )));
    }
    let file = input
        .output
        .join(format!("network_{}_report.txt", input.action.name()));
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|_| String::from_utf8_lossy(&out.stdout).into_owned());
    let mut report = parse_report(&text);
    report.command = std::iter::once(input.exe.display().to_string())
        .chain(args)
        .collect();
    report.output = input.output.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
 model file         :   /runs/x/stedgeai/model_int8.tflite
 type               :   tflite
 macc               :   1,234,567
 weights (ro)       :   45,312 B (44.25 KiB) (1 segment)
 activations (rw)   :   3,072 B (3.00 KiB) (1 segment) *

 m_id   layer (type,original)          oshape          param/size      macc      connected to
 ------ ------------------------------ --------------- --------------- --------- ------------
 0      input_ids (Input, )            [b:1,c:8]
 1      tok (Gather, GATHER)           [b:1,h:8,c:16]  4,800/4,800     0         input_ids
 5      blocks_0_attn_q (Dense, FULLY_CONNECTED) [b:8,c:16] 272/320  2,048     ln1
";

    #[test]
    fn the_analyze_report_gives_totals_and_layers() {
        let r = parse_report(REPORT);
        assert_eq!(r.macc, Some(1_234_567));
        assert_eq!(r.weights_bytes, Some(45_312));
        assert_eq!(r.activations_bytes, Some(3_072));
        assert_eq!(r.layers.len(), 3, "{:?}", r.layers);
        assert_eq!(r.layers[1].kind, "Gather");
        assert_eq!(r.layers[1].weights_bytes, 4_800);
        assert_eq!(r.layers[2].name, "blocks_0_attn_q");
        assert_eq!(r.layers[2].macc, 2_048);
        assert_eq!(r.layers[2].weights_bytes, 320);
    }

    #[test]
    fn the_command_line_names_model_target_and_output() {
        let input = StEdgeAiInput {
            exe: Path::new("/opt/st/stedgeai"),
            model: Path::new("/r/model_int8.tflite"),
            board: Board::Stm32N6,
            optimization: "balanced",
            action: Action::Analyze,
            output: PathBuf::from("/r/stedgeai"),
        };
        assert_eq!(
            arguments(&input).unwrap().join(" "),
            "analyze --model /r/model_int8.tflite --target stm32n6 --optimization balanced --output /r/stedgeai --workspace /r/stedgeai/workspace"
        );
        let host = StEdgeAiInput {
            board: Board::Host,
            ..input
        };
        assert!(arguments(&host).is_err());
    }
}
