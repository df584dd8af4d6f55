//! AdamW (Loshchilov & Hutter) and global-norm gradient clipping over a [`ParamStore`].
//!
//! The update follows PyTorch's `torch.optim.AdamW` term for term (decay first, then the
//! bias-corrected step), so hyper-parameters carry over from the references unchanged. The
//! moments are flat vectors in the store's layout: a checkpoint saves `m`, `v` and `step`
//! beside the weights and resume continues the same trajectory.

use super::ParamStore;
use crate::{avx2_dispatch, Error, Result};
use rayon::prelude::*;

const CHUNK: usize = 16384;

#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// First and second moment estimates, one per parameter.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Updates applied so far (the `t` of the bias correction).
    pub step: u64,
}

impl AdamW {
    pub fn new(num_params: usize, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Self {
        AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
            step: 0,
        }
    }

    /// Restores the state saved by a checkpoint, refusing moments of the wrong size.
    pub fn restore(&mut self, m: Vec<f32>, v: Vec<f32>, step: u64) -> Result<()> {
        if m.len() != self.m.len() || v.len() != self.v.len() {
            return Err(Error::Internal(format!(
                "optimizer state has {} / {} moments, the model has {} parameters",
                m.len(),
                v.len(),
                self.m.len()
            )));
        }
        (self.m, self.v, self.step) = (m, v, step);
        Ok(())
    }

    /// One update with learning rate `lr` (the schedule's value for this step). Weight decay
    /// touches only tensors marked `decay`: decaying norms, biases or embeddings gains nothing
    /// and hurts small models.
    pub fn update(&mut self, params: &mut ParamStore, lr: f32) {
        self.apply(params, lr, 1.0, false);
    }

    /// A whole optimizer step: clips the gradient to global norm `max_norm`, updates, and zeroes
    /// the gradient for the next step. Same result as [`clip_grad_norm`], [`update`](Self::update)
    /// and `zero_grad` in turn, but two passes over memory instead of four. Returns the norm
    /// before clipping; a non-finite norm skips the update (the step counter too) and still
    /// zeroes the gradient.
    pub fn step(&mut self, params: &mut ParamStore, lr: f32, max_norm: f32) -> f32 {
        let norm = global_norm(&params.grad);
        if !norm.is_finite() {
            params.zero_grad();
            return norm;
        }
        let scale = if norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.apply(params, lr, scale, true);
        norm
    }

    fn apply(&mut self, params: &mut ParamStore, lr: f32, grad_scale: f32, zero_grad: bool) {
        assert_eq!(
            self.m.len(),
            params.len(),
            "optimizer built for another model"
        );
        self.step += 1;
        let t = self.step as f32;
        let base = Step {
            b1: self.beta1,
            b2: self.beta2,
            eps: self.eps,
            keep: 1.0,
            step_size: lr / (1.0 - self.beta1.powf(t)),
            bc2_sqrt: (1.0 - self.beta2.powf(t)).sqrt(),
            grad_scale,
            zero_grad,
        };
        let decayed = 1.0 - lr * self.weight_decay;
        let ParamStore {
            data,
            grad,
            entries,
        } = params;
        // One parallel pass over the flat buffers; each chunk walks the tensors it overlaps
        // (per-tensor passes would pay rayon's dispatch for every 128-float bias).
        data.par_chunks_mut(CHUNK)
            .zip(grad.par_chunks_mut(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, (((p, g), m), v))| {
                let lo = i * CHUNK;
                let mut e = entries.partition_point(|e| e.id.range().end <= lo);
                let mut start = 0;
                while start < p.len() {
                    let (end, decay) = match entries.get(e) {
                        Some(x) => ((x.id.range().end - lo).min(p.len()), x.decay),
                        None => (p.len(), false),
                    };
                    let h = Step {
                        keep: if decay { decayed } else { 1.0 },
                        ..base
                    };
                    let r = start..end;
                    update_chunk(
                        &mut p[r.clone()],
                        &mut g[r.clone()],
                        &mut m[r.clone()],
                        &mut v[r],
                        h,
                    );
                    start = end;
                    e += 1;
                }
            });
    }
}

/// The constants of one update of one tensor.
#[derive(Clone, Copy)]
struct Step {
    b1: f32,
    b2: f32,
    eps: f32,
    /// `1 − lr · weight_decay`, or 1 for tensors without decay.
    keep: f32,
    /// `lr / (1 − β₁ᵗ)`.
    step_size: f32,
    /// `√(1 − β₂ᵗ)`.
    bc2_sqrt: f32,
    /// Gradient clipping's factor, folded into the update.
    grad_scale: f32,
    zero_grad: bool,
}

avx2_dispatch! {
    fn update_chunk(p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32], h: Step) {
        for (((p, g), m), v) in p.iter_mut().zip(g.iter_mut()).zip(m).zip(v) {
            let gs = *g * h.grad_scale;
            *m = h.b1 * *m + (1.0 - h.b1) * gs;
            *v = h.b2 * *v + (1.0 - h.b2) * gs * gs;
            let denom = v.sqrt() / h.bc2_sqrt + h.eps;
            *p = *p * h.keep - h.step_size * *m / denom;
            if h.zero_grad {
                *g = 0.0;
            }
        }
    }
}

/// Scales `grad` so its global L2 norm is at most `max_norm` and returns the norm before
/// clipping (what training logs). A non-finite norm is returned with the gradient untouched,
/// so the caller can skip the step instead of spreading NaN into every weight.
pub fn clip_grad_norm(grad: &mut [f32], max_norm: f32) -> f32 {
    let norm = global_norm(grad);
    if norm.is_finite() && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        grad.par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|g| *g *= s));
    }
    norm
}

/// L2 norm with a fixed summation order (eight lanes per chunk, chunks added in `f64` in a
/// fixed tree), so the same gradient always gives the same bits.
pub fn global_norm(grad: &[f32]) -> f32 {
    sum_of_squares(grad).sqrt() as f32
}

/// Sum of squares by halves split at chunk boundaries that depend on the length alone, so the
/// additions happen in the same order on any number of threads while both cores read (one
/// thread alone leaves the other idle for a pass over every gradient per step).
fn sum_of_squares(g: &[f32]) -> f64 {
    let chunks = g.len().div_ceil(CHUNK);
    if chunks <= 1 {
        return squares(g) as f64;
    }
    let (a, b) = g.split_at(chunks / 2 * CHUNK);
    let (x, y) = rayon::join(|| sum_of_squares(a), || sum_of_squares(b));
    x + y
}

avx2_dispatch! {
    fn squares(g: &[f32]) -> f32 {
        super::fastmath::dot(g, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_matches_pytorch() {
        // torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1) with
        // p = [1.0, -2.0], grad = [0.5, -0.25]: the bias-corrected first step moves each entry
        // by lr · sign(g) after decay p·(1 − lr·wd).
        let mut ps = ParamStore::default();
        let w = ps.add("w", &[2], true);
        let b = ps.add("b", &[1], false);
        ps.get_mut(w).copy_from_slice(&[1.0, -2.0]);
        ps.get_mut(b)[0] = 3.0;
        ps.grad.copy_from_slice(&[0.5, -0.25, 1.0]);
        let mut opt = AdamW::new(ps.len(), 0.9, 0.999, 1e-8, 0.1);
        opt.update(&mut ps, 0.1);
        let want = [1.0 * 0.99 - 0.1, -2.0 * 0.99 + 0.1, 3.0 - 0.1];
        for (got, want) in ps.data.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(opt.step, 1);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut ps = ParamStore::default();
        let x = ps.add("x", &[3], false);
        ps.get_mut(x).copy_from_slice(&[3.0, -1.0, 0.5]);
        let mut opt = AdamW::new(3, 0.9, 0.999, 1e-8, 0.0);
        for _ in 0..500 {
            let (w, g) = ps.with_grad(x);
            g.iter_mut().zip(w).for_each(|(g, w)| *g = 2.0 * w);
            opt.update(&mut ps, 0.05);
        }
        assert!(ps.data.iter().all(|v| v.abs() < 1e-2), "{:?}", ps.data);
    }

    #[test]
    fn clipping_scales_to_the_limit_and_reports_the_norm() {
        let mut g = vec![3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 10.0), 5.0);
        assert_eq!(g, vec![3.0, 4.0]);
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        assert!((global_norm(&g) - 1.0).abs() < 1e-5);
        let mut bad = vec![f32::NAN, 1.0];
        assert!(clip_grad_norm(&mut bad, 1.0).is_nan());
        assert_eq!(bad[1], 1.0);
    }

    #[test]
    fn fused_step_equals_clip_update_and_zero() {
        let build = || {
            let mut ps = ParamStore::default();
            let w = ps.add("w", &[40_000], true);
            let b = ps.add("b", &[3], false);
            let n = ps.len();
            ps.data.copy_from_slice(&crate::nn::gradcheck::seeded(n, 1));
            ps.grad.copy_from_slice(&crate::nn::gradcheck::seeded(n, 2));
            (ps, w, b)
        };
        let (mut a, ..) = build();
        let (mut b, ..) = build();
        let mut oa = AdamW::new(a.len(), 0.9, 0.95, 1e-8, 0.1);
        let mut ob = oa.clone();
        let na = clip_grad_norm(&mut a.grad, 1.0);
        oa.update(&mut a, 0.01);
        a.zero_grad();
        let nb = ob.step(&mut b, 0.01, 1.0);
        assert_eq!(na, nb);
        assert_eq!(a.data, b.data);
        assert_eq!(oa, ob);
        assert!(b.grad.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn the_norm_has_the_same_bits_on_any_thread_count() {
        let g = crate::nn::gradcheck::seeded(5 * CHUNK + 123, 4);
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            pool.unwrap().install(|| global_norm(&g))
        };
        let want = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!(
            (on(1) as f64 - want).abs() < 1e-5 * want,
            "{} vs {want}",
            on(1)
        );
        assert_eq!(on(1).to_bits(), on(2).to_bits());
        assert_eq!(on(1).to_bits(), on(3).to_bits());
    }

    #[test]
    fn restore_refuses_a_mismatched_state() {
        let mut opt = AdamW::new(4, 0.9, 0.999, 1e-8, 0.0);
        assert!(opt.restore(vec![0.0; 3], vec![0.0; 4], 7).is_err());
        assert!(opt.restore(vec![1.0; 4], vec![2.0; 4], 7).is_ok());
        assert_eq!((opt.m[0], opt.v[0], opt.step), (1.0, 2.0, 7));
    }
}
