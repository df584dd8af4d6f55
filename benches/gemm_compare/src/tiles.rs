//! A single-threaded f32 GEMM for AVX2 + FMA: 6 × 16 register tiles (12 accumulators, so the
//! two FMA pipes always have independent work), `B` packed into 16-column panels once per
//! `KC × NC` block and reused by every row tile, `A` read in place (six broadcasts per step of
//! `k`, whatever its strides), so a product pays for packing `B` only.

use std::arch::x86_64::*;
use std::cell::RefCell;

/// Rows and columns of one register tile.
pub const MR: usize = 6;
pub const NR: usize = 16;
/// Depth of one pass: a `KC × NR` panel of `B` (16 KB) stays in L1 while the row tiles sweep it.
const KC: usize = 256;
/// Rows of `A` swept per panel: `MC × KC` of `A` (96 KB) stays in L2 across the panels.
const MC: usize = 96;
/// Columns of `B` packed at once (`KC × NC`, 2 MB, in L3).
const NC: usize = 2048;

thread_local! {
    /// Packed panels of `B`, grown once per thread and reused by every product.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `c[m, n] = alpha · a[m, k] · b[k, n] + beta · c` with element `(i, j)` of `x` at
/// `x + i · rsx + j · csx`. `beta == 0` never reads `c`.
///
/// # Safety
/// Every element the strides reach must be valid (`c` writable, its elements distinct), and
/// the CPU must support AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    beta: f32,
    c: *mut f32,
    (rsc, csc): (isize, isize),
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m as isize {
            for j in 0..n as isize {
                let x = c.offset(i * rsc + j * csc);
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    PACKED.with(|buf| {
        let mut buf = buf.borrow_mut();
        let need = KC * NC.min(n).next_multiple_of(NR);
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let bp = b.offset(p0 as isize * rsb + j0 as isize * csb);
                pack_b(&mut buf, kc, nc, bp, rsb, csb);
                let beta = if p0 == 0 { beta } else { 1.0 };
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    let ap = a.offset(i0 as isize * rsa + p0 as isize * csa);
                    let cp = c.offset(i0 as isize * rsc + j0 as isize * csc);
                    block(
                        mc,
                        kc,
                        nc,
                        alpha,
                        ap,
                        (rsa, csa),
                        &buf,
                        beta,
                        cp,
                        (rsc, csc),
                    );
                }
            }
        }
    });
}

/// One `mc × kc` block of `A` against the packed `kc × nc` block of `B`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block(
    mc: usize,
    kc: usize,
    nc: usize,
    alpha: f32,
    a: *const f32,
    (rsa, csa): (isize, isize),
    packed: &[f32],
    beta: f32,
    c: *mut f32,
    (rsc, csc): (isize, isize),
) {
    // The last, partial row tile reads `A` from a zero-padded copy instead of past its end.
    let mut tail = [0.0f32; MR * KC];
    let full = mc / MR * MR;
    if full < mc {
        for i in 0..mc - full {
            for p in 0..kc {
                tail[p * MR + i] = *a.offset((full + i) as isize * rsa + p as isize * csa);
            }
        }
    }
    let mut acc = [0.0f32; MR * NR];
    for (panel, j) in (0..nc).step_by(NR).enumerate() {
        let bp = packed.as_ptr().add(panel * kc * NR);
        let cols = NR.min(nc - j);
        for i in (0..mc).step_by(MR) {
            let rows = MR.min(mc - i);
            let (ap, sa) = if rows == MR {
                (a.offset(i as isize * rsa), (rsa, csa))
            } else {
                (tail.as_ptr(), (1, MR as isize))
            };
            let cp = c.offset(i as isize * rsc + j as isize * csc);
            if rows == MR && cols == NR && csc == 1 {
                kernel(kc, ap, sa, bp, Out::Row(cp, rsc, alpha, beta));
            } else {
                kernel(kc, ap, sa, bp, Out::Tile(&mut acc));
                for r in 0..rows {
                    for q in 0..cols {
                        let x = cp.offset(r as isize * rsc + q as isize * csc);
                        // The same rounding as the full tiles' `fmadd(beta, c, alpha · ab)`,
                        // so a row's bits never depend on which tile it fell in.
                        let v = alpha * acc[r * NR + q];
                        *x = if beta == 0.0 { v } else { beta.mul_add(*x, v) };
                    }
                }
            }
        }
    }
}

/// Where a tile's result goes: straight into row-major `C` (`alpha · ab + beta · c`), or into
/// a scratch tile for edges and strided outputs.
enum Out<'a> {
    Row(*mut f32, isize, f32, f32),
    Tile(&'a mut [f32; MR * NR]),
}

/// `B[p0.., j0..]`'s `kc × nc` block into `NR`-column panels, `p`-major inside each panel and
/// zero-padded to a whole panel.
unsafe fn pack_b(buf: &mut [f32], kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize) {
    for (panel, j0) in (0..nc).step_by(NR).enumerate() {
        let cols = NR.min(nc - j0);
        let dst = &mut buf[panel * kc * NR..][..kc * NR];
        if csb == 1 && cols == NR {
            for p in 0..kc {
                let src = std::slice::from_raw_parts(b.offset(p as isize * rsb + j0 as isize), NR);
                dst[p * NR..][..NR].copy_from_slice(src);
            }
        } else {
            for q in 0..NR {
                if q < cols {
                    let col = b.offset((j0 + q) as isize * csb);
                    for p in 0..kc {
                        dst[p * NR + q] = *col.offset(p as isize * rsb);
                    }
                } else {
                    for p in 0..kc {
                        dst[p * NR + q] = 0.0;
                    }
                }
            }
        }
    }
}

/// The 6 × 16 tile `Σ_p a[i, p] · bp[p, j]` over `kc` steps.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel(kc: usize, a: *const f32, (rsa, csa): (isize, isize), bp: *const f32, out: Out) {
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    let rows: [*const f32; MR] = std::array::from_fn(|i| a.offset(i as isize * rsa));
    for p in 0..kc {
        let b0 = _mm256_loadu_ps(bp.add(p * NR));
        let b1 = _mm256_loadu_ps(bp.add(p * NR + 8));
        let off = p as isize * csa;
        for i in 0..MR {
            let x = _mm256_broadcast_ss(&*rows[i].offset(off));
            c[i][0] = _mm256_fmadd_ps(x, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(x, b1, c[i][1]);
        }
    }
    match out {
        Out::Row(cp, rsc, alpha, beta) => {
            let va = _mm256_set1_ps(alpha);
            for (i, ci) in c.iter().enumerate() {
                let row = cp.offset(i as isize * rsc);
                for (h, v) in ci.iter().enumerate() {
                    let mut r = _mm256_mul_ps(va, *v);
                    if beta != 0.0 {
                        r = _mm256_fmadd_ps(
                            _mm256_set1_ps(beta),
                            _mm256_loadu_ps(row.add(8 * h)),
                            r,
                        );
                    }
                    _mm256_storeu_ps(row.add(8 * h), r);
                }
            }
        }
        Out::Tile(t) => {
            for (i, ci) in c.iter().enumerate() {
                _mm256_storeu_ps(t.as_mut_ptr().add(i * NR), ci[0]);
                _mm256_storeu_ps(t.as_mut_ptr().add(i * NR + 8), ci[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_product() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (6, 3, 16),
            (7, 1, 16),
            (6, 1, 17),
            (6, 5, 17),
            (7, 5, 17),
            (13, 300, 40),
            (100, 129, 33),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
                    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
                    let sa = if ta { (1, m as isize) } else { (k as isize, 1) };
                    let sb = if tb { (1, k as isize) } else { (n as isize, 1) };
                    let mut c = vec![1.0f32; m * n];
                    unsafe {
                        sgemm(
                            m,
                            k,
                            n,
                            2.0,
                            a.as_ptr(),
                            sa,
                            b.as_ptr(),
                            sb,
                            0.5,
                            c.as_mut_ptr(),
                            (n as isize, 1),
                        );
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let mut s = 0.0f64;
                            for p in 0..k {
                                let x = a[(i as isize * sa.0 + p as isize * sa.1) as usize];
                                let y = b[(p as isize * sb.0 + j as isize * sb.1) as usize];
                                s += (x * y) as f64;
                            }
                            let want = 2.0 * s + 0.5;
                            assert_eq!(
                                c[i * n + j] as f64,
                                want,
                                "{m}x{k}x{n} {ta} {tb} at ({i},{j})"
                            );
                        }
                    }
                }
            }
        }
    }
}
