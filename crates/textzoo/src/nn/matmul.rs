//! Matrix products through `matrixmultiply`'s single-threaded kernels, split over rayon's
//! threads by blocks of output rows. Row-major interface, strided views inside.
//!
//! Why split here rather than use `matrixmultiply`'s own threads: those live in a second pool
//! beside rayon's, sized once per process, so two products running at once (the two halves of
//! a batch) would fight over it, and every product wakes its threads from sleep. Splitting on
//! rayon keeps one pool for all the work; a product whose other half finds every thread busy
//! simply runs it on the calling thread. Every output element is still one kernel's dot product
//! over the same `k` blocks, so the result has the same bits however the rows were split.
//!
//! Why not `gemm`: `benches/gemm_compare` times both crates on every product of a reference
//! training step. On the products alone `gemm` is 6–13 % faster except for `tiny_gpt` on two
//! threads (6 % slower); swapped in here, whole training steps were slower for `tiny_gpt` and
//! no faster for `tiny_bert_generator` (`cargo bench --bench train_throughput`, three
//! alternating runs each), so the engine keeps the lighter crate. A plain hand-written kernel
//! (the bench's `tiles`: 6 × 16 register tiles, `B` packed, `A` read in place) ran the same
//! products 7–14 % slower than `matrixmultiply`, so there is no hand-rolled GEMM either; the
//! bench's `--peak` shows how close to the cores' FMA ceiling the products already are.

use super::heap;
use std::cell::Cell;

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
    let sa = match op_a {
        Op::N => (k, 1),
        Op::T => (1, m),
    };
    let sb = match op_b {
        Op::N => (n, 1),
        Op::T => (1, k),
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    strided_gemm(m, k, n, (a, sa), (b, sb), (c, (n, 1)), beta);
}

/// `c[m, n] = a[m, k] · b[k, n] + beta · c` over matrices given as (slice, (row stride, column
/// stride)), for the transposed views `gemm`'s row-major interface cannot express.
pub fn strided_gemm(
    m: usize,
    k: usize,
    n: usize,
    (a, (rsa, csa)): (&[f32], (usize, usize)),
    (b, (rsb, csb)): (&[f32], (usize, usize)),
    (c, (rsc, csc)): (&mut [f32], (usize, usize)),
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    let reach = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        (k == 0 || reach(m, k, rsa, csa) < a.len() && reach(k, n, rsb, csb) < b.len())
            && reach(m, n, rsc, csc) < c.len(),
        "strided_gemm: view outside its buffer"
    );
    assert!(
        csc > 0 && rsc >= n * csc || rsc > 0 && csc >= m * rsc,
        "strided_gemm: output elements overlap"
    );
    let p = Product {
        a: a.as_ptr(),
        b: b.as_ptr(),
        c: c.as_mut_ptr(),
        k,
        n,
        sa: (rsa, csa),
        sb: (rsb, csb),
        sc: (rsc, csc),
        beta,
    };
    let parts = if UNSPLIT.with(Cell::get) {
        1
    } else {
        rayon::current_num_threads()
    };
    p.rows(0, m, parts);
}

thread_local! {
    static UNSPLIT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the products it calls on the calling thread alone: for work that is already
/// one of as many parallel tasks as there are threads, where a split half would only wait for
/// a busy thread or interrupt it.
pub fn unsplit<R>(f: impl FnOnce() -> R) -> R {
    let before = UNSPLIT.with(|u| u.replace(true));
    let result = f();
    UNSPLIT.with(|u| u.set(before));
    result
}

/// Products with fewer multiply-adds run on the calling thread: below this, handing half to
/// another thread costs more than it saves.
const SPLIT_MACS: usize = 1 << 19;
/// `matrixmultiply`'s f32 kernels compute 8-row tiles: splits fall on tile boundaries.
const TILE: usize = 8;

/// A checked product on raw views, so that disjoint blocks of output rows — interleaved in
/// memory when `c` is column-major — can go to different threads.
#[derive(Clone, Copy)]
struct Product {
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    k: usize,
    n: usize,
    sa: (usize, usize),
    sb: (usize, usize),
    sc: (usize, usize),
    beta: f32,
}

// SAFETY: a `Product` is only built by `strided_gemm` from borrows that outlive every task it
// spawns (rayon::join returns after both halves); tasks read `a` and `b` and write disjoint
// rows of `c` (checked not to overlap).
unsafe impl Send for Product {}
unsafe impl Sync for Product {}

impl Product {
    /// Rows `first .. first + rows` of the output, over up to `parts` threads.
    fn rows(self, first: usize, rows: usize, parts: usize) {
        if parts > 1 && rows >= 2 * TILE && rows * self.k * self.n >= SPLIT_MACS {
            let left_parts = parts / 2;
            let left = (rows * left_parts / parts)
                .next_multiple_of(TILE)
                .clamp(TILE, rows - 1);
            rayon::join(
                || self.rows(first, left, left_parts),
                || self.rows(first + left, rows - left, parts - left_parts),
            );
            return;
        }
        let ((rsa, csa), (rsb, csb), (rsc, csc)) = (self.sa, self.sb, self.sc);
        // SAFETY: `strided_gemm` checked that the whole views lie inside their slices; rows
        // `first..first + rows` are a part of them.
        heap::foreign(|| unsafe {
            matrixmultiply::sgemm(
                rows,
                self.k,
                self.n,
                1.0,
                self.a.add(first * rsa),
                rsa as isize,
                csa as isize,
                self.b,
                rsb as isize,
                csb as isize,
                self.beta,
                self.c.add(first * rsc),
                rsc as isize,
                csc as isize,
            );
        });
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

    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        pool.map(|p| p.install(f)).unwrap()
    }

    /// Products big enough to be split give the same bits on 1, 2 and 3 threads (uneven row
    /// counts included), and match the naive product; also for a column-major output.
    #[test]
    fn split_products_have_the_bits_of_the_unsplit_ones() {
        let (m, k, n) = (203, 96, 40);
        assert!(m * k * n >= SPLIT_MACS);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (ta, op_a) in [(false, Op::N), (true, Op::T)] {
            for (tb, op_b) in [(false, Op::N), (true, Op::T)] {
                let run = |threads| {
                    in_pool(threads, || {
                        let mut c: Vec<f32> = (0..m * n).map(|i| i as f32 * 1e-3).collect();
                        gemm(m, k, n, &a, op_a, &b, op_b, &mut c, true);
                        c
                    })
                };
                let one = run(1);
                assert_eq!(one, run(2));
                assert_eq!(one, run(3));
                let want = naive(m, k, n, &a, ta, &b, tb);
                for (i, (got, want)) in one.iter().zip(&want).enumerate() {
                    assert!((got - (want + i as f32 * 1e-3)).abs() < 1e-3);
                }
            }
        }
        let column_major = |threads| {
            in_pool(threads, || {
                let mut c = vec![0.0; m * n];
                strided_gemm(m, k, n, (&a, (k, 1)), (&b, (n, 1)), (&mut c, (1, m)), 0.0);
                c
            })
        };
        let one = column_major(1);
        assert_eq!(one, column_major(2));
        let want = naive(m, k, n, &a, false, &b, false);
        for i in 0..m {
            for j in 0..n {
                assert!((one[j * m + i] - want[i * n + j]).abs() < 1e-3);
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside its buffer")]
    fn views_outside_their_buffers_are_refused() {
        let mut c = vec![0.0; 4];
        strided_gemm(
            2,
            3,
            2,
            (&[0.0; 5], (3, 1)),
            (&[0.0; 6], (2, 1)),
            (&mut c, (2, 1)),
            0.0,
        );
    }
}
