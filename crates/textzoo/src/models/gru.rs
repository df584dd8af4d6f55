//! `gru`: the recurrent stack of models/recurrent.rs with GRU layers (3 gate blocks r, z, n):
//! embedding → `num_layers` GRU layers → linear head, next-token logits at every position.

use super::recurrent::RecurrentLm;
use crate::nn::gru::GruCell;

pub type Gru = RecurrentLm<GruCell>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelName;
    use crate::models::recurrent::tests::*;
    use crate::models::{FloatModel, ModelConfig};

    #[test]
    fn gru_model_gradients_match_finite_differences() {
        gradients_match::<GruCell>(&tiny(ModelName::Gru), 4);
    }

    #[test]
    fn gru_model_tied_gradients_match_finite_differences() {
        let config = ModelConfig {
            embed_dim: 5,
            tie_embeddings: true,
            ..tiny(ModelName::Gru)
        };
        let m = Gru::new(&config, 1);
        assert!(m.params().entry("head.weight").is_none());
        gradients_match::<GruCell>(&config, 4);
    }

    #[test]
    fn gru_overfits_a_repeated_sequence() {
        overfits_a_repeated_sequence::<GruCell>(ModelName::Gru);
    }

    #[test]
    fn gru_same_seed_same_logits() {
        same_seed_same_logits::<GruCell>(ModelName::Gru);
    }

    #[test]
    fn gru_is_causal_and_takes_any_length() {
        causal_and_variable_length::<GruCell>(ModelName::Gru);
    }

    #[test]
    fn gru_reuses_buffers() {
        reuses_buffers::<GruCell>(ModelName::Gru);
    }

    #[test]
    fn gru_names_sizes_and_macc() {
        names_and_sizes::<GruCell>(ModelName::Gru, 3);
    }

    /// `cargo test --release -p textzoo gru_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn gru_throughput() {
        throughput::<GruCell>(ModelName::Gru);
    }
}
