//! LSTM layer over a whole sequence, with backpropagation through time (PyTorch conventions):
//!
//! ```text
//! i, f, g, o = σ, σ, tanh, σ  of  (W_ih x + b_ih + W_hh h + b_hh)   (gate blocks in that order)
//! c' = f ⊙ c + i ⊙ g
//! h' = o ⊙ tanh(c')
//! ```
//!
//! The sequence, state and projection plumbing is [`super::recurrent`]'s (one GEMM for all
//! input projections, one `[B, H] × [H, 4H]` GEMM per step for the recurrence); this file is
//! the cell.

use super::recurrent::{
    add_rows, fit, recur_backward, recur_forward, sigmoid, tanh, Cell, RnnLayer, RnnTap,
    RnnWeights, States, StepObserver,
};
use super::ParamStore;
use crate::avx2_dispatch;
use rayon::prelude::*;
use textzoo_rt::Rng;

/// The LSTM cell; [`LstmLayer`] is the layer.
#[derive(Debug, Clone, Copy)]
pub struct LstmCell;

pub type LstmLayer = RnnLayer<LstmCell>;

/// Everything one LSTM layer keeps between forward and backward, time-major.
#[derive(Debug, Default)]
pub struct LstmActs {
    s: States,
    /// `[T, B, 4H]` gate values i, f, g, o (pre-activations until the step runs).
    gates: Vec<f32>,
    /// `[T + 1, B, H]` cell states; index 0 is the zero initial state.
    c: Vec<f32>,
    /// `[T, B, H]` tanh(c_t), reused by backward.
    tc: Vec<f32>,
    /// Backward scratch: gate pre-activation gradients, and the cell gradient carried from
    /// step t to t − 1.
    dgates: Vec<f32>,
    dc: Vec<f32>,
}

impl Cell for LstmCell {
    type Acts = LstmActs;
    const GATES: usize = 4;

    fn states(a: &LstmActs) -> &States {
        &a.s
    }

    /// Forget-gate bias 1.0 (Jozefowicz et al. 2015): the cell starts by remembering, so
    /// gradients survive through time from the first steps of training. Set in `bias_ih`
    /// only, so the sum the gate sees is exactly 1.
    fn init(w: &RnnWeights, params: &mut ParamStore, rng: &mut Rng) {
        w.init(params, rng);
        let hd = w.hidden;
        params.get_mut(w.bias_ih)[hd..2 * hd].fill(1.0);
    }

    fn forward(
        w: &RnnWeights,
        a: &mut LstmActs,
        x: &[f32],
        data: &[f32],
        batch: usize,
        seq: usize,
        mut observe: Option<StepObserver>,
    ) {
        let hd = w.hidden;
        let (bh, g, n) = (batch * hd, 4 * hd, batch * seq);
        a.s.start(batch, seq, hd);
        fit(&mut a.gates, n * g);
        fit(&mut a.c, (seq + 1) * bh);
        fit(&mut a.tc, n * hd);
        a.c[..bh].fill(0.0);
        // Both biases only ever appear summed, so they join the input projection.
        w.project_inputs(&mut a.gates, x, data, n);
        add_rows(&mut a.gates[..n * g], &data[w.bias_hh.range()]);
        let w_hh = &data[w.weight_hh.range()];
        for t in 0..seq {
            let gates = &mut a.gates[t * batch * g..(t + 1) * batch * g];
            let (h_prev, h_next) = a.s.step(t);
            recur_forward(gates, h_prev, w_hh, batch, hd, true);
            if let Some(o) = observe.as_deref_mut() {
                o(RnnTap::Pre, gates);
            }
            let (c_past, c_next) = a.c.split_at_mut((t + 1) * bh);
            let c_prev = &c_past[t * bh..];
            // Rows of the batch are independent; the two cores share the transcendentals.
            gates
                .par_chunks_mut(g)
                .zip(c_next[..bh].par_chunks_mut(hd))
                .zip(a.tc[t * bh..(t + 1) * bh].par_chunks_mut(hd))
                .zip(h_next.par_chunks_mut(hd))
                .enumerate()
                .for_each(|(b, (((gates, c_new), tc), h_new))| {
                    step_row(gates, c_new, tc, h_new, &c_prev[b * hd..(b + 1) * hd]);
                });
            if let Some(o) = observe.as_deref_mut() {
                o(RnnTap::Cell, &c_next[..bh]);
            }
        }
    }

    fn backward(
        w: &RnnWeights,
        a: &mut LstmActs,
        x: &[f32],
        dout: &[f32],
        dx: &mut [f32],
        data: &[f32],
        grad: &mut [f32],
    ) {
        let (batch, seq, hd) = (a.s.batch, a.s.seq, w.hidden);
        let (bh, g, n) = (batch * hd, 4 * hd, batch * seq);
        fit(&mut a.dgates, n * g);
        fit(&mut a.dc, bh);
        a.s.start_backward();
        a.dc.fill(0.0);
        let w_hh = &data[w.weight_hh.range()];
        for t in (0..seq).rev() {
            let rows = t * batch * g..(t + 1) * batch * g;
            let gates = &a.gates[rows.clone()];
            let c_prev = &a.c[t * bh..(t + 1) * bh];
            let tc = &a.tc[t * bh..(t + 1) * bh];
            let dout = &dout[t * bh..(t + 1) * bh];
            let dh_carry = &a.s.dh;
            a.dgates[rows.clone()]
                .par_chunks_mut(g)
                .zip(a.dc.par_chunks_mut(hd))
                .enumerate()
                .for_each(|(b, (dgates, dc_carry))| {
                    let (rows, k) = (b * g..(b + 1) * g, b * hd..(b + 1) * hd);
                    let gates = &gates[rows];
                    let (c_prev, tc) = (&c_prev[k.clone()], &tc[k.clone()]);
                    grad_row(
                        dgates,
                        dc_carry,
                        gates,
                        c_prev,
                        tc,
                        &dout[k.clone()],
                        &dh_carry[k],
                    );
                });
            if t > 0 {
                recur_backward(&mut a.s.dh, &a.dgates[rows], w_hh, batch, hd, false);
            }
        }
        // The recurrent and input pre-activations are the same sum, so one gradient serves both.
        let h_prev = a.s.inputs();
        w.accumulate_grads(&a.dgates, &a.dgates, x, h_prev, dx, data, grad, n);
    }
}

avx2_dispatch! {
    /// One batch row of one step: gate nonlinearities in place, then the new cell and state.
    fn step_row(gates: &mut [f32], c_new: &mut [f32], tc: &mut [f32], h_new: &mut [f32], c_prev: &[f32]) {
        let hd = c_new.len();
        let (i, rest) = gates.split_at_mut(hd);
        let (f, rest) = rest.split_at_mut(hd);
        let (g, o) = rest.split_at_mut(hd);
        let (tc, h_new, c_prev) = (&mut tc[..hd], &mut h_new[..hd], &c_prev[..hd]);
        for j in 0..hd {
            (i[j], f[j], g[j], o[j]) = (sigmoid(i[j]), sigmoid(f[j]), tanh(g[j]), sigmoid(o[j]));
            c_new[j] = f[j] * c_prev[j] + i[j] * g[j];
            tc[j] = tanh(c_new[j]);
            h_new[j] = o[j] * tc[j];
        }
    }
}

avx2_dispatch! {
    /// One batch row of one backward step: `dc_carry` holds dL/dc_t from the step after and
    /// leaves with this step's share of dL/dc_{t−1}; `dh_carry` is dL/dh_t from the step after.
    fn grad_row(
        dgates: &mut [f32],
        dc_carry: &mut [f32],
        gates: &[f32],
        c_prev: &[f32],
        tc: &[f32],
        dout: &[f32],
        dh_carry: &[f32],
    ) {
        let hd = dc_carry.len();
        let (i, f) = (&gates[..hd], &gates[hd..2 * hd]);
        let (g, o) = (&gates[2 * hd..3 * hd], &gates[3 * hd..4 * hd]);
        let (c_prev, tc, dout, dh_carry) = (&c_prev[..hd], &tc[..hd], &dout[..hd], &dh_carry[..hd]);
        let (di, rest) = dgates.split_at_mut(hd);
        let (df, rest) = rest.split_at_mut(hd);
        let (dg, do_) = rest.split_at_mut(hd);
        for j in 0..hd {
            let dh = dout[j] + dh_carry[j];
            let dc = dc_carry[j] + dh * o[j] * (1.0 - tc[j] * tc[j]);
            di[j] = dc * g[j] * i[j] * (1.0 - i[j]);
            df[j] = dc * c_prev[j] * f[j] * (1.0 - f[j]);
            dg[j] = dc * i[j] * (1.0 - g[j] * g[j]);
            do_[j] = dh * tc[j] * o[j] * (1.0 - o[j]);
            dc_carry[j] = dc * f[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::recurrent::tests::one_unit_outputs;

    #[test]
    fn lstm_step_matches_the_formula() {
        // i, f, g, o rows of W_ih; W_hh; b_ih; b_hh.
        let p = [
            0.5, -0.3, 0.8, 0.2, 0.1, -0.4, 0.3, 0.6, 0.0, 0.1, 0.2, 0.3, -0.1, 0.05, 0.0, 0.2,
        ];
        let x = [1.0f32, -2.0];
        let out = one_unit_outputs::<LstmCell>(&p, &x);
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
