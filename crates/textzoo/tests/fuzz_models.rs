//! Property tests of both model-file loaders on damaged files: real small model files (float
//! and int8, a transformer and a recurrent model) truncated, bit-flipped, with their header
//! length or metadata edited. `ModelFile::open` must give a model or an input error (exit
//! code 2) and `Int8Model::from_bytes` a model or an error: no panic, no absurd allocation.

use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;
use textzoo::artifact::{float, int8, ModelFile, ModelMeta};
use textzoo::config::{Calibration, Granularity, ModelName, Preprocessing};
use textzoo::data::TextTokenizer;
use textzoo::models::{build, ModelConfig};
use textzoo::quantization::{quantize, Settings};
use textzoo_rt::Int8Model;

/// One model's files: (float bytes, int8 bytes).
type Files = (Vec<u8>, Vec<u8>);

/// Built once: the files of a tiny `tiny_gpt` and a tiny `gru`.
fn files() -> &'static [Files] {
    static CELL: OnceLock<Vec<Files>> = OnceLock::new();
    CELL.get_or_init(|| {
        let tokenizer = TextTokenizer::train(
            &Preprocessing {
                vocab_size: 20,
                ..Preprocessing::default()
            },
            "to be or not to be, that is the question.\n",
        )
        .expect("trains");
        let dir = tempfile::tempdir().expect("temp dir");
        [ModelName::TinyGpt, ModelName::Gru]
            .into_iter()
            .map(|kind| {
                let config = ModelConfig {
                    kind,
                    vocab_size: tokenizer.vocab_size(),
                    seq_len: 4,
                    embed_dim: 8,
                    num_heads: 2,
                    num_layers: 1,
                    ffn_dim: 16,
                    hidden_dim: 8,
                    dropout: 0.0,
                    tie_embeddings: false,
                };
                let model = build(&config, 3);
                let v = config.vocab_size as u32;
                let windows: Vec<Vec<u32>> = (0..8u32)
                    .map(|i| (0..4u32).map(|j| 2 + (i * 7 + j * 3) % (v - 2)).collect())
                    .collect();
                let settings = Settings {
                    calibration: Calibration::Minmax,
                    percentile: 99.99,
                    granularity: Granularity::PerChannel,
                };
                let q = quantize(model.as_ref(), &windows, &settings).expect("quantizes");
                let meta = ModelMeta {
                    config,
                    tokenizer: tokenizer.clone(),
                    training: Value::Null,
                };
                let (fp, qp) = (dir.path().join("f"), dir.path().join("q"));
                float::save(&fp, model.as_ref(), &meta, None).expect("saves");
                int8::save(&qp, &q, &meta, &serde_json::json!({})).expect("saves");
                (
                    std::fs::read(&fp).expect("reads"),
                    std::fs::read(&qp).expect("reads"),
                )
            })
            .collect()
    })
}

/// The file's header (JSON) and data parts.
fn split(bytes: &[u8]) -> (Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).expect("header JSON");
    (header, &bytes[8 + n..])
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A damage done to a model file.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    HeaderLength(u64),
    /// Sets field `.1` of the metadata entry `.0` (a JSON text itself) to `.2`.
    MetaField(prop::sample::Index, prop::sample::Index, Value),
    /// Replaces the metadata entry `.0` with the text `.1`.
    MetaText(prop::sample::Index, String),
    /// Sets a tensor's `shape` or `data_offsets` entry.
    Tensor(prop::sample::Index, bool, prop::sample::Index, u64),
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![
            0u64,
            1,
            2,
            3,
            7,
            16,
            255,
            256,
            1 << 20,
            (1 << 20) + 1,
            1 << 31,
            1 << 32,
            1 << 40,
            1 << 60,
            u64::MAX,
        ]),
        any::<u64>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        number().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::from),
        Just(serde_json::json!([])),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        number().prop_map(Damage::HeaderLength),
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            value()
        )
            .prop_map(|(k, f, v)| Damage::MetaField(k, f, v)),
        (any::<prop::sample::Index>(), "[{}\\[\\]\":,a-z0-9]{0,20}")
            .prop_map(|(k, t)| Damage::MetaText(k, t)),
        (
            any::<prop::sample::Index>(),
            any::<bool>(),
            any::<prop::sample::Index>(),
            number()
        )
            .prop_map(|(t, s, i, n)| Damage::Tensor(t, s, i, n)),
    ]
}

fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    // Damage needs something to damage: a file already cut below its length field stays so.
    if bytes.len() < 8 {
        return bytes.to_vec();
    }
    match d {
        Damage::Truncate(i) => bytes[..i.index(bytes.len())].to_vec(),
        Damage::Flip(i, x) => {
            let mut b = bytes.to_vec();
            b[i.index(bytes.len())] ^= x;
            b
        }
        Damage::HeaderLength(n) => {
            let mut b = bytes.to_vec();
            b[..8].copy_from_slice(&n.to_le_bytes());
            b
        }
        Damage::MetaField(k, _, _) | Damage::MetaText(k, _) => {
            let Some((mut header, data)) = parsed(bytes) else {
                return bytes.to_vec();
            };
            let Some(meta) = header["__metadata__"].as_object_mut() else {
                return bytes.to_vec();
            };
            let keys: Vec<String> = meta.keys().cloned().collect();
            if keys.is_empty() {
                return bytes.to_vec();
            }
            let key = k.get(&keys);
            match d {
                Damage::MetaText(_, t) => {
                    meta.insert(key.clone(), Value::from(t.clone()));
                }
                Damage::MetaField(_, f, v) => {
                    let inner = meta[key]
                        .as_str()
                        .and_then(|s| serde_json::from_str::<Value>(s).ok());
                    if let Some(Value::Object(mut obj)) = inner {
                        if !obj.is_empty() {
                            let fields: Vec<String> = obj.keys().cloned().collect();
                            obj.insert(f.get(&fields).clone(), v.clone());
                        }
                        meta.insert(key.clone(), Value::from(Value::Object(obj).to_string()));
                    }
                }
                _ => {}
            }
            join(&header, data)
        }
        Damage::Tensor(t, shape, i, n) => {
            let Some((mut header, data)) = parsed(bytes) else {
                return bytes.to_vec();
            };
            let names: Vec<String> = header
                .as_object()
                .map(|m| m.keys().filter(|k| *k != "__metadata__").cloned().collect())
                .unwrap_or_default();
            if names.is_empty() {
                return bytes.to_vec();
            }
            let field = if *shape { "shape" } else { "data_offsets" };
            if let Some(list) = header[t.get(&names)][field].as_array_mut() {
                if !list.is_empty() {
                    let at = i.index(list.len());
                    list[at] = Value::from(*n);
                }
            }
            join(&header, data)
        }
    }
}

fn parsed(bytes: &[u8]) -> Option<(Value, &[u8])> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    Some((header, &bytes[8 + n..]))
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = Int8Model::from_bytes(bytes);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, bytes)?;
    if let Err(e) = ModelFile::open(&path) {
        prop_assert_eq!(e.exit_code(), 2, "{}", e);
    }
    Ok(())
}

#[test]
fn undamaged_files_load() {
    for (f, q) in files() {
        assert!(split(f).0.is_object() && split(q).0.is_object());
        check(f).unwrap();
        check(q).unwrap();
        assert!(Int8Model::from_bytes(q).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_model_files_load_or_are_input_errors(
        which in 0usize..4,
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let (f, q) = &files()[which / 2];
        let mut bytes = if which % 2 == 0 { f.clone() } else { q.clone() };
        for d in &damages {
            bytes = apply(&bytes, d);
        }
        check(&bytes)?;
    }
}

/// Sets `field` of the file's `model_config` metadata to `value`.
fn with_config_field(bytes: &[u8], field: &str, value: Value) -> Vec<u8> {
    let (mut header, data) = split(bytes);
    let meta = &mut header["__metadata__"];
    let mut config: Value = meta["model_config"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    config[field] = value;
    meta["model_config"] = Value::from(config.to_string());
    join(&header, data)
}

const CONFIG_FIELDS: [&str; 10] = [
    "kind",
    "vocab_size",
    "seq_len",
    "embed_dim",
    "num_heads",
    "num_layers",
    "ffn_dim",
    "hidden_dim",
    "dropout",
    "tie_embeddings",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A `model_config` that disagrees with the tensors (sizes from 0 to 2^64 − 1) is refused
    /// before anything of its size is allocated.
    #[test]
    fn edited_model_configs_load_or_are_input_errors(
        which in 0usize..4,
        edits in prop::collection::vec((prop::sample::select(&CONFIG_FIELDS[..]), value()), 1..3),
    ) {
        let (f, q) = &files()[which / 2];
        let mut bytes = if which % 2 == 0 { f.clone() } else { q.clone() };
        for (field, v) in edits {
            bytes = with_config_field(&bytes, field, v);
        }
        check(&bytes)?;
    }
}

/// The first 8 bytes of a safetensors file are the header's length: an absurd one is refused
/// from the length alone, never allocated.
#[test]
fn absurd_header_lengths_are_refused() {
    let (_, q) = &files()[0];
    for n in [1u64 << 60, u64::MAX, (q.len() as u64) - 7, 0] {
        let mut bytes = q.clone();
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        assert!(Int8Model::from_bytes(&bytes).is_err(), "{n}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(ModelFile::open(&path).err().map(|e| e.exit_code()), Some(2));
    }
}
