//! Calibration: the float model's own inference forward run over the representative windows
//! with an observer on its tap points (`models::observe`), and per-tensor activation ranges
//! from what each tap saw (`minmax`, `percentile` or `mse`).

use crate::config::{Calibration, ModelName};
use crate::error::Result;
use crate::models::observe::Tap;
use crate::models::{self, FloatModel, Pass};
use std::collections::BTreeMap;
use textzoo_rt::Rng;

/// Values kept per tensor for percentile / MSE calibration (a uniform reservoir sample).
const RESERVOIR: usize = 100_000;

/// What was seen of one tensor: exact min and max, and a uniform sample of its values.
#[derive(Debug, Clone)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    pub count: u64,
    pub sample: Vec<f32>,
    rng: Rng,
}

impl Observer {
    fn new(seed: u64) -> Self {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            sample: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    pub fn observe(&mut self, xs: &[f32]) {
        for &x in xs {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if self.sample.len() < RESERVOIR {
                self.sample.push(x);
            } else {
                let j = (self.rng.next_u32() as u64 | ((self.rng.next_u32() as u64) << 32))
                    % (self.count + 1);
                if (j as usize) < RESERVOIR {
                    self.sample[j as usize] = x;
                }
            }
            self.count += 1;
        }
    }

    /// The calibrated real range `[lo, hi]`, always containing 0.
    pub fn range(&self, method: Calibration, percentile: f64) -> (f32, f32) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        let (lo, hi) = match method {
            Calibration::Minmax => (self.min, self.max),
            Calibration::Percentile => {
                let mut s = self.sample.clone();
                s.sort_by(|a, b| a.total_cmp(b));
                let at = |q: f64| s[((q * (s.len() - 1) as f64).round() as usize).min(s.len() - 1)];
                let p = percentile / 100.0;
                (at(1.0 - p), at(p))
            }
            Calibration::Mse => self.mse_range(),
        };
        (lo.min(0.0), hi.max(0.0))
    }

    /// The clipping of `[min, max]` (shrunk by a common factor) that minimises the mean
    /// squared error of quantizing the sample.
    fn mse_range(&self) -> (f32, f32) {
        let (mut best, mut best_err) = ((self.min, self.max), f64::INFINITY);
        for step in 0..60 {
            let alpha = 1.0 - step as f32 * 0.0125;
            let (lo, hi) = ((self.min * alpha).min(0.0), (self.max * alpha).max(0.0));
            let (scale, zp) = scale_zero_point(lo, hi);
            let err: f64 = self
                .sample
                .iter()
                .map(|&x| {
                    let q = ((x as f64 / scale).round() + zp as f64).clamp(-128.0, 127.0);
                    let d = (q - zp as f64) * scale - x as f64;
                    d * d
                })
                .sum();
            if err < best_err {
                best_err = err;
                best = (lo, hi);
            }
        }
        best
    }
}

/// Asymmetric int8 parameters of a real range containing 0: `real = scale · (q − zp)`.
pub fn scale_zero_point(lo: f32, hi: f32) -> (f64, i32) {
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let scale = if hi - lo > 1e-12 {
        (hi - lo) / 255.0
    } else {
        1e-6
    };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    (scale, zp)
}

/// Observers by tensor name (`x0`, `blocks.{i}.ln1`, `.q`, `.k`, `.v`, `.att`, `.res2`,
/// `.ln2`, `.up`, `.h`, `.y`, `ln_f`; `rnn.{l}.pre`, `rnn.{l}.c`).
pub type Observers = BTreeMap<String, Observer>;

/// Runs a copy of `model` over `windows` (one at a time, the window's own length: positions
/// `0..len` for `tiny_gpt`, the last `len` positions for `tiny_bert_generator`) with an
/// observer on every tap of its inference forward, and returns what each tap saw.
///
/// Each observer's sampling seed is its tap's place in the graph (from 1 for Transformers,
/// 1001 for recurrent models), whatever order the model happens to call the taps in.
pub fn calibrate(model: &dyn FloatModel, windows: &[Vec<u32>]) -> Result<Observers> {
    let cfg = model.config();
    let mut float = models::build(cfg, 0);
    float
        .params_mut()
        .data
        .copy_from_slice(&model.params().data);
    let first_seed = match cfg.kind {
        ModelName::Gru | ModelName::Lstm => 1001,
        ModelName::TinyGpt | ModelName::TinyBertGenerator => 1,
    };
    let taps = Tap::graph(cfg);
    let mut obs: Observers = taps
        .iter()
        .zip(first_seed..)
        .map(|(tap, seed)| (tap.name(), Observer::new(seed)))
        .collect();
    let mut see = |tap: Tap, xs: &[f32]| {
        if let Some(o) = obs.get_mut(&tap.name()) {
            o.observe(xs);
        }
    };
    let mut rng = Rng::new(0);
    for w in windows.iter().filter(|w| !w.is_empty()) {
        let pass = Pass {
            train: false,
            rng: &mut rng,
            observer: Some(&mut see),
        };
        float.run(w, 1, w.len(), pass);
    }
    // Only what was seen: conversion refuses a tensor calibration never saw.
    obs.retain(|_, o| o.count > 0);
    Ok(obs)
}
