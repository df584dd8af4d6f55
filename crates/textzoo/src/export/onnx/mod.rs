//! ONNX exports: the float graph from the float model, the QDQ graph from the int8 model.

pub mod graph;
pub mod proto;
pub mod recurrent;
mod transformer;

use crate::export::spec::Spec;

/// The float model as ONNX (opset 17).
pub fn float(spec: &Spec) -> Vec<u8> {
    transformer::write(
        spec,
        "textzoo float model: one window of token ids in, logits out",
    )
}

/// The int8 model as ONNX QDQ (opset 17) with textzoo's scales and zero points.
pub fn qdq(spec: &Spec) -> Vec<u8> {
    transformer::write(
        spec,
        "textzoo int8 model as QDQ: textzoo's per-row weight scales and per-tensor activation scales and zero points",
    )
}
