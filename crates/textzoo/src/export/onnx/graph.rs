//! A small ONNX graph builder: named initializers and nodes in the order they are added, so
//! the same model always gives the same bytes.

use super::proto::{
    attr_type, dtype, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto,
};
use prost::Message;

/// The opset every export targets (`LayerNormalization` needs 17).
pub const OPSET: i64 = 17;
/// IR version 8 is the one opset 17 shipped with.
pub const IR_VERSION: i64 = 8;

/// A node attribute.
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
}

#[derive(Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
}

fn value_info(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: elem,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dimension { dim_value: d }).collect(),
                }),
            }),
        }),
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

impl Graph {
    pub fn input(&mut self, name: &str, elem: i32, shape: &[i64]) -> String {
        self.inputs.push(value_info(name, elem, shape));
        name.into()
    }

    pub fn output(&mut self, name: &str, elem: i32, shape: &[i64]) {
        self.outputs.push(value_info(name, elem, shape));
    }

    fn init(&mut self, name: &str, data_type: i32, shape: &[usize], raw: Vec<u8>) -> String {
        self.inits.push(TensorProto {
            dims: dims(shape),
            data_type,
            name: name.into(),
            raw_data: raw,
            ..Default::default()
        });
        name.into()
    }

    pub fn f32(&mut self, name: &str, shape: &[usize], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(name, dtype::FLOAT, shape, raw)
    }

    pub fn i8(&mut self, name: &str, shape: &[usize], v: &[i8]) -> String {
        let raw = v.iter().map(|&x| x as u8).collect();
        self.init(name, dtype::INT8, shape, raw)
    }

    pub fn u8(&mut self, name: &str, shape: &[usize], v: &[u8]) -> String {
        self.init(name, dtype::UINT8, shape, v.to_vec())
    }

    pub fn i32(&mut self, name: &str, shape: &[usize], v: &[i32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(name, dtype::INT32, shape, raw)
    }

    pub fn i64(&mut self, name: &str, shape: &[usize], v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(name, dtype::INT64, shape, raw)
    }

    /// Adds a node; its output is named `<hint>` (made unique with a counter).
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        hint: &str,
    ) -> String {
        self.counter += 1;
        let out = format!("{hint}:{}", self.counter);
        self.node_named(op, inputs, attrs, &out);
        out
    }

    /// Adds a node whose output has exactly the name `out` (graph outputs).
    pub fn node_named(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, out: &str) {
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: name.into(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => {
                        p.i = i;
                        p.r#type = attr_type::INT;
                    }
                    Attr::Float(f) => {
                        p.f = f;
                        p.r#type = attr_type::FLOAT;
                    }
                    Attr::Ints(v) => {
                        p.ints = v;
                        p.r#type = attr_type::INTS;
                    }
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
    }

    /// The serialized model.
    pub fn finish(self, name: &str, doc: &str, metadata: &[(&str, String)]) -> Vec<u8> {
        let model = ModelProto {
            ir_version: IR_VERSION,
            producer_name: "textzoo".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.into(),
                initializer: self.inits,
                doc_string: doc.into(),
                input: self.inputs,
                output: self.outputs,
                value_info: Vec::new(),
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}
