//! GRU layer over a whole sequence, with backpropagation through time (PyTorch conventions):
//!
//! ```text
//! r  = σ(W_ir x + b_ir + W_hr h + b_hr)
//! z  = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Weights are stored like PyTorch's `nn.GRU` (`weight_ih [3H, in]`, `weight_hh [3H, H]`, gate
//! blocks in the order r, z, n) so the int8 runtime and the generated C read the same tensors.
//!
//! The sequence, state and projection plumbing is [`super::recurrent`]'s; this file is the cell.

use super::recurrent::{
    add_rows, fit, recur_backward, recur_forward, sigmoid, tanh, Cell, RnnLayer, RnnTap,
    RnnWeights, States, StepObserver,
};
use crate::avx2_dispatch;
use rayon::prelude::*;

/// The GRU cell; [`GruLayer`] is the layer.
#[derive(Debug, Clone, Copy)]
pub struct GruCell;

pub type GruLayer = RnnLayer<GruCell>;

/// Everything one GRU layer keeps between forward and backward, time-major.
#[derive(Debug, Default)]
pub struct GruActs {
    s: States,
    /// `[T, B, 3H]` input projections `W_ih x + b_ih`.
    gx: Vec<f32>,
    /// `[T, B, 3H]` recurrent projections `W_hh h + b_hh` (the n block is needed by backward).
    gh: Vec<f32>,
    /// `[T, B, 3H]` gate values r, z, n.
    gates: Vec<f32>,
    /// Backward scratch: gate pre-activation gradients for each projection.
    dgx: Vec<f32>,
    dgh: Vec<f32>,
}

impl Cell for GruCell {
    type Acts = GruActs;
    const GATES: usize = 3;

    fn states(a: &GruActs) -> &States {
        &a.s
    }

    fn forward(
        w: &RnnWeights,
        a: &mut GruActs,
        x: &[f32],
        data: &[f32],
        batch: usize,
        seq: usize,
        mut observe: Option<StepObserver>,
    ) {
        let hd = w.hidden;
        let g = 3 * hd;
        let n = batch * seq;
        a.s.start(batch, seq, hd);
        for v in [&mut a.gx, &mut a.gh, &mut a.gates] {
            fit(v, n * g);
        }
        w.project_inputs(&mut a.gx, x, data, n);
        let w_hh = &data[w.weight_hh.range()];
        let b_hh = &data[w.bias_hh.range()];
        for t in 0..seq {
            let rows = t * batch * g..(t + 1) * batch * g;
            let gh = &mut a.gh[rows.clone()];
            let (h_prev, h_next) = a.s.step(t);
            recur_forward(gh, h_prev, w_hh, batch, hd, false);
            add_rows(gh, b_hh);
            let (gx, gh) = (&a.gx[rows.clone()], &*gh);
            if let Some(o) = observe.as_deref_mut() {
                let pre: Vec<f32> = gx.iter().zip(gh).map(|(x, h)| x + h).collect();
                o(RnnTap::Pre, &pre);
            }
            // Rows of the batch are independent; the two cores share the transcendentals.
            a.gates[rows]
                .par_chunks_mut(g)
                .zip(h_next.par_chunks_mut(hd))
                .enumerate()
                .for_each(|(b, (gates, h_new))| {
                    let rows = b * g..(b + 1) * g;
                    let h_prev = &h_prev[b * hd..(b + 1) * hd];
                    step_row(gates, h_new, &gx[rows.clone()], &gh[rows], h_prev);
                });
        }
    }

    fn backward(
        w: &RnnWeights,
        a: &mut GruActs,
        x: &[f32],
        dout: &[f32],
        dx: &mut [f32],
        data: &[f32],
        grad: &mut [f32],
    ) {
        let (batch, seq, hd) = (a.s.batch, a.s.seq, w.hidden);
        let (bh, g, n) = (batch * hd, 3 * hd, batch * seq);
        fit(&mut a.dgx, n * g);
        fit(&mut a.dgh, n * g);
        a.s.start_backward();
        let w_hh = &data[w.weight_hh.range()];
        for t in (0..seq).rev() {
            let rows = t * batch * g..(t + 1) * batch * g;
            let (gates, gh) = (&a.gates[rows.clone()], &a.gh[rows.clone()]);
            let h_prev = &a.s.h[t * bh..(t + 1) * bh];
            let dout = &dout[t * bh..(t + 1) * bh];
            a.dgx[rows.clone()]
                .par_chunks_mut(g)
                .zip(a.dgh[rows.clone()].par_chunks_mut(g))
                .zip(a.s.dh.par_chunks_mut(hd))
                .enumerate()
                .for_each(|(b, ((dgx, dgh), dh_carry))| {
                    let rows = b * g..(b + 1) * g;
                    let (h_prev, dout) = (&h_prev[b * hd..(b + 1) * hd], &dout[b * hd..]);
                    grad_row(
                        dgx,
                        dgh,
                        dh_carry,
                        &gates[rows.clone()],
                        &gh[rows],
                        h_prev,
                        dout,
                    );
                });
            if t > 0 {
                recur_backward(&mut a.s.dh, &a.dgh[rows], w_hh, batch, hd, true);
            }
        }
        let h_prev = a.s.inputs();
        w.accumulate_grads(&a.dgx, &a.dgh, x, h_prev, dx, data, grad, n);
    }
}

avx2_dispatch! {
    /// One batch row of one step: the r, z, n gates from both projections, then the new state.
    fn step_row(gates: &mut [f32], h_new: &mut [f32], gx: &[f32], gh: &[f32], h_prev: &[f32]) {
        let hd = h_new.len();
        let (r, zn) = gates.split_at_mut(hd);
        let (z, n) = zn.split_at_mut(hd);
        let (xr, xz, xn) = (&gx[..hd], &gx[hd..2 * hd], &gx[2 * hd..3 * hd]);
        let (hr, hz, hn) = (&gh[..hd], &gh[hd..2 * hd], &gh[2 * hd..3 * hd]);
        let h_prev = &h_prev[..hd];
        for j in 0..hd {
            r[j] = sigmoid(xr[j] + hr[j]);
            z[j] = sigmoid(xz[j] + hz[j]);
            n[j] = tanh(xn[j] + r[j] * hn[j]);
            h_new[j] = (1.0 - z[j]) * n[j] + z[j] * h_prev[j];
        }
    }
}

avx2_dispatch! {
    /// One batch row of one backward step: `dh_carry` holds dL/dh_t from the step after
    /// (then this step's direct share `dh ⊙ z` of dL/dh_{t−1}); `dgx` and `dgh` receive the
    /// gradients of the input and recurrent pre-activations, which differ only in the n block
    /// (the recurrent one passes through r).
    fn grad_row(
        dgx: &mut [f32],
        dgh: &mut [f32],
        dh_carry: &mut [f32],
        gates: &[f32],
        gh: &[f32],
        h_prev: &[f32],
        dout: &[f32],
    ) {
        let hd = dh_carry.len();
        let (r, z, n) = (&gates[..hd], &gates[hd..2 * hd], &gates[2 * hd..3 * hd]);
        let (hn, h_prev, dout) = (&gh[2 * hd..3 * hd], &h_prev[..hd], &dout[..hd]);
        let (dxr, dxzn) = dgx.split_at_mut(hd);
        let (dxz, dxn) = dxzn.split_at_mut(hd);
        let (dhr, dhzn) = dgh.split_at_mut(hd);
        let (dhz, dhn) = dhzn.split_at_mut(hd);
        for j in 0..hd {
            let dh = dout[j] + dh_carry[j];
            let dn = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
            let dz = dh * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j]);
            let dr = dn * hn[j] * r[j] * (1.0 - r[j]);
            (dxr[j], dxz[j], dxn[j]) = (dr, dz, dn);
            (dhr[j], dhz[j], dhn[j]) = (dr, dz, dn * r[j]);
            dh_carry[j] = dh * z[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::recurrent::tests::one_unit_outputs;

    #[test]
    fn gru_step_matches_the_formula() {
        // r, z, n rows of W_ih; W_hh; biases.
        let weights = [
            0.5, -0.3, 0.8, 0.2, 0.1, -0.4, 0.0, 0.1, 0.2, 0.3, -0.1, 0.05,
        ];
        let x = [1.0f32, -2.0];
        let out = one_unit_outputs::<GruCell>(&weights, &x);
        let mut h = 0.0f32;
        for &x in &x {
            let r = sigmoid(0.5 * x + 0.0 + 0.2 * h + 0.3);
            let z = sigmoid(-0.3 * x + 0.1 + 0.1 * h - 0.1);
            let n = (0.8 * x + 0.2 + r * (-0.4 * h + 0.05)).tanh();
            h = (1.0 - z) * n + z * h;
        }
        assert_eq!(out.len(), 2);
        assert!((out[1] - h).abs() < 1e-6, "{} vs {h}", out[1]);
    }
}
