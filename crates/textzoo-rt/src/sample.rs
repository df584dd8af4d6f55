//! Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p.
//!
//! Lives in the runtime (not in `textzoo`) because the generated C carries a line-for-line twin
//! (`tz_sample.c`), and a device must draw the same tokens as the host for the same seed. That
//! rules out `f32::exp`: it comes from the platform's libm (glibc and newlib round differently),
//! so [`exp`] is built from IEEE `+ - * /` and bit operations in a fixed order instead.

use crate::rng::Rng;

/// Ids the sampler skips unless `allow_special` (`<pad>`, `<unk>`).
pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;

/// How the next token is chosen (the C twin is `tz_sample_cfg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleConfig {
    pub greedy: bool,
    pub temperature: f32,
    /// Keep only the k best candidates (0 = all).
    pub top_k: usize,
    /// Keep the smallest prefix of candidates whose probability reaches p.
    pub top_p: f32,
    pub allow_special: bool,
}

/// The sampler and its scratch, reused between calls so the hot path does not allocate.
#[derive(Debug, Clone)]
pub struct TokenSampler {
    config: SampleConfig,
    rng: Rng,
    ids: Vec<u32>,
    probs: Vec<f32>,
}

/// `f32::total_cmp` as an integer key, written the way the C twin computes it.
fn total_key(x: f32) -> i32 {
    let bits = x.to_bits() as i32;
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// Whether candidate `a` comes before `b`: higher logit first, then lower id.
fn before(a: (f32, u32), b: (f32, u32)) -> bool {
    let (ka, kb) = (total_key(a.0), total_key(b.0));
    ka > kb || (ka == kb && a.1 < b.1)
}

impl TokenSampler {
    pub fn new(config: SampleConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed),
            ids: Vec::new(),
            probs: Vec::new(),
        }
    }

    pub fn config(&self) -> &SampleConfig {
        &self.config
    }

    /// The next token id. Returns `<unk>` when no logit is a candidate (all non-finite).
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        let c = self.config;
        let candidate = |i: usize, l: f32| l.is_finite() && (c.allow_special || i > 1);
        if c.greedy {
            // The first candidate in sort order, without sorting (same answer, no scratch).
            let mut best: Option<(f32, u32)> = None;
            for (i, &l) in logits.iter().enumerate() {
                if candidate(i, l) && best.is_none_or(|b| before((l, i as u32), b)) {
                    best = Some((l, i as u32));
                }
            }
            return best.map_or(UNK_ID, |b| b.1);
        }
        self.ids.clear();
        for (i, &l) in logits.iter().enumerate() {
            if candidate(i, l) {
                self.ids.push(i as u32);
            }
        }
        if self.ids.is_empty() {
            return UNK_ID;
        }
        // Keys are unique (ids differ), so any correct sort gives the C heapsort's order.
        self.ids.sort_unstable_by(|&a, &b| {
            let (ka, kb) = (total_key(logits[a as usize]), total_key(logits[b as usize]));
            kb.cmp(&ka).then(a.cmp(&b))
        });
        let mut n = self.ids.len();
        if c.top_k > 0 && c.top_k < n {
            n = c.top_k;
        }
        let max = logits[self.ids[0] as usize];
        self.probs.clear();
        let mut total = 0.0f32;
        for &id in &self.ids[..n] {
            let p = exp((logits[id as usize] - max) / c.temperature);
            self.probs.push(p);
            total += p;
        }
        let mut cumulative = 0.0f32;
        let mut keep = n;
        for i in 0..n {
            self.probs[i] /= total;
            cumulative += self.probs[i];
            if keep == n && cumulative >= c.top_p {
                keep = i + 1;
            }
        }
        let mut kept = 0.0f32;
        for &p in &self.probs[..keep] {
            kept += p;
        }
        let mut r = self.rng.next_f32() * kept;
        for i in 0..keep {
            let p = self.probs[i];
            if r < p {
                return self.ids[i];
            }
            r -= p;
        }
        self.ids[keep - 1]
    }
}

const LOG2_E: f32 = f32::from_bits(0x3fb8_aa3b); // 0x1.715476p+0
/// ln 2 split so that `n * LN2_HI` is exact for |n| < 2^11.
const LN2_HI: f32 = 355.0 / 512.0; // 0.693359375, 9 significant bits
const LN2_LO: f32 = f32::from_bits(0xb95e_8083); // -0x1.bd0106p-13
/// 1/7! .. 1/3!, rounded to f32 (the C twin spells them as hex floats).
const C7: f32 = f32::from_bits(0x3950_0d01); // 0x1.a01a02p-13
const C6: f32 = f32::from_bits(0x3ab6_0b61); // 0x1.6c16c2p-10
const C5: f32 = f32::from_bits(0x3c08_8889); // 0x1.111112p-7
const C4: f32 = f32::from_bits(0x3d2a_aaab); // 0x1.555556p-5
const C3: f32 = f32::from_bits(0x3e2a_aaab); // 0x1.555556p-3

/// e^x from IEEE `+ - * /` and bit operations only, so Rust and C agree bit for bit.
///
/// Cody–Waite reduction x = n ln2 + r, |r| <= ~0.35, then a degree-7 Taylor polynomial and a
/// scale by 2^n built from bits. Relative error about 2e-7 for normal results.
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > 88.72f32 {
        return f32::INFINITY;
    }
    if x < -103.98f32 {
        return 0.0;
    }
    let t = x * LOG2_E;
    let t = if t < 0.0 { t - 0.5 } else { t + 0.5 };
    let mut n = t as i32;
    let nf = n as f32;
    let r = (x - nf * LN2_HI) - nf * LN2_LO;
    let mut p = C7;
    p = p * r + C6;
    p = p * r + C5;
    p = p * r + C4;
    p = p * r + C3;
    p = p * r + 0.5_f32;
    p = p * r + 1.0_f32;
    p = p * r + 1.0_f32;
    if n < -126 {
        // Stay normal while scaling; the last multiply rounds once into the subnormals.
        p *= f32::from_bits(0x1f80_0000); // 2^-64
        n += 64;
    }
    if n > 127 {
        p *= 2.0;
        n -= 1;
    }
    p * f32::from_bits(((n + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(greedy: bool, top_k: usize, top_p: f32) -> SampleConfig {
        SampleConfig {
            greedy,
            temperature: 1.0,
            top_k,
            top_p,
            allow_special: false,
        }
    }

    #[test]
    fn exp_is_accurate_against_f64() {
        let mut worst = 0.0f64;
        let mut x = -103.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            if want > f32::MIN_POSITIVE as f64 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.000_37;
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // Subnormal results stay close (absolute error below the smallest normal's ulp).
        let tiny = exp(-100.0) as f64;
        assert!((tiny - (-100.0f64).exp()).abs() < 1e-44, "{tiny}");
    }

    #[test]
    fn greedy_skips_specials_and_breaks_ties_by_id() {
        let mut s = TokenSampler::new(config(true, 0, 1.0), 1);
        assert_eq!(s.pick(&[9.0, 8.0, 1.0, 3.0]), 3);
        assert_eq!(s.pick(&[9.0, 8.0, 3.0, 3.0]), 2);
        assert_eq!(s.pick(&[0.0, 0.0, f32::NAN, f32::INFINITY]), UNK_ID);
        assert_eq!(s.pick(&[0.0, 0.0, 0.0, -0.0]), 2);
        assert_eq!(s.pick(&[0.0, 0.0, -0.0, 0.0]), 3);
        let allow = SampleConfig {
            allow_special: true,
            ..config(true, 0, 1.0)
        };
        assert_eq!(TokenSampler::new(allow, 1).pick(&[9.0, 8.0, 1.0, 3.0]), 0);
    }

    #[test]
    fn sampling_is_repeatable_and_respects_top_k_and_top_p() {
        let logits = [0.0, 0.0, 2.0, 1.9, 1.8, -5.0];
        let draw = |k, p, seed| {
            let mut s = TokenSampler::new(config(false, k, p), seed);
            (0..300).map(|_| s.pick(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(0, 1.0, 5), draw(0, 1.0, 5));
        assert_ne!(draw(0, 1.0, 5), draw(0, 1.0, 6));
        assert!(draw(1, 1.0, 5).iter().all(|&t| t == 2));
        assert!(draw(2, 1.0, 5).iter().all(|&t| t == 2 || t == 3));
        assert!(draw(0, 0.3, 5).iter().all(|&t| t == 2));
        let all = draw(0, 1.0, 5);
        assert!(all.iter().all(|&t| t >= 2));
        assert!([2, 3, 4].iter().all(|t| all.contains(t)));
        // A low temperature concentrates on the best token.
        let cold = SampleConfig {
            temperature: 0.01,
            ..config(false, 0, 1.0)
        };
        let mut s = TokenSampler::new(cold, 3);
        assert!((0..100).all(|_| s.pick(&logits) == 2));
    }
}
