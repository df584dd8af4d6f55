//! Matrix products through `matrixmultiply` (its threading feature uses the cores given by
//! `MATMUL_NUM_THREADS`, set from `general.num_threads`). Row-major throughout.
//!
//! Why not `gemm`: `benches/gemm_compare` times both crates on every product of a reference
//! training step. On the products alone `gemm` is 6–13 % faster except for `tiny_gpt` on two
//! threads (6 % slower); swapped in here, whole training steps were slower for `tiny_gpt` and
//! no faster for `tiny_bert_generator` (`cargo bench --bench train_throughput`, three
//! alternating runs each), so the engine keeps the lighter crate.

/// Whether an operand is stored as given or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `A` is stored `[rows, cols]` as used.
    N,
    /// `A` is stored transposed: `[cols, rows]` of the product's view.
    T,
}

/// `c[m,n] = op(a)[m,k] · op(b)[k,n] + (accumulate ? c : 0)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm: buffer too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = match op_a {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    let (rsb, csb) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the asserts above guarantee every index the strides reach is inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let x = if ta { a[p * m + i] } else { a[i * k + p] };
                    let y = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += x * y;
                }
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_the_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (ta, op_a) in [(false, Op::N), (true, Op::T)] {
            for (tb, op_b) in [(false, Op::N), (true, Op::T)] {
                let want = naive(m, k, n, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                gemm(m, k, n, &a, op_a, &b, op_b, &mut c, true);
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - (want + 1.0)).abs() < 1e-5);
                }
            }
        }
    }
}
