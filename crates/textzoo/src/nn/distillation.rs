//! The knowledge-distillation loss: the student's logits against a teacher's softened
//! distribution and the ground truth, fused with its gradient.
//!
//! Per row, with `T` the temperature, `p = softmax(teacher / T)`, `q = softmax(student / T)`:
//!
//! `loss = alpha · T² · KL(p ‖ q) + (1 − alpha) · CE(student, target)`
//!
//! `∂loss/∂student = alpha · T · (q − p) + (1 − alpha) · (softmax(student) − onehot)`. The T²
//! (Hinton et al.'s factor) keeps the soft term's gradient at the hard term's scale for any T.
//! The two terms are averaged separately: the hard one over every target, the soft one over the
//! rows that have a teacher row (a `tiny_bert_generator` teacher predicts only a window's last
//! position, so a causal student is distilled there and trained on the ground truth everywhere).

use super::fastmath;
use super::loss::cross_entropy_sum;
use crate::avx2_dispatch;
use rayon::prelude::*;

/// The teacher's side of one part of a batch.
#[derive(Clone, Copy)]
pub struct Soft<'a> {
    /// The teacher's logits for the same windows, `[windows, teacher_positions, vocab]`.
    pub teacher: &'a [f32],
    /// Positions the teacher predicts per window: the window length, or 1 (the last).
    pub teacher_positions: usize,
    pub alpha: f32,
    pub temperature: f32,
}

/// How one part's rows are weighted in the mean over the whole batch.
#[derive(Clone, Copy)]
pub struct Scales {
    /// `1 / targets in the batch`.
    pub hard: f32,
    /// `1 / distilled rows in the batch`.
    pub soft: f32,
}

/// Distilled rows per window: the positions student and teacher both predict (both are the
/// window's last positions).
pub fn distilled_per_window(student_positions: usize, teacher_positions: usize) -> usize {
    student_positions.min(teacher_positions)
}

/// The part's share of the batch's mean distillation loss (rows summed in order, so the
/// result does not depend on how rayon split them), with its gradient written to `dlogits`
/// when given. `student` is `[windows, positions, vocab]` with `positions = targets.len() /
/// windows`; `rows` is kept by the caller so a training step allocates nothing.
#[allow(clippy::too_many_arguments)]
pub fn distillation_sum(
    student: &[f32],
    targets: &[u32],
    windows: usize,
    vocab: usize,
    soft: &Soft<'_>,
    scales: Scales,
    dlogits: Option<&mut [f32]>,
    rows: &mut Vec<f64>,
) -> f64 {
    let n = targets.len();
    let per_window = n / windows.max(1);
    let hard_weight = 1.0 - soft.alpha;
    let inv_t = 1.0 / soft.temperature;
    let soft_grad = soft.alpha * soft.temperature * scales.soft;
    // The hard term first, with its gradient (scaled by 1 − alpha) in `dlogits`.
    let hard = match dlogits {
        Some(d) => {
            let grad = Some((&mut d[..], hard_weight * scales.hard));
            let hard = cross_entropy_sum(student, targets, vocab, grad, rows);
            let row = |r: usize| teacher_row(r, per_window, soft.teacher_positions);
            rows.clear();
            rows.par_extend(
                student[..n * vocab]
                    .par_chunks_exact(vocab)
                    .zip(d[..n * vocab].par_chunks_exact_mut(vocab))
                    .enumerate()
                    .map(|(r, (s, g))| match row(r) {
                        Some(t) => soft_row(
                            s,
                            &soft.teacher[t * vocab..][..vocab],
                            inv_t,
                            Some((g, soft_grad)),
                        ),
                        None => 0.0,
                    }),
            );
            hard
        }
        None => {
            let hard = cross_entropy_sum(student, targets, vocab, None, rows);
            rows.clear();
            rows.par_extend(
                student[..n * vocab]
                    .par_chunks_exact(vocab)
                    .enumerate()
                    .map(
                        |(r, s)| match teacher_row(r, per_window, soft.teacher_positions) {
                            Some(t) => {
                                soft_row(s, &soft.teacher[t * vocab..][..vocab], inv_t, None)
                            }
                            None => 0.0,
                        },
                    ),
            );
            hard
        }
    };
    let kl: f64 = rows.iter().sum();
    let t2 = (soft.temperature as f64).powi(2);
    hard_weight as f64 * scales.hard as f64 * hard
        + soft.alpha as f64 * t2 * scales.soft as f64 * kl
}

/// The teacher row of student row `r` (window `r / student_positions`), if the teacher
/// predicts that position: both predict the last positions of a window.
fn teacher_row(r: usize, student_positions: usize, teacher_positions: usize) -> Option<usize> {
    let (window, p) = (r / student_positions, r % student_positions);
    // Position counted from the window's end: 0 = last.
    let from_end = student_positions - 1 - p;
    (from_end < teacher_positions)
        .then(|| window * teacher_positions + teacher_positions - 1 - from_end)
}

/// `KL(p ‖ q)` of one row at temperature `1 / inv_t`, and `grad += scale · (q − p)` when
/// given.
fn soft_row(student: &[f32], teacher: &[f32], inv_t: f32, grad: Option<(&mut [f32], f32)>) -> f64 {
    let (t_max, t_lse) = log_sum_exp(teacher, inv_t);
    let (s_max, s_lse) = log_sum_exp(student, inv_t);
    let (t_shift, s_shift) = (t_max * inv_t + t_lse, s_max * inv_t + s_lse);
    match grad {
        Some((g, scale)) => kl_with_grad(student, teacher, inv_t, t_shift, s_shift, g, scale),
        None => kl_only(student, teacher, inv_t, t_shift, s_shift),
    }
}

/// `(max(x), ln Σ exp((x − max) / T))`, in AVX2 lanes like the cross-entropy's passes.
fn log_sum_exp(x: &[f32], inv_t: f32) -> (f32, f32) {
    let max = fastmath::max(x);
    (max, sum_exp(x, max, inv_t).ln())
}

avx2_dispatch! {
    fn sum_exp(x: &[f32], max: f32, inv_t: f32) -> f32 {
        let mut acc = [0.0f32; 8];
        let chunks = x.chunks_exact(8);
        let tail: f32 = chunks.remainder().iter().map(|&v| fastmath::exp((v - max) * inv_t)).sum();
        for c in chunks {
            for k in 0..8 {
                acc[k] += fastmath::exp((c[k] - max) * inv_t);
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

// Both in lanes of eight, like `sum_exp`: one term per logit, `acc[k]` the lane's running
// sum (an index modulo 8 instead keeps the compiler from vectorising).
avx2_dispatch! {
    fn kl_only(student: &[f32], teacher: &[f32], inv_t: f32, t_shift: f32, s_shift: f32) -> f64 {
        let term = |s: f32, t: f32| {
            let (log_p, log_q) = (t * inv_t - t_shift, s * inv_t - s_shift);
            fastmath::exp(log_p) * (log_p - log_q)
        };
        let mut acc = [0.0f32; 8];
        let (s8, t8) = (student.chunks_exact(8), teacher.chunks_exact(8));
        let tail: f32 = s8.remainder().iter().zip(t8.remainder()).map(|(&s, &t)| term(s, t)).sum();
        for (s, t) in s8.zip(t8) {
            for k in 0..8 {
                acc[k] += term(s[k], t[k]);
            }
        }
        acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64
    }
}

avx2_dispatch! {
    fn kl_with_grad(
        student: &[f32],
        teacher: &[f32],
        inv_t: f32,
        t_shift: f32,
        s_shift: f32,
        grad: &mut [f32],
        scale: f32,
    ) -> f64 {
        // The KL term, with `g += scale · (q − p)`.
        let term = |s: f32, t: f32, g: &mut f32| {
            let (log_p, log_q) = (t * inv_t - t_shift, s * inv_t - s_shift);
            let p = fastmath::exp(log_p);
            *g += scale * (fastmath::exp(log_q) - p);
            p * (log_p - log_q)
        };
        let mut acc = [0.0f32; 8];
        let mut s8 = student.chunks_exact(8);
        let mut t8 = teacher.chunks_exact(8);
        let mut g8 = grad.chunks_exact_mut(8);
        for ((s, t), g) in (&mut s8).zip(&mut t8).zip(&mut g8) {
            for k in 0..8 {
                acc[k] += term(s[k], t[k], &mut g[k]);
            }
        }
        let tail: f32 = s8
            .remainder()
            .iter()
            .zip(t8.remainder())
            .zip(g8.into_remainder())
            .map(|((&s, &t), g)| term(s, t, g))
            .sum();
        acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};
    use crate::nn::loss::softmax_cross_entropy;

    /// The loss in plain f64, straight from the formula, for comparison.
    fn reference(
        student: &[f32],
        teacher: &[f32],
        targets: &[u32],
        v: usize,
        alpha: f64,
        t: f64,
        teacher_positions: usize,
    ) -> f64 {
        let n = targets.len();
        let windows = 2;
        let per_window = n / windows;
        let softmax = |x: &[f32], t: f64| {
            let m = x.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
            let e: Vec<f64> = x.iter().map(|&y| ((y as f64 - m) / t).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|y| y / s).collect::<Vec<f64>>()
        };
        let mut ce = 0.0;
        let mut kl = 0.0;
        let mut distilled = 0;
        for r in 0..n {
            let row = &student[r * v..][..v];
            ce -= softmax(row, 1.0)[targets[r] as usize].ln();
            if let Some(tr) = teacher_row(r, per_window, teacher_positions) {
                let p = softmax(&teacher[tr * v..][..v], t);
                let q = softmax(row, t);
                kl += p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum::<f64>();
                distilled += 1;
            }
        }
        alpha * t * t * kl / distilled as f64 + (1.0 - alpha) * ce / n as f64
    }

    fn loss(
        student: &[f32],
        targets: &[u32],
        v: usize,
        soft: &Soft,
        grad: Option<&mut [f32]>,
    ) -> f64 {
        let n = targets.len();
        let per_window = n / 2;
        let scales = Scales {
            hard: 1.0 / n as f32,
            soft: 1.0 / (2 * distilled_per_window(per_window, soft.teacher_positions)) as f32,
        };
        distillation_sum(student, targets, 2, v, soft, scales, grad, &mut Vec::new())
    }

    /// Two windows of three positions, a teacher predicting every position or only the last;
    /// several temperatures and weights: the value is the formula's and the gradient matches
    /// finite differences of it.
    #[test]
    fn value_is_the_formula_and_gradient_matches_finite_differences() {
        let (n, v) = (6, 7);
        let student = seeded(n * v, 3)
            .iter()
            .map(|x| 3.0 * x)
            .collect::<Vec<f32>>();
        let targets = [1u32, 6, 0, 3, 3, 5];
        for teacher_positions in [3, 1] {
            let teacher = seeded(2 * teacher_positions * v, 4)
                .iter()
                .map(|x| 4.0 * x)
                .collect::<Vec<f32>>();
            for (alpha, temperature) in [(0.5, 2.0), (1.0, 1.0), (0.0, 3.0), (0.3, 0.5)] {
                let soft = Soft {
                    teacher: &teacher,
                    teacher_positions,
                    alpha,
                    temperature,
                };
                let mut d = vec![0.0; n * v];
                let got = loss(&student, &targets, v, &soft, Some(&mut d));
                let want = reference(
                    &student,
                    &teacher,
                    &targets,
                    v,
                    alpha as f64,
                    temperature as f64,
                    teacher_positions,
                );
                assert!(
                    (got - want).abs() < 1e-4 * want.abs().max(1.0),
                    "{alpha} {temperature}: {got} vs {want}"
                );
                let what = format!("dstudent (alpha {alpha}, T {temperature}, teacher positions {teacher_positions})");
                check(&what, &student, &d, |s| loss(s, &targets, v, &soft, None));
            }
        }
    }

    /// alpha = 0 is plain cross-entropy; a student equal to its teacher has no soft loss.
    #[test]
    fn limits_reduce_to_cross_entropy_and_zero_divergence() {
        let (n, v) = (4, 5);
        let student = seeded(n * v, 8);
        let targets = [0u32, 4, 2, 1];
        let soft = Soft {
            teacher: &student,
            teacher_positions: 2,
            alpha: 0.0,
            temperature: 2.0,
        };
        let ce = softmax_cross_entropy(&student, &targets, v, None) as f64;
        assert!((loss(&student, &targets, v, &soft, None) - ce).abs() < 1e-6);
        let soft = Soft { alpha: 1.0, ..soft };
        let mut d = vec![0.0; n * v];
        assert!(loss(&student, &targets, v, &soft, Some(&mut d)).abs() < 1e-6);
        assert!(d.iter().all(|g| g.abs() < 1e-6), "{d:?}");
    }
}
