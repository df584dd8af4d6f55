//! Finite-difference gradient checking for the layer and model tests.
//!
//! Central differences in `f32` with step 1e-2 on inputs of order 1: truncation error is
//! O(h²) ≈ 1e-4 relative and rounding error ≈ ulp(loss)/h ≈ 1e-5, so analytic and numeric
//! gradients must agree to 1e-2 relative plus 1e-3 absolute; a wrong term (a missing factor,
//! a transposed index) is off by far more than that.

/// Deterministic values in [-1, 1) for test inputs.
pub fn seeded(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = textzoo_rt::Rng::new(seed);
    (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

/// Compares `analytic` with central differences of `loss` around `at`, element by element.
pub fn check(what: &str, at: &[f32], analytic: &[f32], mut loss: impl FnMut(&[f32]) -> f64) {
    check_with(what, at, analytic, &mut loss, 1e-2, 1e-2, 1e-3);
}

/// As [`check`] with explicit step and tolerances.
pub fn check_with(
    what: &str,
    at: &[f32],
    analytic: &[f32],
    loss: &mut dyn FnMut(&[f32]) -> f64,
    h: f32,
    rel: f64,
    abs: f64,
) {
    assert_eq!(at.len(), analytic.len(), "{what}: gradient length");
    let mut x = at.to_vec();
    for i in 0..x.len() {
        let orig = x[i];
        x[i] = orig + h;
        let up = loss(&x);
        x[i] = orig - h;
        let down = loss(&x);
        x[i] = orig;
        let numeric = (up - down) / (2.0 * h as f64);
        let a = analytic[i] as f64;
        let tol = abs + rel * numeric.abs().max(a.abs());
        assert!(
            (a - numeric).abs() <= tol,
            "{what}[{i}]: analytic {a} vs numeric {numeric} (tolerance {tol})"
        );
    }
}
