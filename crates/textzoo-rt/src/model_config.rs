//! A model's kind and sizes: the one definition shared by the float models, the YAML `model`
//! section (which builds one), every model file's `model_config` metadata (this struct's JSON)
//! and the int8 runtime (which plans its memory from it).

use serde::{Deserialize, Serialize};

/// The model families, named as in `model.name` and in a model file's `model_config.kind`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    TinyBertGenerator,
    TinyGpt,
    Gru,
    Lstm,
}

impl Kind {
    /// The name as written in `model.name`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TinyBertGenerator => "tiny_bert_generator",
            Kind::TinyGpt => "tiny_gpt",
            Kind::Gru => "gru",
            Kind::Lstm => "lstm",
        }
    }

    /// Causal models predict at every position of a window; `tiny_bert_generator` predicts
    /// only the token after the window.
    pub fn predicts_every_position(self) -> bool {
        self != Kind::TinyBertGenerator
    }
}

/// A model's hyper-parameters: the plain struct stored (as JSON, fields in this order) in every
/// model file's metadata. Unknown fields are refused so a file from another tool is not taken
/// for a textzoo model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: Kind,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub embed_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub ffn_dim: usize,
    /// Recurrent state size for `gru` / `lstm`.
    pub hidden_dim: usize,
    pub dropout: f32,
    pub tie_embeddings: bool,
}

impl ModelConfig {
    /// See [`Kind::predicts_every_position`].
    pub fn predicts_every_position(&self) -> bool {
        self.kind.predicts_every_position()
    }

    /// Sizes the runtime can plan for: a damaged file must not make it allocate without bound
    /// or divide by zero.
    pub fn check_sizes(&self) -> Result<(), String> {
        let sane = |x: usize| (1..=1 << 20).contains(&x);
        if !(sane(self.vocab_size)
            && sane(self.seq_len)
            && sane(self.embed_dim)
            && sane(self.ffn_dim))
            || self.num_layers > 1024
            || self.num_heads == 0
            || !self.embed_dim.is_multiple_of(self.num_heads)
        {
            return Err("sizes out of range".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_is_the_model_files_metadata() {
        let c = ModelConfig {
            kind: Kind::TinyGpt,
            vocab_size: 300,
            seq_len: 8,
            embed_dim: 16,
            num_heads: 2,
            num_layers: 1,
            ffn_dim: 32,
            hidden_dim: 16,
            dropout: 0.1,
            tie_embeddings: false,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"tiny_gpt","vocab_size":300,"seq_len":8,"embed_dim":16,"num_heads":2,"num_layers":1,"ffn_dim":32,"hidden_dim":16,"dropout":0.1,"tie_embeddings":false}"#
        );
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), c);
        let extra = json.replace('}', r#","extra":1}"#);
        assert!(serde_json::from_str::<ModelConfig>(&extra).is_err());
        for k in [
            Kind::TinyBertGenerator,
            Kind::TinyGpt,
            Kind::Gru,
            Kind::Lstm,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
        assert_eq!(Kind::default(), Kind::TinyBertGenerator);
    }
}
