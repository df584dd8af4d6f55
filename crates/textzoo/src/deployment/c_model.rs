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

use super::c_arrays::{CArray, CArrays, Linkage};
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
/// `Int8Model::memory_bytes`; the C runtime must agree with `textzoo-rt` byte for byte).
/// Exactly the arrays `textzoo_rt.c` declares for `model` (its `TZ_MAX1` rounding included):
/// `int32_t tz_arena[max(1, ⌈arena/4⌉)]`, `int16_t tz_kv_state[max(1, ⌈kv/2⌉)]`,
/// `float tz_logits[V]`, `uint16_t tz_cached[T]`, `uint16_t tz_window[T]` (plus two scalars).
pub fn ram_bytes(model: &Int8Model) -> RamUse {
    let (arena, kv) = model.memory_bytes();
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

// Every weight array is `static const` in `model.c` (or in `embedding.h`, which only `model.c`
// includes); each helper returns how C refers to the array.

fn arr_i8(arrays: &mut CArrays, name: &str, v: &[i8]) -> String {
    arrays.add(&CArray::sized("int8_t", name, v.len(), 24), v)
}

fn arr_i16(arrays: &mut CArrays, name: &str, v: &[i16]) -> String {
    arrays.add(&CArray::sized("int16_t", name, v.len(), 16), v)
}

fn arr_i32(arrays: &mut CArrays, name: &str, v: &[i32]) -> String {
    let array = CArray::sized("int32_t", name, v.len(), 12);
    arrays.add(&array, v.iter().map(|&x| lit_i32(x)))
}

fn arr_f32(arrays: &mut CArrays, name: &str, v: &[f32]) -> String {
    let array = CArray::sized("float", name, v.len(), 6);
    arrays.add(&array, v.iter().map(|&x| hex_f32(x)))
}

/// A `static const` array of structs (`tz_blocks`, ...), one initializer each; `NULL` when
/// there are none.
fn struct_array(out: &mut String, ctype: &str, name: &str, items: &[String]) -> String {
    if items.is_empty() {
        return "NULL".into();
    }
    let _ = writeln!(
        out,
        "static const {ctype} {name}[{}] = {{\n{}\n}};",
        items.len(),
        items.join(",\n")
    );
    name.into()
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

fn layernorm(arrays: &mut CArrays, name: &str, ln: &LayerNorm) -> String {
    let a = arr_f32(arrays, &format!("{name}_a"), &ln.a);
    let b = arr_f32(arrays, &format!("{name}_b"), &ln.b);
    format!(
        "{{{a}, {b}, {}, {}}}",
        hex_f32(ln.var_scale),
        hex_f32(ln.eps)
    )
}

/// Row pairs of an int8 matrix `[rows][cols]` as the Cortex-M7 kernels read them
/// (`TZ_PAIRED_WEIGHTS` in `textzoo_rt.c`): rows `2p` and `2p + 1` (`a`, `b`; a zero row pads
/// an odd count) interleaved input by input as the int16 `a + 256 b`, little-endian, so byte
/// `2i` is `a[i]` and byte `2i + 1` is `b[i]` minus the borrow of a negative `a[i]`. One
/// SMLAD of that halfword pair with two inputs then sums `a·x + 256 b·x`, one SXTB16 recovers
/// the `a` bytes for a second SMLAD, and `b·x` is the difference over 256: four products for
/// one load, one extraction and two multiply-accumulates, instead of two extractions.
/// `None` when a pair does not fit int16 (`b[i] = -128` with `a[i] < 0`; textzoo's symmetric
/// weights stay within ±127, so only a foreign model can do that).
pub fn pair_rows(w: &[i8], cols: usize) -> Option<Vec<i8>> {
    if cols == 0 {
        return Some(Vec::new());
    }
    let rows = w.len() / cols;
    let mut out = Vec::with_capacity(rows.div_ceil(2) * 2 * cols);
    for p in 0..rows.div_ceil(2) {
        let a = &w[2 * p * cols..(2 * p + 1) * cols];
        let b = w.get((2 * p + 1) * cols..(2 * p + 2) * cols);
        for i in 0..cols {
            let v = i32::from(a[i]) + 256 * b.map_or(0, |b| i32::from(b[i]));
            let v = i16::try_from(v).ok()?;
            let [lo, hi] = v.to_le_bytes();
            out.extend([lo as i8, hi as i8]);
        }
    }
    Some(out)
}

/// An int8 weight matrix in both layouts, the target's compiler choosing one: row pairs
/// ([`pair_rows`]) under `TZ_PAIRED_WEIGHTS`, plain rows otherwise. `paired` is `None` when
/// the model cannot be paired (then model.h never defines `TZ_PAIRED_WEIGHTS`).
fn arr_matrix(arrays: &mut CArrays, name: &str, w: &[i8], cols: usize, paired: bool) -> String {
    let pairs = if paired { pair_rows(w, cols) } else { None };
    let Some(pairs) = pairs.filter(|p| !p.is_empty()) else {
        return arr_i8(arrays, name, w);
    };
    arrays.line("#if defined(TZ_PAIRED_WEIGHTS)");
    let dims = format!("[{}] TZ_PAIR_ALIGN", pairs.len());
    arrays.add(&CArray::new("int8_t", name, dims, 24), &pairs);
    arrays.line("#else");
    let plain = arr_i8(arrays, name, w);
    arrays.line("#endif");
    plain
}

/// Whether every matrix the transformer's kernels read can be paired ([`pair_rows`]).
fn pairable(t: &Transformer, c: usize) -> bool {
    let mut matrices: Vec<(&[i8], usize)> = vec![(&t.tok_emb, c)];
    if let Some(w) = &t.head_w {
        matrices.push((w, c));
    }
    for b in &t.blocks {
        for l in [&b.q, &b.k, &b.v, &b.proj, &b.up, &b.down] {
            matrices.push((&l.w, l.in_dim));
        }
    }
    matrices
        .iter()
        .all(|(w, cols)| pair_rows(w, *cols).is_some())
}

fn linear(arrays: &mut CArrays, name: &str, l: &Linear, paired: bool) -> String {
    let w = arr_matrix(arrays, &format!("{name}_w"), &l.w, l.in_dim, paired);
    let bias = arr_i32(arrays, &format!("{name}_bias"), &l.bias);
    let mult = arr_i32(arrays, &format!("{name}_mult"), &l.mult);
    let shift = arr_i32(arrays, &format!("{name}_shift"), &l.shift);
    format!(
        "{{{w}, {bias}, {mult}, {shift}, {}, {}}}",
        l.in_dim, l.out_dim
    )
}

fn requant(r: textzoo_rt::quant::Requant) -> String {
    format!("{{{}, {}}}", lit_i32(r.mult), lit_i32(r.shift))
}

fn block(arrays: &mut CArrays, l: usize, b: &Block, paired: bool) -> String {
    let p = format!("tz_b{l}");
    let ln1 = layernorm(arrays, &format!("{p}_ln1"), &b.ln1);
    let q = linear(arrays, &format!("{p}_q"), &b.q, paired);
    let k = linear(arrays, &format!("{p}_k"), &b.k, paired);
    let v = linear(arrays, &format!("{p}_v"), &b.v, paired);
    let proj = linear(arrays, &format!("{p}_proj"), &b.proj, paired);
    let ln2 = layernorm(arrays, &format!("{p}_ln2"), &b.ln2);
    let up = linear(arrays, &format!("{p}_up"), &b.up, paired);
    let gelu = arr_i8(arrays, &format!("{p}_gelu"), &b.gelu);
    let down = linear(arrays, &format!("{p}_down"), &b.down, paired);
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

/// What walking the network produces, in the order the files want it: `model.c`'s arrays and
/// then its structs (which point at the arrays), `embedding.h`'s tables, and the arena
/// offsets `model.h` defines.
struct Parts {
    arrays: CArrays,
    structs: String,
    embedding: CArrays,
    offsets: Offsets,
    /// The transformer's matrices also come as row pairs (`TZ_PAIRED_WEIGHTS`).
    paired: bool,
}

impl Parts {
    fn of(model: &Int8Model) -> Parts {
        let weights = model.weight_bytes();
        let mut parts = Parts {
            arrays: CArrays::new(Linkage::Internal, "", 6 * weights + 4096),
            structs: String::new(),
            embedding: CArrays::new(Linkage::Internal, "", 5 * weights / 2 + 1024),
            offsets: Offsets::default(),
            paired: false,
        };
        match &model.net {
            Net::Transformer(t) => parts.transformer(model, t),
            Net::Recurrent(r) => parts.recurrent(model, r),
        }
        parts
    }

    /// The transformer's arrays, its arena slots and `tz_net`.
    fn transformer(&mut self, model: &Int8Model, t: &Transformer) {
        let a = &mut self.arrays;
        let c = model.config.embed_dim;
        let paired = pairable(t, c);
        self.paired = paired;
        let tok = arr_matrix(&mut self.embedding, "tz_tok_emb", &t.tok_emb, c, paired);
        let pos = arr_i8(&mut self.embedding, "tz_pos_emb", &t.pos_emb);
        let tok_mult = arr_i32(a, "tz_tok_mult", &t.tok_mult);
        let tok_shift = arr_i32(a, "tz_tok_shift", &t.tok_shift);
        let pos_mult = arr_i32(a, "tz_pos_mult", &t.pos_mult);
        let pos_shift = arr_i32(a, "tz_pos_shift", &t.pos_shift);
        let blocks: Vec<String> = t
            .blocks
            .iter()
            .enumerate()
            .map(|(l, b)| block(a, l, b, paired))
            .collect();
        let ln_f = layernorm(a, "tz_lnf", &t.ln_f);
        let head_w = match &t.head_w {
            Some(w) => arr_matrix(a, "tz_head_w", w, c, paired),
            None => tok.clone(),
        };
        let head_bias = arr_i32(a, "tz_head_bias", &t.head_bias);
        let head_scale = arr_f32(a, "tz_head_scale", &t.head_scale);
        let exp_lut = arr_i32(a, "tz_exp_lut", &t.exp_lut);

        let (x0, slots, lnf) = transformer_slots(&mut self.offsets, &Layout::new(&model.config));
        let out = &mut self.structs;
        let blocks_ref = struct_array(out, "tz_block", "tz_blocks", &blocks);
        let slots_ref = struct_array(out, "tz_layer_slots", "tz_slots", &slots);
        let _ = writeln!(
            out,
            "static const tz_transformer tz_net = {{\n    {tok}, {tok_mult}, {tok_shift},\n    \
             {pos}, {pos_mult}, {pos_shift},\n    {},\n    {blocks_ref},\n    {ln_f},\n    \
             {head_w}, {head_bias}, {head_scale},\n    {exp_lut},\n    {x0}, {slots_ref}, \
             {lnf}\n}};",
            t.x0_zp
        );
    }

    /// The recurrent network's arrays, its arena slots and `tz_net`.
    fn recurrent(&mut self, model: &Int8Model, r: &Recurrent) {
        let layout = RnnLayout::new(&model.config);
        let a = &mut self.arrays;
        let offsets = &mut self.offsets;
        let tok = arr_i8(&mut self.embedding, "tz_tok_emb", &r.tok_emb);
        let layers: Vec<String> = r
            .layers
            .iter()
            .enumerate()
            .map(|(l, ly)| rnn_layer(a, offsets, l, ly, &layout))
            .collect();
        let head_w = match &r.head_w {
            Some(w) => arr_i8(a, "tz_head_w", w),
            None => tok.clone(),
        };
        let head_scale = arr_f32(a, "tz_head_scale", &r.head_scale);
        let head_bias = arr_f32(a, "tz_head_bias", &r.head_bias);
        let sig = arr_i16(a, "tz_sigmoid_lut", &r.sigmoid_lut);
        let tanh = arr_i16(a, "tz_tanh_lut", &r.tanh_lut);
        let x = offsets.slot("RNN_X", layout.x.0, layout.x.1);
        let head = offsets.slot("RNN_HEAD", layout.head.0, layout.head.1);
        let out = &mut self.structs;
        let layers_ref = struct_array(out, "tz_rnn_layer", "tz_rnn_layers", &layers);
        let _ = writeln!(
            out,
            "static const tz_recurrent tz_net = {{\n    {tok}, {layers_ref},\n    {head_w}, \
             {head_scale}, {head_bias},\n    {sig}, {tanh},\n    {x}, {head}\n}};"
        );
    }
}

/// A transformer's arena slots (`x0`, one initializer per layer, the final layer norm's), in
/// the order `model.h` defines their offsets.
fn transformer_slots(offs: &mut Offsets, layout: &Layout) -> (String, Vec<String>, String) {
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
    (x0, slots, lnf)
}

fn rnn_layer(
    arrays: &mut CArrays,
    offs: &mut Offsets,
    l: usize,
    ly: &RnnLayer,
    layout: &RnnLayout,
) -> String {
    let p = format!("tz_rnn{l}");
    let w_ih = arr_i8(arrays, &format!("{p}_w_ih"), &ly.w_ih);
    let ih_mult = arr_i32(arrays, &format!("{p}_ih_mult"), &ly.ih_mult);
    let ih_shift = arr_i32(arrays, &format!("{p}_ih_shift"), &ly.ih_shift);
    let w_hh = arr_i8(arrays, &format!("{p}_w_hh"), &ly.w_hh);
    let hh_mult = arr_i32(arrays, &format!("{p}_hh_mult"), &ly.hh_mult);
    let hh_shift = arr_i32(arrays, &format!("{p}_hh_shift"), &ly.hh_shift);
    let bias = arr_i32(arrays, &format!("{p}_bias"), &ly.bias);
    let bias_hn = arr_i32(arrays, &format!("{p}_bias_hn"), &ly.bias_hn);
    let ih = offs.slot(&format!("RNN{l}_IH"), layout.ih[l].0, layout.ih[l].1);
    let hh = offs.slot(&format!("RNN{l}_HH"), layout.hh[l].0, layout.hh[l].1);
    format!(
        "    {{{}, {w_ih}, {ih_mult}, {ih_shift}, {w_hh}, {hh_mult}, {hh_shift}, {bias}, \
         {bias_hn}, {}, {ih}, {hh}}}",
        ly.in_dim, ly.cell_bits
    )
}

// ----------------------------------------------------------------------------
// The files

/// Writes `model` as C (see the module notes). Pure formatting: a 1.6 MB model takes well
/// under a second.
pub fn emit(model: &Int8Model) -> CModelFiles {
    let parts = Parts::of(model);
    CModelFiles {
        model_h: model_h(model, &parts.offsets.defines, parts.paired),
        model_c: model_c(model, &parts),
        embedding_h: embedding_h(parts.embedding.definitions()),
    }
}

/// `model.h`: the sizes, the memory plan with the arena offsets, and `TZ_MODEL`.
fn model_h(model: &Int8Model, offsets: &str, paired: bool) -> String {
    let c = &model.config;
    let (kind, kind_name) = kind_macro(c.kind);
    let (arena, kv) = model.memory_bytes();
    let weights = model.weight_bytes();
    let tied = match &model.net {
        Net::Transformer(t) => t.head_w.is_none(),
        Net::Recurrent(r) => r.head_w.is_none(),
    };
    format!(
        "/* model.h — generated by textzoo (deployment); do not edit.\n * Model: {kind_name}, \
         {weights} bytes of weights and constants (const, in flash).\n */\n\
         #ifndef TZ_MODEL_H\n#define TZ_MODEL_H\n\n#include \"textzoo_rt.h\"\n\n\
         #define TZ_KIND {kind}\n#define TZ_KIND_NAME \"{kind_name}\"\n\
         #define TZ_VOCAB_SIZE {}\n#define TZ_SEQ_LEN {}\n#define TZ_EMBED_DIM {}\n\
         #define TZ_NUM_HEADS {}\n#define TZ_HEAD_DIM {}\n#define TZ_NUM_LAYERS {}\n\
         #define TZ_FFN_DIM {}\n#define TZ_HIDDEN_DIM {}\n#define TZ_TIED_HEAD {}\n\
         #define TZ_WEIGHT_BYTES {weights}\n\n{}\
         /* Memory plan (textzoo-rt's planner): the activation arena, and the tiny_gpt KV cache\n \
         * or the gru/lstm state, which lives across steps. */\n\
         #define TZ_ARENA_BYTES {arena}\n#define TZ_KV_BYTES {kv}\n\
         /* RAM of all static buffers of textzoo_rt.c (arena, KV/state, logits, tokens). */\n\
         #define TZ_RAM_BYTES {}\n\n/* Arena offsets (bytes, {}-aligned). */\n{offsets}\n\
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
        paired_macro(paired),
        ram_bytes(model).total(),
        plan::ALIGN,
    )
}

/// `model.h`'s choice of weight layout: row pairs where the runtime has the kernels for them.
fn paired_macro(paired: bool) -> &'static str {
    if paired {
        "/* The transformer's int8 matrices as row pairs on targets with SMLAD but no Helium\n \
         * (Cortex-M7, Cortex-A7; TZ_PAIRED_TARGET in textzoo_rt.h): same flash, fewer\n \
         * instructions per product. model.c holds both layouts; -DTZ_PLAIN_WEIGHTS picks the\n \
         * plain rows everywhere. */\n\
         #if defined(TZ_PAIRED_TARGET) && !defined(TZ_PLAIN_WEIGHTS)\n#define TZ_PAIRED_WEIGHTS 1\n#endif\n\n"
    } else {
        "/* Plain weight rows only (a recurrent model, or a matrix with a -128 that row pairs\n \
         * cannot hold). */\n\n"
    }
}

/// `model.c`: the weight arrays, the network's structs and `TZ_MODEL`.
fn model_c(model: &Int8Model, parts: &Parts) -> String {
    let c = &model.config;
    let (kind, _) = kind_macro(c.kind);
    let (arena, kv) = model.memory_bytes();
    let (tf, rn) = match model.net {
        Net::Transformer(_) => ("&tz_net", "NULL"),
        Net::Recurrent(_) => ("NULL", "&tz_net"),
    };
    let arrays = parts.arrays.definitions();
    let mut m = String::with_capacity(arrays.len() + parts.structs.len() + 1024);
    let _ = write!(
        m,
        "/* model.c — generated by textzoo (deployment); do not edit. */\n\
         #include \"model.h\"\n\n#include <math.h>\n#include <stddef.h>\n\n\
         #include \"embedding.h\"\n\n{arrays}{}\n\
         const tz_model TZ_MODEL = {{\n    {kind}, {}, {}, {}, {}, {}, {}, {},\n    \
         {arena}, {kv},\n    {tf}, {rn}\n}};\n",
        parts.structs,
        c.vocab_size,
        c.seq_len,
        c.embed_dim,
        c.num_heads,
        c.num_layers,
        c.ffn_dim,
        c.hidden_dim,
    );
    m
}

/// `embedding.h`: the token (and position) embedding tables.
fn embedding_h(tables: &str) -> String {
    let mut e = String::with_capacity(tables.len() + 512);
    let _ = write!(
        e,
        "/* embedding.h — generated by textzoo (deployment); do not edit.\n * Token (and \
         position) embedding tables; included by model.c only, so they are defined once. */\n\
         #ifndef TZ_EMBEDDING_H\n#define TZ_EMBEDDING_H\n\n#include <stdint.h>\n\n{tables}\n\
         #endif /* TZ_EMBEDDING_H */\n"
    );
    e
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
