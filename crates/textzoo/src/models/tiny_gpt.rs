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

use super::transformer::{self, Acts, BlockParams, Dropout, Grads, Head, HeadActs, Shape};
use super::{FloatModel, ModelConfig};
use crate::nn::{dropout, ParamId, ParamStore};
use textzoo_rt::Rng;

pub struct TinyGpt {
    config: ModelConfig,
    params: ParamStore,
    tok_emb: ParamId,
    pos_emb: ParamId,
    blocks: Vec<BlockParams>,
    head: Head,
    shape: Shape,
    tokens: Vec<u32>,
    /// The residual stream: `resid[0]` the embeddings, `resid[i + 1]` block `i`'s output.
    resid: Vec<Vec<f32>>,
    emb_mask: Vec<f32>,
    acts: Vec<Acts>,
    head_acts: HeadActs,
    grads: Grads,
    /// Whether the last forward was a training pass, and whether it drew dropout masks.
    trained: bool,
    dropped: bool,
}

impl TinyGpt {
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

        TinyGpt {
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

    /// Sizes every buffer for `[batch, seq]`; a no-op while the shape stays the same.
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
        let n = s.rows();
        for r in &mut self.resid {
            r.resize(n * s.embed, 0.0);
        }
        self.emb_mask.resize(n * s.embed, 0.0);
        for a in &mut self.acts {
            a.resize(&s, false);
        }
        self.head_acts.resize(&self.head, n);
        self.grads.resize(&s, false);
        self.shape = s;
    }
}

impl FloatModel for TinyGpt {
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
            "tiny_gpt: {} tokens for [{batch}, {seq}] (seq_len {})",
            tokens.len(),
            self.config.seq_len
        );
        self.prepare(batch, seq);
        self.tokens.clear();
        self.tokens.extend_from_slice(tokens);
        let p = if train { self.config.dropout } else { 0.0 };
        let mut drop = Dropout { p, rng };
        let s = self.shape;
        let ps = &self.params;
        transformer::embed(
            &mut self.resid[0],
            tokens,
            ps.get(self.tok_emb),
            ps.get(self.pos_emb),
            &s,
            0,
        );
        drop.apply(&mut self.resid[0], &mut self.emb_mask);
        for (i, (block, acts)) in self.blocks.iter().zip(&mut self.acts).enumerate() {
            let (inp, out) = self.resid.split_at_mut(i + 1);
            block.forward(ps, acts, &inp[i], &mut out[0], &s, true, &mut drop);
        }
        let last = &self.resid[self.blocks.len()];
        self.head.forward(ps, &mut self.head_acts, last, s.rows());
        self.trained = train;
        self.dropped = train && p > 0.0;
        &self.head_acts.logits[..s.rows() * self.config.vocab_size]
    }

    fn backward(&mut self, dlogits: &[f32]) {
        assert!(
            self.trained,
            "tiny_gpt: backward needs a training forward first"
        );
        let s = self.shape;
        let g = &mut self.grads;
        let last = &self.resid[self.blocks.len()];
        self.head.backward(
            &mut self.params,
            &mut self.head_acts,
            last,
            dlogits,
            &mut g.dres,
            s.rows(),
        );
        for (i, (block, acts)) in self.blocks.iter().zip(&self.acts).enumerate().rev() {
            block.backward(
                &mut self.params,
                acts,
                &self.resid[i],
                g,
                &s,
                true,
                self.dropped,
            );
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
            0,
        );
    }

    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    /// One incremental decoding step at the end of a full context (T = `seq_len`), counting
    /// matrix products only:
    ///
    /// `L · (3C² [qkv] + 2·T·C [q·kᵀ, p·v] + C² [proj] + 2·C·F [ffn]) + C·V [head]`
    ///
    /// (reference config: 2·(65 536 + 131 072 + 8 192) + 524 288 = 933 888).
    fn macc_per_token(&self) -> u64 {
        let k = &self.config;
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
