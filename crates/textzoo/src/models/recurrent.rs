//! The recurrent language model `gru` and `lstm` both are: token embedding → `num_layers`
//! recurrent layers → linear head, next-token logits at every position. The stack is generic
//! over the layer (`nn::recurrent::RnnLayer` and its `Cell`), so the two baselines differ in nothing but the
//! cell.
//!
//! Dropout (`model.dropout`, training only) sits between every pair of layers: on the
//! embeddings, between recurrent layers and before the head (Zaremba et al. 2014). Only
//! "between recurrent layers" would leave a one-layer model with no regularisation at all.
//!
//! Tensors, named like PyTorch's `nn.Embedding` / `nn.GRU` / `nn.Linear` so exports and the
//! int8 runtime map one to one: `tok_emb [V, E]`, `rnn.{l}.weight_ih [G·H, in]`,
//! `rnn.{l}.weight_hh [G·H, H]`, `rnn.{l}.bias_ih [G·H]`, `rnn.{l}.bias_hh [G·H]`,
//! `head.weight [V, H]` (absent when `tie_embeddings`, which needs `E = H`), `head.bias [V]`.
//!
//! Inside, activations are time-major (`[T, B, ·]`, see nn/recurrent.rs) from the embedding lookup to
//! the last layer; the head reads a batch-major copy so the logits come out `[B, T, V]`. The
//! copy moves `H` floats per token where reordering the logits would move `V`.

use super::observe::Tap;
use super::{FloatModel, ModelConfig, Pass};
use crate::nn::params::grad2;
use crate::nn::recurrent::{Cell, RnnLayer, RnnTap, StepObserver};
use crate::nn::{dropout, embedding, linear, ParamId, ParamStore};
use textzoo_rt::Rng;

pub struct RecurrentLm<C: Cell> {
    config: ModelConfig,
    params: ParamStore,
    tok_emb: ParamId,
    layers: Vec<RnnLayer<C>>,
    /// `tok_emb` itself when the embeddings are tied.
    head_weight: ParamId,
    head_bias: ParamId,
    acts: Acts<C::Acts>,
}

/// Activation buffers for the last (batch, seq), kept for backward and reused by the next step.
#[derive(Default)]
struct Acts<A> {
    batch: usize,
    seq: usize,
    /// Whether the last forward drew dropout masks.
    dropped: bool,
    /// `[T, B]` token ids in time-major order.
    ids: Vec<u32>,
    /// Per layer, its input after dropout, `[T, B, in]` (layer 0's is the embeddings).
    xs: Vec<Vec<f32>>,
    /// Dropout multipliers: one per layer input (time-major), then the head input's.
    masks: Vec<Vec<f32>>,
    layers: Vec<A>,
    /// `[B, T, H]` last layer's output after dropout.
    head_in: Vec<f32>,
    /// `[B, T, V]`.
    logits: Vec<f32>,
    dhead_in: Vec<f32>,
    /// Per layer, the gradient w.r.t. its input; the extra last one is w.r.t. the top output.
    dxs: Vec<Vec<f32>>,
}

impl<C: Cell> RecurrentLm<C> {
    /// Builds and initialises the model; the same `seed` gives the same weights.
    ///
    /// Panics on `num_layers == 0`, or on `tie_embeddings` with `embed_dim != hidden_dim`:
    /// configuration validation rejects both before a model is built.
    pub fn new(config: &ModelConfig, seed: u64) -> Self {
        let c = config;
        assert!(c.num_layers > 0, "a recurrent model needs num_layers >= 1");
        assert!(
            !c.tie_embeddings || c.embed_dim == c.hidden_dim,
            "tie_embeddings needs embed_dim == hidden_dim for a recurrent model"
        );
        let mut params = ParamStore::default();
        let tok_emb = params.add("tok_emb", &[c.vocab_size, c.embed_dim], true);
        let layers: Vec<RnnLayer<C>> = (0..c.num_layers)
            .map(|l| {
                let input = if l == 0 { c.embed_dim } else { c.hidden_dim };
                RnnLayer::<C>::new(&mut params, &format!("rnn.{l}"), input, c.hidden_dim)
            })
            .collect();
        let head_weight = if c.tie_embeddings {
            tok_emb
        } else {
            params.add("head.weight", &[c.vocab_size, c.hidden_dim], true)
        };
        let head_bias = params.add("head.bias", &[c.vocab_size], false);

        // Uniform ±0.1 for the embedding and head (PyTorch's word_language_model): small
        // enough that the first logits are near uniform, and the same scale works tied.
        let mut rng = Rng::new(seed);
        let mut uniform = |params: &mut ParamStore, id: ParamId| {
            for w in params.get_mut(id) {
                *w = (rng.next_f32() * 2.0 - 1.0) * 0.1;
            }
        };
        uniform(&mut params, tok_emb);
        if !c.tie_embeddings {
            uniform(&mut params, head_weight);
        }
        for layer in &layers {
            layer.init(&mut params, &mut rng);
        }
        Self {
            config: config.clone(),
            params,
            tok_emb,
            layers,
            head_weight,
            head_bias,
            acts: Acts::default(),
        }
    }

    /// Sizes every buffer for (batch, seq). `Vec::resize` keeps the allocation when the size
    /// repeats or shrinks, so steady training allocates nothing.
    fn ensure(&mut self, batch: usize, seq: usize) {
        let (n, h, v) = (batch * seq, self.config.hidden_dim, self.config.vocab_size);
        let a = &mut self.acts;
        let layers = self.layers.len();
        a.xs.resize_with(layers, Vec::new);
        a.dxs.resize_with(layers + 1, Vec::new);
        a.masks.resize_with(layers + 1, Vec::new);
        a.layers.resize_with(layers, Default::default);
        // Without dropout the masks stay empty rather than cost a buffer per layer.
        let m = if self.config.dropout > 0.0 { n } else { 0 };
        for (l, layer) in self.layers.iter().enumerate() {
            let input = layer.w.input;
            a.xs[l].resize(n * input, 0.0);
            a.dxs[l].resize(n * input, 0.0);
            a.masks[l].resize(m * input, 0.0);
        }
        a.dxs[layers].resize(n * h, 0.0);
        a.masks[layers].resize(m * h, 0.0);
        a.ids.resize(n, 0);
        a.head_in.resize(n * h, 0.0);
        a.dhead_in.resize(n * h, 0.0);
        a.logits.resize(n * v, 0.0);
        (a.batch, a.seq) = (batch, seq);
    }
}

impl<C: Cell> FloatModel for RecurrentLm<C> {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn run(&mut self, tokens: &[u32], batch: usize, seq: usize, pass: Pass) -> &[f32] {
        let (train, rng, mut observer) = (pass.train, pass.rng, pass.observer);
        let observing = observer.is_some();
        assert!(
            seq <= self.config.seq_len && tokens.len() == batch * seq,
            "forward: tokens must be [batch, seq] with seq <= seq_len"
        );
        self.ensure(batch, seq);
        let (e, h, v) = (
            self.config.embed_dim,
            self.config.hidden_dim,
            self.config.vocab_size,
        );
        let n = batch * seq;
        let p = self.config.dropout;
        let data = &self.params.data;
        let a = &mut self.acts;
        a.dropped = train && p > 0.0;

        for t in 0..seq {
            for b in 0..batch {
                a.ids[t * batch + b] = tokens[b * seq + t];
            }
        }
        embedding::forward(&mut a.xs[0], &a.ids, &data[self.tok_emb.range()], e);
        for (l, layer) in self.layers.iter().enumerate() {
            if l > 0 {
                a.xs[l].copy_from_slice(RnnLayer::<C>::output(&a.layers[l - 1]));
            }
            if a.dropped {
                dropout::forward(&mut a.xs[l], &mut a.masks[l], p, rng);
            }
            let mut tap = |t: RnnTap, xs: &[f32]| {
                if let Some(o) = observer.as_deref_mut() {
                    o(Tap::Rnn(l, t), xs);
                }
            };
            let observe: Option<StepObserver> = observing.then_some(&mut tap);
            C::forward(
                &layer.w,
                &mut a.layers[l],
                &a.xs[l],
                data,
                batch,
                seq,
                observe,
            );
        }

        let top = RnnLayer::<C>::output(&a.layers[self.layers.len() - 1]);
        for t in 0..seq {
            for b in 0..batch {
                let src = (t * batch + b) * h;
                let dst = (b * seq + t) * h;
                a.head_in[dst..dst + h].copy_from_slice(&top[src..src + h]);
            }
        }
        if a.dropped {
            dropout::forward(&mut a.head_in, &mut a.masks[self.layers.len()], p, rng);
        }
        let (w, bias) = (
            &data[self.head_weight.range()],
            &data[self.head_bias.range()],
        );
        linear::forward(&mut a.logits, &a.head_in, w, Some(bias), n, h, v);
        &a.logits
    }

    fn backward(&mut self, dlogits: &[f32]) {
        let (e, h, v) = (
            self.config.embed_dim,
            self.config.hidden_dim,
            self.config.vocab_size,
        );
        let a = &mut self.acts;
        let (batch, seq) = (a.batch, a.seq);
        let n = batch * seq;
        let top = self.layers.len();
        let ParamStore { data, grad, .. } = &mut self.params;

        a.dhead_in.fill(0.0);
        let (dw, db) = grad2(grad, self.head_weight, self.head_bias);
        let w = &data[self.head_weight.range()];
        linear::backward(
            Some(&mut a.dhead_in),
            dw,
            Some(db),
            dlogits,
            &a.head_in,
            w,
            n,
            h,
            v,
        );
        if a.dropped {
            dropout::backward(&mut a.dhead_in, &a.masks[top]);
        }
        let dtop = &mut a.dxs[top];
        for t in 0..seq {
            for b in 0..batch {
                let dst = (t * batch + b) * h;
                let src = (b * seq + t) * h;
                dtop[dst..dst + h].copy_from_slice(&a.dhead_in[src..src + h]);
            }
        }
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (lower, upper) = a.dxs.split_at_mut(l + 1);
            let dx = &mut lower[l];
            dx.fill(0.0);
            C::backward(
                &layer.w,
                &mut a.layers[l],
                &a.xs[l],
                &upper[0],
                dx,
                data,
                grad,
            );
            if a.dropped {
                dropout::backward(dx, &a.masks[l]);
            }
        }
        embedding::backward(&mut grad[self.tok_emb.range()], &a.ids, &a.dxs[0], e);
    }

    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    /// One recurrent step per layer plus the head:
    /// `Σ_l G·H·(in_l + H) + H·V`, with `G` = 3 (GRU) or 4 (LSTM) gate blocks, `in_0 = E` and
    /// `in_l = H` above. The embedding is a lookup and the gate nonlinearities and
    /// element-wise products (O(G·H) per layer) are not multiply-accumulates of a matrix.
    fn macc_per_token(&self) -> u64 {
        let rnn: u64 = self.layers.iter().map(|l| l.w.macc_per_step()).sum();
        rnn + (self.config.hidden_dim * self.config.vocab_size) as u64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Whole-model checks, generic over the cell so models/gru.rs and models/lstm.rs run the
    //! same ones.

    use super::*;
    use crate::config::ModelName;
    use crate::nn::gradcheck::{check_with, seeded};
    use crate::nn::loss::softmax_cross_entropy;
    use std::time::Instant;

    pub(crate) fn tiny(kind: ModelName) -> ModelConfig {
        ModelConfig {
            kind,
            vocab_size: 7,
            seq_len: 4,
            embed_dim: 6,
            num_heads: 1,
            num_layers: 2,
            ffn_dim: 0,
            hidden_dim: 5,
            dropout: 0.0,
            tie_embeddings: false,
        }
    }

    fn tokens(len: usize, vocab: usize, seed: u64) -> Vec<u32> {
        let mut rng = Rng::new(seed);
        (0..len).map(|_| rng.below(vocab as u32)).collect()
    }

    /// Mean cross-entropy of the model on (tokens, targets) and, with `backward`, its gradient
    /// in `params().grad`.
    fn loss<C: Cell>(
        m: &mut RecurrentLm<C>,
        x: &[u32],
        y: &[u32],
        batch: usize,
        seq: usize,
        backward: bool,
    ) -> f32 {
        let vocab = m.config.vocab_size;
        let logits = m
            .forward(x, batch, seq, backward, &mut Rng::new(0))
            .to_vec();
        if !backward {
            return softmax_cross_entropy(&logits, y, vocab, None);
        }
        let mut d = vec![0.0; logits.len()];
        let l = softmax_cross_entropy(&logits, y, vocab, Some(&mut d));
        m.params.zero_grad();
        m.backward(&d);
        l
    }

    /// Every parameter of the model against central differences of the real training loss.
    /// Parameters are set to random values in ±0.5 so the gates are away from their linear
    /// regime. The loss is O(1) in f32, so rounding in the difference quotient is ≈ 1e-5;
    /// an absolute tolerance of 1e-4 keeps the small gradients of far-back steps meaningful.
    pub(crate) fn gradients_match<C: Cell>(config: &ModelConfig, seq: usize) {
        let batch = 2;
        let mut m = RecurrentLm::<C>::new(config, 1);
        m.params.data = seeded(m.params.len(), 2).iter().map(|w| w * 0.5).collect();
        let x = tokens(batch * seq, config.vocab_size, 3);
        let y = tokens(batch * seq, config.vocab_size, 4);
        loss(&mut m, &x, &y, batch, seq, true);
        let at = m.params.data.clone();
        let analytic = m.params.grad.clone();
        check_with(
            "params",
            &at,
            &analytic,
            &mut |p: &[f32]| {
                m.params.data.copy_from_slice(p);
                loss(&mut m, &x, &y, batch, seq, false) as f64
            },
            1e-2,
            1e-2,
            1e-4,
        );
    }

    /// A repeated pattern whose next token after `1` depends on the token before it, so
    /// fitting it needs the recurrent state, not just the current token.
    pub(crate) fn overfits_a_repeated_sequence<C: Cell>(kind: ModelName) {
        let config = ModelConfig {
            vocab_size: 8,
            seq_len: 8,
            embed_dim: 16,
            num_layers: 1,
            hidden_dim: 32,
            ..tiny(kind)
        };
        let pattern = [1u32, 2, 1, 3, 4, 5];
        let stream: Vec<u32> = (0..64).map(|i| pattern[i % pattern.len()]).collect();
        let (batch, seq) = (6, 8);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for b in 0..batch {
            x.extend_from_slice(&stream[b..b + seq]);
            y.extend_from_slice(&stream[b + 1..b + 1 + seq]);
        }
        let mut m = RecurrentLm::<C>::new(&config, 5);
        let started = Instant::now();
        let first = loss(&mut m, &x, &y, batch, seq, false);
        let mut adam = Adam::new(m.params.len());
        let mut last = first;
        for _ in 0..300 {
            last = loss(&mut m, &x, &y, batch, seq, true);
            adam.step(&mut m.params, 0.01);
        }
        assert!(last < 0.1 * first, "loss {first} -> {last}");
        assert!(
            started.elapsed().as_secs_f32() < 5.0,
            "{:?}",
            started.elapsed()
        );
    }

    pub(crate) fn same_seed_same_logits<C: Cell>(kind: ModelName) {
        let config = ModelConfig {
            dropout: 0.3,
            ..tiny(kind)
        };
        let x = tokens(3 * 4, 7, 8);
        let run = |seed: u64, train: bool| {
            let mut m = RecurrentLm::<C>::new(&config, seed);
            m.forward(&x, 3, 4, train, &mut Rng::new(9)).to_vec()
        };
        assert_eq!(run(1, false), run(1, false));
        assert_eq!(run(1, true), run(1, true));
        assert_ne!(run(1, false), run(2, false));
        assert_ne!(run(1, false), run(1, true), "dropout is active in training");
    }

    /// Changing the tokens from position `k` on leaves the logits before `k` untouched, and
    /// a shorter window gives the same logits as the start of a longer one.
    pub(crate) fn causal_and_variable_length<C: Cell>(kind: ModelName) {
        let config = tiny(kind);
        let (v, batch, seq, k) = (config.vocab_size, 2, 4, 2);
        let mut m = RecurrentLm::<C>::new(&config, 1);
        let mut rng = Rng::new(0);
        let a = tokens(batch * seq, v, 1);
        let mut b = a.clone();
        for row in b.chunks_exact_mut(seq) {
            row[k..].iter_mut().for_each(|t| *t = (*t + 1) % v as u32);
        }
        let la = m.forward(&a, batch, seq, false, &mut rng).to_vec();
        let lb = m.forward(&b, batch, seq, false, &mut rng).to_vec();
        for r in 0..batch {
            let row = |l: &[f32], t: usize| l[(r * seq + t) * v..(r * seq + t + 1) * v].to_vec();
            for t in 0..k {
                assert_eq!(row(&la, t), row(&lb, t), "row {r} position {t}");
            }
            assert_ne!(row(&la, k), row(&lb, k));
        }
        // A shorter window and a single row, then back: prefixes agree.
        let short: Vec<u32> = a[..seq].iter().take(3).copied().collect();
        let ls = m.forward(&short, 1, 3, false, &mut rng).to_vec();
        for (s, l) in ls.iter().zip(&la[..3 * v]) {
            assert!((s - l).abs() < 1e-6);
        }
        let again = m.forward(&a, batch, seq, false, &mut rng).to_vec();
        assert_eq!(again, la);
        // Back-propagation works at the shorter length too.
        gradients_match::<C>(&config, 3);
    }

    /// After the first step of a shape, buffers are reused, not reallocated.
    pub(crate) fn reuses_buffers<C: Cell>(kind: ModelName) {
        let config = ModelConfig {
            dropout: 0.2,
            ..tiny(kind)
        };
        let mut m = RecurrentLm::<C>::new(&config, 1);
        let x = tokens(8, 7, 2);
        let step = |m: &mut RecurrentLm<C>| {
            let ptr = m.forward(&x, 2, 4, true, &mut Rng::new(1)).as_ptr();
            m.backward(&vec![0.01; 2 * 4 * 7]);
            (ptr, m.acts.dxs[0].as_ptr(), m.acts.masks[0].as_ptr())
        };
        let first = step(&mut m);
        assert_eq!(step(&mut m), first);
    }

    pub(crate) fn names_and_sizes<C: Cell>(kind: ModelName, gates: usize) {
        let config = tiny(kind);
        let m = RecurrentLm::<C>::new(&config, 1);
        let shapes: Vec<(&str, Vec<usize>)> = m
            .params
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.shape.clone()))
            .collect();
        let g = gates * 5;
        assert_eq!(
            shapes,
            vec![
                ("tok_emb", vec![7, 6]),
                ("rnn.0.weight_ih", vec![g, 6]),
                ("rnn.0.weight_hh", vec![g, 5]),
                ("rnn.0.bias_ih", vec![g]),
                ("rnn.0.bias_hh", vec![g]),
                ("rnn.1.weight_ih", vec![g, 5]),
                ("rnn.1.weight_hh", vec![g, 5]),
                ("rnn.1.bias_ih", vec![g]),
                ("rnn.1.bias_hh", vec![g]),
                ("head.weight", vec![7, 5]),
                ("head.bias", vec![7]),
            ]
        );
        // Reference size: vocab 4096, embed 128, hidden 256, one layer.
        let reference = ModelConfig {
            vocab_size: 4096,
            seq_len: 32,
            embed_dim: 128,
            num_layers: 1,
            hidden_dim: 256,
            ..tiny(kind)
        };
        let m = RecurrentLm::<C>::new(&reference, 1);
        let want = gates * 256 * (128 + 256) + 256 * 4096;
        assert_eq!(m.macc_per_token(), want as u64);
    }

    /// Training throughput of the reference size, in target tokens per second (batch 32 × 32
    /// positions, forward + loss + backward + a plain SGD update).
    pub(crate) fn throughput<C: Cell>(kind: ModelName) {
        let config = ModelConfig {
            vocab_size: 4096,
            seq_len: 32,
            embed_dim: 128,
            num_layers: 1,
            hidden_dim: 256,
            dropout: 0.1,
            ..tiny(kind)
        };
        let (batch, seq) = (32, 32);
        let mut m = RecurrentLm::<C>::new(&config, 1);
        let x = tokens(batch * seq, 4096, 1);
        let y = tokens(batch * seq, 4096, 2);
        let mut d = vec![0.0; batch * seq * 4096];
        let mut rng = Rng::new(3);
        let mut step = |m: &mut RecurrentLm<C>| {
            let logits = m.forward(&x, batch, seq, true, &mut rng);
            softmax_cross_entropy(logits, &y, 4096, Some(&mut d));
            m.params.zero_grad();
            m.backward(&d);
            let p = &mut m.params;
            p.data
                .iter_mut()
                .zip(&p.grad)
                .for_each(|(w, g)| *w -= 0.1 * g);
        };
        for _ in 0..3 {
            step(&mut m);
        }
        let mut rates = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..10 {
                step(&mut m);
            }
            rates.push(10.0 * (batch * seq) as f64 / started.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{kind:?}: median {:.0} target tokens/s (min {:.0}, max {:.0})",
            rates[2], rates[0], rates[4]
        );
    }

    /// A minimal Adam for the overfitting tests (the shared AdamW lives in nn/optim.rs).
    pub(crate) struct Adam {
        m: Vec<f32>,
        v: Vec<f32>,
        t: i32,
    }

    impl Adam {
        pub(crate) fn new(n: usize) -> Self {
            Self {
                m: vec![0.0; n],
                v: vec![0.0; n],
                t: 0,
            }
        }

        pub(crate) fn step(&mut self, p: &mut ParamStore, lr: f32) {
            self.t += 1;
            let (b1, b2) = (0.9f32, 0.999f32);
            let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
            for i in 0..p.data.len() {
                let g = p.grad[i];
                self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
                self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
                p.data[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
            }
        }
    }
}
