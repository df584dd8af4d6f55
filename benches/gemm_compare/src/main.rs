//! `matrixmultiply` against `gemm` and against a plain hand-written kernel (`tiles`: 6 × 16
//! register tiles, `B` packed, `A` read in place) on the GEMM shapes of one reference training
//! step (vocab 4096, seq 32, embed 128, ffn 512, batch 32): the forward product, the input
//! gradient and the weight gradient of every linear layer, for `tiny_gpt` (all 1 024 rows) and
//! `tiny_bert_generator` (its last block and head on the 32 last rows only).
//!
//! Three runs: one thread; two threads with each library's own threading; two threads with the
//! single-threaded kernels on halves of the output rows run by rayon, which is what the engine
//! does (`nn::matmul`). Each runs in a child process of its own, because `matrixmultiply`
//! reads `MATMUL_NUM_THREADS` once per process. Within a process the contenders alternate
//! product by product, so drifting machine load hits all alike, and each result is checked
//! against `matrixmultiply`'s. Reports, per model, the sum over one step's products of each
//! product's median time and the ratios to `matrixmultiply` (below 1: faster); with
//! `--shapes`, every product's GFLOP/s as well; with `--peak`, the cores' FMA ceiling instead.

use std::process::Command;
use std::time::Instant;

mod tiles;

const REPETITIONS: usize = 41;
const CHILD_ENV: &str = "GEMM_COMPARE_THREADS";
const SPLIT_ENV: &str = "GEMM_COMPARE_SPLIT";

#[derive(Clone, Copy)]
enum Op {
    N,
    T,
}

/// One product `c[m, n] = op(a)[m, k] · op(b)[k, n]`, as the engine calls it (row-major).
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    op_a: Op,
    op_b: Op,
}

/// Forward (`x · wᵀ`), input gradient (`dy · w`) and weight gradient (`dyᵀ · x`) of a linear
/// layer `inp → out` over `rows` rows.
fn linear(name: &'static str, rows: usize, inp: usize, out: usize) -> [Shape; 3] {
    let shape = |m, k, n, op_a, op_b| Shape {
        name,
        m,
        k,
        n,
        op_a,
        op_b,
    };
    [
        shape(rows, inp, out, Op::N, Op::T),
        shape(rows, out, inp, Op::N, Op::N),
        shape(out, rows, inp, Op::T, Op::N),
    ]
}

fn workloads() -> Vec<(&'static str, Vec<Shape>)> {
    let (rows, last, c, f, v) = (1024, 32, 128, 512, 4096);
    let full_block = || {
        [
            linear("qkv", rows, c, 3 * c),
            linear("proj", rows, c, c),
            linear("up", rows, c, f),
            linear("down", rows, f, c),
        ]
    };
    let mut gpt: Vec<Shape> = full_block().into_iter().flatten().collect();
    gpt.extend(full_block().into_iter().flatten());
    gpt.extend(linear("head", rows, c, v));
    let mut bert: Vec<Shape> = full_block().into_iter().flatten().collect();
    for layer in [
        linear("kv", rows, c, 2 * c),
        linear("q", last, c, c),
        linear("proj", last, c, c),
        linear("up", last, c, f),
        linear("down", last, f, c),
        linear("head", last, c, v),
    ] {
        bert.extend(layer);
    }
    vec![("tiny_gpt", gpt), ("tiny_bert_generator", bert)]
}

/// Row and column strides of `op(x)` viewed as `[rows, cols]`.
fn strides(op: Op, rows: usize, cols: usize) -> (isize, isize) {
    match op {
        Op::N => (cols as isize, 1),
        Op::T => (1, rows as isize),
    }
}

#[derive(Clone, Copy)]
enum Lib {
    Matrixmultiply,
    Tiles,
}

fn with_rows_of(lib: Lib, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32], split: bool) {
    if split && s.m >= 16 {
        // The engine's way (`nn::matmul`): single-threaded kernels on two halves of the output
        // rows, run by rayon.
        let half = (s.m / 2).next_multiple_of(8);
        let (c0, c1) = c.split_at_mut(half * s.n);
        let a1 = match s.op_a {
            Op::N => &a[half * s.k..],
            Op::T => &a[half..],
        };
        rayon::join(
            || rows(lib, s, half, a, b, c0),
            || rows(lib, s, s.m - half, a1, b, c1),
        );
    } else {
        rows(lib, s, s.m, a, b, c);
    }
}

/// The first `m` rows of the product, `a` starting at row 0 of the block.
fn rows(lib: Lib, s: &Shape, m: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (rsa, csa) = strides(s.op_a, s.m, s.k);
    let (rsb, csb) = strides(s.op_b, s.k, s.n);
    if let Lib::Tiles = lib {
        // SAFETY: as below; the CPU check is in `main`.
        unsafe {
            tiles::sgemm(
                m,
                s.k,
                s.n,
                1.0,
                a.as_ptr(),
                (rsa, csa),
                b.as_ptr(),
                (rsb, csb),
                0.0,
                c.as_mut_ptr(),
                (s.n as isize, 1),
            );
        }
        return;
    }
    // SAFETY: the buffers hold the m·k, k·n and m·n elements the strides reach.
    unsafe {
        matrixmultiply::sgemm(
            m,
            s.k,
            s.n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            s.n as isize,
            1,
        );
    }
}

fn with_gemm(s: &Shape, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    let (rsa, csa) = strides(s.op_a, s.m, s.k);
    let (rsb, csb) = strides(s.op_b, s.k, s.n);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: as above; `gemm` takes (column, row) strides and computes dst = beta · a · b.
    unsafe {
        gemm::gemm(
            s.m,
            s.n,
            s.k,
            c.as_mut_ptr(),
            1,
            s.n as isize,
            false,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of each contender (matrixmultiply, gemm, tiles) for one product,
/// interleaved.
fn time_shape(s: &Shape, threads: usize, split: bool) -> [f64; 3] {
    let a: Vec<f32> = (0..s.m * s.k).map(|i| (i % 13) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..s.k * s.n).map(|i| (i % 11) as f32 * 0.01).collect();
    let mut c = vec![0.0f32; s.m * s.n];
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut reference = vec![0.0f32; s.m * s.n];
    with_rows_of(Lib::Matrixmultiply, s, &a, &b, &mut reference, false);
    for rep in 0..REPETITIONS + 3 {
        for (lib, t) in times.iter_mut().enumerate() {
            let started = Instant::now();
            match lib {
                0 => with_rows_of(Lib::Matrixmultiply, s, &a, &b, &mut c, split),
                1 => with_gemm(s, &a, &b, &mut c, threads),
                // `tiles` has no threads of its own: on two threads it always splits rows.
                _ => with_rows_of(Lib::Tiles, s, &a, &b, &mut c, threads > 1),
            }
            let elapsed = started.elapsed().as_secs_f64();
            if rep >= 3 {
                t.push(elapsed);
                continue;
            }
            let worst = c
                .iter()
                .zip(&reference)
                .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{} contender {lib}: off by {worst}", s.name);
        }
    }
    times.map(median)
}

fn child(threads: usize, split: bool, per_shape: bool) {
    let how = if split {
        "matrixmultiply's and tiles' kernels on rows split over rayon (the engine's way)"
    } else {
        "each library's own threads (tiles: rows split over rayon)"
    };
    println!("\n{threads} thread(s), {how}; medians of {REPETITIONS}");
    for (model, shapes) in workloads() {
        let (mut total, mut flops) = ([0.0; 3], 0.0);
        for s in &shapes {
            let t = time_shape(s, threads, split);
            let f = 2.0 * (s.m * s.k * s.n) as f64;
            if per_shape {
                println!(
                    "  {model:<20} {:<5} {:>5}x{:>5}x{:>5}  matrixmultiply {:>6.1}  gemm {:>6.1}  tiles {:>6.1} GFLOP/s",
                    s.name, s.m, s.k, s.n, f / t[0] / 1e9, f / t[1] / 1e9, f / t[2] / 1e9
                );
            }
            for (sum, x) in total.iter_mut().zip(t) {
                *sum += x;
            }
            flops += f;
        }
        let rate = |t: f64| flops / t / 1e9;
        println!(
            "{model:<20} {:>2} products, {:.2} GFLOP: matrixmultiply {:>6.2} ms ({:>5.1} GFLOP/s), gemm {:>6.2} ms ({:>5.1}), tiles {:>6.2} ms ({:>5.1}); gemm/matrixmultiply {:.2}, tiles/matrixmultiply {:.2}",
            shapes.len(),
            flops / 1e9,
            total[0] * 1e3,
            rate(total[0]),
            total[1] * 1e3,
            rate(total[1]),
            total[2] * 1e3,
            rate(total[2]),
            total[1] / total[0],
            total[2] / total[0],
        );
    }
}

/// The machine's FMA ceiling: twelve independent chains of 8-wide fused multiply-adds (enough
/// to keep both FMA pipes of a core busy), on one thread and on two at once. What any GEMM on
/// these cores can at most reach.
fn peak() {
    const STEPS: u64 = 100_000_000;
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chains(steps: u64) -> f32 {
        use std::arch::x86_64::*;
        let (b, c) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999));
        let mut acc = [_mm256_setzero_ps(); 12];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(
            out.as_mut_ptr(),
            acc.iter().fold(c, |s, a| _mm256_add_ps(s, *a)),
        );
        out[0]
    }
    let flops = (STEPS * 12 * 16) as f64;
    for threads in [1, 2] {
        let started = Instant::now();
        let sums: Vec<f32> = std::thread::scope(|s| {
            let jobs: Vec<_> = (0..threads)
                // SAFETY: `main` checked AVX2 and FMA.
                .map(|_| s.spawn(|| unsafe { chains(std::hint::black_box(STEPS)) }))
                .collect();
            jobs.into_iter().filter_map(|j| j.join().ok()).collect()
        });
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "FMA peak, {threads} thread(s) at once: {:.1} GFLOP/s in all ({} chains summed to {:.3e})",
            threads as f64 * flops / seconds / 1e9,
            sums.len(),
            sums.iter().sum::<f32>()
        );
    }
}

fn main() {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        eprintln!("this benchmark needs AVX2 and FMA");
        std::process::exit(1);
    }
    if std::env::args().any(|a| a == "--peak") {
        peak();
        return;
    }
    let per_shape = std::env::args().any(|a| a == "--shapes");
    if let Some(threads) = std::env::var(CHILD_ENV).ok().and_then(|t| t.parse().ok()) {
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => {
                pool.install(|| child(threads, std::env::var(SPLIT_ENV).is_ok(), per_shape))
            }
            Err(e) => eprintln!("rayon pool: {e}"),
        }
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            std::process::exit(1);
        }
    };
    for (threads, split) in [(1, false), (2, false), (2, true)] {
        let mut cmd = Command::new(&exe);
        cmd.args(std::env::args().skip(1))
            .env(CHILD_ENV, threads.to_string())
            .env(
                "MATMUL_NUM_THREADS",
                if split { 1 } else { threads }.to_string(),
            );
        if split {
            cmd.env(SPLIT_ENV, "1");
        }
        if !matches!(cmd.status(), Ok(s) if s.success()) {
            eprintln!("{threads}-thread run failed");
        }
    }
}
