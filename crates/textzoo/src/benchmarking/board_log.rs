//! A measured on-board figure beside the emulated estimate: the UART log a user captured from
//! the board (`benchmarking.board_log=FILE`). The firmware's app (`deployment/c/app.c`) reads
//! the DWT cycle counter around the prefill and each decoded token and prints, after the text,
//!
//! ```text
//! timing: prefill_cycles=P cycles_per_token=C ms_per_token=M tokens_per_s=T tokens=N sysclk_hz=H
//! ```
//!
//! The cycle counts are the facts; ms and tokens/s are what they mean at `sysclk_hz`, the clock
//! the firmware was built for (`TZ_SYSCLK_HZ`), and are recomputed here from the cycles so a
//! log with rounded figures still gives the same report. Terminal programs add `\r` and
//! timestamps; only the `timing:` line is read, wherever it sits on its line.

use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// What the board measured, from its `timing:` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardMeasured {
    /// The log it came from.
    pub log: String,
    pub prefill_cycles: u64,
    /// Mean over the decoded tokens (forward passes only, as the emulated instruction counts).
    pub cycles_per_token: u64,
    pub tokens: u64,
    /// The CPU clock the firmware believed it ran at.
    pub sysclk_hz: u64,
    pub ms_per_token: f64,
    pub tokens_per_s: f64,
    pub prefill_ms: f64,
}

/// The prefix of the app's timing line.
pub const TIMING_PREFIX: &str = "timing:";

/// Reads the last timing line of `text` (a log may hold several runs; the last is the one the
/// user just captured).
pub fn parse(text: &str, log: &str) -> std::result::Result<BoardMeasured, String> {
    let line = text
        .lines()
        .rev()
        .filter_map(|l| {
            l.find(TIMING_PREFIX)
                .map(|at| &l[at + TIMING_PREFIX.len()..])
        })
        .next()
        .ok_or_else(|| {
            format!(
                "no `{TIMING_PREFIX} ... cycles_per_token=...` line: capture the board's UART \
                 output after the generated text (a board build, not the QEMU one, prints it)"
            )
        })?;
    let field = |name: &str| -> std::result::Result<u64, String> {
        let value = line
            .split_whitespace()
            .filter_map(|w| w.trim_end_matches('\r').split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("the timing line has no {name}=: `{}`", line.trim()))?;
        value.parse::<u64>().map_err(|_| {
            format!("{name}={value} in the timing line is not a whole number of cycles or Hz")
        })
    };
    let cycles_per_token = field("cycles_per_token")?;
    let sysclk_hz = field("sysclk_hz")?;
    if cycles_per_token == 0 || sysclk_hz == 0 {
        return Err(format!(
            "cycles_per_token and sysclk_hz must be positive: `{}`",
            line.trim()
        ));
    }
    let prefill_cycles = field("prefill_cycles")?;
    let hz = sysclk_hz as f64;
    Ok(BoardMeasured {
        log: log.to_string(),
        prefill_cycles,
        cycles_per_token,
        tokens: field("tokens")?,
        sysclk_hz,
        ms_per_token: cycles_per_token as f64 * 1e3 / hz,
        tokens_per_s: hz / cycles_per_token as f64,
        prefill_ms: prefill_cycles as f64 * 1e3 / hz,
    })
}

/// Reads and parses the log at `path`; any problem is bad input (exit code 2), reported with
/// the key and the file.
pub fn read(path: &Path) -> Result<BoardMeasured> {
    let bad =
        |why: String| Error::Usage(format!("benchmarking.board_log {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    parse(
        &String::from_utf8_lossy(&bytes),
        &path.display().to_string(),
    )
    .map_err(bad)
}

impl BoardMeasured {
    /// The report's lines, with the emulated count beside it when there is one.
    pub fn render(&self, instructions_per_token: Option<f64>) -> String {
        let mut out = format!(
            "\nmeasured on the board ({}; DWT cycle counter, forward passes only)\n  {} cycles/token \
             over {} tokens, prefill {} cycles: {:.3} ms/token, {:.1} tokens/s, prefill {:.3} ms \
             at {} MHz\n",
            self.log,
            self.cycles_per_token,
            self.tokens,
            self.prefill_cycles,
            self.ms_per_token,
            self.tokens_per_s,
            self.prefill_ms,
            self.sysclk_hz as f64 / 1e6
        );
        if let Some(ipt) = instructions_per_token.filter(|i| *i > 0.0) {
            out += &format!(
                "  cycles per emulated instruction: {:.2} (the estimate assumes 1.00)\n",
                self.cycles_per_token as f64 / ipt
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_timing_line_is_read_through_terminal_noise() {
        let log = "to be or not to be\r\n\
            [12:00:01.123] timing: prefill_cycles=1 cycles_per_token=2 ms_per_token=0.000 tokens_per_s=1.0 tokens=3 sysclk_hz=480000000\r\n\
            to be or not to be\r\n\
            [12:00:02.456] timing: prefill_cycles=911000 cycles_per_token=600000 ms_per_token=1.250 tokens_per_s=800.0 tokens=49 sysclk_hz=480000000\r\n";
        let m = parse(log, "uart.log").unwrap();
        assert_eq!(m.cycles_per_token, 600_000);
        assert_eq!(m.prefill_cycles, 911_000);
        assert_eq!(m.tokens, 49);
        assert_eq!(m.sysclk_hz, 480_000_000);
        assert!((m.ms_per_token - 1.25).abs() < 1e-12);
        assert!((m.tokens_per_s - 800.0).abs() < 1e-9);
        let text = m.render(Some(500_000.0));
        assert!(
            text.contains("cycles per emulated instruction: 1.20"),
            "{text}"
        );
    }

    #[test]
    fn logs_without_a_usable_line_say_what_is_missing() {
        let err = parse("to be or not\n", "x").unwrap_err();
        assert!(err.contains("no `timing:"), "{err}");
        let err = parse("timing: cycles_per_token=12 tokens=3\n", "x").unwrap_err();
        assert!(err.contains("no sysclk_hz="), "{err}");
        let err = parse(
            "timing: prefill_cycles=1 cycles_per_token=1.5 tokens=1 sysclk_hz=1\n",
            "x",
        )
        .unwrap_err();
        assert!(err.contains("cycles_per_token=1.5"), "{err}");
        let err = parse(
            "timing: prefill_cycles=1 cycles_per_token=0 tokens=1 sysclk_hz=1\n",
            "x",
        )
        .unwrap_err();
        assert!(err.contains("must be positive"), "{err}");
    }
}
