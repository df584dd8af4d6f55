//! The Transformer language model both `tiny_gpt` and `tiny_bert_generator` are: token and
//! position embeddings, dropout, `num_layers` pre-LN blocks, `ln_f` and the vocabulary head.
//!
//! ```text
//! tokens ─ tok_emb + pos_emb ─ dropout ─ N × block ─ ln_f ─ head ─ logits
//! ```
//!
//! A model names what differs ([`Variant`]): causal or bidirectional attention, which
//! positions a short window takes, whether every position predicts or only the last one (then
//! the last block runs for that position alone, `BlockParams::forward_last`), and its cost per
//! generated token. Parameter names, their order and the initialisation draws are the same for
//! both, so one seed gives both models the same weights.

use super::observe::Tap;
use super::transformer::{self, Acts, BlockParams, Grads, Head, HeadActs, Run, Shape};
use super::{FloatModel, ModelConfig, Pass};
use crate::nn::{dropout, ParamId, ParamStore};
use std::marker::PhantomData;
use textzoo_rt::Rng;

/// What one Transformer model makes of the shared stack.
pub trait Variant: Send {
    /// The model's name in messages.
    const NAME: &'static str;
    /// Whether a position attends only to itself and earlier ones.
    const CAUSAL: bool;
    /// Whether only the window's last position predicts (logits `[batch, 1, vocab]`); otherwise
    /// every position does (`[batch, seq, vocab]`).
    const LAST_POSITION: bool;

    /// The position embedding row of a `seq`-token window's first token.
    fn first_position(seq_len: usize, seq: usize) -> usize;

    /// See [`FloatModel::macc_per_token`].
    fn macc_per_token(config: &ModelConfig) -> u64;
}

pub struct TransformerLm<V: Variant> {
    config: ModelConfig,
    pub(super) params: ParamStore,
    pub(super) tok_emb: ParamId,
    pub(super) pos_emb: ParamId,
    pub(super) blocks: Vec<BlockParams>,
    pub(super) head: Head,
    pub(super) shape: Shape,
    tokens: Vec<u32>,
    /// The residual stream: `resid[0]` the embeddings, `resid[i + 1]` block `i`'s output (one
    /// row per sequence after a last-position block).
    resid: Vec<Vec<f32>>,
    emb_mask: Vec<f32>,
    acts: Vec<Acts>,
    head_acts: HeadActs,
    grads: Grads,
    /// Whether the last forward was a training pass, and whether it drew dropout masks.
    trained: bool,
    dropped: bool,
    variant: PhantomData<V>,
}

impl<V: Variant> TransformerLm<V> {
    /// Builds and initialises the model; the same `seed` gives the same weights.
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

        TransformerLm {
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
            variant: PhantomData,
        }
    }

    /// Rows leaving the stack: every position, or one per sequence.
    fn out_rows(s: &Shape) -> usize {
        if V::LAST_POSITION {
            s.batch
        } else {
            s.rows()
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
        let (n, c, layers) = (s.rows(), s.embed, self.blocks.len());
        for (i, r) in self.resid.iter_mut().enumerate() {
            r.resize(if i < layers { n } else { Self::out_rows(&s) } * c, 0.0);
        }
        self.emb_mask.resize(n * c, 0.0);
        for (i, a) in self.acts.iter_mut().enumerate() {
            a.resize(&s, V::LAST_POSITION && i + 1 == layers);
        }
        self.head_acts.resize(&self.head, Self::out_rows(&s));
        self.grads.resize(&s, V::LAST_POSITION);
        self.shape = s;
    }

    fn first_position(&self) -> usize {
        V::first_position(self.config.seq_len, self.shape.seq)
    }
}

impl<V: Variant> FloatModel for TransformerLm<V> {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn run(&mut self, tokens: &[u32], batch: usize, seq: usize, pass: Pass) -> &[f32] {
        let (train, rng, observer) = (pass.train, pass.rng, pass.observer);
        assert!(
            (1..=self.config.seq_len).contains(&seq) && tokens.len() == batch * seq,
            "{}: {} tokens for [{batch}, {seq}] (seq_len {})",
            V::NAME,
            tokens.len(),
            self.config.seq_len
        );
        self.prepare(batch, seq);
        self.tokens.clear();
        self.tokens.extend_from_slice(tokens);
        let p = if train { self.config.dropout } else { 0.0 };
        let mut run = Run { p, rng, observer };
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
        run.observe(Tap::Embeddings, &self.resid[0][..s.rows() * s.embed]);
        run.dropout(&mut self.resid[0], &mut self.emb_mask);
        let layers = self.blocks.len();
        for (i, (block, acts)) in self.blocks.iter().zip(&mut self.acts).enumerate() {
            let (inp, out) = self.resid.split_at_mut(i + 1);
            if V::LAST_POSITION && i + 1 == layers {
                block.forward_last(ps, acts, &inp[i], &mut out[0], &s, &mut run);
            } else {
                block.forward(ps, acts, &inp[i], &mut out[0], &s, V::CAUSAL, &mut run);
            }
        }
        if V::LAST_POSITION && layers == 0 {
            // No block to pick the last rows: the head reads the embeddings' last rows.
            let (emb, last) = self.resid.split_at_mut(1);
            transformer::gather_last(&mut last[0], &emb[0], &s);
        }
        let rows = Self::out_rows(&s);
        self.head
            .forward(ps, &mut self.head_acts, &self.resid[layers], rows, &mut run);
        self.trained = train;
        self.dropped = train && p > 0.0;
        &self.head_acts.logits[..rows * self.config.vocab_size]
    }

    fn backward(&mut self, dlogits: &[f32]) {
        assert!(
            self.trained,
            "{}: backward needs a training forward first",
            V::NAME
        );
        let (s, pos0) = (self.shape, self.first_position());
        let layers = self.blocks.len();
        let g = &mut self.grads;
        let dtop = if V::LAST_POSITION {
            &mut g.dres_last
        } else {
            &mut g.dres
        };
        self.head.backward(
            &mut self.params,
            &mut self.head_acts,
            &self.resid[layers],
            dlogits,
            dtop,
            Self::out_rows(&s),
        );
        for (i, (block, acts)) in self.blocks.iter().zip(&self.acts).enumerate().rev() {
            let x = &self.resid[i];
            if V::LAST_POSITION && i + 1 == layers {
                block.backward_last(&mut self.params, acts, x, g, &s, self.dropped);
            } else {
                let causal = V::CAUSAL;
                block.backward(&mut self.params, acts, x, g, &s, causal, self.dropped);
            }
        }
        if V::LAST_POSITION && layers == 0 {
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

    fn macc_per_token(&self) -> u64 {
        V::macc_per_token(&self.config)
    }
}
