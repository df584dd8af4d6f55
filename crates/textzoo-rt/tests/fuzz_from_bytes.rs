//! `Int8Model::from_bytes` on foreign and forged files: arbitrary bytes, and well-formed
//! safetensors headers whose metadata claims an int8 model of any size. The loader returns a
//! model or an error; it never panics and never allocates what a forged `model_config` asks
//! for. (Damaged real model files are fuzzed in `crates/textzoo/tests/fuzz_models.rs`, which
//! can build one.)

use proptest::prelude::*;
use serde_json::{json, Value};
use textzoo_rt::Int8Model;

fn file(header: &Value, data: &[u8]) -> Vec<u8> {
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    out
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![
            0u64,
            1,
            2,
            4,
            8,
            256,
            1 << 20,
            (1 << 20) + 1,
            1 << 40,
            u64::MAX
        ]),
        any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_model_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Int8Model::from_bytes(&bytes);
    }

    #[test]
    fn forged_headers_are_a_model_or_an_error(
        kind in prop::sample::select(vec!["tiny_gpt", "tiny_bert_generator", "gru", "lstm", "x"]),
        sizes in prop::collection::vec(size(), 7),
        shape in prop::collection::vec(size(), 0..3),
        end in size(),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let config = json!({
            "kind": kind, "vocab_size": sizes[0], "seq_len": sizes[1], "embed_dim": sizes[2],
            "num_heads": sizes[3], "num_layers": sizes[4], "ffn_dim": sizes[5],
            "hidden_dim": sizes[6], "dropout": 0.0, "tie_embeddings": false,
        });
        let header = json!({
            "__metadata__": {
                "format": "textzoo.int8.v1",
                "model_config": config.to_string(),
                "int8_scalars": "{\"x0_zp\": 0}",
            },
            "tok_emb": {"dtype": "I8", "shape": shape, "data_offsets": [0, end]},
        });
        let _ = Int8Model::from_bytes(&file(&header, &data));
    }
}
