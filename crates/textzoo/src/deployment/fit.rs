//! The memory-fit check: does the generated project fit the board, and by how much?
//!
//! Flash holds the `const` weights, the vocabulary and the code; RAM holds the runtime's static
//! buffers (activation arena, KV cache or recurrent state, logits and sampler scratch, the
//! context) and the stack. The numbers come from the same emitters that write the C, so the
//! check and the linker agree; the code size is an estimate until the firmware is linked
//! (benchmarking reads the real ELF sizes).

use super::boards::BoardProfile;
use super::c_model;
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use textzoo_rt::Int8Model;

/// Code of the runtime, the application and the platform layer, measured from the
/// `arm-none-eabi-gcc -O2` builds of the generated project (text section without the
/// weights), rounded up.
pub const CODE_ESTIMATE_BYTES: u64 = 32 * 1024;

/// What the generated project needs, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    pub weight_bytes: u64,
    pub tokenizer_bytes: u64,
    pub code_estimate_bytes: u64,
    pub arena_bytes: u64,
    /// KV cache (`tiny_gpt`) or recurrent state (`gru`/`lstm`).
    pub state_bytes: u64,
    /// Logits, sampler scratch and the token context.
    pub buffer_bytes: u64,
    pub stack_bytes: u64,
}

impl Footprint {
    /// The footprint of the project whose app generates up to `max_tokens` tokens.
    pub fn of(
        model: &Int8Model,
        tokenizer: &TextTokenizer,
        stack_bytes: u64,
        max_tokens: usize,
    ) -> Footprint {
        let ram = c_model::ram_bytes(model);
        let vocab = model.config.vocab_size as u64;
        Footprint {
            weight_bytes: model.weight_bytes() as u64,
            tokenizer_bytes: tokenizer_bytes(tokenizer),
            code_estimate_bytes: CODE_ESTIMATE_BYTES,
            arena_bytes: ram.arena as u64,
            state_bytes: ram.kv_or_state as u64,
            // The runtime's logits/scratch, the sampler's candidate list (id + probability
            // per vocabulary entry), its copy of the logits for the context controls, and the
            // app's context and text buffers.
            buffer_bytes: ram.logits_and_scratch as u64
                + 12 * vocab
                + app_buffer_bytes(tokenizer, max_tokens),
            stack_bytes,
        }
    }

    pub fn flash_bytes(&self) -> u64 {
        self.weight_bytes + self.tokenizer_bytes + self.code_estimate_bytes
    }

    pub fn ram_bytes(&self) -> u64 {
        self.arena_bytes + self.state_bytes + self.buffer_bytes + self.stack_bytes
    }
}

/// Prompt tokens the device app holds (`TZ_PROMPT_CAP` in `app.c`).
pub const PROMPT_CAP: u64 = 128;

/// `app.c`'s static buffers: the context (u16 ids) and three decoded texts of it, each at most
/// `TZ_TOKEN_TEXT_MAX` bytes per token (the longest token and a space).
fn app_buffer_bytes(tokenizer: &TextTokenizer, max_tokens: usize) -> u64 {
    let context = PROMPT_CAP + max_tokens as u64;
    let longest = tokenizer.vocab().iter().map(|s| s.len()).max().unwrap_or(1) as u64;
    2 * context + 3 * (context * (longest + 1) + 2)
}

/// Bytes of the vocabulary tables: the strings, an offset and a length per entry, and the
/// sorted index used to encode prompts.
fn tokenizer_bytes(tokenizer: &TextTokenizer) -> u64 {
    let strings: u64 = tokenizer.vocab().iter().map(|s| s.len() as u64 + 1).sum();
    strings + 8 * tokenizer.vocab_size() as u64
}

/// One memory against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    pub needed: u64,
    /// `None` when the board has no such limit worth checking (Linux boards, the host).
    pub available: Option<u64>,
}

impl Budget {
    pub fn fits(&self) -> bool {
        self.available.is_none_or(|a| self.needed <= a)
    }

    /// Free bytes (negative: missing bytes).
    pub fn margin(&self) -> Option<i64> {
        self.available.map(|a| a as i64 - self.needed as i64)
    }
}

/// The footprint against one board.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fit {
    pub board: String,
    pub footprint: Footprint,
    pub flash: Budget,
    pub ram: Budget,
}

impl Fit {
    pub fn new(footprint: Footprint, board: &BoardProfile) -> Fit {
        Fit {
            board: board.name.to_string(),
            flash: Budget {
                needed: footprint.flash_bytes(),
                available: board.flash_bytes,
            },
            ram: Budget {
                needed: footprint.ram_bytes(),
                available: board.ram_bytes,
            },
            footprint,
        }
    }

    pub fn fits(&self) -> bool {
        self.flash.fits() && self.ram.fits()
    }

    /// Refuses a model that does not fit, naming each memory that overflows and by how much.
    pub fn require(&self) -> Result<()> {
        if self.fits() {
            return Ok(());
        }
        let f = &self.footprint;
        let mut problems = Vec::new();
        if !self.flash.fits() {
            problems.push(overflow(
                "flash",
                &self.flash,
                format!(
                    "weights {} + vocabulary {} + code ≈ {}",
                    kib(f.weight_bytes),
                    kib(f.tokenizer_bytes),
                    kib(f.code_estimate_bytes)
                ),
            ));
        }
        if !self.ram.fits() {
            problems.push(overflow(
                "RAM",
                &self.ram,
                format!(
                    "activation arena {} + KV cache/state {} + buffers {} + stack {}",
                    kib(f.arena_bytes),
                    kib(f.state_bytes),
                    kib(f.buffer_bytes),
                    kib(f.stack_bytes)
                ),
            ));
        }
        Err(Error::Usage(format!(
            "the int8 model does not fit {}: {}; choose a smaller model (model.embed_dim, \
             model.num_layers, model.ffn_dim, the vocabulary size) or a larger board \
             (deployment.hardware_setup.board)",
            self.board,
            problems.join("; ")
        )))
    }
}

fn overflow(memory: &str, b: &Budget, parts: String) -> String {
    let available = b.available.unwrap_or(0);
    let over = b.needed.saturating_sub(available);
    format!(
        "{memory} needs {} ({parts}) but the board has {}: {} too much ({:.1}% over)",
        kib(b.needed),
        kib(available),
        kib(over),
        100.0 * over as f64 / available.max(1) as f64
    )
}

/// Bytes as KiB with one decimal, plus the exact byte count.
pub fn kib(bytes: u64) -> String {
    format!("{:.1} KiB ({bytes} B)", bytes as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprint(weights: u64, arena: u64) -> Footprint {
        Footprint {
            weight_bytes: weights,
            tokenizer_bytes: 1000,
            code_estimate_bytes: CODE_ESTIMATE_BYTES,
            arena_bytes: arena,
            state_bytes: 0,
            buffer_bytes: 100,
            stack_bytes: 900,
        }
    }

    fn board(flash: Option<u64>, ram: Option<u64>) -> BoardProfile {
        BoardProfile {
            flash_bytes: flash,
            ram_bytes: ram,
            ..super::super::boards::profile(crate::config::Board::Stm32H7)
        }
    }

    #[test]
    fn fit_names_the_memory_and_the_overflow() {
        let code = CODE_ESTIMATE_BYTES;
        let fits = Fit::new(
            footprint(10_000, 5_000),
            &board(Some(10_000 + 1000 + code), Some(6_000)),
        );
        assert!(fits.fits());
        assert_eq!(fits.flash.margin(), Some(0));
        assert_eq!(fits.ram.margin(), Some(0));
        fits.require().unwrap();

        let big = Fit::new(
            footprint(12_048, 5_000),
            &board(Some(10_000 + 1000 + code), Some(6_000)),
        );
        assert!(!big.fits());
        assert_eq!(big.flash.margin(), Some(-2048));
        let msg = big.require().unwrap_err().to_string();
        assert!(msg.contains("flash needs"), "{msg}");
        assert!(msg.contains("2.0 KiB (2048 B) too much"), "{msg}");
        assert!(!msg.contains("RAM needs"), "{msg}");

        let no_limits = Fit::new(footprint(1 << 40, 1 << 40), &board(None, None));
        assert!(no_limits.fits());
    }
}
