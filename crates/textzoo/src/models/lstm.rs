//! `lstm`: the recurrent stack of models/recurrent.rs with LSTM layers (4 gate blocks, forget-gate
//! bias 1.0): embedding → `num_layers` LSTM layers → linear head, logits at every position.
//! Tensor names and shapes are the GRU's with `G = 4`.

use super::recurrent::RecurrentLm;
use crate::nn::lstm::LstmCell;

pub type Lstm = RecurrentLm<LstmCell>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelName;
    use crate::models::recurrent::tests::*;
    use crate::models::FloatModel;

    #[test]
    fn lstm_model_gradients_match_finite_differences() {
        gradients_match::<LstmCell>(&tiny(ModelName::Lstm), 4);
    }

    #[test]
    fn lstm_overfits_a_repeated_sequence() {
        overfits_a_repeated_sequence::<LstmCell>(ModelName::Lstm);
    }

    #[test]
    fn lstm_same_seed_same_logits() {
        same_seed_same_logits::<LstmCell>(ModelName::Lstm);
    }

    #[test]
    fn lstm_is_causal_and_takes_any_length() {
        causal_and_variable_length::<LstmCell>(ModelName::Lstm);
    }

    #[test]
    fn lstm_reuses_buffers() {
        reuses_buffers::<LstmCell>(ModelName::Lstm);
    }

    #[test]
    fn lstm_names_sizes_and_macc() {
        names_and_sizes::<LstmCell>(ModelName::Lstm, 4);
        let m = Lstm::new(&tiny(ModelName::Lstm), 1);
        let b = m.params().entry("rnn.1.bias_ih").unwrap().id;
        assert!(m.params().get(b)[5..10].iter().all(|&f| f == 1.0));
    }

    /// `cargo test --release -p textzoo lstm_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn lstm_throughput() {
        throughput::<LstmCell>(ModelName::Lstm);
    }
}
