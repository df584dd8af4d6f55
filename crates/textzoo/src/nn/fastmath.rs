//! Vectorisable `exp` and AVX2 dispatch for the element-wise loops of the engine.
//!
//! libm's `expf` is a scalar call; over the `[batch·seq, vocab]` logits and the FFN activations
//! it costs as much as the matrix products around it. [`exp`] is branch-free arithmetic that
//! the compiler turns into SIMD code, and [`avx2_dispatch!`] compiles a loop a second time for
//! AVX2 + FMA, chosen at run time: the crate stays portable to any x86-64 (or other) CPU and
//! still uses 8-wide vectors where they exist. (`matrixmultiply` detects its kernels the same
//! way.)

/// `e^x` with a relative error below 2e-7 for `x` in [-87, 88]; inputs outside are clamped
/// there (so `exp(-∞)` is 1.6e-38, not 0, which every caller here tolerates: softmax sums and
/// `1 / (1 + e)` do not notice). NaN stays NaN.
///
/// Cephes' `expf`: `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r`, and
/// `2^n` built directly in the exponent bits. Rounding to `n` adds and subtracts 1.5·2²³,
/// which needs no rounding instruction (absent from baseline x86-64).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // t's low mantissa bits hold n; move n + 127 into the exponent field.
    let e = (t.to_bits() as i32 - SHIFT.to_bits() as i32 + 127) << 23;
    y * f32::from_bits(e as u32)
}

/// `Σ aᵢ·bᵢ` in eight independent partial sums, which the compiler keeps in SIMD lanes (a
/// single running sum would force one add at a time).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ xᵢ`, in lanes like [`dot`].
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let x8 = x.chunks_exact(8);
    let tail: f32 = x8.remainder().iter().sum();
    for x in x8 {
        for k in 0..8 {
            acc[k] += x[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest element (−∞ for an empty slice), in lanes like [`dot`].
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let x8 = x.chunks_exact(8);
    let tail = x8
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for x in x8 {
        for k in 0..8 {
            acc[k] = acc[k].max(x[k]);
        }
    }
    acc.iter().copied().fold(tail, f32::max)
}

/// Whether this CPU runs the AVX2 + FMA variants (checked once, then a cached flag).
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a function whose body is compiled twice, for baseline x86-64 and for AVX2 + FMA,
/// and runs the second where the CPU has it. Use it for a whole loop, not a single element:
/// the feature switch happens once per call.
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::nn::fastmath::has_avx2() {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_across_the_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(f32::INFINITY).is_finite());
        assert!(exp(f32::NAN).is_nan());
    }

    avx2_dispatch! {
        fn sum_of_exps(x: &[f32]) -> f32 {
            x.iter().map(|&v| exp(v)).sum()
        }
    }

    #[test]
    fn dispatched_function_runs() {
        assert!((sum_of_exps(&[0.0, 0.0, 1.0]) - (2.0 + std::f32::consts::E)).abs() < 1e-6);
    }
}
