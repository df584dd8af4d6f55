//! Single-thread host speed of the int8 runtime at the reference size (vocab 4096, seq 32,
//! embed 128, 4 heads, 2 layers, ffn 512; random weights, calibrated on random windows):
//! `tiny_bert_generator` window (32 tokens → next-token logits) and `tiny_gpt` KV-cache decode
//! step, against the float engine on the same models. Prints medians.
//!
//! `cargo bench -p textzoo --bench int8_speed`

use std::time::Instant;
use textzoo::config::{Calibration, Granularity, ModelName};
use textzoo::models::{build, ModelConfig};
use textzoo::quantization::{convert::Settings, quantize};
use textzoo_rt::model::Net;
use textzoo_rt::transformer::{self, Decoder, State};
use textzoo_rt::Rng;

fn config(kind: ModelName) -> ModelConfig {
    ModelConfig {
        kind,
        vocab_size: 4096,
        seq_len: 32,
        embed_dim: 128,
        num_heads: 4,
        num_layers: 2,
        ffn_dim: 512,
        hidden_dim: 128,
        dropout: 0.0,
        tie_embeddings: false,
    }
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps / 10 + 1 {
        f();
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let mut rng = Rng::new(1);
    let windows: Vec<Vec<u32>> = (0..16)
        .map(|_| (0..32).map(|_| rng.below(4096)).collect())
        .collect();
    let st = Settings {
        calibration: Calibration::Minmax,
        percentile: 99.99,
        granularity: Granularity::PerChannel,
    };
    let tokens = &windows[0];

    // tiny_bert_generator: one window.
    let cfg = config(ModelName::TinyBertGenerator);
    let mut float = build(&cfg, 3);
    let q = quantize(float.as_ref(), &windows, &st).expect("quantize");
    let Net::Transformer(net) = &q.net else {
        unreachable!("a transformer")
    };
    let mut state = State::new(&q.config);
    println!(
        "tiny_bert_generator memory: activation arena {} bytes (planner peak {})",
        state.arena_bytes(),
        state.layout.peak_bytes
    );
    let mut out = vec![0.0f32; 4096];
    let int8_bert = median_ms(2000, || {
        transformer::window_logits(net, &q.config, &mut state, tokens, &mut out).expect("window");
    });
    let float_bert = median_ms(300, || {
        float.forward(tokens, 1, 32, false, &mut Rng::new(0));
    });
    println!(
        "tiny_bert_generator window (32 tokens → logits): int8 {int8_bert:.4} ms, float {float_bert:.4} ms (target ≤ 0.5 ms; LiteRT XNNPACK 0.572 ms)"
    );

    // tiny_gpt: decode step with the KV cache at the end of the window (position 31).
    let cfg = config(ModelName::TinyGpt);
    let mut float = build(&cfg, 4);
    let q = quantize(float.as_ref(), &windows, &st).expect("quantize");
    let Net::Transformer(net) = &q.net else {
        unreachable!("a transformer")
    };
    let mut dec = Decoder::new(&q.config);
    println!(
        "tiny_gpt memory: activation arena {} bytes, KV cache {} bytes",
        dec.state.arena_bytes(),
        dec.state.layout.kv_cache_bytes
    );
    dec.prefill(net, &q.config, &tokens[..31]).expect("prefill");
    let int8_step = median_ms(5000, || {
        // Rewind the cache to 31 tokens, then one incremental step at position 31.
        dec.tokens.truncate(31);
        dec.step(net, &q.config, tokens[31]).expect("step");
    });
    let mut state = State::new(&q.config);
    let mut full = vec![0.0f32; 32 * 4096];
    let int8_prefill = median_ms(500, || {
        transformer::window_logits(net, &q.config, &mut state, tokens, &mut full).expect("window");
    });
    let float_window = median_ms(300, || {
        float.forward(tokens, 1, 32, false, &mut Rng::new(0));
    });
    println!(
        "tiny_gpt decode step (KV cache, position 31): int8 {int8_step:.4} ms = {:.1}× faster than LiteRT's 0.572 ms window (target ≥ 10×)",
        0.572 / int8_step
    );
    println!(
        "tiny_gpt full window (32 rows of logits): int8 {int8_prefill:.4} ms, float engine {float_window:.4} ms (the float engine has no KV cache: this is its cost per generated token)"
    );

    // gru / lstm: one recurrent step (embedding → layers → 4096 logits).
    for kind in [ModelName::Gru, ModelName::Lstm] {
        let mut cfg = config(kind);
        cfg.num_layers = 1;
        let float = build(&cfg, 5);
        let q = quantize(float.as_ref(), &windows, &st).expect("quantize");
        let Net::Recurrent(net) = &q.net else {
            unreachable!("a recurrent model")
        };
        let mut s = textzoo_rt::rnn::RnnState::new(&q.config);
        let step = median_ms(3000, || {
            s.step(net, &q.config, tokens[s.len % 32]).expect("step");
        });
        println!(
            "{kind:?} (1 layer, H 128) int8 step: {step:.4} ms (portable kernels), arena {} bytes, state {} bytes",
            s.layout.arena_bytes(),
            s.layout.state_bytes
        );
    }
}
