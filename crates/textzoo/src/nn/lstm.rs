//! LSTM layer over a whole sequence, with backpropagation through time (PyTorch conventions):
//!
//! ```text
//! i, f, g, o = σ, σ, tanh, σ  of  (W_ih x + b_ih + W_hh h + b_hh)   (gate blocks in that order)
//! c' = f ⊙ c + i ⊙ g
//! h' = o ⊙ tanh(c')
//! ```
//!
//! Same tensor layout and time-major scheme as [`super::gru`]: one GEMM for all input
//! projections, one `[B, H] × [H, 4H]` GEMM per step for the recurrence.

use super::gru::{fit, recur_backward, recur_forward, sigmoid, tanh, Recurrent, RnnWeights};
use super::ParamStore;
use textzoo_rt::Rng;

#[derive(Debug, Clone, Copy)]
pub struct LstmLayer {
    pub w: RnnWeights,
}

/// Everything one LSTM layer keeps between forward and backward, time-major.
#[derive(Debug, Default)]
pub struct LstmActs {
    batch: usize,
    seq: usize,
    hidden: usize,
    /// `[T, B, 4H]` gate values i, f, g, o (pre-activations until the step runs).
    gates: Vec<f32>,
    /// `[T + 1, B, H]` cell states and hidden states; index 0 is the zero initial state.
    c: Vec<f32>,
    h: Vec<f32>,
    /// `[T, B, H]` tanh(c_t), reused by backward.
    tc: Vec<f32>,
    /// Backward scratch: gate pre-activation gradients, and the state gradients carried from
    /// step t to t − 1.
    dgates: Vec<f32>,
    dh: Vec<f32>,
    dc: Vec<f32>,
}

impl Recurrent for LstmLayer {
    type Acts = LstmActs;

    fn new(params: &mut ParamStore, prefix: &str, input: usize, hidden: usize) -> Self {
        Self {
            w: RnnWeights::register(params, prefix, 4, input, hidden),
        }
    }

    fn weights(&self) -> &RnnWeights {
        &self.w
    }

    /// Forget-gate bias 1.0 (Jozefowicz et al. 2015): the cell starts by remembering, so
    /// gradients survive through time from the first steps of training. Set in `bias_ih`
    /// only, so the sum the gate sees is exactly 1.
    fn init(&self, params: &mut ParamStore, rng: &mut Rng) {
        self.w.init(params, rng);
        let hd = self.w.hidden;
        params.get_mut(self.w.bias_ih)[hd..2 * hd].fill(1.0);
    }

    fn forward(&self, a: &mut LstmActs, x: &[f32], data: &[f32], batch: usize, seq: usize) {
        let hd = self.w.hidden;
        let (bh, g, n) = (batch * hd, 4 * hd, batch * seq);
        (a.batch, a.seq, a.hidden) = (batch, seq, hd);
        fit(&mut a.gates, n * g);
        fit(&mut a.c, (seq + 1) * bh);
        fit(&mut a.h, (seq + 1) * bh);
        fit(&mut a.tc, n * hd);
        a.c[..bh].fill(0.0);
        a.h[..bh].fill(0.0);
        // Both biases only ever appear summed, so they join the input projection.
        self.w.project_inputs(&mut a.gates, x, data, n);
        super::gru::add_rows(&mut a.gates[..n * g], &data[self.w.bias_hh.range()]);
        let w_hh = &data[self.w.weight_hh.range()];
        for t in 0..seq {
            let gates = &mut a.gates[t * batch * g..(t + 1) * batch * g];
            let (h_past, h_next) = a.h.split_at_mut((t + 1) * bh);
            let h_prev = &h_past[t * bh..];
            recur_forward(gates, h_prev, w_hh, batch, hd, true);
            let (c_past, c_next) = a.c.split_at_mut((t + 1) * bh);
            let c_prev = &c_past[t * bh..];
            let tc = &mut a.tc[t * bh..(t + 1) * bh];
            for b in 0..batch {
                let gates = &mut gates[b * g..(b + 1) * g];
                for j in 0..hd {
                    let i = sigmoid(gates[j]);
                    let f = sigmoid(gates[hd + j]);
                    let gg = tanh(gates[2 * hd + j]);
                    let o = sigmoid(gates[3 * hd + j]);
                    gates[j] = i;
                    gates[hd + j] = f;
                    gates[2 * hd + j] = gg;
                    gates[3 * hd + j] = o;
                    let k = b * hd + j;
                    let c = f * c_prev[k] + i * gg;
                    c_next[k] = c;
                    tc[k] = tanh(c);
                    h_next[k] = o * tc[k];
                }
            }
        }
    }

    fn output(a: &LstmActs) -> &[f32] {
        &a.h[a.batch * a.hidden..]
    }

    fn backward(
        &self,
        a: &mut LstmActs,
        x: &[f32],
        dout: &[f32],
        dx: &mut [f32],
        data: &[f32],
        grad: &mut [f32],
    ) {
        let (batch, seq, hd) = (a.batch, a.seq, self.w.hidden);
        let (bh, g, n) = (batch * hd, 4 * hd, batch * seq);
        fit(&mut a.dgates, n * g);
        fit(&mut a.dh, bh);
        fit(&mut a.dc, bh);
        a.dh.fill(0.0);
        a.dc.fill(0.0);
        let w_hh = &data[self.w.weight_hh.range()];
        for t in (0..seq).rev() {
            let gates = &a.gates[t * batch * g..(t + 1) * batch * g];
            let dgates = &mut a.dgates[t * batch * g..(t + 1) * batch * g];
            let c_prev = &a.c[t * bh..(t + 1) * bh];
            let tc = &a.tc[t * bh..(t + 1) * bh];
            let dout = &dout[t * bh..(t + 1) * bh];
            for b in 0..batch {
                let (gates, dgates) = (&gates[b * g..(b + 1) * g], &mut dgates[b * g..(b + 1) * g]);
                for j in 0..hd {
                    let (i, f) = (gates[j], gates[hd + j]);
                    let (gg, o) = (gates[2 * hd + j], gates[3 * hd + j]);
                    let k = b * hd + j;
                    let dh = dout[k] + a.dh[k];
                    let dc = a.dc[k] + dh * o * (1.0 - tc[k] * tc[k]);
                    dgates[j] = dc * gg * i * (1.0 - i);
                    dgates[hd + j] = dc * c_prev[k] * f * (1.0 - f);
                    dgates[2 * hd + j] = dc * i * (1.0 - gg * gg);
                    dgates[3 * hd + j] = dh * tc[k] * o * (1.0 - o);
                    a.dc[k] = dc * f;
                }
            }
            if t > 0 {
                recur_backward(&mut a.dh, dgates, w_hh, batch, hd, false);
            }
        }
        // The recurrent and input pre-activations are the same sum, so one gradient serves both.
        let h_prev = &a.h[..n * hd];
        self.w
            .accumulate_grads(&a.dgates, &a.dgates, x, h_prev, dx, data, grad, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gru::tests::check_layer;

    #[test]
    fn lstm_gradients_match_finite_differences() {
        check_layer(|p| LstmLayer::new(p, "rnn.0", 4, 5));
    }

    #[test]
    fn lstm_step_matches_the_formula() {
        let mut params = ParamStore::default();
        let layer = LstmLayer::new(&mut params, "rnn.0", 1, 1);
        // i, f, g, o rows of W_ih; W_hh; b_ih; b_hh.
        params.data = vec![
            0.5, -0.3, 0.8, 0.2, 0.1, -0.4, 0.3, 0.6, 0.0, 0.1, 0.2, 0.3, -0.1, 0.05, 0.0, 0.2,
        ];
        let p = params.data.clone();
        let x = [1.0f32, -2.0];
        let mut acts = LstmActs::default();
        layer.forward(&mut acts, &x, &params.data, 1, 2);
        let (mut h, mut c) = (0.0f32, 0.0f32);
        for &x in &x {
            let pre = |k: usize| p[k] * x + p[4 + k] * h + p[8 + k] + p[12 + k];
            let (i, f, g, o) = (
                sigmoid(pre(0)),
                sigmoid(pre(1)),
                pre(2).tanh(),
                sigmoid(pre(3)),
            );
            c = f * c + i * g;
            h = o * c.tanh();
        }
        let out = LstmLayer::output(&acts);
        assert!((out[1] - h).abs() < 1e-6, "{} vs {h}", out[1]);
    }

    #[test]
    fn forget_gate_bias_starts_at_one() {
        let mut params = ParamStore::default();
        let layer = LstmLayer::new(&mut params, "rnn.0", 3, 2);
        layer.init(&mut params, &mut Rng::new(1));
        assert_eq!(
            params.get(layer.w.bias_ih),
            &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(params.get(layer.w.bias_hh).iter().all(|&b| b == 0.0));
    }
}
