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

use super::transformer::{self, Acts, BlockParams, Dropout, Grads, Head, HeadActs, Shape};
use super::{FloatModel, ModelConfig};
use crate::nn::{dropout, ParamId, ParamStore};
use textzoo_rt::Rng;

pub struct TinyBertGenerator {
    config: ModelConfig,
    params: ParamStore,
    tok_emb: ParamId,
    pos_emb: ParamId,
    blocks: Vec<BlockParams>,
    head: Head,
    shape: Shape,
    tokens: Vec<u32>,
    /// The residual stream: `resid[0]` the embeddings, `resid[i + 1]` block `i`'s output;
    /// the last entry holds one row per sequence.
    resid: Vec<Vec<f32>>,
    emb_mask: Vec<f32>,
    acts: Vec<Acts>,
    head_acts: HeadActs,
    grads: Grads,
    trained: bool,
    dropped: bool,
}

impl TinyBertGenerator {
    pub fn new(config: &ModelConfig, seed: u64) -> Self {
        let (c, v) = (config.embed_dim, config.vocab_size);
        assert!(
            config.num_heads > 0 && c % config.num_heads == 0,
            "embed_dim must be a multiple of num_heads"
        );
        let mut params = ParamStore::default();
        let tok_emb = params.add("tok_emb", &[v, c], false);
        let pos_emb = params.add("pos_emb", &[config.seq_len, c], false);
        let blocks: Vec<_> = (0..config.num_layers)
            .map(|i| BlockParams::add(&mut params, i, c, config.ffn_dim))
            .collect();
        let head = Head::add(&mut params, tok_emb, config.tie_embeddings, c, v);

        let mut rng = Rng::new(seed);
        transformer::fill_normal(params.get_mut(tok_emb), transformer::INIT_STD, &mut rng);
        transformer::fill_normal(params.get_mut(pos_emb), transformer::INIT_STD, &mut rng);
        for b in &blocks {
            b.init(&mut params, &mut rng, config.num_layers);
        }
        head.init(&mut params, &mut rng, config.tie_embeddings);

        TinyBertGenerator {
            config: config.clone(),
            params,
            tok_emb,
            pos_emb,
            acts: blocks.iter().map(|_| Acts::default()).collect(),
            resid: vec![Vec::new(); blocks.len() + 1],
            blocks,
            head,
            shape: Shape::default(),
            tokens: Vec::new(),
            emb_mask: Vec::new(),
            head_acts: HeadActs::default(),
            grads: Grads::default(),
            trained: false,
            dropped: false,
        }
    }

    fn prepare(&mut self, batch: usize, seq: usize) {
        let s = Shape {
            batch,
            seq,
            embed: self.config.embed_dim,
            ffn: self.config.ffn_dim,
            heads: self.config.num_heads,
        };
        if s == self.shape {
            return;
        }
        let (n, c, layers) = (s.rows(), s.embed, self.blocks.len());
        for (i, r) in self.resid.iter_mut().enumerate() {
            r.resize(if i < layers { n * c } else { batch * c }, 0.0);
        }
        self.emb_mask.resize(n * c, 0.0);
        for (i, a) in self.acts.iter_mut().enumerate() {
            a.resize(&s, i + 1 == layers);
        }
        self.head_acts.resize(&self.head, batch);
        self.grads.resize(&s, true);
        self.shape = s;
    }

    fn first_position(&self) -> usize {
        self.config.seq_len - self.shape.seq
    }
}

impl FloatModel for TinyBertGenerator {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn forward(
        &mut self,
        tokens: &[u32],
        batch: usize,
        seq: usize,
        train: bool,
        rng: &mut Rng,
    ) -> &[f32] {
        assert!(
            (1..=self.config.seq_len).contains(&seq) && tokens.len() == batch * seq,
            "tiny_bert_generator: {} tokens for [{batch}, {seq}] (seq_len {})",
            tokens.len(),
            self.config.seq_len
        );
        self.prepare(batch, seq);
        self.tokens.clear();
        self.tokens.extend_from_slice(tokens);
        let p = if train { self.config.dropout } else { 0.0 };
        let mut drop = Dropout { p, rng };
        let (s, pos0) = (self.shape, self.first_position());
        let ps = &self.params;
        transformer::embed(
            &mut self.resid[0],
            tokens,
            ps.get(self.tok_emb),
            ps.get(self.pos_emb),
            &s,
            pos0,
        );
        drop.apply(&mut self.resid[0], &mut self.emb_mask);
        let layers = self.blocks.len();
        for (i, (block, acts)) in self.blocks.iter().zip(&mut self.acts).enumerate() {
            let (inp, out) = self.resid.split_at_mut(i + 1);
            if i + 1 < layers {
                block.forward(ps, acts, &inp[i], &mut out[0], &s, false, &mut drop);
            } else {
                block.forward_last(ps, acts, &inp[i], &mut out[0], &s, &mut drop);
            }
        }
        if layers == 0 {
            // No block to pick the last rows: the head reads the embeddings' last rows.
            let (emb, last) = self.resid.split_at_mut(1);
            transformer::gather_last(&mut last[0], &emb[0], &s);
        }
        self.head
            .forward(ps, &mut self.head_acts, &self.resid[layers], batch);
        self.trained = train;
        self.dropped = train && p > 0.0;
        &self.head_acts.logits[..batch * self.config.vocab_size]
    }

    fn backward(&mut self, dlogits: &[f32]) {
        assert!(
            self.trained,
            "tiny_bert_generator: backward needs a training forward first"
        );
        let (s, pos0) = (self.shape, self.first_position());
        let layers = self.blocks.len();
        let g = &mut self.grads;
        self.head.backward(
            &mut self.params,
            &mut self.head_acts,
            &self.resid[layers],
            dlogits,
            &mut g.dres_last,
            s.batch,
        );
        for (i, (block, acts)) in self.blocks.iter().zip(&self.acts).enumerate().rev() {
            let x = &self.resid[i];
            if i + 1 == layers {
                block.backward_last(&mut self.params, acts, x, g, &s, self.dropped);
            } else {
                block.backward(&mut self.params, acts, x, g, &s, false, self.dropped);
            }
        }
        if layers == 0 {
            g.dres.fill(0.0);
            transformer::scatter_add_last(&mut g.dres, &g.dres_last, &s);
        }
        if self.dropped {
            dropout::backward(&mut g.dres, &self.emb_mask);
        }
        transformer::embed_backward(
            &mut self.params.grad,
            self.tok_emb,
            self.pos_emb,
            &self.tokens,
            &g.dres,
            &s,
            pos0,
        );
    }

    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    /// One full window (T = `seq_len`) through the encoder with the last-block shortcut,
    /// counting matrix products only:
    ///
    /// `(L−1) · T · (4C² + 2·T·C + 2·C·F)` [full blocks]
    /// `+ 2·T·C² [last block K, V] + C² [its Q] + 2·T·C [its q·kᵀ, p·v] + C² [proj] + 2·C·F`
    /// `+ C·V` [head]
    ///
    /// (reference config: 6 553 600 + 1 220 608 + 524 288 = 8 298 496).
    fn macc_per_token(&self) -> u64 {
        let k = &self.config;
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
        let mut drop = Dropout {
            p: 0.0,
            rng: &mut rng,
        };
        for block in &m.blocks {
            let mut acts = Acts::default();
            acts.resize(&s, false);
            let mut y = vec![0.0; x.len()];
            block.forward(ps, &mut acts, &x, &mut y, &s, false, &mut drop);
            x = y;
        }
        let mut last = vec![0.0; s.batch * c];
        transformer::gather_last(&mut last, &x, &s);
        let mut head = HeadActs::default();
        head.resize(&m.head, s.batch);
        m.head.forward(ps, &mut head, &last, s.batch);
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
