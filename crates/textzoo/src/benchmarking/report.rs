//! The benchmark report: one struct, printed as tables, saved as `benchmark.json`, and
//! flattened into `metrics.json` under `benchmark` with the model zoo's metric names.

use super::analysis::Analysis;
use super::board_log::BoardMeasured;
use super::emulated::Emulated;
use super::host::Timing;
use crate::deployment::fit::Fit;
use serde::Serialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub kind: String,
    pub board: String,
    pub analysis: Analysis,
    pub fit: Fit,
    pub host: Vec<Timing>,
    pub emulated: Option<Emulated>,
    /// The figure measured on the board (`benchmarking.board_log`), beside the estimate.
    pub board_measured: Option<BoardMeasured>,
    /// Why a view is missing or how to read it.
    pub notes: Vec<String>,
}

fn kib(bytes: u64) -> f64 {
    (bytes as f64 / 1024.0 * 10.0).round() / 10.0
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

impl Report {
    /// The values logged as metrics (names as in the model zoo's benchmark reports).
    pub fn metrics(&self) -> Map<String, Value> {
        let a = &self.analysis;
        let f = &self.fit.footprint;
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("board", json!(self.board));
        put("Params", json!(a.params));
        put(
            "MACCs decode (M)",
            json!(round(a.macc_decode as f64 / 1e6, 3)),
        );
        put(
            "MACCs prefill (M)",
            json!(round(a.macc_prefill as f64 / 1e6, 3)),
        );
        put("Flash weights KiB", json!(kib(f.weight_bytes)));
        put("Flash total KiB", json!(kib(self.fit.flash.needed)));
        put("RAM Activations KiB", json!(kib(f.arena_bytes)));
        put("RAM KV cache KiB", json!(kib(f.state_bytes)));
        put("RAM total KiB", json!(kib(self.fit.ram.needed)));
        put("fits", json!(self.fit.fits()));
        for t in &self.host {
            let p = t.runtime.replace(' ', "_");
            put(&format!("{p} prefill ms"), json!(round(t.prefill_ms, 4)));
            put(
                &format!("{p} inference_time ms"),
                json!(round(t.ms_per_token, 4)),
            );
            put(&format!("{p} tokens/s"), json!(round(t.tokens_per_s, 1)));
        }
        if let Some(e) = &self.emulated {
            put(
                "emulated instructions prefill",
                json!(e.prefill_instructions),
            );
            put(
                "emulated instructions/token",
                json!(e.instructions_per_token),
            );
            put(
                "estimated board tokens/s",
                json!(round(e.estimated_tokens_per_s, 1)),
            );
            if let Some(s) = &e.sections {
                put("ELF flash KiB", json!(kib(s.flash_bytes)));
                put("ELF RAM KiB", json!(kib(s.ram_bytes)));
            }
        }
        if let Some(b) = &self.board_measured {
            put("board cycles/token", json!(b.cycles_per_token));
            put("board inference_time ms", json!(round(b.ms_per_token, 4)));
            put("board tokens/s", json!(round(b.tokens_per_s, 1)));
        }
        m
    }

    /// The console tables.
    pub fn render(&self) -> String {
        let a = &self.analysis;
        let mut out = format!(
            "benchmark of {} ({}) for {}\n\nstatic analysis (prompt {} tokens; MACC counts matrix products)\n",
            self.model, self.kind, self.board, a.prompt_tokens
        );
        out += &format!(
            "{:<22} {:<16} {:>10} {:>14} {:>12} {:>12} {:>12}\n",
            "layer", "op", "params", "MACC prefill", "MACC/token", "weights B", "activ. B"
        );
        for l in &a.layers {
            out += &format!(
                "{:<22} {:<16} {:>10} {:>14} {:>12} {:>12} {:>12}\n",
                l.name,
                l.op,
                l.params,
                l.macc_prefill,
                l.macc_decode,
                l.weight_bytes,
                l.activation_bytes
            );
        }
        out += &format!(
            "{:<22} {:<16} {:>10} {:>14} {:>12} {:>12}\n",
            "total", "", a.params, a.macc_prefill, a.macc_decode, a.weight_bytes
        );
        out += &self.render_fit();
        out += &self.render_timing();
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out
    }

    fn render_fit(&self) -> String {
        let f = &self.fit;
        let p = &f.footprint;
        let verdict = |b: &crate::deployment::fit::Budget| match b.margin() {
            None => "no limit checked".to_string(),
            Some(m) if m >= 0 => format!("fits, {:.1} KiB free", m as f64 / 1024.0),
            Some(m) => format!("DOES NOT FIT, {:.1} KiB over", -m as f64 / 1024.0),
        };
        format!(
            "\nmemory on {}\n  flash {:.1} KiB = weights {:.1} + vocabulary {:.1} + code ≈ {:.1}: {}\n  RAM   {:.1} KiB = activations {:.1} + KV cache/state {:.1} + buffers {:.1} + stack {:.1}: {}\n",
            f.board,
            kib(f.flash.needed),
            kib(p.weight_bytes),
            kib(p.tokenizer_bytes),
            kib(p.code_estimate_bytes),
            verdict(&f.flash),
            kib(f.ram.needed),
            kib(p.arena_bytes),
            kib(p.state_bytes),
            kib(p.buffer_bytes),
            kib(p.stack_bytes),
            verdict(&f.ram),
        )
    }

    fn render_timing(&self) -> String {
        let mut out = String::new();
        if !self.host.is_empty() {
            out += "\nhost timing (single thread, greedy; medians)\n";
            out += &format!(
                "{:<16} {:>12} {:>12} {:>10} {:>8} {:>8} {:>10}\n",
                "runtime", "prefill ms", "ms/token", "tokens/s", "tokens", "repeats", "peak RSS"
            );
            for t in &self.host {
                out += &format!(
                    "{:<16} {:>12.4} {:>12.4} {:>10.1} {:>8} {:>8} {:>10}\n",
                    t.runtime,
                    t.prefill_ms,
                    t.ms_per_token,
                    t.tokens_per_s,
                    t.tokens,
                    t.repeats,
                    t.peak_rss_bytes.map_or("n/a".to_string(), |b| format!(
                        "{:.1} MiB",
                        b as f64 / 1048576.0
                    ))
                );
            }
        }
        if let Some(e) = &self.emulated {
            out += &e.render();
        }
        if let Some(b) = &self.board_measured {
            out += &b.render(self.emulated.as_ref().map(|e| e.instructions_per_token));
        }
        out
    }
}
