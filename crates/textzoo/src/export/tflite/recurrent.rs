//! TFLite export of the int8 `gru` / `lstm`: int8 in (int32 token ids, or the int8 embedded
//! window), int8 logits out, builtin operators only, unrolled over the window.
//!
//! TFLite has no GRU operator and its integer LSTM is a fused kernel with its own internal
//! formats, so the recurrence is spelled out with elementwise builtins, as TFLite's own
//! integer LSTM computes inside: int8 weights, **int16 activations** (TFLite's 16×8 mode:
//! int16 inputs, int8 weights, int64 biases), which is where textzoo keeps its state too.
//! The formats are textzoo's (`textzoo_rt::rnn`): gate inputs Q3.12 (the tables' range
//! [−8, 8)), gate values and the hidden state Q0.15, the LSTM cell at `2^(cell_bits − 15)`.
//!
//! ```text
//! input        GATHER (int8 table, one scale) or the int8 window → RESHAPE → QUANTIZE to int16
//! per layer    FULLY_CONNECTED per gate on the whole window (input-side weights, all biases
//!              but the GRU's b_hn) → RESHAPE → UNPACK into steps; then per step:
//!   GRU        r, z = LOGISTIC(ADD(x_r, FC(h))), …; n = TANH(ADD(x_n, MUL(r, FC(h) + b_hn)));
//!              h' = ADD(MUL(SUB(1, z), n), MUL(z, h))
//!   LSTM       i, f, o = LOGISTIC(ADD(x_•, FC(h))), g = TANH(…); c' = ADD(MUL(f, c), MUL(i, g));
//!              h' = MUL(o, TANH(c'))
//!              → PACK the steps' h → RESHAPE
//! head         FULLY_CONNECTED (int16 logits) → QUANTIZE to int8 → RESHAPE [1, T, V]
//! ```
//!
//! Differences from `textzoo-rt`, all in the last bits: TFLite rounds each product and sum
//! to its output format where textzoo sums the gate inputs in Q20 before one rounding; its
//! sigmoid/tanh are its own int16 kernels, not textzoo's tables; the GRU update is written
//! `(1 − z)·n + z·h` (TFLite's int16 `ADD`/`SUB` with power-of-two scales need one input at the
//! output's scale, which `h − n` in (−2, 2) would not be); `1` is 32767 in Q0.15.

use super::builder::{Model, Options, Quant};
use super::schema::{op, ttype};
use crate::error::{Error, Result};
use crate::export::rnn_spec::{q20, RnnSpec, Rows};
use textzoo_rt::rnn::{LUT_IN_BITS, STATE_BITS};

/// A fully connected layer's constant tensors (`b` is −1 without bias) and output width.
#[derive(Clone, Copy)]
struct Fc {
    w: i32,
    b: i32,
    out: usize,
}

/// A quantized activation: its tensor and scale (zero point 0 throughout).
#[derive(Clone, Copy)]
struct A {
    t: i32,
    scale: f64,
}

struct G {
    m: Model,
    n: usize,
    /// Steps in the window.
    t: usize,
    /// Hidden width.
    h: usize,
}

fn pot(bits: i32) -> f64 {
    2f64.powi(bits)
}

impl G {
    fn tensor(&mut self, name: &str, shape: &[usize], ttype: i8, scale: f64) -> i32 {
        self.n += 1;
        let name = if name == "logits" {
            name.to_string()
        } else {
            format!("{name}:{}", self.n)
        };
        self.m
            .activation(&name, shape, ttype, Some(Quant::tensor(scale, 0)))
    }

    /// An int16 activation `[1, H]` made by `code` from `inputs`.
    fn step_op(&mut self, code: i32, inputs: &[i32], scale: f64, name: &str) -> A {
        let t = self.tensor(name, &[1, self.h], ttype::INT16, scale);
        self.m.op(code, inputs, &[t], Options::None);
        A { t, scale }
    }

    fn add(&mut self, a: A, b: A, scale: f64, name: &str) -> A {
        self.step_op(op::ADD, &[a.t, b.t], scale, name)
    }

    fn mul(&mut self, a: A, b: A, scale: f64, name: &str) -> A {
        self.step_op(op::MUL, &[a.t, b.t], scale, name)
    }

    fn sigmoid(&mut self, x: A, name: &str) -> A {
        self.step_op(op::LOGISTIC, &[x.t], pot(-STATE_BITS), name)
    }

    fn tanh(&mut self, x: A, name: &str) -> A {
        self.step_op(op::TANH, &[x.t], pot(-STATE_BITS), name)
    }

    fn reshape(&mut self, x: i32, ttype: i8, scale: f64, shape: &[usize], name: &str) -> i32 {
        let v: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let s = self
            .m
            .const_i32(&format!("{name}.shape"), &[v.len()], &v, None);
        let out = self.tensor(name, shape, ttype, scale);
        self.m
            .op(op::RESHAPE, &[x, s], &[out], Options::Reshape { shape: v });
        out
    }

    /// The constants of a 16×8 fully connected layer: the int8 `w` (per-row scales) and
    /// `bias` (real values, in int64 at `s_in · w`'s scales; none: no bias tensor). Made
    /// once and shared by every step.
    fn weights(&mut self, w: &Rows, bias: Option<&[f64]>, s_in: f64, name: &str) -> Fc {
        let o = w.scales.len();
        let wt = self.m.const_i8(
            &format!("{name}.weight"),
            &[o, w.cols],
            &w.w,
            Quant::channels(&w.scales),
        );
        let bt = match bias {
            Some(b) => {
                let bs: Vec<f64> = w.scales.iter().map(|s| s * s_in).collect();
                let q: Vec<i64> = b
                    .iter()
                    .zip(&bs)
                    .map(|(&b, &s)| (b / s).round().clamp(-9e15, 9e15) as i64)
                    .collect();
                self.m
                    .const_i64(&format!("{name}.bias"), &[o], &q, Quant::channels(&bs))
            }
            None => -1,
        };
        Fc {
            w: wt,
            b: bt,
            out: o,
        }
    }

    /// `x` (`[rows, cols]` int16) through `fc`, to int16 at `scale`.
    fn fc(&mut self, x: A, rows: usize, fc: Fc, scale: f64, name: &str) -> A {
        let t = self.tensor(name, &[rows, fc.out], ttype::INT16, scale);
        self.m.op(
            op::FULLY_CONNECTED,
            &[x.t, fc.w, fc.b],
            &[t],
            Options::FullyConnected,
        );
        A { t, scale }
    }

    /// `x` (`[T, H]`) split into its `T` steps (`[1, H]` each).
    fn steps(&mut self, x: A, name: &str) -> Vec<A> {
        let (t, h) = (self.t, self.h);
        let r = self.reshape(x.t, ttype::INT16, x.scale, &[t, 1, h], name);
        let outs: Vec<i32> = (0..t)
            .map(|i| self.tensor(&format!("{name}.{i}"), &[1, h], ttype::INT16, x.scale))
            .collect();
        self.m.op(
            op::UNPACK,
            &[r],
            &outs,
            Options::Unpack {
                num: t as i32,
                axis: 0,
            },
        );
        outs.into_iter().map(|t| A { t, scale: x.scale }).collect()
    }

    /// A constant `[1, H]` int16 vector.
    fn constant(&mut self, name: &str, value: i16, scale: f64) -> A {
        let t = self.m.const_i16(
            name,
            &[1, self.h],
            &vec![value; self.h],
            Quant::tensor(scale, 0),
        );
        A { t, scale }
    }
}

/// The range textzoo-rt's logits reach (the int8 output's scale covers it).
fn logit_scale(range: f64) -> (f64, f64) {
    (range / 32767.0, range / 127.0)
}

/// The TFLite flatbuffer of the int8 recurrent model; `logit_range` as for the Transformers.
pub fn write(s: &RnnSpec, include_embedding: bool, logit_range: f64) -> Result<Vec<u8>> {
    let cfg = &s.config;
    let (t, e, h, v) = (cfg.seq_len, cfg.embed_dim, cfg.hidden_dim, cfg.vocab_size);
    let (s12, s15) = (pot(-LUT_IN_BITS), pot(-STATE_BITS));
    let mut g = G {
        m: Model::new(),
        n: 0,
        t,
        h,
    };
    let (input, x8) = if include_embedding {
        let ids = g.m.activation("input_ids", &[1, t], ttype::INT32, None);
        let tok = g.m.const_i8(
            "tok_emb",
            &[v, e],
            &s.tok_emb,
            Quant::tensor(s.tok_scale, 0),
        );
        let x = g.tensor("x0", &[1, t, e], ttype::INT8, s.tok_scale);
        g.m.op(op::GATHER, &[tok, ids], &[x], Options::Gather { axis: 0 });
        (ids, x)
    } else {
        let x = g.m.activation(
            "x0",
            &[1, t, e],
            ttype::INT8,
            Some(Quant::tensor(s.tok_scale, 0)),
        );
        (x, x)
    };
    let rows8 = g.reshape(x8, ttype::INT8, s.tok_scale, &[t, e], "x0.rows");
    let x16 = g.tensor("x0.int16", &[t, e], ttype::INT16, s.tok_scale);
    g.m.op(op::QUANTIZE, &[rows8], &[x16], Options::None);
    let mut x = A {
        t: x16,
        scale: s.tok_scale,
    };
    let gates = s.gates();
    for (l, ly) in s.layers.iter().enumerate() {
        let n = |w: &str| format!("rnn.{l}.{w}");
        // Input side, for the whole window at once; one block of rows per gate.
        let xs: Vec<Vec<A>> = (0..gates)
            .map(|k| {
                let rows = ly.w_ih.slice(k * h, (k + 1) * h);
                let b: Vec<f64> = ly.bias[k * h..(k + 1) * h]
                    .iter()
                    .map(|&b| q20(b))
                    .collect();
                let name = n(&format!("x{k}"));
                let fc = g.weights(&rows, Some(&b), x.scale, &name);
                let p = g.fc(x, t, fc, s12, &name);
                g.steps(p, &format!("{name}.steps"))
            })
            .collect();
        // Hidden side: the GRU's b_hn is the only bias inside the recurrence.
        let b_hn: Vec<f64> = ly.bias_hn.iter().map(|&b| q20(b)).collect();
        let w_hh: Vec<Fc> = (0..gates)
            .map(|k| {
                let bias = (k == 2 && !b_hn.is_empty()).then_some(b_hn.as_slice());
                let rows = ly.w_hh.slice(k * h, (k + 1) * h);
                g.weights(&rows, bias, s15, &n(&format!("h{k}")))
            })
            .collect();
        let s_cell = pot(ly.cell_bits - STATE_BITS);
        let mut hs = g.constant(&n("h0"), 0, s15);
        let mut cs = g.constant(&n("c0"), 0, s_cell);
        let one = (!s.is_lstm()).then(|| g.constant(&n("one"), i16::MAX, s15));
        let mut outs = Vec::with_capacity(t);
        for (i, step) in (0..t).map(|i| (i, xs.iter().map(|x| x[i]).collect::<Vec<_>>())) {
            let m = |w: &str| format!("rnn.{l}.t{i}.{w}");
            let pre = |g: &mut G, k: usize, name: &str| {
                let hk = g.fc(hs, 1, w_hh[k], s12, &m(&format!("{name}.h")));
                g.add(step[k], hk, s12, &m(&format!("{name}.pre")))
            };
            hs = match one {
                Some(one) => {
                    let pr = pre(&mut g, 0, "r");
                    let r = g.sigmoid(pr, &m("r"));
                    let pz = pre(&mut g, 1, "z");
                    let z = g.sigmoid(pz, &m("z"));
                    let hn = g.fc(hs, 1, w_hh[2], s12, &m("n.h"));
                    let rn = g.mul(r, hn, s12, &m("n.r"));
                    let pn = g.add(step[2], rn, s12, &m("n.pre"));
                    let nn = g.tanh(pn, &m("n"));
                    let omz = g.step_op(op::SUB, &[one.t, z.t], s15, &m("1-z"));
                    let a = g.mul(omz, nn, s15, &m("(1-z)n"));
                    let b = g.mul(z, hs, s15, &m("zh"));
                    g.add(a, b, s15, &m("h"))
                }
                None => {
                    let pi = pre(&mut g, 0, "i");
                    let ig = g.sigmoid(pi, &m("i"));
                    let pf = pre(&mut g, 1, "f");
                    let fg = g.sigmoid(pf, &m("f"));
                    let pg = pre(&mut g, 2, "g");
                    let gg = g.tanh(pg, &m("g"));
                    let po = pre(&mut g, 3, "o");
                    let og = g.sigmoid(po, &m("o"));
                    let fc = g.mul(fg, cs, s_cell, &m("fc"));
                    let igg = g.mul(ig, gg, s_cell, &m("ig"));
                    cs = g.add(fc, igg, s_cell, &m("c"));
                    let tc = g.tanh(cs, &m("tanh_c"));
                    g.mul(og, tc, s15, &m("h"))
                }
            };
            outs.push(hs.t);
        }
        let packed = g.tensor(&n("h.steps"), &[t, 1, h], ttype::INT16, s15);
        g.m.op(
            op::PACK,
            &outs,
            &[packed],
            Options::Pack {
                values_count: t as i32,
                axis: 0,
            },
        );
        x = A {
            t: g.reshape(packed, ttype::INT16, s15, &[t, h], &n("h")),
            scale: s15,
        };
    }
    let (s16, s8) = logit_scale(logit_range);
    let bias: Vec<f64> = s.head_bias.iter().map(|&b| b as f64).collect();
    let head = g.weights(&s.head, Some(&bias), x.scale, "head");
    let l16 = g.fc(x, t, head, s16, "head");
    let l8 = g.tensor("head.int8", &[t, v], ttype::INT8, s8);
    g.m.op(op::QUANTIZE, &[l16.t], &[l8], Options::None);
    let out = g.reshape(l8, ttype::INT8, s8, &[1, t, v], "logits");
    g.m.set_io(&[input], &[out]);
    if s.layers.is_empty() {
        return Err(Error::Internal("recurrent model without layers".into()));
    }
    Ok(g.m.finish(&format!(
        "textzoo {} int8 ({}; int16 state)",
        cfg.kind.name(),
        if include_embedding {
            "token ids in"
        } else {
            "int8 embedded window in"
        }
    )))
}
