//! Tap points of the float models' forward pass: the tensors the int8 graph quantizes, handed
//! to an observer when one rides along with the pass (calibration), and nowhere otherwise.

use super::ModelConfig;
use crate::config::ModelName;

/// Called with every tapped tensor of an observed pass.
pub type Observer<'a> = &'a mut dyn FnMut(Tap, &[f32]);

/// A tensor of the forward pass the int8 graph quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// The embeddings `tok_emb + pos_emb` (`x0`).
    Embeddings,
    /// A point inside Transformer block `i`.
    Block(usize, BlockTap),
    /// The final layer norm's output (`ln_f`).
    FinalNorm,
    /// A point inside recurrent layer `l`.
    Rnn(usize, RnnTap),
}

/// The tapped tensors of a Transformer block, in the order the block makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTap {
    Ln1,
    Q,
    K,
    V,
    Att,
    Res2,
    Ln2,
    Up,
    H,
    Y,
}

const BLOCK_TAPS: [BlockTap; 10] = [
    BlockTap::Ln1,
    BlockTap::Q,
    BlockTap::K,
    BlockTap::V,
    BlockTap::Att,
    BlockTap::Res2,
    BlockTap::Ln2,
    BlockTap::Up,
    BlockTap::H,
    BlockTap::Y,
];

pub use crate::nn::recurrent::RnnTap;

impl Tap {
    /// The tensor's name in the calibration results (`x0`, `blocks.{i}.ln1`, …, `ln_f`,
    /// `rnn.{l}.pre`, `rnn.{l}.c`).
    pub fn name(self) -> String {
        match self {
            Tap::Embeddings => "x0".into(),
            Tap::FinalNorm => "ln_f".into(),
            Tap::Block(i, p) => {
                let part = match p {
                    BlockTap::Ln1 => "ln1",
                    BlockTap::Q => "q",
                    BlockTap::K => "k",
                    BlockTap::V => "v",
                    BlockTap::Att => "att",
                    BlockTap::Res2 => "res2",
                    BlockTap::Ln2 => "ln2",
                    BlockTap::Up => "up",
                    BlockTap::H => "h",
                    BlockTap::Y => "y",
                };
                format!("blocks.{i}.{part}")
            }
            Tap::Rnn(l, RnnTap::Pre) => format!("rnn.{l}.pre"),
            Tap::Rnn(l, RnnTap::Cell) => format!("rnn.{l}.c"),
        }
    }

    /// Every tap of the model `config` describes, in graph order (a layer's taps before the
    /// next layer's).
    pub fn graph(config: &ModelConfig) -> Vec<Tap> {
        let layers = 0..config.num_layers;
        match config.kind {
            ModelName::TinyGpt | ModelName::TinyBertGenerator => std::iter::once(Tap::Embeddings)
                .chain(layers.flat_map(|i| BLOCK_TAPS.map(|p| Tap::Block(i, p))))
                .chain(std::iter::once(Tap::FinalNorm))
                .collect(),
            ModelName::Gru => layers.map(|l| Tap::Rnn(l, RnnTap::Pre)).collect(),
            ModelName::Lstm => layers
                .flat_map(|l| [Tap::Rnn(l, RnnTap::Pre), Tap::Rnn(l, RnnTap::Cell)])
                .collect(),
        }
    }
}
