//! Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p,
//! after the context controls (repetition penalty, no-repeat n-grams) have adjusted them.
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
    /// CTRL / HuggingFace repetition penalty over the context (1.0 = off): a token already in
    /// the context has a positive logit divided by it, a negative one multiplied by it.
    pub repetition_penalty: f32,
    /// Ban every token that would complete an n-gram of this size already in the context, as
    /// HuggingFace's `no_repeat_ngram_size` (0 = off).
    pub no_repeat_ngram_size: usize,
}

impl SampleConfig {
    /// Whether the pick depends on the context, so the full logits must be adjusted first (a
    /// shortcut that finds the argmax without every logit is only valid when this is false).
    pub fn uses_context(&self) -> bool {
        self.repetition_penalty != 1.0 || self.no_repeat_ngram_size > 0
    }
}

/// `logits` after the context controls, written to `out`: first the repetition penalty, once
/// per distinct token of `context`, then the n-gram bans (a banned logit becomes -inf, which
/// the sampler never picks). Context ids outside the vocabulary are ignored.
///
/// The penalty works on the dequantized `f32` logits the sampler consumes, with one IEEE
/// division or multiplication per token (`l < 0 ? l * p : l / p`, as HuggingFace's
/// `torch.where(l < 0, l * p, l / p)`), so the C twin reproduces it bit for bit.
pub fn adjust(config: &SampleConfig, logits: &[f32], context: &[u32], out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(logits);
    let penalty = config.repetition_penalty;
    if penalty != 1.0 {
        for &id in context {
            let i = id as usize;
            // Each token is penalized once without a "seen" set (the C twin has no memory to
            // spare): a logit that already differs from the model's was penalized, and one the
            // penalty leaves unchanged (0, ±inf, NaN, an overflow kept) gives the same value again.
            if i < out.len() && out[i].to_bits() == logits[i].to_bits() {
                let l = logits[i];
                out[i] = if l < 0.0 { l * penalty } else { l / penalty };
            }
        }
    }
    ban_repeated_ngrams(config.no_repeat_ngram_size, out, context);
}

/// HuggingFace's `no_repeat_ngram_size`: with n-gram size `n`, the last `n - 1` tokens of the
/// context are a prefix; every token that followed the same prefix earlier in the context
/// would repeat an n-gram, so its logit becomes -inf. (n = 1 bans every token of the context.)
fn ban_repeated_ngrams(n: usize, logits: &mut [f32], context: &[u32]) {
    let len = context.len();
    if n == 0 || len + 1 < n {
        return;
    }
    let prefix = &context[len + 1 - n..];
    for start in 0..len + 1 - n {
        if context[start..start + n - 1] == *prefix {
            let banned = context[start + n - 1] as usize;
            if banned < logits.len() {
                logits[banned] = f32::NEG_INFINITY;
            }
        }
    }
}

/// The sampler and its scratch, reused between calls so the hot path does not allocate.
#[derive(Debug, Clone)]
pub struct TokenSampler {
    config: SampleConfig,
    rng: Rng,
    ids: Vec<u32>,
    probs: Vec<f32>,
    adjusted: Vec<f32>,
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
            adjusted: Vec::new(),
        }
    }

    pub fn config(&self) -> &SampleConfig {
        &self.config
    }

    /// The next token after `context` (the prompt and what was generated so far, all of it,
    /// not only the model's window): the context controls adjust the logits, then [`pick`]
    /// chooses. Without controls this is `pick(logits)`.
    ///
    /// [`pick`]: TokenSampler::pick
    pub fn pick_in_context(&mut self, logits: &[f32], context: &[u32]) -> u32 {
        if !self.config.uses_context() {
            return self.pick(logits);
        }
        let mut adjusted = std::mem::take(&mut self.adjusted);
        adjust(&self.config, logits, context, &mut adjusted);
        let token = self.pick(&adjusted);
        self.adjusted = adjusted;
        token
    }

    /// The next token id, ignoring the context controls. Returns `<unk>` when no logit is a
    /// candidate (all non-finite).
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
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
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

    fn controls(greedy: bool, penalty: f32, ngram: usize) -> SampleConfig {
        SampleConfig {
            repetition_penalty: penalty,
            no_repeat_ngram_size: ngram,
            ..config(greedy, 0, 1.0)
        }
    }

    fn adjusted(c: SampleConfig, logits: &[f32], context: &[u32]) -> Vec<f32> {
        let mut out = vec![7.0; 3];
        adjust(&c, logits, context, &mut out);
        out
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
        let logits = [0.5, 0.5, 2.0, -1.0, 1.5, 0.0, 3.0];
        // Token 2 appears twice and is still divided once; ids beyond the vocabulary are ignored.
        let got = adjusted(controls(true, 2.0, 0), &logits, &[2, 3, 2, 5, 99]);
        assert_eq!(got, [0.5, 0.5, 1.0, -2.0, 1.5, 0.0, 3.0]);
        let mut s = TokenSampler::new(controls(true, 2.0, 0), 1);
        assert_eq!(s.pick(&logits), 6);
        assert_eq!(s.pick_in_context(&logits, &[6]), 2);
        assert_eq!(s.pick_in_context(&logits, &[6, 2]), 4);
        // A penalty below 1 favours repetition, as in HuggingFace.
        let got = adjusted(controls(true, 0.5, 0), &logits, &[3, 4]);
        assert_eq!(got, [0.5, 0.5, 2.0, -0.5, 3.0, 0.0, 3.0]);
        // Non-finite logits stay what they were.
        let odd = [f32::INFINITY, f32::NEG_INFINITY, 1.0];
        let got = adjusted(controls(true, 3.0, 0), &odd, &[0, 1, 0, 1]);
        assert_eq!(got, [f32::INFINITY, f32::NEG_INFINITY, 1.0]);
    }

    #[test]
    fn controls_off_change_nothing() {
        let c = controls(false, 1.0, 0);
        assert!(!c.uses_context());
        assert!(controls(true, 1.2, 0).uses_context());
        assert!(controls(true, 1.0, 2).uses_context());
        let logits = [0.0, 0.0, 2.0, 1.9, 1.8, -5.0];
        let mut a = TokenSampler::new(c, 9);
        let mut b = TokenSampler::new(c, 9);
        for _ in 0..100 {
            assert_eq!(a.pick(&logits), b.pick_in_context(&logits, &[2, 2, 2, 3]));
        }
    }

    #[test]
    fn no_repeat_ngram_bans_what_would_complete_a_seen_ngram() {
        let logits = [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let inf = f32::NEG_INFINITY;
        // n = 2: the last token is 5; 5 was followed by 6 before.
        let got = adjusted(controls(true, 1.0, 2), &logits, &[5, 6, 5]);
        assert_eq!(got, [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, inf]);
        // n = 3: prefix (2, 3) was followed by 4 and by 6.
        let got = adjusted(controls(true, 1.0, 3), &logits, &[2, 3, 4, 2, 3, 6, 2, 3]);
        assert_eq!(got, [0.0, 0.0, 1.0, 2.0, inf, 4.0, inf]);
        // n = 1 bans every token of the context.
        let got = adjusted(controls(true, 1.0, 1), &logits, &[2, 6]);
        assert_eq!(got, [0.0, 0.0, inf, 2.0, 3.0, 4.0, inf]);
        // A context shorter than n has no n-gram to repeat.
        let got = adjusted(controls(true, 1.0, 4), &logits, &[2, 2]);
        assert_eq!(got, logits);
        let got = adjusted(controls(true, 1.0, 3), &logits, &[2, 2]);
        assert_eq!(got, logits);
        // Greedy "the the the": n = 2 forbids the second repeat.
        let mut s = TokenSampler::new(controls(true, 1.0, 2), 1);
        assert_eq!(s.pick_in_context(&logits, &[6]), 6);
        assert_eq!(s.pick_in_context(&logits, &[6, 6]), 5);
        // Everything banned: nothing is a candidate, as with all-non-finite logits.
        let mut s = TokenSampler::new(controls(false, 1.0, 1), 1);
        assert_eq!(s.pick_in_context(&[0.0, 0.0, 1.0, 2.0], &[2, 3]), UNK_ID);
    }

    /// HuggingFace's `_get_ngrams` + `_get_generated_ngrams`, transcribed: a map from each
    /// (n-1)-prefix to the tokens that followed it.
    fn reference_bans(n: usize, context: &[u32]) -> Vec<u32> {
        use std::collections::HashMap;
        if context.len() + 1 < n {
            return Vec::new();
        }
        let mut seen: HashMap<Vec<u32>, Vec<u32>> = HashMap::new();
        for g in context.windows(n) {
            seen.entry(g[..n - 1].to_vec()).or_default().push(g[n - 1]);
        }
        let prefix = context[context.len() + 1 - n..].to_vec();
        seen.remove(&prefix).unwrap_or_default()
    }

    proptest::proptest! {
        #[test]
        fn ngram_bans_match_the_reference(
            context in proptest::collection::vec(0u32..6, 0..30),
            n in 1usize..6,
        ) {
            let logits = [1.0f32; 6];
            let got = adjusted(controls(true, 1.0, n), &logits, &context);
            let banned = reference_bans(n, &context);
            for (id, l) in got.iter().enumerate() {
                proptest::prop_assert_eq!(*l == f32::NEG_INFINITY, banned.contains(&(id as u32)));
            }
        }
    }
}
