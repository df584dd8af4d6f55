//! Integer kernels. Every function takes plain slices and sizes, so the C twin is the same loop
//! nest with pointers. Conventions:
//!
//! - activations are int8, asymmetric per tensor (`real = scale · (q − zero_point)`);
//! - weights are int8 symmetric, per output channel (one scale per row of `w[out, in]`);
//! - a fully connected layer's int32 bias already holds `− x_zp · Σ w[o, :]` (folded at
//!   conversion), so the inner loop is a plain int8 dot product;
//! - sums of two requantized terms (residual adds, embeddings) are computed with
//!   [`FRAC_BITS`] extra fraction bits and rounded once at the end.
//!
//! The only float arithmetic is in [`layernorm`] (`+ − × ÷ sqrt` in a fixed order, which
//! the C twin reproduces bit for bit) and in [`dequantize_logits`].

use crate::quant::{round_f32_to_i8, rounding_divide_by_pot, saturate_i8, Requant};
use std::cell::Cell;

/// Extra fraction bits of the intermediate sum in [`add2`]-style kernels.
pub const FRAC_BITS: i32 = 8;
/// Softmax probabilities are `u8` with scale `1 / PROB_ONE`.
pub const PROB_ONE: u32 = 255;
/// Entries of the softmax exponential table: `exp_lut[i] = round(2¹⁶ · exp(−i / EXP_STEPS))`.
pub const EXP_LUT_LEN: usize = 1024;
/// Table entries per unit of the (real) score difference.
pub const EXP_STEPS: f64 = 64.0;
/// `exp_lut[0]`, the fixed-point 1.0.
pub const EXP_ONE: i32 = 1 << 16;

// ----------------------------------------------------------------------------
// Dot products (the hot loop)

/// `Σ a[i] · b[i]` over int8 vectors of the same length.
#[inline(always)]
fn dot_portable(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (a32, b32) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: i32 = a32
        .remainder()
        .iter()
        .zip(b32.remainder())
        .map(|(&x, &y)| x as i32 * y as i32)
        .sum();
    for (x, y) in a32.zip(b32) {
        for k in 0..16 {
            // Pairs of i16 products summed into i32: the shape of `pmaddwd`.
            let p0 = (x[2 * k] as i16 * y[2 * k] as i16) as i32;
            let p1 = (x[2 * k + 1] as i16 * y[2 * k + 1] as i16) as i32;
            acc[k] += p0 + p1;
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// Four dot products of `x` with the rows `w0..w3` at once (each weight row read once per
/// input row, `x` loaded once for four outputs).
#[inline(always)]
fn dot4_portable(x: &[i8], w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8]) -> [i32; 4] {
    let n = x.len();
    let mut acc = [[0i32; 8]; 4];
    let full = n / 16 * 16;
    let mut i = 0;
    while i < full {
        let xs = &x[i..i + 16];
        for (r, w) in [w0, w1, w2, w3].iter().enumerate() {
            let ws = &w[i..i + 16];
            for k in 0..8 {
                let p0 = (xs[2 * k] as i16 * ws[2 * k] as i16) as i32;
                let p1 = (xs[2 * k + 1] as i16 * ws[2 * k + 1] as i16) as i32;
                acc[r][k] += p0 + p1;
            }
        }
        i += 16;
    }
    let mut out = [0i32; 4];
    for (r, w) in [w0, w1, w2, w3].iter().enumerate() {
        let tail: i32 = (full..n).map(|j| x[j] as i32 * w[j] as i32).sum();
        out[r] = acc[r].iter().sum::<i32>() + tail;
    }
    out
}

/// Raw accumulators `acc[r, o] = bias[o] + Σ_i x[r, i] · w[o, i]` for `n` rows.
#[inline(always)]
fn fc_acc_portable(
    acc: &mut [i32],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    n: usize,
    k: usize,
    m: usize,
) {
    let m4 = m / 4 * 4;
    for r in 0..n {
        let xr = &x[r * k..(r + 1) * k];
        let ar = &mut acc[r * m..(r + 1) * m];
        let mut o = 0;
        while o < m4 {
            let d = dot4_portable(
                xr,
                &w[o * k..(o + 1) * k],
                &w[(o + 1) * k..(o + 2) * k],
                &w[(o + 2) * k..(o + 3) * k],
                &w[(o + 3) * k..(o + 4) * k],
            );
            for j in 0..4 {
                ar[o + j] = bias[o + j] + d[j];
            }
            o += 4;
        }
        while o < m {
            ar[o] = bias[o] + dot_portable(xr, &w[o * k..(o + 1) * k]);
            o += 1;
        }
    }
}
/// `acc[n, m] = bias + x[n, k] · w[m, k]ᵀ` in int32 (exact: no rounding anywhere).
pub fn fc_acc(acc: &mut [i32], x: &[i8], w: &[i8], bias: &[i32], n: usize, k: usize, m: usize) {
    assert!(acc.len() >= n * m && x.len() >= n * k && w.len() >= m * k && bias.len() >= m);
    fc_acc_portable(acc, x, w, bias, n, k, m)
}

/// `Σ a[i] · b[i]` (int8, exact).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    dot_portable(a, b)
}

// ----------------------------------------------------------------------------
// Portable reference or SIMD

thread_local! {
    static FORCE_PORTABLE: Cell<bool> = const { Cell::new(false) };
}

/// Forces the portable kernels (the C twin's loops) on the calling thread even where AVX2 is
/// available. Both give the same bits (integer arithmetic, and the same IEEE operations where
/// floats appear); the tests flip this to prove it on whole models.
pub fn force_portable(on: bool) {
    FORCE_PORTABLE.with(|f| f.set(on));
}

#[inline(always)]
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !FORCE_PORTABLE.with(|f| f.get()) && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

// ----------------------------------------------------------------------------
// Fully connected layers

/// `sat8(zp + requant(acc))`. The requantized value is clamped to ±1024 before the zero point
/// is added, which changes nothing (the result saturates either way) but keeps the sum from
/// overflowing int32.
#[inline(always)]
pub fn requant_i8(acc: i32, rq: Requant, zp: i32) -> i8 {
    saturate_i8(zp + rq.apply(acc).clamp(-1024, 1024))
}

/// Two requantized terms summed with [`FRAC_BITS`] extra bits, rounded once:
/// `sat(zp + round((a' + b') / 2^FRAC_BITS))` with `a' = ra(a)`, `b' = rb(b)`, where the
/// multipliers include the factor `2^FRAC_BITS`.
#[inline(always)]
pub fn add2(a: i32, ra: Requant, b: i32, rb: Requant, zp: i32) -> i8 {
    let sum = ra.apply(a).saturating_add(rb.apply(b));
    saturate_i8(zp + rounding_divide_by_pot(sum, FRAC_BITS))
}

/// What a fully connected layer does with its int32 accumulator `acc[r, o]` (bias included).
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// `out = sat8(zp + requant_o(acc))`, per-channel multipliers.
    Requant {
        mult: &'a [i32],
        shift: &'a [i32],
        zp: i32,
    },
    /// The same, then through a 256-entry table: `out = lut[that + 128]` (GELU).
    Lut {
        mult: &'a [i32],
        shift: &'a [i32],
        zp: i32,
        lut: &'a [i8],
    },
    /// Fused residual add: `out = add2(acc, requant_o, res[r, o] − res_zp, res_rq, zp)`.
    Residual {
        mult: &'a [i32],
        shift: &'a [i32],
        res: &'a [i8],
        res_zp: i32,
        res_rq: Requant,
        zp: i32,
    },
}

impl Epilogue<'_> {
    /// The scalar epilogue of output `(r, o)` of an `m`-wide layer.
    #[inline(always)]
    pub fn apply(&self, r: usize, o: usize, m: usize, acc: i32) -> i8 {
        let rq = |mult: &[i32], shift: &[i32]| Requant {
            mult: mult[o],
            shift: shift[o],
        };
        match *self {
            Epilogue::Requant { mult, shift, zp } => requant_i8(acc, rq(mult, shift), zp),
            Epilogue::Lut {
                mult,
                shift,
                zp,
                lut,
            } => lut[(requant_i8(acc, rq(mult, shift), zp) as i32 + 128) as usize],
            Epilogue::Residual {
                mult,
                shift,
                res,
                res_zp,
                res_rq,
                zp,
            } => add2(
                acc,
                rq(mult, shift),
                res[r * m + o] as i32 - res_zp,
                res_rq,
                zp,
            ),
        }
    }

    fn check(&self, n: usize, m: usize) {
        match *self {
            Epilogue::Requant { mult, shift, .. } => assert!(mult.len() >= m && shift.len() >= m),
            Epilogue::Lut {
                mult, shift, lut, ..
            } => assert!(mult.len() >= m && shift.len() >= m && lut.len() >= 256),
            Epilogue::Residual {
                mult, shift, res, ..
            } => assert!(mult.len() >= m && shift.len() >= m && res.len() >= n * m),
        }
    }
}

/// The portable fully connected layer: four output channels per pass, then the epilogue.
#[allow(clippy::too_many_arguments)]
fn fc_portable(
    out: &mut [i8],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    n: usize,
    k: usize,
    m: usize,
    epi: &Epilogue,
) {
    let m4 = m / 4 * 4;
    for r in 0..n {
        let xr = &x[r * k..(r + 1) * k];
        let mut o = 0;
        while o < m4 {
            let d = dot4_portable(
                xr,
                &w[o * k..(o + 1) * k],
                &w[(o + 1) * k..(o + 2) * k],
                &w[(o + 2) * k..(o + 3) * k],
                &w[(o + 3) * k..(o + 4) * k],
            );
            for j in 0..4 {
                out[r * m + o + j] = epi.apply(r, o + j, m, bias[o + j] + d[j]);
            }
            o += 4;
        }
        while o < m {
            out[r * m + o] = epi.apply(r, o, m, bias[o] + dot_portable(xr, &w[o * k..(o + 1) * k]));
            o += 1;
        }
    }
}

/// Fully connected layer `x[n, k] · w[m, k]ᵀ + bias` into int8 through `epi` (no int32
/// scratch: each accumulator goes through the epilogue as soon as it is complete).
#[allow(clippy::too_many_arguments)]
pub fn fc(
    out: &mut [i8],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    n: usize,
    k: usize,
    m: usize,
    epi: &Epilogue,
) {
    assert!(out.len() >= n * m && x.len() >= n * k && w.len() >= m * k && bias.len() >= m);
    epi.check(n, m);
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is available; the sizes were checked above.
        return unsafe { crate::avx2::fc(out, x, w, bias, n, k, m, epi) };
    }
    fc_portable(out, x, w, bias, n, k, m, epi)
}

/// The head: float logits `out[r, o] = (bias[o] + x[r]·w[o]) · scale[o]` (one IEEE
/// multiplication per value after the exact int32 sum).
#[allow(clippy::too_many_arguments)]
pub fn fc_logits(
    out: &mut [f32],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    scale: &[f32],
    n: usize,
    k: usize,
    m: usize,
) {
    assert!(out.len() >= n * m && x.len() >= n * k && w.len() >= m * k);
    assert!(bias.len() >= m && scale.len() >= m);
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is available; the sizes were checked above.
        return unsafe { crate::avx2::fc_logits(out, x, w, bias, scale, n, k, m) };
    }
    let mut acc = [0i32; 4];
    let m4 = m / 4 * 4;
    for r in 0..n {
        let xr = &x[r * k..(r + 1) * k];
        let mut o = 0;
        while o < m4 {
            fc_acc_portable(
                &mut acc,
                xr,
                &w[o * k..(o + 4) * k],
                &bias[o..o + 4],
                1,
                k,
                4,
            );
            dequantize_logits(&mut out[r * m + o..r * m + o + 4], &acc, &scale[o..o + 4]);
            o += 4;
        }
        while o < m {
            let a = bias[o] + dot_portable(xr, &w[o * k..(o + 1) * k]);
            out[r * m + o] = a as f32 * scale[o];
            o += 1;
        }
    }
}

/// `out[i] = add2(a[i], ra, b[i], rb, zp)` over a row (the embedding sum).
pub fn add2_row(out: &mut [i8], a: &[i8], ra: Requant, b: &[i8], rb: Requant, zp: i32) {
    let n = out.len();
    assert!(a.len() >= n && b.len() >= n);
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is available; the sizes were checked above.
        return unsafe { crate::avx2::add2_row(out, a, ra, b, rb, zp) };
    }
    for i in 0..n {
        out[i] = add2(a[i] as i32, ra, b[i] as i32, rb, zp);
    }
}

/// `out[i] = requant_i8(acc[i], rq, zp)` with one multiplier for the whole row.
pub fn requant_row(out: &mut [i8], acc: &[i32], rq: Requant, zp: i32) {
    let n = out.len();
    assert!(acc.len() >= n);
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: AVX2 is available; the sizes were checked above.
        return unsafe { crate::avx2::requant_row(out, acc, rq, zp) };
    }
    for i in 0..n {
        out[i] = requant_i8(acc[i], rq, zp);
    }
}

// ----------------------------------------------------------------------------
// Layer normalisation

/// Layer norm of `n` rows of `c` int8 values into int8 (zero point folded into `b`).
///
/// Integer statistics: `d_i = c · x_i − Σx` and `ss = Σ d_i²` are exact (the zero point
/// cancels). Then, in f32 and in this order:
/// `r = 1 / sqrt(ss · var_scale + eps)`, `y_i = (d_i · r) · a_i + b_i`, rounded half away
/// from zero, where the converter set `var_scale = s_x² / c³`, `a_i = s_x · γ_i / (c · s_y)`,
/// `b_i = β_i / s_y + zp_y`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm(
    out: &mut [i8],
    x: &[i8],
    a: &[f32],
    b: &[f32],
    var_scale: f32,
    eps: f32,
    n: usize,
    c: usize,
) {
    assert!(out.len() >= n * c && x.len() >= n * c && a.len() >= c && b.len() >= c);
    for r in 0..n {
        let xr = &x[r * c..(r + 1) * c];
        let mut sum: i32 = 0;
        for &v in xr {
            sum += v as i32;
        }
        let mut ss: i64 = 0;
        for &v in xr {
            let d = c as i32 * v as i32 - sum;
            ss += d as i64 * d as i64;
        }
        let rstd = 1.0f32 / (ss as f32 * var_scale + eps).sqrt();
        let or = &mut out[r * c..(r + 1) * c];
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: AVX2 is available; the sizes were checked above.
            unsafe { crate::avx2::layernorm_row(or, xr, a, b, sum, rstd) };
            continue;
        }
        for i in 0..c {
            let d = (c as i32 * xr[i] as i32 - sum) as f32;
            or[i] = round_f32_to_i8(d * rstd * a[i] + b[i]);
        }
    }
}

// ----------------------------------------------------------------------------
// Elementwise lookup tables

/// `out[i] = lut[x[i] + 128]`: any int8 → int8 function tabulated at conversion time.
pub fn lut_i8(out: &mut [i8], x: &[i8], lut: &[i8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = lut[(v as i32 + 128) as usize];
    }
}

// ----------------------------------------------------------------------------
// Attention

/// Sizes and quantization of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnParams {
    pub heads: usize,
    pub head_dim: usize,
    pub q_zp: i32,
    pub k_zp: i32,
    pub v_zp: i32,
    /// Maps a score difference (int32 units of `s_q·s_k`) to exp-table steps:
    /// `s_q · s_k / √d · EXP_STEPS`.
    pub softmax: Requant,
    /// `p · v` accumulators (units of `s_v / PROB_ONE`) to the output scale.
    pub pv: Requant,
    pub out_zp: i32,
}

/// `round(num / den)` for the softmax normalisation, exactly `(num + den / 2) / den` in
/// integers, through a 32-bit reciprocal: `q0 = ⌊num · ⌊2³²/den⌋ / 2³²⌋` is `q` or `q − 1`
/// for `num < 2³²`, and one comparison fixes it (wider values fall back to a division).
#[inline(always)]
fn div_round(num: u64, den: u64, inv: u64) -> u32 {
    let n = num + den / 2;
    if n >= 1 << 32 {
        return (n / den) as u32;
    }
    let q = (n * inv) >> 32;
    (q + u64::from(n - q * den >= den)) as u32
}

/// Softmax of int32 scores through the exponential table into `u8` probabilities (scale
/// `1 / PROB_ONE`): `e_j = lut[min(rq(max − s_j), LEN − 1)]`, `p_j = round(PROB_ONE·e_j / Σe)`.
/// `scores` is overwritten with `e_j`.
pub fn softmax_lut(probs: &mut [u8], scores: &mut [i32], rq: Requant, exp_lut: &[i32]) {
    assert!(probs.len() >= scores.len() && exp_lut.len() >= EXP_LUT_LEN);
    let mut max = i32::MIN;
    for &s in scores.iter() {
        if s > max {
            max = s;
        }
    }
    let mut sum: u64 = 0;
    #[cfg(target_arch = "x86_64")]
    let done = if avx2() {
        // SAFETY: AVX2 is available; the table length was checked above.
        sum = unsafe { crate::avx2::softmax_exps(scores, max, rq, exp_lut) };
        true
    } else {
        false
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = false;
    if !done {
        for s in scores.iter_mut() {
            let idx = rq.apply(max - *s).clamp(0, EXP_LUT_LEN as i32 - 1) as usize;
            *s = exp_lut[idx];
            sum += *s as u64;
        }
    }
    let inv = (1u64 << 32) / sum.max(1);
    for (p, &e) in probs.iter_mut().zip(scores.iter()) {
        *p = div_round(e as u64 * PROB_ONE as u64, sum, inv) as u8;
    }
}

/// Scratch of one attention call: `scores`, `probs` and `ksum` hold `n_keys` entries, `acc`
/// holds `head_dim`.
pub struct AttnScratch<'a> {
    pub scores: &'a mut [i32],
    pub probs: &'a mut [u8],
    pub ksum: &'a mut [i32],
    pub acc: &'a mut [i32],
}

/// Attention for query rows `q[rows, C]` at positions `pos0..pos0 + rows` over keys and values
/// `k[.., C]`, `v[.., C]` (rows `0..` of a cache or of a window). `causal`: row `i` sees keys
/// `0..=pos0 + i`; otherwise every key in `0..n_keys`.
///
/// Scores: `Σ (q − zq)(k − zk) = Σ q·k − zk·Σq − zq·Σk + d·zq·zk`, with `Σk` per key computed
/// once per head; `p · (v − zv)` likewise as `Σ p·v − zv·Σp`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    out: &mut [i8],
    q: &[i8],
    k: &[i8],
    v: &[i8],
    rows: usize,
    pos0: usize,
    n_keys: usize,
    causal: bool,
    p: &AttnParams,
    exp_lut: &[i32],
    s: &mut AttnScratch,
) {
    let (hd, c) = (p.head_dim, p.heads * p.head_dim);
    let n_keys = if causal {
        n_keys.min(pos0 + rows)
    } else {
        n_keys
    };
    assert!(out.len() >= rows * c && q.len() >= rows * c);
    assert!(k.len() >= n_keys * c && v.len() >= n_keys * c);
    assert!(s.scores.len() >= n_keys && s.probs.len() >= n_keys && s.ksum.len() >= n_keys);
    assert!(s.acc.len() >= hd);
    let simd = avx2();
    for h in 0..p.heads {
        let h0 = h * hd;
        for j in 0..n_keys {
            s.ksum[j] = k[j * c + h0..j * c + h0 + hd]
                .iter()
                .map(|&x| x as i32)
                .sum();
        }
        for i in 0..rows {
            let seen = if causal { pos0 + i + 1 } else { n_keys };
            let qi = &q[i * c + h0..i * c + h0 + hd];
            let qsum: i32 = qi.iter().map(|&x| x as i32).sum();
            let corr = hd as i32 * p.q_zp * p.k_zp - p.k_zp * qsum;
            let scores = &mut s.scores[..seen];
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: AVX2 is available; `k` holds `seen` rows of `c` (checked above).
                unsafe { crate::avx2::scores(scores, qi, &k[h0..], c, corr, p.q_zp, s.ksum) };
            }
            if !simd {
                for (j, sc) in scores.iter_mut().enumerate() {
                    let kj = &k[j * c + h0..j * c + h0 + hd];
                    *sc = dot_portable(qi, kj) + corr - p.q_zp * s.ksum[j];
                }
            }
            softmax_lut(&mut s.probs[..seen], scores, p.softmax, exp_lut);
            let a = &mut s.acc[..hd];
            a.fill(0);
            let mut psum: i32 = 0;
            for j in 0..seen {
                let pj = s.probs[j] as i32;
                if pj == 0 {
                    continue;
                }
                psum += pj;
                let vj = &v[j * c + h0..j * c + h0 + hd];
                for (ad, &vd) in a.iter_mut().zip(vj) {
                    *ad += pj * vd as i32;
                }
            }
            let zfix = p.v_zp * psum;
            a.iter_mut().for_each(|ad| *ad -= zfix);
            requant_row(&mut out[i * c + h0..i * c + h0 + hd], a, p.pv, p.out_zp);
        }
    }
}

// ----------------------------------------------------------------------------
// Outputs

/// Float logits from the head's int32 accumulators: `logit[o] = acc[o] · scale[o]` (one IEEE
/// multiplication per value).
pub fn dequantize_logits(out: &mut [f32], acc: &[i32], scale: &[f32]) {
    for ((o, &a), &s) in out.iter_mut().zip(acc).zip(scale) {
        *o = a as f32 * s;
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Index of the largest int32 value (the first one on ties).
pub fn argmax_i32(x: &[i32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_i8;
    use crate::Rng;

    fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * rng.next_f32()).collect()
    }

    fn params(lo: f32, hi: f32) -> (f64, i32) {
        let scale = (hi - lo) as f64 / 255.0;
        (scale, (-128.0 - lo as f64 / scale).round() as i32)
    }

    fn quant(x: &[f32], (s, z): (f64, i32)) -> Vec<i8> {
        x.iter().map(|&v| quantize_i8(v as f64, s, z)).collect()
    }

    fn deq(q: &[i8], (s, z): (f64, i32)) -> Vec<f64> {
        q.iter().map(|&v| s * (v as i32 - z) as f64).collect()
    }

    #[test]
    fn fc_matches_float_within_one_output_step() {
        let mut rng = Rng::new(1);
        let (n, k, m) = (5, 37, 9);
        let xf = uniform(&mut rng, n * k, -1.0, 2.0);
        let wf = uniform(&mut rng, m * k, -0.5, 0.5);
        let bf = uniform(&mut rng, m, -0.2, 0.2);
        let xp = params(-1.0, 2.0);
        let xq = quant(&xf, xp);
        // Per-channel symmetric weights.
        let mut wq = Vec::new();
        let mut ws = Vec::new();
        for row in wf.chunks(k) {
            let s = row.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64 / 127.0;
            ws.push(s);
            wq.extend(row.iter().map(|&v| quantize_i8(v as f64, s, 0)));
        }
        let yp = params(-6.0, 6.0);
        let mut bias = Vec::new();
        let (mut mult, mut shift) = (Vec::new(), Vec::new());
        for o in 0..m {
            let s = xp.0 * ws[o];
            let wsum: i32 = wq[o * k..(o + 1) * k].iter().map(|&v| v as i32).sum();
            bias.push((bf[o] as f64 / s).round() as i32 - xp.1 * wsum);
            let r = Requant::from_real(s / yp.0);
            mult.push(r.mult);
            shift.push(r.shift);
        }
        let mut out = vec![0i8; n * m];
        let epi = Epilogue::Requant {
            mult: &mult,
            shift: &shift,
            zp: yp.1,
        };
        fc(&mut out, &xq, &wq, &bias, n, k, m, &epi);
        // Reference: the exact product of the *quantized* operands, then one rounding —
        // the kernel must be within one output step of it (the requantization rounding).
        let xd = deq(&xq, xp);
        let got = deq(&out, yp);
        for r in 0..n {
            for o in 0..m {
                let mut y = bf[o] as f64;
                for i in 0..k {
                    y += xd[r * k + i] * ws[o] * wq[o * k + i] as f64;
                }
                assert!(
                    (got[r * m + o] - y).abs() <= yp.0 * 1.01,
                    "{r},{o}: {} vs {y}",
                    got[r * m + o]
                );
                // And the float product within the total quantization error bound.
                let yf: f64 = bf[o] as f64
                    + (0..k)
                        .map(|i| xf[r * k + i] as f64 * wf[o * k + i] as f64)
                        .sum::<f64>();
                let bound = yp.0 + k as f64 * (xp.0 / 2.0 * 0.5 + 2.0 * ws[o] / 2.0);
                assert!((got[r * m + o] - yf).abs() <= bound, "{r},{o}");
            }
        }
        // The kernel equals a plain loop exactly (integers).
        let mut acc = vec![0i32; n * m];
        fc_acc(&mut acc, &xq, &wq, &bias, n, k, m);
        let mut out2 = vec![0i8; n * m];
        for r in 0..n {
            for o in 0..m {
                let acc2 = bias[o] + dot_i8(&xq[r * k..(r + 1) * k], &wq[o * k..(o + 1) * k]);
                assert_eq!(acc[r * m + o], acc2);
                let rq = Requant {
                    mult: mult[o],
                    shift: shift[o],
                };
                out2[r * m + o] = requant_i8(acc2, rq, yp.1);
            }
        }
        assert_eq!(out, out2);
    }

    #[test]
    fn fc_residual_and_add2_round_once() {
        // add2 of a = 3 (× 0.5) and b = 5 (× 0.25) = 2.75 → 3 with one rounding.
        let f = (1 << FRAC_BITS) as f64;
        let (ra, rb) = (Requant::from_real(0.5 * f), Requant::from_real(0.25 * f));
        assert_eq!(add2(3, ra, 5, rb, 0), 3);
        assert_eq!(add2(-3, ra, -5, rb, 0), -3);
        assert_eq!(add2(3, ra, 5, rb, 125), 127);
        assert_eq!(add2(300, ra, 0, rb, 0), 127);
        assert_eq!(add2(-300, ra, 0, rb, 0), -128);
    }

    #[test]
    fn layernorm_matches_float_within_one_step() {
        let mut rng = Rng::new(2);
        let (n, c) = (4, 48);
        let xf = uniform(&mut rng, n * c, -3.0, 5.0);
        let xp = params(-3.0, 5.0);
        let xq = quant(&xf, xp);
        let xd = deq(&xq, xp);
        let gamma = uniform(&mut rng, c, 0.5, 1.5);
        let beta = uniform(&mut rng, c, -0.3, 0.3);
        let yp = params(-4.0, 4.0);
        let cf = c as f64;
        let a: Vec<f32> = gamma
            .iter()
            .map(|&g| (xp.0 * g as f64 / (cf * yp.0)) as f32)
            .collect();
        let b: Vec<f32> = beta
            .iter()
            .map(|&v| (v as f64 / yp.0 + yp.1 as f64) as f32)
            .collect();
        let var_scale = (xp.0 * xp.0 / (cf * cf * cf)) as f32;
        let mut out = vec![0i8; n * c];
        layernorm(&mut out, &xq, &a, &b, var_scale, 1e-5, n, c);
        let got = deq(&out, yp);
        for r in 0..n {
            let row = &xd[r * c..(r + 1) * c];
            let mu = row.iter().sum::<f64>() / cf;
            let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / cf;
            for i in 0..c {
                let y = (row[i] - mu) / (var + 1e-5).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!(
                    (got[r * c + i] - y).abs() <= 0.5 * yp.0 + 1e-4,
                    "{r},{i}: {} vs {y}",
                    got[r * c + i]
                );
            }
        }
    }

    #[test]
    fn attention_matches_float_softmax_attention() {
        let mut rng = Rng::new(3);
        let (t, heads, hd) = (6, 2, 8);
        let c = heads * hd;
        let qf = uniform(&mut rng, t * c, -2.0, 2.0);
        let kf = uniform(&mut rng, t * c, -2.0, 2.5);
        let vf = uniform(&mut rng, t * c, -1.0, 1.0);
        let (qp, kp, vp, op) = (
            params(-2.0, 2.0),
            params(-2.0, 2.5),
            params(-1.0, 1.0),
            params(-1.0, 1.0),
        );
        let (qq, kq, vq) = (quant(&qf, qp), quant(&kf, kp), quant(&vf, vp));
        let (qd, kd, vd) = (deq(&qq, qp), deq(&kq, kp), deq(&vq, vp));
        let lut: Vec<i32> = (0..EXP_LUT_LEN)
            .map(|i| (65536.0 * (-(i as f64) / EXP_STEPS).exp()).round() as i32)
            .collect();
        let p = AttnParams {
            heads,
            head_dim: hd,
            q_zp: qp.1,
            k_zp: kp.1,
            v_zp: vp.1,
            softmax: Requant::from_real(qp.0 * kp.0 / (hd as f64).sqrt() * EXP_STEPS),
            pv: Requant::from_real(vp.0 / (PROB_ONE as f64 * op.0)),
            out_zp: op.1,
        };
        for causal in [false, true] {
            let mut out = vec![0i8; t * c];
            let (mut s, mut pr, mut ks, mut acc) =
                (vec![0; t], vec![0u8; t], vec![0; t], vec![0; hd]);
            let mut scratch = AttnScratch {
                scores: &mut s,
                probs: &mut pr,
                ksum: &mut ks,
                acc: &mut acc,
            };
            attention(
                &mut out,
                &qq,
                &kq,
                &vq,
                t,
                0,
                t,
                causal,
                &p,
                &lut,
                &mut scratch,
            );
            let got = deq(&out, op);
            for i in 0..t {
                let seen = if causal { i + 1 } else { t };
                for h in 0..heads {
                    let sc: Vec<f64> = (0..seen)
                        .map(|j| {
                            (0..hd)
                                .map(|d| qd[i * c + h * hd + d] * kd[j * c + h * hd + d])
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        let y: f64 = (0..seen).map(|j| e[j] / z * vd[j * c + h * hd + d]).sum();
                        // Error budget: probabilities to 1/255 each (±0.5/255 rounding, ±1/128
                        // relative from the table step) times |v| ≤ 1 over `seen` keys, plus
                        // the output rounding.
                        let bound =
                            seen as f64 * (0.5 / 255.0 + 0.01 / seen as f64) + 0.5 * op.0 + 1e-3;
                        let g = got[i * c + h * hd + d];
                        assert!(
                            (g - y).abs() <= bound,
                            "causal {causal} {i},{h},{d}: {g} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_probabilities_sum_to_about_one() {
        let lut: Vec<i32> = (0..EXP_LUT_LEN)
            .map(|i| (65536.0 * (-(i as f64) / EXP_STEPS).exp()).round() as i32)
            .collect();
        let mut scores = vec![100, 90, -5000, 100, 0];
        let mut p = vec![0u8; 5];
        softmax_lut(&mut p, &mut scores, Requant::from_real(0.1), &lut);
        assert_eq!(p[0], p[3]);
        assert_eq!(p[2], 0);
        let sum: u32 = p.iter().map(|&v| v as u32).sum();
        assert!((sum as i32 - 255).abs() <= 3, "{p:?}");
    }

    #[test]
    fn lut_and_argmax() {
        let lut: Vec<i8> = (-128..=127).map(|v: i32| (v / 2) as i8).collect();
        let mut out = [0i8; 4];
        lut_i8(&mut out, &[-128, 0, 5, 127], &lut);
        assert_eq!(out, [-64, 0, 2, 63]);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax_i32(&[-5, -2, -9]), 1);
        let mut logits = [0.0f32; 3];
        dequantize_logits(&mut logits, &[2, -4, 0], &[0.5, 0.25, 1.0]);
        assert_eq!(logits, [1.0, -1.0, 0.0]);
    }

    /// Runs `f` with the portable kernels and with the default (SIMD where available) ones.
    fn both<T: PartialEq + std::fmt::Debug>(mut f: impl FnMut() -> T) -> (T, T) {
        force_portable(true);
        let a = f();
        force_portable(false);
        (a, f())
    }

    fn bytes(rng: &mut Rng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.next_u32() as i8).collect()
    }

    /// Multipliers and shifts over the whole legal range, with the ends over-represented.
    fn requants(rng: &mut Rng, n: usize) -> (Vec<i32>, Vec<i32>) {
        let mult = (0..n)
            .map(|_| match rng.below(6) {
                0 => i32::MAX,
                1 => 1 << 30,
                2 => 0,
                _ => (1 << 30) + (rng.next_u32() >> 2) as i32,
            })
            .collect();
        let shift = (0..n)
            .map(|_| match rng.below(6) {
                0 => 30,
                1 => -31,
                2 => 0,
                _ => rng.below(62) as i32 - 31,
            })
            .collect();
        (mult, shift)
    }

    #[test]
    fn simd_and_portable_kernels_give_the_same_bits() {
        let mut rng = Rng::new(11);
        for &(n, k, m) in &[
            (1, 128, 4096 / 16),
            (3, 37, 13),
            (2, 512, 24),
            (5, 16, 8),
            (1, 3, 1),
        ] {
            let x = bytes(&mut rng, n * k);
            let w = bytes(&mut rng, m * k);
            let res = bytes(&mut rng, n * m);
            let lut = bytes(&mut rng, 256);
            let bias: Vec<i32> = (0..m)
                .map(|_| match rng.below(4) {
                    0 => i32::MAX / 2,
                    1 => i32::MIN / 2,
                    _ => rng.next_u32() as i32 >> 12,
                })
                .collect();
            let (mult, shift) = requants(&mut rng, m);
            let (rm, rs) = requants(&mut rng, 1);
            let zp = rng.below(256) as i32 - 128;
            let epis = [
                Epilogue::Requant {
                    mult: &mult,
                    shift: &shift,
                    zp,
                },
                Epilogue::Lut {
                    mult: &mult,
                    shift: &shift,
                    zp,
                    lut: &lut,
                },
                Epilogue::Residual {
                    mult: &mult,
                    shift: &shift,
                    res: &res,
                    res_zp: -zp,
                    res_rq: Requant {
                        mult: rm[0],
                        shift: rs[0],
                    },
                    zp,
                },
            ];
            for epi in &epis {
                let (a, b) = both(|| {
                    let mut out = vec![0i8; n * m];
                    fc(&mut out, &x, &w, &bias, n, k, m, epi);
                    out
                });
                assert_eq!(a, b, "fc {n}x{k}x{m} {epi:?}");
            }
            let scale: Vec<f32> = (0..m).map(|_| rng.next_f32() * 1e-3).collect();
            let (a, b) = both(|| {
                let mut out = vec![0f32; n * m];
                fc_logits(&mut out, &x, &w, &bias, &scale, n, k, m);
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            });
            assert_eq!(a, b, "fc_logits");
            let rq = Requant {
                mult: mult[0],
                shift: shift[0],
            };
            let rq2 = Requant {
                mult: rm[0],
                shift: rs[0],
            };
            let accs: Vec<i32> = (0..k)
                .map(|_| rng.next_u32() as i32 >> rng.below(31))
                .collect();
            let (a, b) = both(|| {
                let mut out = vec![0i8; k];
                requant_row(&mut out, &accs, rq, zp);
                add2_row(&mut out[..k / 2], &x[..k], rq, &x[k / 2..], rq2, zp);
                out
            });
            assert_eq!(a, b, "requant_row / add2_row");
        }
        // Layer norm: integer statistics, then the same f32 operations in the same order.
        for c in [128, 37, 8] {
            let x = bytes(&mut rng, 4 * c);
            let a: Vec<f32> = (0..c).map(|_| (rng.next_f32() - 0.3) * 0.05).collect();
            let b: Vec<f32> = (0..c).map(|_| (rng.next_f32() - 0.5) * 300.0).collect();
            let (p, q) = both(|| {
                let mut out = vec![0i8; 4 * c];
                layernorm(&mut out, &x, &a, &b, 1e-7, 1e-5, 4, c);
                out
            });
            assert_eq!(p, q, "layernorm {c}");
        }
        // Attention with softmax, causal or not, all key counts around the SIMD width.
        let lut: Vec<i32> = (0..EXP_LUT_LEN)
            .map(|i| (65536.0 * (-(i as f64) / EXP_STEPS).exp()).round() as i32)
            .collect();
        for (heads, hd, t) in [(4, 32, 32), (2, 8, 13), (1, 24, 9)] {
            let c = heads * hd;
            let (q, k, v) = (
                bytes(&mut rng, t * c),
                bytes(&mut rng, t * c),
                bytes(&mut rng, t * c),
            );
            for causal in [false, true] {
                let p = AttnParams {
                    heads,
                    head_dim: hd,
                    q_zp: 3,
                    k_zp: -7,
                    v_zp: 12,
                    softmax: Requant::from_real(0.003 * (1 + rng.below(30)) as f64),
                    pv: Requant::from_real(0.0004),
                    out_zp: -5,
                };
                let (a, b) = both(|| {
                    let mut out = vec![0i8; t * c];
                    let (mut s, mut pr, mut ks, mut acc) =
                        (vec![0; t], vec![0u8; t], vec![0; t], vec![0; hd]);
                    let mut scratch = AttnScratch {
                        scores: &mut s,
                        probs: &mut pr,
                        ksum: &mut ks,
                        acc: &mut acc,
                    };
                    attention(
                        &mut out,
                        &q,
                        &k,
                        &v,
                        t,
                        0,
                        t,
                        causal,
                        &p,
                        &lut,
                        &mut scratch,
                    );
                    out
                });
                assert_eq!(a, b, "attention {heads}x{hd} over {t} causal {causal}");
            }
        }
    }

    #[test]
    fn softmax_division_by_reciprocal_is_exact() {
        let mut rng = Rng::new(5);
        for _ in 0..200_000 {
            let den = 1 + (rng.next_u32() as u64 % (1 << (1 + rng.below(31))));
            let num = (rng.next_u32() as u64 % (den + 1)) * PROB_ONE as u64;
            let inv = (1u64 << 32) / den;
            assert_eq!(div_round(num, den, inv) as u64, (num + den / 2) / den);
        }
        assert_eq!(div_round(255 * 65536, 65536, 1 << 16), 255);
        assert_eq!(div_round(u32::MAX as u64, 1, 1 << 32), u32::MAX);
    }
}
