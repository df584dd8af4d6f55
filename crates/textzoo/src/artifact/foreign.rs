//! Model files of other tools, which textzoo cannot import: Keras (`.h5`, `.keras`), ONNX
//! (`.onnx`) and TensorFlow Lite (`.tflite`), the files an ST model zoo user has at hand.
//!
//! Such a file fails to parse as safetensors, and the parser's complaint ("header too large")
//! says nothing useful. This names the format instead, from the file's first bytes when they
//! are recognisable (so a renamed file gets the right name) and otherwise from its extension,
//! and says what `general.model_path` accepts. It is consulted only for files that are not
//! safetensors, so a textzoo model is never mistaken for one of these whatever its name.

use std::path::Path;

/// A model format of another tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// HDF5 (Keras 2 `.h5` / `.hdf5`).
    KerasH5,
    /// A zip archive (Keras 3 `.keras`).
    Keras,
    Onnx,
    TfLite,
}

impl Foreign {
    fn describe(self) -> &'static str {
        match self {
            Foreign::KerasH5 => "a Keras HDF5 model (.h5)",
            Foreign::Keras => "a Keras model archive (.keras, a zip file)",
            Foreign::Onnx => "an ONNX model (.onnx)",
            Foreign::TfLite => "a TensorFlow Lite model (.tflite)",
        }
    }
}

/// The HDF5 format signature. It sits at offset 0, or after a user block of 512, 1024, 2048…
/// bytes.
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
const ZIP_SIGNATURE: &[u8; 4] = b"PK\x03\x04";
/// The FlatBuffer file identifier of TFLite models, at bytes 4..8.
const TFLITE_IDENTIFIER: &[u8; 4] = b"TFL3";

/// The foreign format of a file that did not parse as safetensors, if it is one.
pub fn identify(path: &Path, bytes: &[u8]) -> Option<Foreign> {
    by_content(bytes).or_else(|| by_extension(path))
}

fn by_content(bytes: &[u8]) -> Option<Foreign> {
    let hdf5_at = |offset: usize| bytes.get(offset..offset + 8) == Some(&HDF5_SIGNATURE[..]);
    if [0, 512, 1024, 2048, 4096].into_iter().any(hdf5_at) {
        return Some(Foreign::KerasH5);
    }
    if bytes.starts_with(ZIP_SIGNATURE) {
        return Some(Foreign::Keras);
    }
    if bytes.get(4..8) == Some(&TFLITE_IDENTIFIER[..]) {
        return Some(Foreign::TfLite);
    }
    if looks_like_onnx(bytes) {
        return Some(Foreign::Onnx);
    }
    None
}

/// ONNX has no magic number: a model is a protobuf `ModelProto` whose writers (the `onnx`
/// package, `torch.onnx`, tf2onnx) put field 1, `ir_version` (a small varint), first and then
/// another of its fields (producer, domain, version, doc string, graph, opsets).
fn looks_like_onnx(bytes: &[u8]) -> bool {
    // A safetensors file (a damaged one reaches here too) has its JSON header from byte 8.
    if bytes.get(8) == Some(&b'{') {
        return false;
    }
    /// Tags (field number << 3 | wire type) of `ModelProto` fields 2 to 8 and 14, 20.
    const NEXT_FIELD: [u8; 9] = [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2];
    match bytes {
        [0x08, version, next, ..] => (1..=0x40).contains(version) && NEXT_FIELD.contains(next),
        _ => false,
    }
}

fn by_extension(path: &Path) -> Option<Foreign> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "h5" | "hdf5" => Some(Foreign::KerasH5),
        "keras" => Some(Foreign::Keras),
        "onnx" => Some(Foreign::Onnx),
        "tflite" => Some(Foreign::TfLite),
        _ => None,
    }
}

/// The refusal for a foreign model file: what it is, and what textzoo takes instead.
pub fn refusal(format: Foreign) -> String {
    format!(
        "is {}; textzoo cannot import models of other tools. general.model_path takes a textzoo \
         model file: a float model (saved_models/model.safetensors, from operation_mode=training \
         or chain_tqe) or an int8 model (quantized_models/model_int8.safetensors, from \
         quantization or chain_qd). Train one on your corpus with textzoo, or reuse a textzoo run's",
        format.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, bytes: &[u8]) -> Option<Foreign> {
        identify(Path::new(name), bytes)
    }

    #[test]
    fn formats_are_known_by_their_first_bytes_whatever_the_name() {
        let mut h5 = HDF5_SIGNATURE.to_vec();
        h5.extend([0u8; 40]);
        assert_eq!(named("model.bin", &h5), Some(Foreign::KerasH5));
        let mut user_block = vec![0u8; 512];
        user_block.extend_from_slice(&h5);
        assert_eq!(named("weights", &user_block), Some(Foreign::KerasH5));
        assert_eq!(
            named(
                "model.safetensors",
                b"PK\x03\x04\x14\x00\x00\x00config.json"
            ),
            Some(Foreign::Keras)
        );
        assert_eq!(
            named("model.h5", b"\x1c\x00\x00\x00TFL3\x00\x00\x12\x00"),
            Some(Foreign::TfLite)
        );
        // As `onnx.helper.make_model` and torch.onnx write it: ir_version, then producer_name.
        assert_eq!(
            named("x.safetensors", b"\x08\x08\x12\x07pytorch\x1a\x052.5.0"),
            Some(Foreign::Onnx)
        );
        assert_eq!(
            named("x.safetensors", b"\x08\x0a\x3a\x40\x0a\x0c"),
            Some(Foreign::Onnx)
        );
    }

    #[test]
    fn unrecognisable_bytes_fall_back_to_the_extension() {
        let junk = b"\x00\x01\x02\x03\x04\x05\x06\x07";
        assert_eq!(named("m.H5", junk), Some(Foreign::KerasH5));
        assert_eq!(named("m.hdf5", junk), Some(Foreign::KerasH5));
        assert_eq!(named("m.keras", junk), Some(Foreign::Keras));
        assert_eq!(named("m.onnx", junk), Some(Foreign::Onnx));
        assert_eq!(named("m.tflite", junk), Some(Foreign::TfLite));
        assert_eq!(named("m.safetensors", junk), None);
        assert_eq!(named("m.safetensors", b""), None);
        assert_eq!(named("noext", b"\x08"), None);
        // A varint too large for an ir_version, or no known field after it: not ONNX.
        assert_eq!(named("m.bin", b"\x08\x99\x12"), None);
        assert_eq!(named("m.bin", b"\x08\x07\x00"), None);
        // A (damaged) safetensors file whose header length happens to start like ONNX.
        assert_eq!(
            named("m.bin", b"\x08\x08\x12\x00\x00\x00\x00\x00{\"a\""),
            None
        );
    }

    #[test]
    fn the_refusal_names_the_format_and_what_is_accepted() {
        let text = refusal(Foreign::Onnx);
        assert!(text.contains("ONNX") && text.contains(".onnx"), "{text}");
        assert!(text.contains("model.safetensors"), "{text}");
        assert!(text.contains("model_int8.safetensors"), "{text}");
    }
}
