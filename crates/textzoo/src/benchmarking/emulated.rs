//! The emulated MCU run: the generated firmware for the board's CPU under QEMU, with the
//! instruction-counting plugin (`deployment/c/tools/insn_count.c`). The app calls
//! `tz_platform_mark()` right before and right after every `tz_next_logits`; the plugin records
//! the executed-instruction count each time that function is entered, so the deltas of each
//! pair are one forward pass: pair 0 the prompt's prefill, the others one decoding step each.
//! Instruction counts are exact and repeatable (TCG executes the same instructions every run);
//! they are not cycles, so the time at the board's clock is an estimate.

use super::native::make;
use crate::deployment::boards::BoardProfile;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// ELF section sizes of the firmware (from `size -A`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sections {
    pub text_bytes: u64,
    pub rodata_bytes: u64,
    pub data_bytes: u64,
    pub bss_bytes: u64,
    /// What the flash image holds: code, constants and `.data`'s initial values.
    pub flash_bytes: u64,
    /// Static RAM: `.data`, `.bss` (arena, KV cache, buffers) and the reserved stack.
    pub ram_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Emulated {
    pub emulator: String,
    pub cpu: String,
    pub clock_hz: u64,
    pub prefill_instructions: u64,
    /// Mean over the decoding steps (the model's forward pass only).
    pub instructions_per_token: f64,
    pub per_token_instructions: Vec<u64>,
    /// Including sampling and text output between the forward passes.
    pub instructions_per_token_with_sampling: f64,
    pub total_instructions: u64,
    /// `clock / instructions_per_token`: an estimate (assumes one instruction per cycle).
    pub estimated_tokens_per_s: f64,
    pub estimated_ms_per_token: f64,
    pub estimated_prefill_ms: f64,
    /// Two runs of the same binary gave the same counts.
    pub repeatable: bool,
    pub sections: Option<Sections>,
    /// The forward pass split by step (transformers: a third run of a build with
    /// `-DTZ_PROFILE_LAYERS`, whose marks between steps add a few instructions each); empty for
    /// the recurrent models.
    pub per_layer: Vec<LayerInstructions>,
}

/// Instructions one step of the forward pass takes per decoded token (mean over the decoding
/// passes of the profiled build).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerInstructions {
    pub layer: String,
    pub instructions_per_token: f64,
}

/// The steps `-DTZ_PROFILE_LAYERS` marks off in a transformer's forward pass, in order (the
/// names of the static analysis where one step is one of its layers).
pub fn step_names(num_layers: usize) -> Vec<String> {
    let mut names = vec!["embedding".to_string()];
    for l in 0..num_layers {
        for op in [
            "ln1",
            "q+k+v",
            "attention",
            "proj",
            "ln2",
            "up+gelu",
            "down",
        ] {
            names.push(format!("blocks.{l}.{op}"));
        }
    }
    names.extend(["ln_f".to_string(), "head".to_string()]);
    names
}

/// The per-step means over the decoding passes of a profiled run: each pass has the app's two
/// marks around it and one between consecutive steps. `None` when the marks do not match.
pub fn per_layer(counts: &Counts, names: &[String]) -> Option<Vec<LayerInstructions>> {
    let per_pass = names.len() + 1;
    if names.is_empty()
        || !counts.marks.len().is_multiple_of(per_pass)
        || counts.marks.len() < 2 * per_pass
    {
        return None;
    }
    let decode: Vec<&[u64]> = counts.marks.chunks_exact(per_pass).skip(1).collect();
    let steps = names
        .iter()
        .enumerate()
        .map(|(i, name)| LayerInstructions {
            layer: name.clone(),
            instructions_per_token: decode
                .iter()
                .map(|p| p[i + 1].saturating_sub(p[i]) as f64)
                .sum::<f64>()
                / decode.len() as f64,
        })
        .collect();
    Some(steps)
}

impl Sections {
    /// Reads `size -A -d` output.
    pub fn parse(text: &str) -> Sections {
        let mut s = Sections {
            text_bytes: 0,
            rodata_bytes: 0,
            data_bytes: 0,
            bss_bytes: 0,
            flash_bytes: 0,
            ram_bytes: 0,
        };
        for line in text.lines() {
            let mut w = line.split_whitespace();
            let (Some(name), Some(Ok(size))) = (w.next(), w.next().map(str::parse::<u64>)) else {
                continue;
            };
            match name {
                n if n.starts_with(".text")
                    || n.starts_with(".vectors")
                    || n.starts_with(".ARM") =>
                {
                    s.text_bytes += size
                }
                n if n.starts_with(".rodata") => s.rodata_bytes += size,
                n if n.starts_with(".data") => s.data_bytes += size,
                n if n.starts_with(".bss") || n.starts_with(".stack") => s.bss_bytes += size,
                _ => {}
            }
        }
        s.flash_bytes = s.text_bytes + s.rodata_bytes + s.data_bytes;
        s.ram_bytes = s.data_bytes + s.bss_bytes;
        s
    }
}

/// Builds the project's emulator build with `tokens + 1` greedy forward passes (the first is
/// the prefill), counts instructions twice, and reads the board build's section sizes; for a
/// transformer of `layers` blocks also the per-step split (a third, profiled run).
pub fn count(
    project: &Path,
    board: &BoardProfile,
    tokens: usize,
    layers: Option<usize>,
) -> Result<Emulated> {
    let flags = format!("EXTRA_CFLAGS=-DTZ_MAX_TOKENS={} -DTZ_GREEDY=1", tokens + 1);
    let run = || -> Result<Counts> {
        let out = make(project, &["-s", "count-qemu", &flags])?;
        Ok(parse_counts(&String::from_utf8_lossy(&out.stdout)))
    };
    let first = run()?;
    let repeatable = run()? == first;
    let sections = make(project, &["-s", "size", &flags])
        .ok()
        .map(|out| Sections::parse(&String::from_utf8_lossy(&out.stdout)));
    let command = make(project, &["-s", "qemu-cmd"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| format!("{:?}", board.emulator));
    let emulator = command
        .split(" build/")
        .next()
        .unwrap_or(&command)
        .trim_end_matches(" -kernel")
        .to_string();
    let per_layer = match layers {
        Some(l) => {
            let profiled = format!("{flags} -DTZ_PROFILE_LAYERS");
            let out = make(project, &["-s", "count-qemu", &profiled])?;
            let counts = parse_counts(&String::from_utf8_lossy(&out.stdout));
            per_layer(&counts, &step_names(l)).ok_or_else(|| {
                Error::Internal(format!(
                    "the profiled build gave {} marks, not {} a pass",
                    counts.marks.len(),
                    step_names(l).len() + 1
                ))
            })?
        }
        None => Vec::new(),
    };
    let mut e = Emulated::from_counts(
        &first,
        emulator,
        board.cpu.to_string(),
        board.clock_hz,
        repeatable,
        sections,
    )
    .ok_or_else(|| {
        Error::Internal(format!(
            "the instruction counter saw {} marks in {}; expected a pair per forward pass",
            first.marks.len(),
            project.display()
        ))
    })?;
    e.per_layer = per_layer;
    Ok(e)
}

/// The plugin's report: `total <n>` and `mark <n>...` lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    pub total: u64,
    pub marks: Vec<u64>,
}

pub fn parse_counts(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("total") => c.total = words.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            Some("mark") => c.marks.extend(words.filter_map(|n| n.parse::<u64>().ok())),
            _ => {}
        }
    }
    c
}

impl Emulated {
    /// Turns mark counts into per-pass instruction counts; `None` without a full pair.
    pub fn from_counts(
        counts: &Counts,
        emulator: String,
        cpu: String,
        clock_hz: u64,
        repeatable: bool,
        sections: Option<Sections>,
    ) -> Option<Emulated> {
        let passes: Vec<u64> = counts
            .marks
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]))
            .collect();
        let (&prefill, steps) = passes.split_first()?;
        let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
        let per_token = if steps.is_empty() {
            prefill as f64
        } else {
            mean(steps)
        };
        // Start-to-start of consecutive passes: the forward pass plus sampling and printing.
        let starts: Vec<u64> = counts.marks.iter().step_by(2).copied().collect();
        let with_sampling: Vec<u64> = starts.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
        let hz = clock_hz as f64;
        Some(Emulated {
            emulator,
            cpu,
            clock_hz,
            prefill_instructions: prefill,
            instructions_per_token: per_token,
            per_token_instructions: steps.to_vec(),
            instructions_per_token_with_sampling: if with_sampling.is_empty() {
                per_token
            } else {
                mean(&with_sampling)
            },
            total_instructions: counts.total,
            estimated_tokens_per_s: hz / per_token.max(1.0),
            estimated_ms_per_token: per_token / hz * 1e3,
            estimated_prefill_ms: prefill as f64 / hz * 1e3,
            repeatable,
            sections,
            per_layer: Vec::new(),
        })
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "\nemulated run ({}, {}): executed instructions, counted exactly\n",
            self.emulator, self.cpu
        );
        out += &format!(
            "  prefill {} instructions; per generated token {:.0} (forward) / {:.0} (with sampling); repeatable: {}\n",
            self.prefill_instructions,
            self.instructions_per_token,
            self.instructions_per_token_with_sampling,
            if self.repeatable { "yes" } else { "NO" }
        );
        out += &format!(
            "  ESTIMATE at {} MHz, one instruction per cycle (instructions are not cycles): {:.1} tokens/s, {:.3} ms/token, prefill {:.3} ms\n",
            self.clock_hz / 1_000_000,
            self.estimated_tokens_per_s,
            self.estimated_ms_per_token,
            self.estimated_prefill_ms
        );
        if let Some(s) = &self.sections {
            out += &format!(
                "  firmware sections: text {} B, rodata {} B, data {} B, bss {} B → flash {:.1} KiB, static RAM {:.1} KiB\n",
                s.text_bytes,
                s.rodata_bytes,
                s.data_bytes,
                s.bss_bytes,
                s.flash_bytes as f64 / 1024.0,
                s.ram_bytes as f64 / 1024.0
            );
        }
        if !self.per_layer.is_empty() {
            let sum: f64 = self
                .per_layer
                .iter()
                .map(|l| l.instructions_per_token)
                .sum();
            out += &format!(
                "  per step, instructions per token (a build with a mark between steps; they sum \
                 to {sum:.0}):\n"
            );
            for l in &self.per_layer {
                out += &format!(
                    "    {:<22} {:>10.0}  {:>5.1} %\n",
                    l.layer,
                    l.instructions_per_token,
                    100.0 * l.instructions_per_token / sum.max(1.0)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_pairs_become_passes() {
        let c = parse_counts("total 5000\nmark 100 1100\nmark 1200 1500\nmark 1600 1900\nnoise\n");
        assert_eq!(c.total, 5000);
        assert_eq!(c.marks.len(), 6);
        let e = Emulated::from_counts(&c, "qemu".into(), "m7".into(), 300, true, None).unwrap();
        assert_eq!(e.prefill_instructions, 1000);
        assert_eq!(e.per_token_instructions, vec![300, 300]);
        assert_eq!(e.instructions_per_token, 300.0);
        assert_eq!(e.instructions_per_token_with_sampling, 400.0);
        assert_eq!(e.estimated_tokens_per_s, 1.0);
        assert!(Emulated::from_counts(
            &parse_counts("mark 5"),
            "q".into(),
            "c".into(),
            1,
            true,
            None
        )
        .is_none());
    }

    #[test]
    fn profiled_marks_become_steps() {
        let names = step_names(1);
        assert_eq!(names.len(), 10);
        assert_eq!(names[2], "blocks.0.q+k+v");
        // Two passes of 11 marks each: the prefill, then one decode whose steps take 1..=10.
        let mut marks: Vec<u64> = (0..11).map(|i| 1000 * i).collect();
        let mut at = 20_000;
        marks.push(at);
        for i in 1..=10 {
            at += i;
            marks.push(at);
        }
        let text: String = marks.iter().map(|m| format!("mark {m}\n")).collect();
        let steps = per_layer(&parse_counts(&text), &names).unwrap();
        assert_eq!(steps[0].instructions_per_token, 1.0);
        assert_eq!(steps[9].layer, "head");
        assert_eq!(steps[9].instructions_per_token, 10.0);
        marks.pop();
        let text: String = marks.iter().map(|m| format!("mark {m}\n")).collect();
        assert!(per_layer(&parse_counts(&text), &names).is_none());
    }

    #[test]
    fn section_sizes_split_flash_and_ram() {
        let s = Sections::parse(
            "build/board/app  :\nsection size addr\n.vectors 1024 134217728\n.text 20000 134218752\n.rodata 500000 134238752\n.data 64 603979776\n.bss 40000 603979840\n.stack 32768 536870912\n.comment 30 0\nTotal 593886\n",
        );
        assert_eq!(s.text_bytes, 21024);
        assert_eq!(s.rodata_bytes, 500000);
        assert_eq!(s.flash_bytes, 21024 + 500000 + 64);
        assert_eq!(s.ram_bytes, 64 + 40000 + 32768);
    }
}
