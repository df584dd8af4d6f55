//! `tiny_bert_generator`, the seed's reference: a bidirectional Transformer encoder over a window
//! of tokens that predicts the token after the window from the window's last position.
//!
//! ```text
//! tokens ─ tok_emb + pos_emb ─ dropout ─ (N−1) × block ─ last-position block ─ ln_f ─ head
//!                                                                  ─ logits[b, 1, vocab]
//! ```
//!
//! The blocks are pre-LN (LayerNorm before attention and FFN, one final LayerNorm), unlike the
//! post-LN Keras encoder the seed used: pre-LN trains stably without learning-rate warm-up,
//! and both Transformer models then share one block, one quantization recipe and one runtime
//! kernel sequence.
//!
//! Only the last position's output is read, so the last block computes the query, attention
//! output, projection and FFN for that position alone (`BlockParams::forward_last`), and folds
//! the key and value projections into that one query instead of applying them to every position
//! (`nn::last_query`: 10 % more windows per second on the reference model).
//!
//! A window shorter than `seq_len` is read as the *last* `seq` positions of a full window
//! (positions `seq_len − seq ..`): the predicting position always carries the embedding of
//! position `seq_len − 1` it was trained at, as with a left-padded window minus the padding.

use super::transformer_lm::{TransformerLm, Variant};
use super::ModelConfig;

pub type TinyBertGenerator = TransformerLm<Bert>;

/// `tiny_bert_generator`'s choices in the shared stack.
pub struct Bert;

impl Variant for Bert {
    const NAME: &'static str = "tiny_bert_generator";
    const CAUSAL: bool = false;
    const LAST_POSITION: bool = true;

    /// The last `seq` positions: the predicting position is always `seq_len − 1`.
    fn first_position(seq_len: usize, seq: usize) -> usize {
        seq_len - seq
    }

    /// One full window (T = `seq_len`) through the encoder with the last-block shortcut,
    /// counting matrix products only:
    ///
    /// `(L−1) · T · (4C² + 2·T·C + 2·C·F)` [full blocks]
    /// `+ 2·T·C² [last block K, V] + C² [its Q] + 2·T·C [its q·kᵀ, p·v] + C² [proj] + 2·C·F`
    /// `+ C·V` [head]
    ///
    /// (reference config: 6 553 600 + 1 220 608 + 524 288 = 8 298 496).
    fn macc_per_token(k: &ModelConfig) -> u64 {
        let (c, f, t, v) = (k.embed_dim, k.ffn_dim, k.seq_len, k.vocab_size);
        let full = t * (4 * c * c + 2 * t * c + 2 * c * f);
        let last = 2 * t * c * c + 2 * c * c + 2 * t * c + 2 * c * f;
        let blocks = match k.num_layers {
            0 => 0,
            l => (l - 1) * full + last,
        };
        (blocks + c * v) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelName;
    use crate::models::transformer::testing::*;
    use crate::models::transformer::{self, Acts, HeadActs, Run};
    use crate::models::FloatModel;
    use textzoo_rt::Rng;

    const KIND: ModelName = ModelName::TinyBertGenerator;

    #[test]
    fn whole_model_gradients_match_finite_differences() {
        let mut m = TinyBertGenerator::new(&tiny_config(KIND), 1);
        gradient_check(&mut m, 0.0);
    }

    #[test]
    fn gradients_with_dropout_tied_head_and_one_layer_match_finite_differences() {
        let mut cfg = tiny_config(KIND);
        cfg.tie_embeddings = true;
        cfg.dropout = 0.2;
        cfg.num_layers = 1;
        let mut m = TinyBertGenerator::new(&cfg, 2);
        gradient_check(&mut m, 0.2);
    }

    #[test]
    fn overfits_a_repeated_sequence() {
        let mut m = TinyBertGenerator::new(&overfit_config(KIND), 3);
        let (first, last) = overfit(&mut m);
        assert!(last < 0.1 * first, "loss {first} -> {last}");
    }

    #[test]
    fn same_seed_gives_identical_logits() {
        let cfg = tiny_config(KIND);
        let tokens = [1u32, 2, 3, 4, 5, 6, 0, 1];
        let run = |seed| {
            let mut m = TinyBertGenerator::new(&cfg, seed);
            m.forward(&tokens, 2, 4, false, &mut Rng::new(0)).to_vec()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn last_block_shortcut_matches_the_full_encoder() {
        // Reference: every block over every position, then the head on the last rows.
        let cfg = tiny_config(KIND);
        let mut m = TinyBertGenerator::new(&cfg, 4);
        let tokens = [1u32, 2, 3, 4, 6, 5, 4, 3];
        let fast = m.forward(&tokens, 2, 4, false, &mut Rng::new(0)).to_vec();

        let s = m.shape;
        let c = s.embed;
        let mut x = vec![0.0; s.rows() * c];
        let ps = &m.params;
        transformer::embed(&mut x, &tokens, ps.get(m.tok_emb), ps.get(m.pos_emb), &s, 0);
        let mut rng = Rng::new(0);
        let mut run = Run {
            p: 0.0,
            rng: &mut rng,
            observer: None,
        };
        for block in &m.blocks {
            let mut acts = Acts::default();
            acts.resize(&s, false);
            let mut y = vec![0.0; x.len()];
            block.forward(ps, &mut acts, &x, &mut y, &s, false, &mut run);
            x = y;
        }
        let mut last = vec![0.0; s.batch * c];
        transformer::gather_last(&mut last, &x, &s);
        let mut head = HeadActs::default();
        head.resize(&m.head, s.batch);
        m.head.forward(ps, &mut head, &last, s.batch, &mut run);
        for (a, b) in fast.iter().zip(&head.logits) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn shorter_windows_use_the_last_positions() {
        // Poison the position rows a short window must not read: its logits stay finite.
        let cfg = tiny_config(KIND);
        let mut m = TinyBertGenerator::new(&cfg, 5);
        for seq in (1..=4).rev() {
            let pos = m.pos_emb;
            m.params_mut().get_mut(pos)[..(4 - seq) * 8].fill(f32::NAN);
            let logits = m.forward(&[3, 1, 4, 1][..seq], 1, seq, false, &mut Rng::new(0));
            assert_eq!(logits.len(), cfg.vocab_size);
            assert!(logits.iter().all(|x| x.is_finite()), "seq {seq}");
        }
    }

    #[test]
    fn reports_parameters_and_macc_of_the_reference_model() {
        let m = TinyBertGenerator::new(&reference_config(KIND), 0);
        assert_eq!(m.num_params(), 1_453_568);
        assert_eq!(m.macc_per_token(), 8_298_496);
    }
}
