//! AVX2 twins of the portable kernels in [`crate::kernels`] (x86-64 hosts only; the C twin and
//! the Cortex-M build mirror the portable loops). Integer arithmetic is exact and the few
//! float steps are the same IEEE operations in the same order, so every function here gives
//! exactly the bits of its portable twin; the tests compare them on random inputs and on
//! whole models.
//!
//! The requantization (`MultiplyByQuantizedMultiplier`, double rounding) in eight lanes:
//! - the saturating left shift `x · 2^left` is `sllv`, with overflow detected by shifting back;
//! - gemmlowp's `SaturatingRoundingDoublingHighMul(a, b)` for `b ≥ 0` equals
//!   `⌊(a·b + 2³⁰) / 2³¹⌋` (its nudge towards +∞ on ties, and its truncation towards zero of
//!   negative values, combine into that floor), computed with `mul_epi32` on even and odd
//!   lanes; the low 32 bits of the 64-bit shift are the result;
//! - `RoundingDivideByPOT` is the same mask/threshold arithmetic per lane.
//!
//! Every function is `unsafe` because it needs AVX2 (callers check) and reads through raw
//! pointers within bounds the safe wrapper in `kernels` asserted.

use crate::kernels::{Epilogue, EXP_LUT_LEN, FRAC_BITS};
use crate::quant::Requant;
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn load16(p: *const i8) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i))
}

#[inline(always)]
unsafe fn load8x32(p: *const i32) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// Horizontal sums of eight accumulators into one vector `[Σa0, …, Σa7]`.
#[inline(always)]
unsafe fn hsum8(a: &[__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(a[0], a[1]);
    let s23 = _mm256_hadd_epi32(a[2], a[3]);
    let s45 = _mm256_hadd_epi32(a[4], a[5]);
    let s67 = _mm256_hadd_epi32(a[6], a[7]);
    let s0123 = _mm256_hadd_epi32(s01, s23);
    let s4567 = _mm256_hadd_epi32(s45, s67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(s0123, s4567, 0x20),
        _mm256_permute2x128_si256(s0123, s4567, 0x31),
    )
}

/// Eight dot products of `x[0..k]` with the rows `w + j·ws` (`j < 8`).
#[inline(always)]
unsafe fn dot8(x: *const i8, w: *const i8, ws: usize, k: usize) -> __m256i {
    let k16 = k & !15;
    let mut a = [_mm256_setzero_si256(); 8];
    let mut i = 0;
    while i < k16 {
        let xv = load16(x.add(i));
        for (j, aj) in a.iter_mut().enumerate() {
            *aj = _mm256_add_epi32(*aj, _mm256_madd_epi16(xv, load16(w.add(j * ws + i))));
        }
        i += 16;
    }
    let mut s = hsum8(&a);
    if k16 < k {
        let mut t = [0i32; 8];
        for (j, tj) in t.iter_mut().enumerate() {
            for q in k16..k {
                *tj += *x.add(q) as i32 * *w.add(j * ws + q) as i32;
            }
        }
        s = _mm256_add_epi32(s, load8x32(t.as_ptr()));
    }
    s
}

/// `MultiplyByQuantizedMultiplier` in eight lanes (multipliers `≥ 0`, shifts in [−31, 30]).
#[inline(always)]
unsafe fn requant8(x: __m256i, mult: __m256i, shift: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    let left = _mm256_max_epi32(shift, zero);
    let right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    // Saturating x · 2^left.
    let sh = _mm256_sllv_epi32(x, left);
    let fits = _mm256_cmpeq_epi32(_mm256_srav_epi32(sh, left), x);
    let sat = _mm256_xor_si256(_mm256_set1_epi32(i32::MAX), _mm256_srai_epi32(x, 31));
    let s = _mm256_blendv_epi8(sat, sh, fits);
    // ⌊(s·m + 2³⁰) / 2³¹⌋ on even and odd lanes.
    let half = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(s, mult), half);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(s, 32), _mm256_srli_epi64(mult, 32)),
        half,
    );
    let hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
    rdbp8(hi, right)
}

/// `RoundingDivideByPOT` per lane (exponents in [0, 31]).
#[inline(always)]
unsafe fn rdbp8(x: __m256i, e: __m256i) -> __m256i {
    let one = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    let rem = _mm256_and_si256(x, mask);
    let thr = _mm256_add_epi32(_mm256_srai_epi32(mask, 1), _mm256_srli_epi32(x, 31));
    _mm256_sub_epi32(_mm256_srav_epi32(x, e), _mm256_cmpgt_epi32(rem, thr))
}

/// `sat8(zp + clamp(v, ±1024))` of eight lanes, as eight bytes (lane 0 lowest).
#[inline(always)]
unsafe fn out8(v: __m256i, zp: i32) -> u64 {
    let lim = _mm256_set1_epi32(1024);
    let v = _mm256_min_epi32(
        _mm256_max_epi32(v, _mm256_sub_epi32(_mm256_setzero_si256(), lim)),
        lim,
    );
    let v = _mm256_add_epi32(v, _mm256_set1_epi32(zp));
    let p = _mm256_packs_epi32(v, v);
    let p = _mm256_packs_epi16(p, p);
    let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(p)) as u32 as u64;
    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256(p, 1)) as u32 as u64;
    lo | hi << 32
}

/// Saturating int32 addition per lane.
#[inline(always)]
unsafe fn adds_epi32(a: __m256i, b: __m256i) -> __m256i {
    let s = _mm256_add_epi32(a, b);
    // Overflow iff a and b have the same sign and s has the other.
    let ovf = _mm256_andnot_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(a, s));
    let ovf = _mm256_srai_epi32(ovf, 31);
    let sat = _mm256_xor_si256(_mm256_set1_epi32(i32::MAX), _mm256_srai_epi32(a, 31));
    _mm256_blendv_epi8(s, sat, ovf)
}

/// `add2` in eight lanes: `sat8(zp + rdbp(ra(a) +sat rb(b), FRAC_BITS))`.
#[inline(always)]
unsafe fn add2x8(
    a: __m256i,
    am: __m256i,
    ashift: __m256i,
    b: __m256i,
    bm: __m256i,
    bshift: __m256i,
    zp: i32,
) -> u64 {
    let s = adds_epi32(requant8(a, am, ashift), requant8(b, bm, bshift));
    out8(rdbp8(s, _mm256_set1_epi32(FRAC_BITS)), zp)
}

#[inline(always)]
unsafe fn store8(out: *mut i8, bytes: u64) {
    std::ptr::write_unaligned(out as *mut u64, bytes);
}

#[inline(always)]
unsafe fn bytes8_i32(p: *const i8) -> __m256i {
    _mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i))
}

/// Twin of `kernels::fc` (eight output channels per pass).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub unsafe fn fc(
    out: &mut [i8],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    n: usize,
    k: usize,
    m: usize,
    epi: &Epilogue,
) {
    let m8 = m / 8 * 8;
    for r in 0..n {
        let xr = x.as_ptr().add(r * k);
        let mut o = 0;
        while o < m8 {
            let acc = _mm256_add_epi32(
                dot8(xr, w.as_ptr().add(o * k), k, k),
                load8x32(bias.as_ptr().add(o)),
            );
            let dst = out.as_mut_ptr().add(r * m + o);
            match *epi {
                Epilogue::Requant { mult, shift, zp } => {
                    let v = requant8(
                        acc,
                        load8x32(mult.as_ptr().add(o)),
                        load8x32(shift.as_ptr().add(o)),
                    );
                    store8(dst, out8(v, zp));
                }
                Epilogue::Lut {
                    mult,
                    shift,
                    zp,
                    lut,
                } => {
                    let v = requant8(
                        acc,
                        load8x32(mult.as_ptr().add(o)),
                        load8x32(shift.as_ptr().add(o)),
                    );
                    let b = out8(v, zp).to_le_bytes();
                    let mut t = [0u8; 8];
                    for j in 0..8 {
                        t[j] = lut[(b[j] as i8 as i32 + 128) as usize] as u8;
                    }
                    store8(dst, u64::from_le_bytes(t));
                }
                Epilogue::Residual {
                    mult,
                    shift,
                    res,
                    res_zp,
                    res_rq,
                    zp,
                } => {
                    let rv = _mm256_sub_epi32(
                        bytes8_i32(res.as_ptr().add(r * m + o)),
                        _mm256_set1_epi32(res_zp),
                    );
                    let v = add2x8(
                        acc,
                        load8x32(mult.as_ptr().add(o)),
                        load8x32(shift.as_ptr().add(o)),
                        rv,
                        _mm256_set1_epi32(res_rq.mult),
                        _mm256_set1_epi32(res_rq.shift),
                        zp,
                    );
                    store8(dst, v);
                }
            }
            o += 8;
        }
        while o < m {
            let acc = bias[o] + dot_scalar(xr, w.as_ptr().add(o * k), k);
            out[r * m + o] = epi.apply(r, o, m, acc);
            o += 1;
        }
    }
}

#[inline(always)]
unsafe fn dot_scalar(x: *const i8, w: *const i8, k: usize) -> i32 {
    let mut s = 0i32;
    for i in 0..k {
        s += *x.add(i) as i32 * *w.add(i) as i32;
    }
    s
}

/// Twin of `kernels::fc_logits`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub unsafe fn fc_logits(
    out: &mut [f32],
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    scale: &[f32],
    n: usize,
    k: usize,
    m: usize,
) {
    let m8 = m / 8 * 8;
    for r in 0..n {
        let xr = x.as_ptr().add(r * k);
        let mut o = 0;
        while o < m8 {
            let acc = _mm256_add_epi32(
                dot8(xr, w.as_ptr().add(o * k), k, k),
                load8x32(bias.as_ptr().add(o)),
            );
            let y = _mm256_mul_ps(
                _mm256_cvtepi32_ps(acc),
                _mm256_loadu_ps(scale.as_ptr().add(o)),
            );
            _mm256_storeu_ps(out.as_mut_ptr().add(r * m + o), y);
            o += 8;
        }
        while o < m {
            let acc = bias[o] + dot_scalar(xr, w.as_ptr().add(o * k), k);
            out[r * m + o] = acc as f32 * scale[o];
            o += 1;
        }
    }
}

/// Twin of `kernels::add2_row`.
#[target_feature(enable = "avx2")]
pub unsafe fn add2_row(out: &mut [i8], a: &[i8], ra: Requant, b: &[i8], rb: Requant, zp: i32) {
    let n = out.len();
    let n8 = n / 8 * 8;
    let (am, ash) = (_mm256_set1_epi32(ra.mult), _mm256_set1_epi32(ra.shift));
    let (bm, bsh) = (_mm256_set1_epi32(rb.mult), _mm256_set1_epi32(rb.shift));
    let mut i = 0;
    while i < n8 {
        let av = bytes8_i32(a.as_ptr().add(i));
        let bv = bytes8_i32(b.as_ptr().add(i));
        store8(
            out.as_mut_ptr().add(i),
            add2x8(av, am, ash, bv, bm, bsh, zp),
        );
        i += 8;
    }
    for j in n8..n {
        out[j] = crate::kernels::add2(a[j] as i32, ra, b[j] as i32, rb, zp);
    }
}

/// Twin of `kernels::requant_row`.
#[target_feature(enable = "avx2")]
pub unsafe fn requant_row(out: &mut [i8], acc: &[i32], rq: Requant, zp: i32) {
    let n = out.len();
    let n8 = n / 8 * 8;
    let (m, s) = (_mm256_set1_epi32(rq.mult), _mm256_set1_epi32(rq.shift));
    let mut i = 0;
    while i < n8 {
        let v = requant8(load8x32(acc.as_ptr().add(i)), m, s);
        store8(out.as_mut_ptr().add(i), out8(v, zp));
        i += 8;
    }
    for j in n8..n {
        out[j] = crate::kernels::requant_i8(acc[j], rq, zp);
    }
}

/// Twin of the score loop of `kernels::attention`: `scores[j] = q·k_j + corr − q_zp·ksum[j]`
/// for keys `k + j·c` (`j < scores.len()`), `hd = q.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn scores(
    scores: &mut [i32],
    q: &[i8],
    k: &[i8],
    c: usize,
    corr: i32,
    q_zp: i32,
    ksum: &[i32],
) {
    let (n, hd) = (scores.len(), q.len());
    let n8 = n / 8 * 8;
    let (corr8, zq) = (_mm256_set1_epi32(corr), _mm256_set1_epi32(q_zp));
    let mut j = 0;
    while j < n8 {
        let d = dot8(q.as_ptr(), k.as_ptr().add(j * c), c, hd);
        let ks = _mm256_mullo_epi32(zq, load8x32(ksum.as_ptr().add(j)));
        let s = _mm256_sub_epi32(_mm256_add_epi32(d, corr8), ks);
        _mm256_storeu_si256(scores.as_mut_ptr().add(j) as *mut __m256i, s);
        j += 8;
    }
    for jj in n8..n {
        scores[jj] = dot_scalar(q.as_ptr(), k.as_ptr().add(jj * c), hd) + corr - q_zp * ksum[jj];
    }
}

/// Twin of the exponential loop of `kernels::softmax_lut`: `scores[j] ← lut[clamp(rq(max −
/// s_j))]`, returning `Σ`.
#[target_feature(enable = "avx2")]
pub unsafe fn softmax_exps(scores: &mut [i32], max: i32, rq: Requant, lut: &[i32]) -> u64 {
    let n = scores.len();
    let n8 = n / 8 * 8;
    let (m, s) = (_mm256_set1_epi32(rq.mult), _mm256_set1_epi32(rq.shift));
    let (mx, top) = (
        _mm256_set1_epi32(max),
        _mm256_set1_epi32(EXP_LUT_LEN as i32 - 1),
    );
    let mut sum = _mm256_setzero_si256();
    let mut j = 0;
    while j < n8 {
        let p = scores.as_mut_ptr().add(j) as *mut __m256i;
        let d = _mm256_sub_epi32(mx, _mm256_loadu_si256(p));
        let idx = _mm256_min_epi32(
            _mm256_max_epi32(requant8(d, m, s), _mm256_setzero_si256()),
            top,
        );
        let e = _mm256_i32gather_epi32::<4>(lut.as_ptr(), idx);
        _mm256_storeu_si256(p, e);
        // Entries are ≤ 2¹⁶: widen before summing so any key count is safe.
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(e)));
        sum = _mm256_add_epi64(sum, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(e, 1)));
        j += 8;
    }
    let mut lanes = [0u64; 4];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sum);
    let mut total: u64 = lanes.iter().sum();
    for sj in scores[n8..].iter_mut() {
        let idx = rq.apply(max - *sj).clamp(0, EXP_LUT_LEN as i32 - 1) as usize;
        *sj = lut[idx];
        total += *sj as u64;
    }
    total
}

/// Twin of the float part of `kernels::layernorm` for one row: `round((d_i · r) · a_i + b_i)`
/// with `d_i = c · x_i − sum` (same IEEE operations, same order, no FMA).
#[target_feature(enable = "avx2")]
pub unsafe fn layernorm_row(out: &mut [i8], x: &[i8], a: &[f32], b: &[f32], sum: i32, rstd: f32) {
    let c = x.len();
    let c8 = c / 8 * 8;
    let (cc, sv, r) = (
        _mm256_set1_epi32(c as i32),
        _mm256_set1_epi32(sum),
        _mm256_set1_ps(rstd),
    );
    let (hi, lo) = (_mm256_set1_ps(200.0), _mm256_set1_ps(-200.0));
    let (half, sign) = (_mm256_set1_ps(0.5), _mm256_set1_ps(-0.0));
    let mut i = 0;
    while i < c8 {
        let d = _mm256_sub_epi32(_mm256_mullo_epi32(cc, bytes8_i32(x.as_ptr().add(i))), sv);
        let y = _mm256_mul_ps(_mm256_cvtepi32_ps(d), r);
        let y = _mm256_mul_ps(y, _mm256_loadu_ps(a.as_ptr().add(i)));
        let y = _mm256_add_ps(y, _mm256_loadu_ps(b.as_ptr().add(i)));
        // round_f32_to_i8: NaN → 0, clamp to ±200, ± 0.5 by sign, truncate, saturate.
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(y, y);
        let y = _mm256_max_ps(_mm256_min_ps(y, hi), lo);
        let y = _mm256_andnot_ps(nan, y);
        let y = _mm256_add_ps(y, _mm256_or_ps(_mm256_and_ps(y, sign), half));
        let q = _mm256_cvttps_epi32(y);
        store8(out.as_mut_ptr().add(i), out8(q, 0));
        i += 8;
    }
    for j in c8..c {
        let d = (c as i32 * x[j] as i32 - sum) as f32;
        out[j] = crate::quant::round_f32_to_i8(d * rstd * a[j] + b[j]);
    }
}
