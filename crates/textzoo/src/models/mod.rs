//! The float models, registered by `model.name`; each lives in one readable file.

use crate::config::ModelName;
use crate::nn::ParamStore;
pub use textzoo_rt::ModelConfig;
use textzoo_rt::Rng;

pub mod gru;
pub mod lstm;
pub mod observe;
mod recurrent;
pub mod tiny_bert_generator;
pub mod tiny_gpt;
mod transformer;
mod transformer_lm;

/// How one forward pass runs.
pub struct Pass<'a> {
    /// Dropout on (masks drawn from `rng`), and the activations `backward` needs kept.
    pub train: bool,
    pub rng: &'a mut Rng,
    /// Sees every tensor the int8 graph quantizes (calibration); `None` costs nothing.
    pub observer: Option<observe::Observer<'a>>,
}

/// What every float model offers to training, evaluation and prediction.
///
/// Token windows are row-major `[batch, seq]` with `seq <= config().seq_len`. Logits are
/// `[batch, positions, vocab]` where `positions` is `seq` for causal models and 1 for
/// `tiny_bert_generator`.
pub trait FloatModel: Send {
    fn config(&self) -> &ModelConfig;

    /// Runs the model and returns the logits. `train` enables dropout (drawn from `rng`) and
    /// keeps the activations `backward` needs.
    fn forward(
        &mut self,
        tokens: &[u32],
        batch: usize,
        seq: usize,
        train: bool,
        rng: &mut Rng,
    ) -> &[f32] {
        let pass = Pass {
            train,
            rng,
            observer: None,
        };
        self.run(tokens, batch, seq, pass)
    }

    /// [`forward`](Self::forward) with the settings of the pass in one value.
    fn run(&mut self, tokens: &[u32], batch: usize, seq: usize, pass: Pass) -> &[f32];

    /// Back-propagates `dlogits` (shape of the last training forward's logits) and
    /// accumulates the parameter gradients into `params().grad`.
    fn backward(&mut self, dlogits: &[f32]);

    fn params(&self) -> &ParamStore;
    fn params_mut(&mut self) -> &mut ParamStore;

    /// Multiply-accumulates to generate one token (from a full window for
    /// `tiny_bert_generator`, one incremental step for the others).
    fn macc_per_token(&self) -> u64;

    fn num_params(&self) -> usize {
        self.params().len()
    }
}

/// The model `config.kind` names, freshly initialised from `seed` (same seed, same weights).
pub fn build(config: &ModelConfig, seed: u64) -> Box<dyn FloatModel> {
    match config.kind {
        ModelName::TinyBertGenerator => {
            Box::new(tiny_bert_generator::TinyBertGenerator::new(config, seed))
        }
        ModelName::TinyGpt => Box::new(tiny_gpt::TinyGpt::new(config, seed)),
        ModelName::Gru => Box::new(gru::Gru::new(config, seed)),
        ModelName::Lstm => Box::new(lstm::Lstm::new(config, seed)),
    }
}
