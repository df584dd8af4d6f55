//! `tiny_gpt`: a pre-LN causal Transformer decoder in the GPT-2 layout.
//!
//! ```text
//! tokens ─ tok_emb + pos_emb ─ dropout ─ N × block (causal) ─ ln_f ─ head ─ logits[b, t, vocab]
//! ```
//!
//! Every position predicts the next token, so one window of `seq_len` tokens gives `seq_len`
//! training targets, and generation needs one incremental step per token with a KV cache.
//! A window shorter than `seq_len` uses positions `0..seq`, exactly the first rows of a longer
//! window: prediction can start from a short prompt.

use super::transformer_lm::{TransformerLm, Variant};
use super::ModelConfig;

pub type TinyGpt = TransformerLm<Gpt>;

/// `tiny_gpt`'s choices in the shared stack.
pub struct Gpt;

impl Variant for Gpt {
    const NAME: &'static str = "tiny_gpt";
    const CAUSAL: bool = true;
    const LAST_POSITION: bool = false;

    /// Positions `0..seq`: a short window is the start of a full one.
    fn first_position(_seq_len: usize, _seq: usize) -> usize {
        0
    }

    /// One incremental decoding step at the end of a full context (T = `seq_len`), counting
    /// matrix products only:
    ///
    /// `L · (3C² [qkv] + 2·T·C [q·kᵀ, p·v] + C² [proj] + 2·C·F [ffn]) + C·V [head]`
    ///
    /// (reference config: 2·(65 536 + 131 072 + 8 192) + 524 288 = 933 888).
    fn macc_per_token(k: &ModelConfig) -> u64 {
        let (c, f, t, v) = (k.embed_dim, k.ffn_dim, k.seq_len, k.vocab_size);
        let block = 4 * c * c + 2 * t * c + 2 * c * f;
        (k.num_layers * block + c * v) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelName;
    use crate::models::transformer::testing::*;
    use crate::models::FloatModel;
    use textzoo_rt::Rng;

    #[test]
    fn whole_model_gradients_match_finite_differences() {
        let mut m = TinyGpt::new(&tiny_config(ModelName::TinyGpt), 1);
        gradient_check(&mut m, 0.0);
    }

    #[test]
    fn gradients_with_dropout_and_tied_head_match_finite_differences() {
        let mut cfg = tiny_config(ModelName::TinyGpt);
        cfg.tie_embeddings = true;
        cfg.dropout = 0.2;
        let mut m = TinyGpt::new(&cfg, 2);
        assert!(m.params().entry("head.weight").is_none());
        gradient_check(&mut m, 0.2);
    }

    #[test]
    fn overfits_a_repeated_sequence() {
        let mut m = TinyGpt::new(&overfit_config(ModelName::TinyGpt), 3);
        let (first, last) = overfit(&mut m);
        assert!(last < 0.1 * first, "loss {first} -> {last}");
    }

    #[test]
    fn same_seed_gives_identical_logits() {
        let cfg = tiny_config(ModelName::TinyGpt);
        let tokens = [1u32, 2, 3, 4, 5, 6, 0, 1];
        let run = |seed| {
            let mut m = TinyGpt::new(&cfg, seed);
            m.forward(&tokens, 2, 4, false, &mut Rng::new(0)).to_vec()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn later_tokens_do_not_change_earlier_logits() {
        let cfg = tiny_config(ModelName::TinyGpt);
        let mut m = TinyGpt::new(&cfg, 4);
        let v = cfg.vocab_size;
        let a = m
            .forward(&[1, 2, 3, 4], 1, 4, false, &mut Rng::new(0))
            .to_vec();
        for t in 0..4 {
            let mut changed = [1u32, 2, 3, 4];
            changed[t + 1..].iter_mut().for_each(|x| *x = 6);
            let b = m.forward(&changed, 1, 4, false, &mut Rng::new(0));
            assert_eq!(&a[..(t + 1) * v], &b[..(t + 1) * v], "position {t}");
        }
    }

    #[test]
    fn shorter_windows_are_the_prefix_of_longer_ones() {
        let cfg = tiny_config(ModelName::TinyGpt);
        let mut m = TinyGpt::new(&cfg, 5);
        let v = cfg.vocab_size;
        let full = m
            .forward(&[3, 1, 4, 1], 1, 4, false, &mut Rng::new(0))
            .to_vec();
        for seq in 1..4 {
            let short = m.forward(&[3, 1, 4, 1][..seq], 1, seq, false, &mut Rng::new(0));
            assert_eq!(short.len(), seq * v);
            for (x, y) in short.iter().zip(&full) {
                assert!((x - y).abs() < 1e-5, "seq {seq}: {x} vs {y}");
            }
        }
        // Back to the training shape after the short calls.
        assert_eq!(
            m.forward(&[3, 1, 4, 1], 1, 4, false, &mut Rng::new(0)),
            &full[..]
        );
    }

    #[test]
    fn reports_parameters_and_macc_of_the_reference_model() {
        let m = TinyGpt::new(&reference_config(ModelName::TinyGpt), 0);
        assert_eq!(m.num_params(), 1_453_568);
        assert_eq!(m.macc_per_token(), 933_888);
    }
}
