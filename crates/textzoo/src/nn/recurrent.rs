//! What GRU and LSTM layers share (PyTorch conventions, tensors `weight_ih [G·H, in]`,
//! `weight_hh [G·H, H]`, `bias_ih [G·H]`, `bias_hh [G·H]` with `G` gate blocks): the
//! [`Cell`] interface the language models stack, where the weights live, the hidden
//! states of a sequence, and the products around the cell.
//!
//! Sequences are time-major (`[T, B, features]`): the state of every batch row at one step is
//! then one contiguous `[B, H]` matrix, so each step's recurrent product is a single GEMM. The
//! input projections do not depend on the state, so all `T·B` of them are one larger GEMM done
//! before the loop; the same holds for the weight gradients after the backward loop. Only the
//! cell (the gates and how they make the next state) differs between the two layers.

use super::matmul::{gemm, strided_gemm, Op};
use super::{fastmath, ParamId, ParamStore};
use textzoo_rt::Rng;

/// What one recurrent cell computes over a sequence (the gates and how they make the next
/// state, forward and backward), so one model stack serves GRU and LSTM; where the weights
/// live is [`RnnLayer`]'s.
pub trait Cell: Send + Sync + 'static {
    /// Activations kept by `forward` for `backward`, sized on first use for a (batch, seq).
    type Acts: Default + Send;

    /// Gate blocks per hidden unit (3 for GRU, 4 for LSTM).
    const GATES: usize;

    /// The hidden states inside the activations.
    fn states(acts: &Self::Acts) -> &States;

    /// The layer's initial values (PyTorch's uniform init unless the cell says otherwise).
    fn init(w: &RnnWeights, params: &mut ParamStore, rng: &mut Rng) {
        w.init(params, rng);
    }

    /// Runs the layer with weights `w` over `x` (`[seq, batch, input]`) from a zero state,
    /// showing `observe` (calibration only) the tapped tensors of every step.
    fn forward(
        w: &RnnWeights,
        acts: &mut Self::Acts,
        x: &[f32],
        data: &[f32],
        batch: usize,
        seq: usize,
        observe: Option<StepObserver>,
    );

    /// Back-propagates `dout` (`[seq, batch, hidden]`) through the last `forward` on `x`:
    /// accumulates the weight gradients into `grad` (the whole `ParamStore::grad`) and the
    /// input gradient into `dx`.
    fn backward(
        w: &RnnWeights,
        acts: &mut Self::Acts,
        x: &[f32],
        dout: &[f32],
        dx: &mut [f32],
        data: &[f32],
        grad: &mut [f32],
    );
}

/// A recurrent layer: where its weights live, and the cell `C` that runs each step.
#[derive(Debug)]
pub struct RnnLayer<C> {
    pub w: RnnWeights,
    cell: std::marker::PhantomData<C>,
}

impl<C> Clone for RnnLayer<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for RnnLayer<C> {}

impl<C: Cell> RnnLayer<C> {
    /// Registers the layer's tensors as `{prefix}.weight_ih`, `.weight_hh`, `.bias_ih`,
    /// `.bias_hh` (zero until `init`).
    pub fn new(params: &mut ParamStore, prefix: &str, input: usize, hidden: usize) -> Self {
        let w = RnnWeights::register(params, prefix, C::GATES, input, hidden);
        Self {
            w,
            cell: std::marker::PhantomData,
        }
    }

    /// Writes the layer's initial values into `params`.
    pub fn init(&self, params: &mut ParamStore, rng: &mut Rng) {
        C::init(&self.w, params, rng);
    }

    /// Hidden states of the last `forward`, `[seq, batch, hidden]`.
    pub fn output(acts: &C::Acts) -> &[f32] {
        C::states(acts).output()
    }
}

/// The tensors of one step the int8 recurrent graph quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnTap {
    /// Gate pre-activations `W_ih x + b_ih + W_hh h + b_hh`, `[B, G·H]`.
    Pre,
    /// The LSTM cell state, `[B, H]`.
    Cell,
}

/// Called with each step's tapped tensors of an observed forward.
pub type StepObserver<'a> = &'a mut dyn FnMut(RnnTap, &[f32]);

/// Where a recurrent layer's four tensors live; GRU and LSTM differ only in `gates`.
#[derive(Debug, Clone, Copy)]
pub struct RnnWeights {
    pub gates: usize,
    pub input: usize,
    pub hidden: usize,
    pub weight_ih: ParamId,
    pub weight_hh: ParamId,
    pub bias_ih: ParamId,
    pub bias_hh: ParamId,
}

impl RnnWeights {
    /// Registers `{prefix}.weight_ih` etc.; biases are exempt from weight decay.
    pub fn register(
        params: &mut ParamStore,
        prefix: &str,
        gates: usize,
        input: usize,
        hidden: usize,
    ) -> Self {
        let g = gates * hidden;
        Self {
            gates,
            input,
            hidden,
            weight_ih: params.add(format!("{prefix}.weight_ih"), &[g, input], true),
            weight_hh: params.add(format!("{prefix}.weight_hh"), &[g, hidden], true),
            bias_ih: params.add(format!("{prefix}.bias_ih"), &[g], false),
            bias_hh: params.add(format!("{prefix}.bias_hh"), &[g], false),
        }
    }

    /// PyTorch's default: weights uniform in ±1/√H, which keeps gate pre-activations O(1)
    /// whatever the width. Biases start at zero (the LSTM then sets its forget gate).
    pub fn init(&self, params: &mut ParamStore, rng: &mut Rng) {
        let bound = 1.0 / (self.hidden as f32).sqrt();
        for id in [self.weight_ih, self.weight_hh] {
            for w in params.get_mut(id) {
                *w = (rng.next_f32() * 2.0 - 1.0) * bound;
            }
        }
        for id in [self.bias_ih, self.bias_hh] {
            params.get_mut(id).fill(0.0);
        }
    }

    /// Multiply-accumulates of one time step (both projections).
    pub fn macc_per_step(&self) -> u64 {
        (self.gates * self.hidden * (self.input + self.hidden)) as u64
    }

    /// `y[n, G·H] = x[n, in] · W_ihᵀ + b_ih` for every row at once.
    pub(crate) fn project_inputs(&self, y: &mut [f32], x: &[f32], data: &[f32], n: usize) {
        let g = self.gates * self.hidden;
        let w = &data[self.weight_ih.range()];
        gemm(n, self.input, g, x, Op::N, w, Op::T, y, false);
        add_rows(&mut y[..n * g], &data[self.bias_ih.range()]);
    }

    /// The weight, bias and input gradients once the per-step gate gradients are known:
    /// `dgx` (`[n, G·H]`) w.r.t. the input projections, `dgh` w.r.t. the recurrent ones, and
    /// `h_prev` the state each step started from.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn accumulate_grads(
        &self,
        dgx: &[f32],
        dgh: &[f32],
        x: &[f32],
        h_prev: &[f32],
        dx: &mut [f32],
        data: &[f32],
        grad: &mut [f32],
        n: usize,
    ) {
        let (g, h, i) = (self.gates * self.hidden, self.hidden, self.input);
        let dw_hh = &mut grad[self.weight_hh.range()];
        gemm(g, n, h, dgh, Op::T, h_prev, Op::N, dw_hh, true);
        sum_rows(&mut grad[self.bias_hh.range()], &dgh[..n * g]);
        let dw_ih = &mut grad[self.weight_ih.range()];
        gemm(g, n, i, dgx, Op::T, x, Op::N, dw_ih, true);
        sum_rows(&mut grad[self.bias_ih.range()], &dgx[..n * g]);
        let w_ih = &data[self.weight_ih.range()];
        gemm(n, g, i, dgx, Op::N, w_ih, Op::N, dx, true);
    }
}

/// One step's recurrent projection `y[B, G] (+)= h[B, H] · W_hhᵀ`, computed as
/// `yᵀ = W_hh · hᵀ`: matrixmultiply shares the rows of a product among its threads, and there
/// are `G` of them this way round instead of `B`. Measured on the reference shapes (B = 32,
/// G = 768, H = 256, 2 threads): 4 ms instead of 7 ms for a 32-step window.
pub(crate) fn recur_forward(
    y: &mut [f32],
    h: &[f32],
    w_hh: &[f32],
    batch: usize,
    hidden: usize,
    accumulate: bool,
) {
    let g = w_hh.len() / hidden;
    let (a, b, c) = ((hidden, 1), (1, hidden), (1, g));
    let beta = if accumulate { 1.0 } else { 0.0 };
    strided_gemm(g, hidden, batch, (w_hh, a), (h, b), (y, c), beta);
}

/// `dh[B, H] (+)= dg[B, G] · W_hh` for one step, as `dhᵀ = W_hhᵀ · dgᵀ` (see [`recur_forward`]).
pub(crate) fn recur_backward(
    dh: &mut [f32],
    dg: &[f32],
    w_hh: &[f32],
    batch: usize,
    hidden: usize,
    accumulate: bool,
) {
    let g = w_hh.len() / hidden;
    let (a, b, c) = ((1, hidden), (1, g), (1, hidden));
    let beta = if accumulate { 1.0 } else { 0.0 };
    strided_gemm(hidden, g, batch, (w_hh, a), (dg, b), (dh, c), beta);
}

/// Both through [`fastmath::exp`], so the row loops below compile to SIMD code: with libm
/// (`tanhf` alone is ~5× `expf`) the gate nonlinearities cost as much as the step's GEMM.
/// Both saturate cleanly (exp's clamping gives 0/1 and ±1, never NaN).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + fastmath::exp(-x))
}

#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (fastmath::exp(2.0 * x) + 1.0)
}

/// Adds `bias` to every row of `y`.
pub(crate) fn add_rows(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
    }
}

/// `dbias += Σ rows of dy`.
pub(crate) fn sum_rows(dbias: &mut [f32], dy: &[f32]) {
    for row in dy.chunks_exact(dbias.len()) {
        dbias.iter_mut().zip(row).for_each(|(d, g)| *d += g);
    }
}

/// Grows `v` to `len` (never shrinks the allocation, so a smaller batch reuses it).
pub(crate) fn fit(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

/// The hidden states of one layer's last forward, and the state gradient backward carries
/// from step t to t − 1.
#[derive(Debug, Default)]
pub struct States {
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    pub(crate) hidden: usize,
    /// `[T + 1, B, H]`; `h[0]` is the zero initial state.
    pub(crate) h: Vec<f32>,
    pub(crate) dh: Vec<f32>,
}

impl States {
    /// Sizes the states for a forward over `(batch, seq)` and zeroes the initial one.
    pub(crate) fn start(&mut self, batch: usize, seq: usize, hidden: usize) {
        (self.batch, self.seq, self.hidden) = (batch, seq, hidden);
        let bh = batch * hidden;
        fit(&mut self.h, (seq + 1) * bh);
        self.h[..bh].fill(0.0);
    }

    /// The state step `t` starts from, and the slot of the one it makes.
    pub(crate) fn step(&mut self, t: usize) -> (&[f32], &mut [f32]) {
        let bh = self.batch * self.hidden;
        let (past, next) = self.h.split_at_mut((t + 1) * bh);
        (&past[t * bh..], &mut next[..bh])
    }

    /// `[T, B, H]` the states of every step.
    pub(crate) fn output(&self) -> &[f32] {
        &self.h[self.batch * self.hidden..]
    }

    /// `[T, B, H]` the states every step started from.
    pub(crate) fn inputs(&self) -> &[f32] {
        &self.h[..self.seq * self.batch * self.hidden]
    }

    /// Zeroes the carried state gradient before a backward pass.
    pub(crate) fn start_backward(&mut self) {
        fit(&mut self.dh, self.batch * self.hidden);
        self.dh.fill(0.0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    /// The outputs of a layer with one input and one unit, weights `weights` (in parameter
    /// order), over the sequence `x` (batch 1): what the step-formula tests compare against.
    pub(crate) fn one_unit_outputs<C: Cell>(weights: &[f32], x: &[f32]) -> Vec<f32> {
        let mut params = ParamStore::default();
        let layer = RnnLayer::<C>::new(&mut params, "rnn.0", 1, 1);
        params.data = weights.to_vec();
        let mut acts = C::Acts::default();
        C::forward(&layer.w, &mut acts, x, &params.data, 1, x.len(), None);
        RnnLayer::<C>::output(&acts).to_vec()
    }

    /// Gradient check of one layer over B=2, T=3, in=4, H=5 with every tensor random in
    /// [-1, 1) (larger than the init, so the nonlinearities are exercised away from zero).
    fn check_layer<C: Cell>() {
        let (batch, seq, input, hidden) = (2, 3, 4, 5);
        let mut params = ParamStore::default();
        let layer = RnnLayer::<C>::new(&mut params, "rnn.0", input, hidden);
        params.data = seeded(params.len(), 11);
        let x = seeded(seq * batch * input, 12);
        let probe = seeded(seq * batch * hidden, 13);
        // loss = Σ probe ⊙ h over every step, so dL/dh_t = probe_t and gradients flow both
        // directly and through the recurrence.
        let loss = |data: &[f32], x: &[f32]| {
            let mut acts = C::Acts::default();
            C::forward(&layer.w, &mut acts, x, data, batch, seq, None);
            let h = RnnLayer::<C>::output(&acts);
            h.iter()
                .zip(&probe)
                .map(|(a, p)| (a * p) as f64)
                .sum::<f64>()
        };
        let mut acts = C::Acts::default();
        C::forward(&layer.w, &mut acts, &x, &params.data, batch, seq, None);
        let mut dx = vec![0.0; x.len()];
        let mut grad = vec![0.0; params.len()];
        C::backward(
            &layer.w,
            &mut acts,
            &x,
            &probe,
            &mut dx,
            &params.data,
            &mut grad,
        );
        check("dx", &x, &dx, |v| loss(&params.data, v));
        for e in &params.entries {
            check(
                &e.name,
                &params.data[e.id.range()],
                &grad[e.id.range()],
                |v| {
                    let mut data = params.data.clone();
                    data[e.id.range()].copy_from_slice(v);
                    loss(&data, &x)
                },
            );
        }
    }

    #[test]
    fn gru_and_lstm_gradients_match_finite_differences() {
        check_layer::<crate::nn::gru::GruCell>();
        check_layer::<crate::nn::lstm::LstmCell>();
    }
}
