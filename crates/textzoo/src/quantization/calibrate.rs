//! Calibration: a float forward pass that mirrors the int8 graph tensor for tensor, run over
//! the representative windows, and per-tensor activation ranges from what it observed
//! (`minmax`, `percentile` or `mse`).
//!
//! The reference forward reads the float model's parameters by name and uses the float
//! engine's own kernels (`layernorm`, `linear`, `attention`, `gelu`), so its values are the
//! float model's; it exists because the float models keep their intermediate buffers private
//! and because it names every tensor the int8 graph quantizes.

use crate::config::{Calibration, ModelName};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::nn::attention::{self, Layout};
use crate::nn::{gelu, layernorm, linear, ParamStore};
use std::collections::BTreeMap;
use textzoo_rt::Rng;

/// Values kept per tensor for percentile / MSE calibration (a uniform reservoir sample).
const RESERVOIR: usize = 100_000;

/// What was seen of one tensor: exact min and max, and a uniform sample of its values.
#[derive(Debug, Clone)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    pub count: u64,
    pub sample: Vec<f32>,
    rng: Rng,
}

impl Observer {
    fn new(seed: u64) -> Self {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            sample: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    pub fn observe(&mut self, xs: &[f32]) {
        for &x in xs {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if self.sample.len() < RESERVOIR {
                self.sample.push(x);
            } else {
                let j = (self.rng.next_u32() as u64 | ((self.rng.next_u32() as u64) << 32))
                    % (self.count + 1);
                if (j as usize) < RESERVOIR {
                    self.sample[j as usize] = x;
                }
            }
            self.count += 1;
        }
    }

    /// The calibrated real range `[lo, hi]`, always containing 0.
    pub fn range(&self, method: Calibration, percentile: f64) -> (f32, f32) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        let (lo, hi) = match method {
            Calibration::Minmax => (self.min, self.max),
            Calibration::Percentile => {
                let mut s = self.sample.clone();
                s.sort_by(|a, b| a.total_cmp(b));
                let at = |q: f64| s[((q * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)];
                let p = percentile / 100.0;
                (at(1.0 - p), at(p))
            }
            Calibration::Mse => self.mse_range(),
        };
        (lo.min(0.0), hi.max(0.0))
    }

    /// The clipping of `[min, max]` (shrunk by a common factor) that minimises the mean
    /// squared error of quantizing the sample.
    fn mse_range(&self) -> (f32, f32) {
        let (mut best, mut best_err) = ((self.min, self.max), f64::INFINITY);
        for step in 0..60 {
            let alpha = 1.0 - step as f32 * 0.0125;
            let (lo, hi) = ((self.min * alpha).min(0.0), (self.max * alpha).max(0.0));
            let (scale, zp) = scale_zero_point(lo, hi);
            let err: f64 = self
                .sample
                .iter()
                .map(|&x| {
                    let q = ((x as f64 / scale).round() + zp as f64).clamp(-128.0, 127.0);
                    let d = (q - zp as f64) * scale - x as f64;
                    d * d
                })
                .sum();
            if err < best_err {
                best_err = err;
                best = (lo, hi);
            }
        }
        best
    }
}

/// Asymmetric int8 parameters of a real range containing 0: `real = scale · (q − zp)`.
pub fn scale_zero_point(lo: f32, hi: f32) -> (f64, i32) {
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let scale = if hi - lo > 1e-12 {
        (hi - lo) / 255.0
    } else {
        1e-6
    };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

/// Observers by tensor name (`x0`, `blocks.{i}.ln1`, `.q`, `.k`, `.v`, `.att`, `.res2`,
/// `.ln2`, `.up`, `.h`, `.y`, `ln_f`).
pub type Observers = BTreeMap<String, Observer>;

fn param<'a>(ps: &'a ParamStore, name: &str) -> Result<&'a [f32]> {
    ps.entry(name)
        .map(|e| ps.get(e.id))
        .ok_or_else(|| Error::Internal(format!("float model has no parameter `{name}`")))
}

/// Runs the float Transformer reference over `windows`, recording every quantized tensor.
pub fn calibrate_transformer(
    cfg: &ModelConfig,
    ps: &ParamStore,
    windows: &[Vec<u32>],
) -> Result<Observers> {
    let mut obs = Observers::new();
    let mut seed = 0;
    let mut observe = |obs: &mut Observers, name: String, xs: &[f32]| {
        seed += 1;
        obs.entry(name)
            .or_insert_with(|| Observer::new(seed))
            .observe(xs);
    };
    for w in windows {
        forward_transformer(cfg, ps, w, &mut |name, xs| observe(&mut obs, name, xs))?;
    }
    Ok(obs)
}

/// The float forward of one window (positions `0..len` for `tiny_gpt`, the last `len` of the
/// window for `tiny_bert_generator`), every intermediate tensor handed to `observe`. Returns
/// the logits of every row (`tiny_gpt`) or of the last row.
pub fn forward_transformer(
    cfg: &ModelConfig,
    ps: &ParamStore,
    tokens: &[u32],
    observe: &mut dyn FnMut(String, &[f32]),
) -> Result<Vec<f32>> {
    let (t, c, f, v) = (tokens.len(), cfg.embed_dim, cfg.ffn_dim, cfg.vocab_size);
    let bert = cfg.kind == ModelName::TinyBertGenerator;
    let pos0 = if bert { cfg.seq_len - t } else { 0 };
    let tok = param(ps, "tok_emb")?;
    let pos = param(ps, "pos_emb")?;
    let mut x = vec![0.0f32; t * c];
    for (r, &id) in tokens.iter().enumerate() {
        for i in 0..c {
            x[r * c + i] = tok[id as usize * c + i] + pos[(pos0 + r) * c + i];
        }
    }
    observe("x0".into(), &x);
    let (mut mean, mut rstd) = (vec![0.0; t], vec![0.0; t]);
    let mut ln = vec![0.0; t * c];
    let mut qkv = vec![0.0; t * 3 * c];
    let mut att = vec![0.0; t * c];
    let mut probs = vec![0.0; cfg.num_heads * t * t];
    let mut res2 = vec![0.0; t * c];
    let mut up = vec![0.0; t * f];
    let mut h = vec![0.0; t * f];
    let mut y = vec![0.0; t * c];
    let mut col = vec![0.0; t * c];
    for i in 0..cfg.num_layers {
        let p = |n: &str| param(ps, &format!("blocks.{i}.{n}"));
        let name = |n: &str| format!("blocks.{i}.{n}");
        layernorm::forward(
            &mut ln,
            &mut mean,
            &mut rstd,
            &x,
            p("ln1.weight")?,
            p("ln1.bias")?,
            t,
            c,
        );
        observe(name("ln1"), &ln);
        linear::forward(
            &mut qkv,
            &ln,
            p("attn.qkv.weight")?,
            Some(p("attn.qkv.bias")?),
            t,
            c,
            3 * c,
        );
        for (k, part) in ["q", "k", "v"].iter().enumerate() {
            for r in 0..t {
                col[r * c..(r + 1) * c]
                    .copy_from_slice(&qkv[r * 3 * c + k * c..r * 3 * c + (k + 1) * c]);
            }
            observe(name(part), &col);
        }
        let l = Layout::packed(1, t, c, cfg.num_heads, !bert);
        attention::forward(&mut att, &mut probs, &qkv, &qkv, &l);
        observe(name("att"), &att);
        linear::forward(
            &mut res2,
            &att,
            p("attn.proj.weight")?,
            Some(p("attn.proj.bias")?),
            t,
            c,
            c,
        );
        res2.iter_mut().zip(&x).for_each(|(r, x)| *r += x);
        observe(name("res2"), &res2);
        layernorm::forward(
            &mut ln,
            &mut mean,
            &mut rstd,
            &res2,
            p("ln2.weight")?,
            p("ln2.bias")?,
            t,
            c,
        );
        observe(name("ln2"), &ln);
        linear::forward(
            &mut up,
            &ln,
            p("ffn.up.weight")?,
            Some(p("ffn.up.bias")?),
            t,
            c,
            f,
        );
        observe(name("up"), &up);
        h.iter_mut().zip(&up).for_each(|(h, u)| *h = gelu::gelu(*u));
        observe(name("h"), &h);
        linear::forward(
            &mut y,
            &h,
            p("ffn.down.weight")?,
            Some(p("ffn.down.bias")?),
            t,
            f,
            c,
        );
        y.iter_mut().zip(&res2).for_each(|(y, r)| *y += r);
        observe(name("y"), &y);
        std::mem::swap(&mut x, &mut y);
    }
    layernorm::forward(
        &mut ln,
        &mut mean,
        &mut rstd,
        &x,
        param(ps, "ln_f.weight")?,
        param(ps, "ln_f.bias")?,
        t,
        c,
    );
    observe("ln_f".into(), &ln);
    let head = match ps.entry("head.weight") {
        Some(e) => ps.get(e.id),
        None => tok,
    };
    let rows = if bert { 1 } else { t };
    let first = t - rows;
    let mut logits = vec![0.0; rows * v];
    linear::forward(
        &mut logits,
        &ln[first * c..],
        head,
        Some(param(ps, "head.bias")?),
        rows,
        c,
        v,
    );
    Ok(logits)
}

/// Runs the float recurrent reference (`gru`, `lstm`) over `windows` from the zero state,
/// recording the LSTM cells (`rnn.{l}.c`) and every gate pre-activation (`rnn.{l}.pre`, for
/// the report of how much of the tables' [−8, 8) range is used).
pub fn calibrate_recurrent(
    cfg: &ModelConfig,
    ps: &ParamStore,
    windows: &[Vec<u32>],
) -> Result<Observers> {
    let mut obs = Observers::new();
    let mut seed = 1000;
    for w in windows {
        forward_recurrent(cfg, ps, w, &mut |name, xs| {
            seed += 1;
            obs.entry(name)
                .or_insert_with(|| Observer::new(seed))
                .observe(xs);
        })?;
    }
    Ok(obs)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The float recurrent forward of one window from the zero state (PyTorch's GRU/LSTM
/// equations, as `nn::gru` / `nn::lstm`), logits of every position.
pub fn forward_recurrent(
    cfg: &ModelConfig,
    ps: &ParamStore,
    tokens: &[u32],
    observe: &mut dyn FnMut(String, &[f32]),
) -> Result<Vec<f32>> {
    let (e, h, v) = (cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
    let lstm = cfg.kind == ModelName::Lstm;
    let gates = if lstm { 4 } else { 3 };
    let g = gates * h;
    let tok = param(ps, "tok_emb")?;
    let head = match ps.entry("head.weight") {
        Some(en) => ps.get(en.id),
        None => tok,
    };
    let head_b = param(ps, "head.bias")?;
    let mut hs = vec![vec![0.0f32; h]; cfg.num_layers];
    let mut cs = vec![vec![0.0f32; h]; cfg.num_layers];
    let (mut gx, mut gh) = (vec![0.0f32; g], vec![0.0f32; g]);
    let mut logits = Vec::with_capacity(tokens.len() * v);
    for &t in tokens {
        let mut x: Vec<f32> = tok[t as usize * e..(t as usize + 1) * e].to_vec();
        for l in 0..cfg.num_layers {
            let p = |n: &str| param(ps, &format!("rnn.{l}.{n}"));
            let (wih, whh, bih, bhh) = (
                p("weight_ih")?,
                p("weight_hh")?,
                p("bias_ih")?,
                p("bias_hh")?,
            );
            let k = x.len();
            for o in 0..g {
                gx[o] = bih[o] + (0..k).map(|i| wih[o * k + i] * x[i]).sum::<f32>();
                gh[o] = bhh[o] + (0..h).map(|i| whh[o * h + i] * hs[l][i]).sum::<f32>();
            }
            let pre: Vec<f32> = gx.iter().zip(&gh).map(|(a, b)| a + b).collect();
            observe(format!("rnn.{l}.pre"), &pre);
            if lstm {
                for j in 0..h {
                    let (i, f) = (sigmoid(pre[j]), sigmoid(pre[h + j]));
                    let (gg, o) = (pre[2 * h + j].tanh(), sigmoid(pre[3 * h + j]));
                    cs[l][j] = f * cs[l][j] + i * gg;
                    hs[l][j] = o * cs[l][j].tanh();
                }
                observe(format!("rnn.{l}.c"), &cs[l]);
            } else {
                for j in 0..h {
                    let (r, z) = (sigmoid(pre[j]), sigmoid(pre[h + j]));
                    let n = (gx[2 * h + j] + r * gh[2 * h + j]).tanh();
                    hs[l][j] = (1.0 - z) * n + z * hs[l][j];
                }
            }
            x.clone_from(&hs[l]);
        }
        for o in 0..v {
            logits.push(head_b[o] + (0..h).map(|i| head[o * h + i] * x[i]).sum::<f32>());
        }
    }
    Ok(logits)
}
