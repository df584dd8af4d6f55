//! A TFLite model under construction: tensors, constant buffers, operators, written with the
//! `flatbuffers` builder in the order they were added (same model → same bytes).

use super::schema::{self, buffer, model, opcode, operator, quant, slot, subgraph, tensor};
use flatbuffers::{FlatBufferBuilder, WIPOffset};

/// Per-tensor (one scale) or per-channel (along `dim`) quantization.
#[derive(Clone, Debug)]
pub struct Quant {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub dim: i32,
}

impl Quant {
    pub fn tensor(scale: f64, zero_point: i32) -> Quant {
        Quant {
            scale: vec![scale as f32],
            zero_point: vec![zero_point as i64],
            dim: 0,
        }
    }

    pub fn channels(scales: &[f64]) -> Quant {
        Quant {
            scale: scales.iter().map(|&s| s as f32).collect(),
            zero_point: vec![0; scales.len()],
            dim: 0,
        }
    }
}

struct Tensor {
    name: String,
    shape: Vec<i32>,
    ttype: i8,
    buffer: u32,
    quant: Option<Quant>,
}

/// Builtin options of an operator.
pub enum Options {
    None,
    FullyConnected,
    Softmax {
        beta: f32,
    },
    Reshape {
        shape: Vec<i32>,
    },
    Gather {
        axis: i32,
    },
    Reducer {
        keep_dims: bool,
    },
    /// `values_count` tensors stacked along `axis`.
    Pack {
        values_count: i32,
        axis: i32,
    },
    /// Split along `axis` into `num` tensors.
    Unpack {
        num: i32,
        axis: i32,
    },
}

struct Op {
    code: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Options,
}

#[derive(Default)]
pub struct Model {
    tensors: Vec<Tensor>,
    buffers: Vec<Vec<u8>>,
    ops: Vec<Op>,
    codes: Vec<i32>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
}

impl Model {
    pub fn new() -> Model {
        Model {
            // Buffer 0 is the empty sentinel non-constant tensors point to.
            buffers: vec![Vec::new()],
            ..Default::default()
        }
    }

    /// A tensor computed by an operator (or a graph input).
    pub fn activation(&mut self, name: &str, shape: &[usize], ttype: i8, q: Option<Quant>) -> i32 {
        self.push(name, shape, ttype, 0, q)
    }

    fn push(
        &mut self,
        name: &str,
        shape: &[usize],
        ttype: i8,
        buffer: u32,
        quant: Option<Quant>,
    ) -> i32 {
        self.tensors.push(Tensor {
            name: name.into(),
            shape: shape.iter().map(|&d| d as i32).collect(),
            ttype,
            buffer,
            quant,
        });
        self.tensors.len() as i32 - 1
    }

    fn constant(
        &mut self,
        name: &str,
        shape: &[usize],
        ttype: i8,
        data: Vec<u8>,
        q: Option<Quant>,
    ) -> i32 {
        self.buffers.push(data);
        let b = self.buffers.len() as u32 - 1;
        self.push(name, shape, ttype, b, q)
    }

    pub fn const_i8(&mut self, name: &str, shape: &[usize], v: &[i8], q: Quant) -> i32 {
        let data = v.iter().map(|&x| x as u8).collect();
        self.constant(name, shape, schema::ttype::INT8, data, Some(q))
    }

    pub fn const_i16(&mut self, name: &str, shape: &[usize], v: &[i16], q: Quant) -> i32 {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, shape, schema::ttype::INT16, data, Some(q))
    }

    /// int64 constants: the biases of 16×8 fully connected layers.
    pub fn const_i64(&mut self, name: &str, shape: &[usize], v: &[i64], q: Quant) -> i32 {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, shape, schema::ttype::INT64, data, Some(q))
    }

    pub fn const_i32(&mut self, name: &str, shape: &[usize], v: &[i32], q: Option<Quant>) -> i32 {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(name, shape, schema::ttype::INT32, data, q)
    }

    pub fn op(&mut self, code: i32, inputs: &[i32], outputs: &[i32], options: Options) {
        if !self.codes.contains(&code) {
            self.codes.push(code);
        }
        self.ops.push(Op {
            code,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options,
        });
    }

    pub fn set_io(&mut self, inputs: &[i32], outputs: &[i32]) {
        self.inputs = inputs.to_vec();
        self.outputs = outputs.to_vec();
    }

    pub fn finish(self, description: &str) -> Vec<u8> {
        let mut b = FlatBufferBuilder::with_capacity(1 << 16);
        let buffers: Vec<_> = self
            .buffers
            .iter()
            .map(|data| {
                let d = (!data.is_empty()).then(|| b.create_vector(data));
                let t = b.start_table();
                if let Some(d) = d {
                    b.push_slot_always(slot(buffer::DATA), d);
                }
                b.end_table(t)
            })
            .collect();
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .map(|t| {
                let shape = b.create_vector(&t.shape);
                let name = b.create_string(&t.name);
                let q = t.quant.as_ref().map(|q| {
                    let s = b.create_vector(&q.scale);
                    let z = b.create_vector(&q.zero_point);
                    let qt = b.start_table();
                    b.push_slot_always(slot(quant::SCALE), s);
                    b.push_slot_always(slot(quant::ZERO_POINT), z);
                    b.push_slot(slot(quant::QUANTIZED_DIMENSION), q.dim, 0);
                    b.end_table(qt)
                });
                let tt = b.start_table();
                b.push_slot_always(slot(tensor::SHAPE), shape);
                b.push_slot(slot(tensor::TYPE), t.ttype, 0);
                b.push_slot(slot(tensor::BUFFER), t.buffer, 0);
                b.push_slot_always(slot(tensor::NAME), name);
                if let Some(q) = q {
                    b.push_slot_always(slot(tensor::QUANTIZATION), q);
                }
                b.end_table(tt)
            })
            .collect();
        let ops: Vec<_> = self
            .ops
            .iter()
            .map(|o| {
                let index = self.codes.iter().position(|&c| c == o.code).unwrap_or(0) as u32;
                let ins = b.create_vector(&o.inputs);
                let outs = b.create_vector(&o.outputs);
                let opts = options(&mut b, &o.options);
                let t = b.start_table();
                b.push_slot(slot(operator::OPCODE_INDEX), index, 0);
                b.push_slot_always(slot(operator::INPUTS), ins);
                b.push_slot_always(slot(operator::OUTPUTS), outs);
                if let Some((kind, off)) = opts {
                    b.push_slot(slot(operator::BUILTIN_OPTIONS_TYPE), kind, 0);
                    b.push_slot_always(slot(operator::BUILTIN_OPTIONS), off);
                }
                b.end_table(t)
            })
            .collect();
        let codes: Vec<_> = self
            .codes
            .iter()
            .map(|&c| {
                let t = b.start_table();
                // Codes past 126 live in `builtin_code` only; 127 says so.
                b.push_slot(slot(opcode::DEPRECATED_BUILTIN_CODE), c.min(127) as i8, 0);
                b.push_slot(slot(opcode::VERSION), 1i32, 1);
                b.push_slot(slot(opcode::BUILTIN_CODE), c, 0);
                b.end_table(t)
            })
            .collect();
        let tensors = b.create_vector(&tensors);
        let ops = b.create_vector(&ops);
        let ins = b.create_vector(&self.inputs);
        let outs = b.create_vector(&self.outputs);
        let name = b.create_string("main");
        let sg = b.start_table();
        b.push_slot_always(slot(subgraph::TENSORS), tensors);
        b.push_slot_always(slot(subgraph::INPUTS), ins);
        b.push_slot_always(slot(subgraph::OUTPUTS), outs);
        b.push_slot_always(slot(subgraph::OPERATORS), ops);
        b.push_slot_always(slot(subgraph::NAME), name);
        let sg = b.end_table(sg);
        let subgraphs = b.create_vector(&[sg]);
        let codes = b.create_vector(&codes);
        let buffers = b.create_vector(&buffers);
        let desc = b.create_string(description);
        let m = b.start_table();
        b.push_slot(slot(model::VERSION), schema::SCHEMA_VERSION, 0);
        b.push_slot_always(slot(model::OPERATOR_CODES), codes);
        b.push_slot_always(slot(model::SUBGRAPHS), subgraphs);
        b.push_slot_always(slot(model::DESCRIPTION), desc);
        b.push_slot_always(slot(model::BUFFERS), buffers);
        let m = b.end_table(m);
        b.finish(m, Some(schema::IDENTIFIER));
        b.finished_data().to_vec()
    }
}

/// The options table of an operator and its union type.
fn options(
    b: &mut FlatBufferBuilder,
    o: &Options,
) -> Option<(u8, WIPOffset<flatbuffers::UnionWIPOffset>)> {
    use super::schema::options as kind;
    let (k, t) = match o {
        Options::None => return None,
        Options::FullyConnected => {
            // fused_activation_function NONE, weights_format DEFAULT, keep_num_dims false:
            // every field at its default.
            let t = b.start_table();
            (kind::FULLY_CONNECTED, b.end_table(t))
        }
        Options::Softmax { beta } => {
            let t = b.start_table();
            b.push_slot_always(slot(0), *beta);
            (kind::SOFTMAX, b.end_table(t))
        }
        Options::Reshape { shape } => {
            let v = b.create_vector(shape);
            let t = b.start_table();
            b.push_slot_always(slot(0), v);
            (kind::RESHAPE, b.end_table(t))
        }
        Options::Gather { axis } => {
            let t = b.start_table();
            b.push_slot_always(slot(0), *axis);
            (kind::GATHER, b.end_table(t))
        }
        Options::Reducer { keep_dims } => {
            let t = b.start_table();
            b.push_slot_always(slot(0), *keep_dims);
            (kind::REDUCER, b.end_table(t))
        }
        Options::Pack { values_count, axis } => {
            let t = b.start_table();
            b.push_slot_always(slot(0), *values_count);
            b.push_slot_always(slot(1), *axis);
            (kind::PACK, b.end_table(t))
        }
        Options::Unpack { num, axis } => {
            let t = b.start_table();
            b.push_slot_always(slot(0), *num);
            b.push_slot_always(slot(1), *axis);
            (kind::UNPACK, b.end_table(t))
        }
    };
    Some((k, t.as_union_value()))
}
