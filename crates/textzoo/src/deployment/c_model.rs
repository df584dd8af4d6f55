//! The int8 model as C source: `model.h` (sizes, memory plan, `extern const tz_model
//! TZ_MODEL`), `model.c` (weights and quantization constants as `const` arrays, so the linker
//! puts them in flash / `.rodata`) and `embedding.h` (the embedding tables, included by
//! `model.c` only). The runtime that reads them is `c/textzoo_rt.{h,c}`, the C twin of
//! `textzoo-rt`; its static buffers are sized by the macros written here, and [`ram_bytes`]
//! is exactly what they take.
//!
//! Every float is written as a C99 hexadecimal literal: exact, so the device computes with
//! the very bits `textzoo-rt` uses (a decimal literal would depend on the compiler's
//! correctly rounded parsing).

use std::fmt::Write as _;
use textzoo_rt::model::{Block, LayerNorm, Linear, Net, Recurrent, RnnLayer, Transformer};
use textzoo_rt::plan;
use textzoo_rt::rnn::RnnLayout;
use textzoo_rt::transformer::{BlockTensor, Layout, Slot};
use textzoo_rt::{Int8Model, Kind};

/// The runtime sources the generated `model.{h,c}` belong with (copied into `src/`).
pub const TEXTZOO_RT_H: &str = include_str!("c/textzoo_rt.h");
pub const TEXTZOO_RT_C: &str = include_str!("c/textzoo_rt.c");

/// The generated model sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CModelFiles {
    pub model_h: String,
    pub model_c: String,
    pub embedding_h: String,
}

/// RAM the runtime's static buffers take for a model, in bytes (the `const` model data is in
/// flash and not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamUse {
    /// The activation arena (`tz_arena`).
    pub arena: usize,
    /// `tiny_gpt`'s KV cache or the `gru`/`lstm` state (`tz_kv_state`).
    pub kv_or_state: usize,
    /// The logits and the cached-token and window buffers.
    pub logits_and_scratch: usize,
}

impl RamUse {
    pub fn total(&self) -> usize {
        self.arena + self.kv_or_state + self.logits_and_scratch
    }
}

/// The arena and KV-cache/state bytes of the memory planner (equal to
/// `quantization::memory_bytes`; the C runtime must agree with `textzoo-rt` byte for byte).
fn planned(model: &Int8Model) -> (usize, usize) {
    match model.net {
        Net::Transformer(_) => {
            let l = Layout::new(&model.config);
            (l.arena_bytes(), l.kv_cache_bytes)
        }
        Net::Recurrent(_) => {
            let l = RnnLayout::new(&model.config);
            (l.arena_bytes(), l.state_bytes)
        }
    }
}

/// Exactly the arrays `textzoo_rt.c` declares for `model` (its `TZ_MAX1` rounding included):
/// `int32_t tz_arena[max(1, ⌈arena/4⌉)]`, `int16_t tz_kv_state[max(1, ⌈kv/2⌉)]`,
/// `float tz_logits[V]`, `uint16_t tz_cached[T]`, `uint16_t tz_window[T]` (plus two scalars).
pub fn ram_bytes(model: &Int8Model) -> RamUse {
    let (arena, kv) = planned(model);
    let c = &model.config;
    RamUse {
        arena: 4 * arena.div_ceil(4).max(1),
        kv_or_state: 2 * kv.div_ceil(2).max(1),
        logits_and_scratch: 4 * c.vocab_size.max(1) + 2 * 2 * c.seq_len.max(1),
    }
}

// ----------------------------------------------------------------------------
// Literals

/// An f32 as an exact C99 hexadecimal literal (`0x1.8p-3f`).
fn hex_f32(v: f32) -> String {
    if v.is_nan() {
        return "NAN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "INFINITY" } else { "-INFINITY" }.into();
    }
    let bits = v.to_bits();
    let sign = if bits >> 31 == 1 { "-" } else { "" };
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0 && man == 0 {
        return format!("{sign}0.0f");
    }
    let (lead, e) = if exp == 0 { (0, -126) } else { (1, exp - 127) };
    let digits = format!("{:06x}", man << 1);
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        format!("{sign}0x{lead}p{e}f")
    } else {
        format!("{sign}0x{lead}.{digits}p{e}f")
    }
}

/// An int32 literal (`INT32_MIN` cannot be written as a plain negative constant).
fn lit_i32(v: i32) -> String {
    if v == i32::MIN {
        "(-2147483647 - 1)".into()
    } else {
        v.to_string()
    }
}

/// A `static const` array definition, `per_line` values a line; returns the C expression for
/// a pointer to it (`NULL` for an empty array, which C cannot define).
fn array<T: Copy>(
    out: &mut String,
    ctype: &str,
    name: &str,
    values: &[T],
    per_line: usize,
    fmt: impl Fn(&mut String, T),
) -> String {
    if values.is_empty() {
        return "NULL".into();
    }
    let _ = writeln!(out, "static const {ctype} {name}[{}] = {{", values.len());
    for line in values.chunks(per_line) {
        out.push_str("    ");
        for (i, &v) in line.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            fmt(out, v);
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("};\n");
    name.into()
}

fn arr_i8(out: &mut String, name: &str, v: &[i8]) -> String {
    array(out, "int8_t", name, v, 24, |o, x| {
        let _ = write!(o, "{x}");
    })
}

fn arr_i16(out: &mut String, name: &str, v: &[i16]) -> String {
    array(out, "int16_t", name, v, 16, |o, x| {
        let _ = write!(o, "{x}");
    })
}

fn arr_i32(out: &mut String, name: &str, v: &[i32]) -> String {
    array(out, "int32_t", name, v, 12, |o, x| o.push_str(&lit_i32(x)))
}

fn arr_f32(out: &mut String, name: &str, v: &[f32]) -> String {
    array(out, "float", name, v, 6, |o, x| o.push_str(&hex_f32(x)))
}

fn kind_macro(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::TinyBertGenerator => ("TZ_KIND_TINY_BERT_GENERATOR", "tiny_bert_generator"),
        Kind::TinyGpt => ("TZ_KIND_TINY_GPT", "tiny_gpt"),
        Kind::Gru => ("TZ_KIND_GRU", "gru"),
        Kind::Lstm => ("TZ_KIND_LSTM", "lstm"),
    }
}

// ----------------------------------------------------------------------------
// model.c pieces

fn layernorm(out: &mut String, name: &str, ln: &LayerNorm) -> String {
    let a = arr_f32(out, &format!("{name}_a"), &ln.a);
    let b = arr_f32(out, &format!("{name}_b"), &ln.b);
    format!(
        "{{{a}, {b}, {}, {}}}",
        hex_f32(ln.var_scale),
        hex_f32(ln.eps)
    )
}

fn linear(out: &mut String, name: &str, l: &Linear) -> String {
    let w = arr_i8(out, &format!("{name}_w"), &l.w);
    let bias = arr_i32(out, &format!("{name}_bias"), &l.bias);
    let mult = arr_i32(out, &format!("{name}_mult"), &l.mult);
    let shift = arr_i32(out, &format!("{name}_shift"), &l.shift);
    format!(
        "{{{w}, {bias}, {mult}, {shift}, {}, {}}}",
        l.in_dim, l.out_dim
    )
}

fn requant(r: textzoo_rt::quant::Requant) -> String {
    format!("{{{}, {}}}", lit_i32(r.mult), lit_i32(r.shift))
}

fn block(out: &mut String, l: usize, b: &Block) -> String {
    let p = format!("tz_b{l}");
    let ln1 = layernorm(out, &format!("{p}_ln1"), &b.ln1);
    let q = linear(out, &format!("{p}_q"), &b.q);
    let k = linear(out, &format!("{p}_k"), &b.k);
    let v = linear(out, &format!("{p}_v"), &b.v);
    let proj = linear(out, &format!("{p}_proj"), &b.proj);
    let ln2 = layernorm(out, &format!("{p}_ln2"), &b.ln2);
    let up = linear(out, &format!("{p}_up"), &b.up);
    let gelu = arr_i8(out, &format!("{p}_gelu"), &b.gelu);
    let down = linear(out, &format!("{p}_down"), &b.down);
    let a = &b.attn;
    format!(
        "    {{\n        {ln1},\n        {q},\n        {k},\n        {v},\n        \
         {{{}, {}, {}, {}, {}, {}}},\n        {proj},\n        {}, {}, {},\n        \
         {ln2},\n        {up}, {}, {gelu},\n        {down},\n        {}, {}\n    }}",
        a.q_zp,
        a.k_zp,
        a.v_zp,
        requant(a.softmax),
        requant(a.pv),
        a.out_zp,
        requant(b.res1),
        b.x_zp,
        b.res2_zp,
        b.up_zp,
        requant(b.res2),
        b.y_zp,
    )
}

/// `#define TZ_OFF_<NAME> <offset>` lines (model.h) and the matching `{TZ_OFF_<NAME>, bytes}`
/// slot initialisers (model.c).
#[derive(Default)]
struct Offsets {
    defines: String,
}

impl Offsets {
    fn slot(&mut self, name: &str, offset: usize, bytes: usize) -> String {
        let _ = writeln!(self.defines, "#define TZ_OFF_{name} {offset}");
        format!("{{TZ_OFF_{name}, {bytes}}}")
    }
    fn of(&mut self, name: &str, s: Slot) -> String {
        self.slot(name, s.offset, s.bytes)
    }
}

fn transformer(
    out: &mut String,
    emb: &mut String,
    offs: &mut Offsets,
    model: &Int8Model,
    t: &Transformer,
) -> String {
    let tok = arr_i8(emb, "tz_tok_emb", &t.tok_emb);
    let pos = arr_i8(emb, "tz_pos_emb", &t.pos_emb);
    let tok_mult = arr_i32(out, "tz_tok_mult", &t.tok_mult);
    let tok_shift = arr_i32(out, "tz_tok_shift", &t.tok_shift);
    let pos_mult = arr_i32(out, "tz_pos_mult", &t.pos_mult);
    let pos_shift = arr_i32(out, "tz_pos_shift", &t.pos_shift);
    let blocks: Vec<String> = t
        .blocks
        .iter()
        .enumerate()
        .map(|(l, b)| block(out, l, b))
        .collect();
    let ln_f = layernorm(out, "tz_lnf", &t.ln_f);
    let head_w = match &t.head_w {
        Some(w) => arr_i8(out, "tz_head_w", w),
        None => tok.clone(),
    };
    let head_bias = arr_i32(out, "tz_head_bias", &t.head_bias);
    let head_scale = arr_f32(out, "tz_head_scale", &t.head_scale);
    let exp_lut = arr_i32(out, "tz_exp_lut", &t.exp_lut);

    let layout = Layout::new(&model.config);
    let x0 = offs.of("X0", layout.x0);
    let mut slots = Vec::new();
    for (l, s) in layout.layers.iter().enumerate() {
        let inits: Vec<String> = BlockTensor::ALL
            .iter()
            .map(|&n| offs.of(&format!("B{l}_{}", n.name().to_uppercase()), s[n]))
            .collect();
        slots.push(format!("    {{{}}}", inits.join(", ")));
    }
    let lnf = offs.of("LNF", layout.lnf);
    let (blocks_ref, slots_ref) = if blocks.is_empty() {
        ("NULL", "NULL")
    } else {
        let _ = writeln!(
            out,
            "static const tz_block tz_blocks[{}] = {{\n{}\n}};",
            blocks.len(),
            blocks.join(",\n")
        );
        let _ = writeln!(
            out,
            "static const tz_layer_slots tz_slots[{}] = {{\n{}\n}};",
            slots.len(),
            slots.join(",\n")
        );
        ("tz_blocks", "tz_slots")
    };
    let _ = writeln!(
        out,
        "static const tz_transformer tz_net = {{\n    {tok}, {tok_mult}, {tok_shift},\n    \
         {pos}, {pos_mult}, {pos_shift},\n    {},\n    {blocks_ref},\n    {ln_f},\n    \
         {head_w}, {head_bias}, {head_scale},\n    {exp_lut},\n    {x0}, {slots_ref}, {lnf}\n}};",
        t.x0_zp
    );
    "&tz_net".into()
}

fn rnn_layer(
    out: &mut String,
    offs: &mut Offsets,
    l: usize,
    ly: &RnnLayer,
    layout: &RnnLayout,
) -> String {
    let p = format!("tz_rnn{l}");
    let w_ih = arr_i8(out, &format!("{p}_w_ih"), &ly.w_ih);
    let ih_mult = arr_i32(out, &format!("{p}_ih_mult"), &ly.ih_mult);
    let ih_shift = arr_i32(out, &format!("{p}_ih_shift"), &ly.ih_shift);
    let w_hh = arr_i8(out, &format!("{p}_w_hh"), &ly.w_hh);
    let hh_mult = arr_i32(out, &format!("{p}_hh_mult"), &ly.hh_mult);
    let hh_shift = arr_i32(out, &format!("{p}_hh_shift"), &ly.hh_shift);
    let bias = arr_i32(out, &format!("{p}_bias"), &ly.bias);
    let bias_hn = arr_i32(out, &format!("{p}_bias_hn"), &ly.bias_hn);
    let ih = offs.slot(&format!("RNN{l}_IH"), layout.ih[l].0, layout.ih[l].1);
    let hh = offs.slot(&format!("RNN{l}_HH"), layout.hh[l].0, layout.hh[l].1);
    format!(
        "    {{{}, {w_ih}, {ih_mult}, {ih_shift}, {w_hh}, {hh_mult}, {hh_shift}, {bias}, \
         {bias_hn}, {}, {ih}, {hh}}}",
        ly.in_dim, ly.cell_bits
    )
}

fn recurrent(
    out: &mut String,
    emb: &mut String,
    offs: &mut Offsets,
    model: &Int8Model,
    r: &Recurrent,
) -> String {
    let layout = RnnLayout::new(&model.config);
    let tok = arr_i8(emb, "tz_tok_emb", &r.tok_emb);
    let layers: Vec<String> = r
        .layers
        .iter()
        .enumerate()
        .map(|(l, ly)| rnn_layer(out, offs, l, ly, &layout))
        .collect();
    let head_w = match &r.head_w {
        Some(w) => arr_i8(out, "tz_head_w", w),
        None => tok.clone(),
    };
    let head_scale = arr_f32(out, "tz_head_scale", &r.head_scale);
    let head_bias = arr_f32(out, "tz_head_bias", &r.head_bias);
    let sig = arr_i16(out, "tz_sigmoid_lut", &r.sigmoid_lut);
    let tanh = arr_i16(out, "tz_tanh_lut", &r.tanh_lut);
    let x = offs.slot("RNN_X", layout.x.0, layout.x.1);
    let head = offs.slot("RNN_HEAD", layout.head.0, layout.head.1);
    let layers_ref = if layers.is_empty() {
        "NULL"
    } else {
        let _ = writeln!(
            out,
            "static const tz_rnn_layer tz_rnn_layers[{}] = {{\n{}\n}};",
            layers.len(),
            layers.join(",\n")
        );
        "tz_rnn_layers"
    };
    let _ = writeln!(
        out,
        "static const tz_recurrent tz_net = {{\n    {tok}, {layers_ref},\n    {head_w}, \
         {head_scale}, {head_bias},\n    {sig}, {tanh},\n    {x}, {head}\n}};"
    );
    "&tz_net".into()
}

// ----------------------------------------------------------------------------
// The files

/// Writes `model` as C (see the module notes). Pure formatting: a 1.6 MB model takes well
/// under a second.
pub fn emit(model: &Int8Model) -> CModelFiles {
    let c = &model.config;
    let (kind, kind_name) = kind_macro(c.kind);
    let (arena, kv) = planned(model);
    let ram = ram_bytes(model);
    let weights = model.weight_bytes();
    let tied = match &model.net {
        Net::Transformer(t) => t.head_w.is_none(),
        Net::Recurrent(r) => r.head_w.is_none(),
    };

    // model.c body and embedding.h body; arrays are written as the structs are built.
    let mut body = String::with_capacity(6 * weights + 4096);
    let mut emb = String::with_capacity(5 * weights / 2 + 1024);
    let mut offs = Offsets::default();
    let (tf, rn) = match &model.net {
        Net::Transformer(t) => (
            transformer(&mut body, &mut emb, &mut offs, model, t),
            "NULL".to_string(),
        ),
        Net::Recurrent(r) => (
            "NULL".to_string(),
            recurrent(&mut body, &mut emb, &mut offs, model, r),
        ),
    };

    let mut h = String::new();
    let _ = write!(
        h,
        "/* model.h — generated by textzoo (deployment); do not edit.\n * Model: {kind_name}, \
         {weights} bytes of weights and constants (const, in flash).\n */\n\
         #ifndef TZ_MODEL_H\n#define TZ_MODEL_H\n\n#include \"textzoo_rt.h\"\n\n\
         #define TZ_KIND {kind}\n#define TZ_KIND_NAME \"{kind_name}\"\n\
         #define TZ_VOCAB_SIZE {}\n#define TZ_SEQ_LEN {}\n#define TZ_EMBED_DIM {}\n\
         #define TZ_NUM_HEADS {}\n#define TZ_HEAD_DIM {}\n#define TZ_NUM_LAYERS {}\n\
         #define TZ_FFN_DIM {}\n#define TZ_HIDDEN_DIM {}\n#define TZ_TIED_HEAD {}\n\
         #define TZ_WEIGHT_BYTES {weights}\n\n\
         /* Memory plan (textzoo-rt's planner): the activation arena, and the tiny_gpt KV cache\n \
         * or the gru/lstm state, which lives across steps. */\n\
         #define TZ_ARENA_BYTES {arena}\n#define TZ_KV_BYTES {kv}\n\
         /* RAM of all static buffers of textzoo_rt.c (arena, KV/state, logits, tokens). */\n\
         #define TZ_RAM_BYTES {}\n\n/* Arena offsets (bytes, {}-aligned). */\n{}\n\
         extern const tz_model TZ_MODEL;\n\n#endif /* TZ_MODEL_H */\n",
        c.vocab_size,
        c.seq_len,
        c.embed_dim,
        c.num_heads,
        c.embed_dim / c.num_heads.max(1),
        c.num_layers,
        c.ffn_dim,
        c.hidden_dim,
        u8::from(tied),
        ram.total(),
        plan::ALIGN,
        offs.defines,
    );

    let mut m = String::with_capacity(body.len() + 1024);
    let _ = write!(
        m,
        "/* model.c — generated by textzoo (deployment); do not edit. */\n\
         #include \"model.h\"\n\n#include <math.h>\n#include <stddef.h>\n\n\
         #include \"embedding.h\"\n\n{body}\n\
         const tz_model TZ_MODEL = {{\n    {kind}, {}, {}, {}, {}, {}, {}, {},\n    \
         {arena}, {kv},\n    {tf}, {rn}\n}};\n",
        c.vocab_size, c.seq_len, c.embed_dim, c.num_heads, c.num_layers, c.ffn_dim, c.hidden_dim,
    );

    let mut e = String::with_capacity(emb.len() + 512);
    let _ = write!(
        e,
        "/* embedding.h — generated by textzoo (deployment); do not edit.\n * Token (and \
         position) embedding tables; included by model.c only, so they are defined once. */\n\
         #ifndef TZ_EMBEDDING_H\n#define TZ_EMBEDDING_H\n\n#include <stdint.h>\n\n{emb}\n\
         #endif /* TZ_EMBEDDING_H */\n"
    );
    CModelFiles {
        model_h: h,
        model_c: m,
        embedding_h: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_floats_are_exact() {
        assert_eq!(hex_f32(0.0), "0.0f");
        assert_eq!(hex_f32(-0.0), "-0.0f");
        assert_eq!(hex_f32(1.0), "0x1p0f");
        assert_eq!(hex_f32(0.1875), "0x1.8p-3f");
        assert_eq!(hex_f32(-3.0), "-0x1.8p1f");
        assert_eq!(hex_f32(f32::from_bits(1)), "0x0.000002p-126f");
        assert_eq!(hex_f32(f32::MAX), "0x1.fffffep127f");
        assert_eq!(hex_f32(f32::INFINITY), "INFINITY");
        assert_eq!(lit_i32(i32::MIN), "(-2147483647 - 1)");
    }
}
