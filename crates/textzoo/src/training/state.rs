//! The training loop's state: everything besides weights and optimizer moments that a
//! checkpoint must hold for a resumed run to continue the same trajectory.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Current epoch (0-based) and the next window of its shuffled order.
    pub epoch: u64,
    pub position: usize,
    /// Steps the learning-rate schedule spans (fixed once known, so resume keeps it).
    pub horizon: u64,
    pub best_val_loss: Option<f64>,
    pub best_step: u64,
    /// Validations without improvement, for early stopping and reduce-on-plateau.
    pub evals_since_best: u64,
    pub plateau_evals: u64,
    pub plateau_scale: f64,
    pub tokens_seen: u64,
    pub seconds: f64,
    /// Training loss summed over the steps since the last validation, and their number: the
    /// next validation reports their mean, so a run resumed between two validations reports
    /// the same train loss as one that was not interrupted.
    #[serde(default)]
    pub loss_since_eval: f64,
    #[serde(default)]
    pub steps_since_eval: u64,
}

impl TrainState {
    pub fn new(horizon: u64) -> Self {
        Self {
            step: 0,
            epoch: 0,
            position: 0,
            horizon,
            best_val_loss: None,
            best_step: 0,
            evals_since_best: 0,
            plateau_evals: 0,
            plateau_scale: 1.0,
            tokens_seen: 0,
            seconds: 0.0,
            loss_since_eval: 0.0,
            steps_since_eval: 0,
        }
    }
}

/// Derives an independent seed for a purpose (an epoch's order, a step's dropout) from the run
/// seed, so any step can be replayed without replaying the ones before it (SplitMix64).
pub fn derive_seed(seed: u64, purpose: u64, index: u64) -> u64 {
    let mut z = seed
        ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
