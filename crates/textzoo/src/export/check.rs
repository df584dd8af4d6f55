//! `textzoo check FILE`: what a model file is and whether a board can take it, for textzoo's
//! own files and anyone else's (`.safetensors`, `.onnx`, `.tflite`) — the model zoo's
//! `check_tflite*.py`. Reports the format and version, the operators with counts, tensor
//! types, quantization parameters and size, and lists problems: random operators, custom
//! operators, float operators left in an int8 graph (on an MCU board, or with no board
//! given), unreadable files. The verdict is one line: `OK` (exit 0) or `FAIL` (exit 1).
//!
//! The operator rules are textzoo's, not ST Edge AI's own support tables.

use super::onnx::proto::{dtype as onnx_dtype, ModelProto};
use super::tflite::schema::{self, op, ttype};
use crate::artifact::ModelFile;
use crate::config::Board;
use crate::error::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

pub struct CheckReport {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The facts and the problems (the verdict line is [`CheckReport::verdict`]).
    pub fn render(&self) -> String {
        let mut out = self.lines.clone();
        out.extend(self.problems.iter().map(|p| format!("problem: {p}")));
        out.join("\n")
    }

    pub fn verdict(&self) -> String {
        if self.ok() {
            "verdict: OK".into()
        } else {
            format!(
                "verdict: FAIL ({} problem{}: {})",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                self.problems.join("; ")
            )
        }
    }
}

/// The board named on the command line, or the message listing the allowed names.
fn parse_board(name: &str) -> Result<Board> {
    serde_json::from_value(serde_json::Value::String(name.into())).map_err(|_| {
        Error::Usage(format!(
            "--board {name:?} is not a known board; allowed: STM32H7, STM32N6570-DK, STM32MP157F-DK2, STM32MP257F-EV1, host"
        ))
    })
}

/// Microcontrollers run int8 graphs; a float operator there is a problem.
fn is_mcu(board: Option<Board>) -> bool {
    matches!(board, None | Some(Board::Stm32H7) | Some(Board::Stm32N6))
}

pub fn check_file(path: &Path, board: Option<&str>) -> Result<CheckReport> {
    let board = board.map(parse_board).transpose()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let ext = match ext.as_deref() {
        Some(e @ ("safetensors" | "onnx" | "tflite")) => e.to_string(),
        _ => return Err(Error::input(
            path,
            "has an extension textzoo check does not read (allowed: .safetensors, .onnx, .tflite)",
        )),
    };
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut r = CheckReport {
        lines: vec![format!("file: {} ({} bytes)", path.display(), bytes.len())],
        problems: Vec::new(),
    };
    if let Some(b) = board {
        let name = serde_json::to_value(b).ok();
        let name = name.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        r.lines.push(format!("board: {name}"));
    }
    match ext.as_str() {
        "onnx" => onnx(&bytes, &mut r),
        "tflite" => tflite(&bytes, board, &mut r),
        _ => safetensors(path, &mut r),
    }
    Ok(r)
}

fn counts<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut m = BTreeMap::<String, usize>::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn safetensors(path: &Path, r: &mut CheckReport) {
    match ModelFile::open(path) {
        Ok(ModelFile::Float(f)) => {
            let c = &f.meta.config;
            r.lines
                .push("format: textzoo.float.v1 (float32 safetensors)".into());
            r.lines.push(format!(
                "model: {} (vocab {}, window {}, width {}, layers {}), {} parameters",
                c.kind.name(),
                c.vocab_size,
                c.seq_len,
                c.embed_dim,
                c.num_layers,
                f.model.num_params()
            ));
            r.lines.push("tensor types: float32".into());
        }
        Ok(ModelFile::Int8(q)) => {
            let c = &q.model.config;
            r.lines
                .push("format: textzoo.int8.v1 (int8 safetensors)".into());
            r.lines.push(format!(
                "model: {} (vocab {}, window {}, width {}, layers {}), {} weight bytes",
                c.kind.name(),
                c.vocab_size,
                c.seq_len,
                c.embed_dim,
                c.num_layers,
                q.model.weight_bytes()
            ));
            let (arena, kv) = q.model.memory_bytes();
            r.lines.push(format!(
                "runtime memory: arena {arena} bytes, KV cache / state {kv} bytes"
            ));
            match &q.params {
                Some(p) => r.lines.push(format!(
                    "quantization: {} activations (per tensor), {} weights (per row, symmetric); exportable to ONNX QDQ / TFLite",
                    p.activations.len(),
                    p.weights.len()
                )),
                None => r.lines.push(
                    "quantization: scales not recorded (file from before they were); quantize again to export it".into(),
                ),
            }
        }
        Err(e) => r.problems.push(e.to_string()),
    }
}

fn onnx(bytes: &[u8], r: &mut CheckReport) {
    let m = match ModelProto::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            r.problems.push(format!("not a readable ONNX model: {e}"));
            return;
        }
    };
    let Some(g) = m.graph else {
        r.problems.push("ONNX model without a graph".into());
        return;
    };
    let opsets: Vec<String> = m
        .opset_import
        .iter()
        .map(|o| {
            let d = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            format!("{d} {}", o.version)
        })
        .collect();
    r.lines.push(format!(
        "format: ONNX, IR version {}, opset {}, producer {} {}",
        m.ir_version,
        opsets.join(", "),
        if m.producer_name.is_empty() {
            "?"
        } else {
            &m.producer_name
        },
        m.producer_version
    ));
    r.lines.push(format!(
        "operators ({}): {}",
        g.node.len(),
        counts(g.node.iter().map(|n| n.op_type.clone()))
    ));
    let io = |v: &[super::onnx::proto::ValueInfoProto]| {
        v.iter()
            .map(|x| {
                let t = x.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
                let ty = t.map_or("?", |t| onnx_dtype::name(t.elem_type));
                let shape: Vec<String> = t
                    .and_then(|t| t.shape.as_ref())
                    .map(|s| s.dim.iter().map(|d| d.dim_value.to_string()).collect())
                    .unwrap_or_default();
                format!("{} {ty}[{}]", x.name, shape.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    r.lines.push(format!("inputs: {}", io(&g.input)));
    r.lines.push(format!("outputs: {}", io(&g.output)));
    let data: usize = g
        .initializer
        .iter()
        .map(|t| {
            t.raw_data.len()
                + 4 * t.float_data.len()
                + 4 * t.int32_data.len()
                + 8 * t.int64_data.len()
        })
        .sum();
    r.lines.push(format!(
        "initializers ({}, {data} bytes): {}",
        g.initializer.len(),
        counts(
            g.initializer
                .iter()
                .map(|t| onnx_dtype::name(t.data_type).to_string())
        )
    ));
    let q = g
        .node
        .iter()
        .filter(|n| n.op_type == "QuantizeLinear")
        .count();
    let dq: Vec<_> = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear")
        .collect();
    if q + dq.len() > 0 {
        let per_axis = dq
            .iter()
            .filter(|n| {
                n.input.get(1).is_some_and(|s| {
                    g.initializer
                        .iter()
                        .any(|t| &t.name == s && t.dims.iter().product::<i64>() > 1)
                })
            })
            .count();
        r.lines.push(format!(
            "quantization: QDQ, {q} QuantizeLinear, {} DequantizeLinear ({per_axis} per-axis)",
            dq.len()
        ));
    } else if g
        .initializer
        .iter()
        .any(|t| t.data_type == onnx_dtype::INT8)
    {
        r.lines
            .push("quantization: int8 initializers without QDQ nodes".into());
    } else {
        r.lines.push("quantization: none (float graph)".into());
    }
    const RANDOM: [&str; 6] = [
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    ];
    for n in &g.node {
        if RANDOM.contains(&n.op_type.as_str()) {
            r.problems
                .push(format!("random operator {} ({})", n.op_type, n.name));
        }
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            r.problems.push(format!(
                "operator {} from custom domain {}",
                n.op_type, n.domain
            ));
        }
    }
}

// ----------------------------------------------------------------------------
// A bounds-checked FlatBuffers reader for the TFLite tables `check` reads (the file may come
// from anywhere: every offset is checked, nothing is trusted).

struct Fb<'a>(&'a [u8]);

#[derive(Clone, Copy)]
struct Table(usize);

impl<'a> Fb<'a> {
    fn u16(&self, p: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.0.get(p..p + 2)?.try_into().ok()?))
    }
    fn u32(&self, p: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(p..p + 4)?.try_into().ok()?))
    }
    fn i32(&self, p: usize) -> Option<i32> {
        self.u32(p).map(|x| x as i32)
    }
    fn root(&self) -> Option<Table> {
        Some(Table(self.u32(0)? as usize))
    }
    /// Where field `n` of `t` is, if present.
    fn field(&self, t: Table, n: u16) -> Option<usize> {
        let vt = (t.0 as i64 - self.i32(t.0)? as i64).try_into().ok()?;
        let len = self.u16(vt)?;
        let at = schema::slot(n);
        if at + 2 > len {
            return None;
        }
        match self.u16(vt + at as usize)? {
            0 => None,
            off => Some(t.0 + off as usize),
        }
    }
    fn deref(&self, p: usize) -> Option<usize> {
        p.checked_add(self.u32(p)? as usize)
    }
    fn table(&self, t: Table, n: u16) -> Option<Table> {
        self.field(t, n).and_then(|p| self.deref(p)).map(Table)
    }
    /// A vector field: (first element, length).
    fn vector(&self, t: Table, n: u16) -> Option<(usize, usize)> {
        let v = self.deref(self.field(t, n)?)?;
        let len = self.u32(v)? as usize;
        Some((v + 4, len))
    }
    fn tables(&self, t: Table, n: u16) -> Vec<Table> {
        let Some((start, len)) = self.vector(t, n) else {
            return Vec::new();
        };
        (0..len.min(self.0.len() / 4))
            .filter_map(|i| self.deref(start + 4 * i).map(Table))
            .collect()
    }
    fn i32s(&self, t: Table, n: u16) -> Vec<i32> {
        let Some((start, len)) = self.vector(t, n) else {
            return Vec::new();
        };
        (0..len.min(self.0.len() / 4))
            .map_while(|i| self.i32(start + 4 * i))
            .collect()
    }
    fn f32s(&self, t: Table, n: u16) -> Vec<f32> {
        self.i32s(t, n)
            .into_iter()
            .map(|x| f32::from_bits(x as u32))
            .collect()
    }
    fn string(&self, t: Table, n: u16) -> String {
        self.vector(t, n)
            .and_then(|(s, len)| self.0.get(s..s.checked_add(len)?))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
    fn scalar_i8(&self, t: Table, n: u16, default: i8) -> i8 {
        self.field(t, n)
            .and_then(|p| self.0.get(p))
            .map_or(default, |&b| b as i8)
    }
    fn scalar_i32(&self, t: Table, n: u16, default: i32) -> i32 {
        self.field(t, n)
            .and_then(|p| self.i32(p))
            .unwrap_or(default)
    }
}

struct TensorInfo {
    name: String,
    shape: Vec<i32>,
    ttype: i8,
    constant: bool,
    scales: usize,
}

fn tflite(bytes: &[u8], board: Option<Board>, r: &mut CheckReport) {
    use schema::{buffer, model, opcode, operator, quant, subgraph, tensor};
    let fb = Fb(bytes);
    if bytes.get(4..8) != Some(schema::IDENTIFIER.as_bytes()) {
        r.problems
            .push("not a TFLite flatbuffer (no TFL3 identifier)".into());
        return;
    }
    let Some(root) = fb.root() else {
        r.problems.push("truncated TFLite file".into());
        return;
    };
    let version = fb
        .field(root, model::VERSION)
        .and_then(|p| fb.u32(p))
        .unwrap_or(0);
    let desc = fb.string(root, model::DESCRIPTION);
    r.lines.push(format!(
        "format: TFLite flatbuffer, schema version {version}{}",
        if desc.is_empty() {
            String::new()
        } else {
            format!(", \"{desc}\"")
        }
    ));
    let codes: Vec<i32> = fb
        .tables(root, model::OPERATOR_CODES)
        .into_iter()
        .map(|c| {
            let old = fb.scalar_i8(c, opcode::DEPRECATED_BUILTIN_CODE, 0) as i32;
            let new = fb.scalar_i32(c, opcode::BUILTIN_CODE, 0);
            new.max(old)
        })
        .collect();
    let buffers: Vec<usize> = fb
        .tables(root, model::BUFFERS)
        .into_iter()
        .map(|b| fb.vector(b, buffer::DATA).map_or(0, |v| v.1))
        .collect();
    let subgraphs = fb.tables(root, model::SUBGRAPHS);
    let Some(&sg) = subgraphs.first() else {
        r.problems.push("TFLite model without a subgraph".into());
        return;
    };
    if subgraphs.len() > 1 {
        r.lines.push(format!(
            "subgraphs: {} (the first is checked)",
            subgraphs.len()
        ));
    }
    let tensors: Vec<TensorInfo> = fb
        .tables(sg, subgraph::TENSORS)
        .into_iter()
        .map(|t| {
            let b = fb
                .field(t, tensor::BUFFER)
                .and_then(|p| fb.u32(p))
                .unwrap_or(0) as usize;
            let scales = fb
                .table(t, tensor::QUANTIZATION)
                .map_or(0, |q| fb.f32s(q, quant::SCALE).len());
            TensorInfo {
                name: fb.string(t, tensor::NAME),
                shape: fb.i32s(t, tensor::SHAPE),
                ttype: fb.scalar_i8(t, tensor::TYPE, 0),
                constant: buffers.get(b).is_some_and(|&n| n > 0),
                scales,
            }
        })
        .collect();
    let ops: Vec<(i32, Vec<i32>, Vec<i32>)> = fb
        .tables(sg, subgraph::OPERATORS)
        .into_iter()
        .map(|o| {
            let idx = fb
                .field(o, operator::OPCODE_INDEX)
                .and_then(|p| fb.u32(p))
                .unwrap_or(0);
            let code = codes.get(idx as usize).copied().unwrap_or(-1);
            (
                code,
                fb.i32s(o, operator::INPUTS),
                fb.i32s(o, operator::OUTPUTS),
            )
        })
        .collect();
    r.lines.push(format!(
        "operators ({}): {}",
        ops.len(),
        counts(ops.iter().map(|o| op::name(o.0)))
    ));
    let describe = |ids: Vec<i32>| {
        ids.iter()
            .filter_map(|&i| tensors.get(i as usize))
            .map(|t| {
                let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
                format!("{} {}[{}]", t.name, ttype::name(t.ttype), shape.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    r.lines.push(format!(
        "inputs: {}",
        describe(fb.i32s(sg, subgraph::INPUTS))
    ));
    r.lines.push(format!(
        "outputs: {}",
        describe(fb.i32s(sg, subgraph::OUTPUTS))
    ));
    let (consts, acts): (Vec<_>, Vec<_>) = tensors.iter().partition(|t| t.constant);
    r.lines.push(format!(
        "tensors: {} activations ({}), {} constants ({}), {} constant bytes",
        acts.len(),
        counts(acts.iter().map(|t| ttype::name(t.ttype).to_string())),
        consts.len(),
        counts(consts.iter().map(|t| ttype::name(t.ttype).to_string())),
        buffers.iter().sum::<usize>()
    ));
    let per_channel = tensors.iter().filter(|t| t.scales > 1).count();
    let per_tensor = tensors.iter().filter(|t| t.scales == 1).count();
    r.lines.push(format!(
        "quantization: {per_tensor} tensors per-tensor, {per_channel} per-channel, {} without",
        tensors.len() - per_tensor - per_channel
    ));
    let int8_graph = acts.iter().any(|t| t.ttype == ttype::INT8);
    if int8_graph && acts.iter().any(|t| t.ttype == ttype::INT16) {
        r.lines.push(
            "note: int16 activations beside int8 weights (TFLite's 16×8 mode, as textzoo's gru/lstm state): check that the deployment tool supports it for each operator".into(),
        );
    }
    for (code, ins, outs) in &ops {
        let name = op::name(*code);
        if op::is_random(*code) {
            r.problems.push(format!("random operator {name}"));
        }
        if *code == 32 || *code < 0 {
            r.problems
                .push(format!("custom or unknown operator ({name})"));
        }
        let float = ins.iter().chain(outs).any(|&i| {
            tensors
                .get(i as usize)
                .is_some_and(|t| !t.constant && t.ttype == ttype::FLOAT32)
        });
        // DEQUANTIZE and QUANTIZE are the float boundary; a random operator is reported once.
        let converts = matches!(*code, 6 | 114);
        if int8_graph && float && !converts && !op::is_random(*code) {
            let msg = format!("float operator {name} left in an int8 graph");
            if is_mcu(board) {
                r.problems.push(msg);
            } else {
                r.lines
                    .push(format!("note: {msg} (runs on the board's CPU)"));
            }
        }
    }
}
