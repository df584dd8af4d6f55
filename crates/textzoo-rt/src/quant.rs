//! Requantization arithmetic: TFLite's `QuantizeMultiplier` (conversion time, on the host) and
//! `MultiplyByQuantizedMultiplier` (run time, integers only), plus the saturating helpers the
//! kernels share.
//!
//! A real scale `r > 0` is stored as a Q0.31 multiplier `m ∈ [2³⁰, 2³¹)` and a power-of-two
//! exponent `shift` with `r ≈ m · 2^(shift − 31)`.
//!
//! **Rounding: double rounding, TFLite's reference (gemmlowp) arithmetic.** `x · r` is
//! computed as `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^left, m), right)`:
//! the high product rounds to nearest (its exact ties, which need `x · m` to be an odd
//! multiple of 2³⁰, go towards +∞: gemmlowp's nudge), and the final shift — where the
//! rounding that matters happens — rounds half away from zero, the rounding textzoo's int8
//! format specifies. This is what TFLite's reference kernels and CMSIS-NN
//! (`arm_nn_requantize` without `CMSIS_NN_USE_SINGLE_ROUNDING`) do on the Cortex-M targets,
//! and it needs only one 64-bit product, which the C twin writes as `int64_t`. The single
//! rounding variant (`TFLITE_SINGLE_ROUNDING`) rounds half up (towards +∞) and differs from
//! this one by at most one unit on rare ties; the tests pin the double-rounding results.
//!
//! One deliberate difference from the TFLite reference: the left shift `x · 2^left` saturates
//! instead of overflowing (undefined behaviour in C); for every value TFLite defines the
//! results agree.

/// One requantization step: multiply by `mult · 2^(shift − 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requant {
    pub mult: i32,
    pub shift: i32,
}

impl Requant {
    /// The multiplier and shift of a real scale (TFLite `QuantizeMultiplier`). Conversion time
    /// only: the runtime never calls it.
    pub fn from_real(real: f64) -> Self {
        let (mult, shift) = quantize_multiplier(real);
        Requant { mult, shift }
    }

    #[inline(always)]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.mult, self.shift)
    }

    /// The real scale this step stands for (for tests and reports).
    pub fn real(self) -> f64 {
        self.mult as f64 * 2f64.powi(self.shift - 31)
    }
}

/// TFLite `QuantizeMultiplier`: `real ≈ m · 2^(shift − 31)` with `m ∈ [2³⁰, 2³¹)`.
///
/// Zero (or a negative or non-finite scale) gives `(0, 0)`; scales below 2⁻³¹·½ flush to
/// zero; scales of 2³⁰ and above saturate to the largest representable multiplier.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real.is_nan() || real <= 0.0 || !real.is_finite() {
        return (0, 0);
    }
    // frexp: real = q · 2^shift with q ∈ [0.5, 1).
    let mut shift = real.log2().floor() as i32 + 1;
    let mut q = real / 2f64.powi(shift);
    // log2 may be off by one ulp near powers of two: renormalise.
    while q >= 1.0 {
        q /= 2.0;
        shift += 1;
    }
    while q < 0.5 {
        q *= 2.0;
        shift -= 1;
    }
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if shift > 30 {
        return (i32::MAX, 30);
    }
    (q_fixed as i32, shift)
}

/// gemmlowp `SaturatingRoundingDoublingHighMul`: `round(a · b / 2³¹)`, ties towards +∞;
/// the one overflowing case (`i32::MIN · i32::MIN`) saturates.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncating towards zero, as in C.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `round(x / 2^exponent)`, ties away from zero.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier` (double rounding; see the module notes).
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, mult: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    let shifted = saturate_i32((x as i64) << left);
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, mult), right)
}

#[inline(always)]
pub fn saturate_i32(x: i64) -> i32 {
    x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

#[inline(always)]
pub fn saturate_i8(x: i32) -> i8 {
    x.clamp(-128, 127) as i8
}

#[inline(always)]
pub fn saturate_i16(x: i32) -> i16 {
    x.clamp(-32768, 32767) as i16
}

/// `round(x)` ties away from zero, saturated to int8, using only IEEE `+ −` and a truncating
/// conversion, so the C twin (`(int32_t)(x + 0.5f)`) gives the same bits.
#[inline(always)]
pub fn round_f32_to_i8(x: f32) -> i8 {
    // Clamp first: keeps the conversion defined in C for any finite or infinite x; NaN → 0.
    let x = if x > 200.0 {
        200.0
    } else if x < -200.0 {
        -200.0
    } else if x.is_nan() {
        0.0
    } else {
        x
    };
    let r = if x >= 0.0 { x + 0.5 } else { x - 0.5 };
    saturate_i8(r as i32)
}

/// Quantizes a real value (conversion time): `round(x / scale) + zero_point`, saturated.
pub fn quantize_i8(x: f64, scale: f64, zero_point: i32) -> i8 {
    saturate_i8(((x / scale).round() as i64 + zero_point as i64).clamp(-1000, 1000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_matches_tflite_vectors() {
        // Hand-computed: 0.5 = 2^30 · 2^(0 − 31); 0.75 = 3·2^29 · 2^(0−31); 1.0 → (2^30, 1).
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.75), (3 << 29, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(3.0), (3 << 29, 2));
        // 1/3 = 0.6666…·2^-1 → round(0.6666…·2^31) = 1431655765.
        assert_eq!(quantize_multiplier(1.0 / 3.0), (1_431_655_765, -1));
        // q rounds up to 2^31: renormalised to 2^30 with shift + 1.
        assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
        // Both ends: tiny scales flush to zero, huge ones saturate.
        assert_eq!(quantize_multiplier(2f64.powi(-40)), (0, 0));
        assert_eq!(quantize_multiplier(2f64.powi(-31)), (1 << 30, -30));
        assert_eq!(quantize_multiplier(2f64.powi(40)), (i32::MAX, 30));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(-1.0), (0, 0));
        for real in [1e-7, 3.3e-4, 0.0123, 0.9, 1.7, 123.4] {
            let rq = Requant::from_real(real);
            assert!((rq.real() - real).abs() <= real * 1e-9, "{real}");
            assert!(rq.mult >= 1 << 30);
        }
    }

    #[test]
    fn srdhm_rounds_to_nearest_and_saturates() {
        // gemmlowp's nudge: ties go towards +∞ (0.5 → 1, −0.5 → 0, 1.5 → 2, −1.5 → −1);
        // other values to the nearest (0.25 → 0, −0.75 → −1).
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 29), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 29), 0);
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
            i32::MAX - 1
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -i32::MAX
        );
    }

    #[test]
    fn rounding_divide_by_pot_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3); // 2.5 → 3
        assert_eq!(rounding_divide_by_pot(-5, 1), -3); // −2.5 → −3
        assert_eq!(rounding_divide_by_pot(7, 2), 2); // 1.75 → 2
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 → 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // −1.5 → −2
        assert_eq!(rounding_divide_by_pot(-9, 2), -2); // −2.25 → −2
        assert_eq!(rounding_divide_by_pot(42, 0), 42);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(-1, 31), 0);
    }

    #[test]
    fn multiply_by_quantized_multiplier_matches_tflite_vectors() {
        // × 0.5 with shift 0: the tie is the high product's (towards +∞).
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, 0), 2);
        assert_eq!(multiply_by_quantized_multiplier(-3, 1 << 30, 0), -1);
        assert_eq!(multiply_by_quantized_multiplier(100, 1 << 30, 0), 50);
        // × 0.25 = (2^30, −1): 6 · 0.25 = 1.5 → the high-mul gives 3, then 3/2 = 1.5 → 2.
        assert_eq!(multiply_by_quantized_multiplier(6, 1 << 30, -1), 2);
        assert_eq!(multiply_by_quantized_multiplier(-6, 1 << 30, -1), -2);
        // Double rounding: 5 · 0.25 = 1.25 → high-mul round(2.5) = 3 → round(1.5) = 2
        // (single rounding would give 1): the documented choice.
        assert_eq!(multiply_by_quantized_multiplier(5, 1 << 30, -1), 2);
        // × 3 (left shift 2 then × 0.75).
        assert_eq!(multiply_by_quantized_multiplier(7, 3 << 29, 2), 21);
        assert_eq!(multiply_by_quantized_multiplier(-7, 3 << 29, 2), -21);
        // Saturation: a large left shift saturates instead of wrapping.
        assert_eq!(
            multiply_by_quantized_multiplier(1 << 20, i32::MAX, 30),
            i32::MAX - 1
        );
        assert_eq!(
            multiply_by_quantized_multiplier(-(1 << 20), i32::MAX, 30),
            -i32::MAX
        );
        // Extreme right shift: (2^31 − 1) · 2^-32 = 0.4999… but the high product rounds
        // to 2^30 first, then 2^30 / 2^31 = 0.5 → 1 (double rounding again).
        assert_eq!(multiply_by_quantized_multiplier(i32::MAX, 1 << 30, -31), 1);
        assert_eq!(multiply_by_quantized_multiplier(1 << 29, 1 << 30, -31), 0);
        assert_eq!(multiply_by_quantized_multiplier(i32::MAX, i32::MAX, -30), 2);
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, i32::MAX, -30),
            -2
        );
        // 1/3 on a large value: 3000000 / 3 = 1000000.
        assert_eq!(
            multiply_by_quantized_multiplier(3_000_000, 1_431_655_765, -1),
            1_000_000
        );
    }

    #[test]
    fn requant_tracks_real_products_within_one_unit() {
        let mut rng = crate::Rng::new(3);
        for _ in 0..10_000 {
            let real = 2f64.powf(rng.next_f32() as f64 * 20.0 - 16.0);
            let x = (rng.next_u32() as i32) >> (rng.next_u32() % 20);
            let rq = Requant::from_real(real);
            let want = x as f64 * real;
            // Outside the range where the left shift saturates.
            if (x as f64).abs() * 2f64.powi(rq.shift.max(0)) > i32::MAX as f64 {
                continue;
            }
            let got = rq.apply(x) as f64;
            assert!((got - want).abs() <= 1.0 + want.abs() * 1e-9, "{x}·{real}");
        }
    }

    #[test]
    fn saturating_helpers_and_float_rounding() {
        assert_eq!(saturate_i8(300), 127);
        assert_eq!(saturate_i8(-300), -128);
        assert_eq!(saturate_i16(40_000), 32767);
        assert_eq!(saturate_i16(-40_000), -32768);
        assert_eq!(saturate_i32(1 << 40), i32::MAX);
        assert_eq!(round_f32_to_i8(2.5), 3);
        assert_eq!(round_f32_to_i8(-2.5), -3);
        assert_eq!(round_f32_to_i8(2.49), 2);
        assert_eq!(round_f32_to_i8(1e30), 127);
        assert_eq!(round_f32_to_i8(-1e30), -128);
        assert_eq!(round_f32_to_i8(f32::NAN), 0);
        assert_eq!(quantize_i8(0.26, 0.1, -3), 0);
        assert_eq!(quantize_i8(-0.25, 0.1, 0), -3);
        assert_eq!(quantize_i8(1e9, 0.1, 0), 127);
    }
}
