//! The int8 model behind [`LanguageModel`]: `textzoo-rt` answering the same questions as the
//! float engine, so evaluation and prediction have one code path for both.

use super::{model_window, LanguageModel};
use crate::models::ModelConfig;
use rayon::prelude::*;
use textzoo_rt::model::Net;
use textzoo_rt::rnn::{self, RnnState};
use textzoo_rt::transformer::{self, Decoder, State};
use textzoo_rt::{Int8Model, Kind};

/// `textzoo-rt` behind [`LanguageModel`]: windows run in parallel (one activation state per
/// worker); `tiny_gpt`'s `next_logits` uses the KV cache (exact sliding-window semantics:
/// see `textzoo_rt::transformer`).
pub struct Int8Lm {
    pub model: Int8Model,
    decoder: Option<Decoder>,
    /// `gru`/`lstm`: the state after `rnn_tokens` (from the zero state).
    rnn: Option<RnnState>,
    rnn_tokens: Vec<u32>,
}

impl Int8Lm {
    pub fn new(model: Int8Model) -> Self {
        Int8Lm {
            model,
            decoder: None,
            rnn: None,
            rnn_tokens: Vec::new(),
        }
    }
}

/// `gru`/`lstm` next-token logits: the float models read the last `seq_len` tokens from the
/// zero state, so the state is kept while the context only grows and rebuilt from zero when it
/// slides or changes.
fn rnn_next(
    m: &textzoo_rt::model::Recurrent,
    rt_cfg: &textzoo_rt::ModelConfig,
    state: &mut Option<RnnState>,
    tokens: &mut Vec<u32>,
    window: &[u32],
) -> Vec<f32> {
    let s = state.get_or_insert_with(|| RnnState::new(rt_cfg));
    let cached = tokens.len();
    let extends = cached > 0 && cached < window.len() && window[..cached] == tokens[..];
    if !extends {
        s.reset();
        tokens.clear();
    }
    for &t in &window[tokens.len()..] {
        internal(s.step(m, rt_cfg, t).map(|_| ()));
    }
    tokens.clear();
    tokens.extend_from_slice(window);
    s.logits.clone()
}

/// Token ids come from the model's own tokenizer (its vocabulary size was checked at load),
/// so a runtime refusal here is a bug, not bad input.
fn internal<T>(r: std::result::Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("internal error in the int8 runtime: {e}"))
}

impl LanguageModel for Int8Lm {
    fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    fn window_logits(&mut self, tokens: &[u32], batch: usize, seq: usize) -> Vec<f32> {
        let v = self.model.config.vocab_size;
        let per = if self.model.config.predicts_every_position() {
            seq * v
        } else {
            v
        };
        let mut out = vec![0.0f32; batch * per];
        let rt_cfg = self.model.config.clone();
        match &self.model.net {
            Net::Transformer(net) => out
                .par_chunks_mut(per)
                .zip(tokens.par_chunks(seq))
                .for_each_init(
                    || State::new(&rt_cfg),
                    |state, (o, w)| internal(transformer::window_logits(net, &rt_cfg, state, w, o)),
                ),
            Net::Recurrent(net) => out
                .par_chunks_mut(per)
                .zip(tokens.par_chunks(seq))
                .for_each_init(
                    || RnnState::new(&rt_cfg),
                    |state, (o, w)| internal(rnn::window_logits(net, &rt_cfg, state, w, o)),
                ),
        }
        out
    }

    fn next_logits(&mut self, context: &[u32]) -> Vec<f32> {
        if let Net::Recurrent(r) = &self.model.net {
            let window = model_window(&self.model.config, context);
            let rt_cfg = self.model.config.clone();
            return rnn_next(r, &rt_cfg, &mut self.rnn, &mut self.rnn_tokens, &window);
        }
        if self.model.config.kind != Kind::TinyGpt {
            let window = model_window(&self.model.config, context);
            return self.window_logits(&window, 1, window.len());
        }
        let window = model_window(&self.model.config, context);
        let Net::Transformer(net) = &self.model.net else {
            unreachable!("recurrent models were handled above")
        };
        let rt_cfg = self.model.config.clone();
        let mut dec = self.decoder.take().unwrap_or_else(|| Decoder::new(&rt_cfg));
        let cached = dec.tokens.len();
        let extends = cached > 0 && cached < window.len() && window[..cached] == dec.tokens[..];
        if extends {
            for &t in &window[cached..] {
                internal(dec.step(net, &rt_cfg, t).map(|_| ()));
            }
        } else {
            internal(dec.prefill(net, &rt_cfg, &window).map(|_| ()));
        }
        let logits = dec.state.logits.clone();
        self.decoder = Some(dec);
        logits
    }
}
