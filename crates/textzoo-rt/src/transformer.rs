//! The int8 pre-LN Transformer (`tiny_gpt` and `tiny_bert_generator`), mirroring the float
//! graph of `textzoo::models::transformer` op for op:
//!
//! ```text
//! x0 = emb(tok) + emb(pos)
//! per block:  ln1 → q, k, v → attention → proj ⊕ x → res2 → ln2 → up → GELU lut → down ⊕ res2 → y
//! ln_f → head → int32 accumulators → float logits (one multiplication each)
//! ```
//!
//! `tiny_gpt` writes its keys and values into an int8 **KV cache** (`State::k`, `State::v`,
//! `[layers][seq_len][C]`), so a decoding step runs one row through the blocks. Integer
//! arithmetic is exact and every kernel works row by row, so a step gives bit-for-bit the
//! logits of recomputing the whole window.
//!
//! **Context longer than `seq_len`** (positions are learned embeddings `0..seq_len`): when the
//! cache is full, [`Decoder`] re-prefills the last `keep` tokens and continues step by step.
//! `keep = seq_len − 1` (the default, used by evaluation and prediction) gives exactly the
//! sliding-window semantics of the float model (the model always sees the last `seq_len`
//! tokens) at the cost of one prefill per token once the window is full; a device can choose
//! `keep = seq_len / 2`, which amortises the prefill over `seq_len / 2` cheap steps at the
//! price of a shorter context right after each restart.
//!
//! `tiny_bert_generator` runs whole windows (no cache); its last block computes keys and
//! values for every row but the query, attention, projection and FFN for the last row only.
//!
//! **Memory.** Every activation lives in one arena whose layout [`Layout`] computes with the
//! memory planner (`crate::plan`) from the tensors' lifetimes; the KV cache is a separate
//! buffer (it outlives a forward pass). Both are allocated once by [`State::new`] (the C twin:
//! `static` arrays); `prefill` and `step` allocate nothing.

use crate::kernels::{self, Epilogue};
use crate::model::{Block, Linear, Transformer};
use crate::model_config::{Kind, ModelConfig};
use crate::plan::{self, Plan};
use crate::quant::Requant;

// ----------------------------------------------------------------------------
// Activation arena

/// Where one tensor lives in the arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub offset: usize,
    pub bytes: usize,
}

/// One block's arena tensors, in schedule order (also the order of the C runtime's
/// `tz_layer_slots` fields, whose offsets model.h defines as `TZ_OFF_B<l>_<NAME>`). `K`/`V`
/// are arena tensors for `tiny_bert_generator` only (`tiny_gpt` keeps them in its KV cache,
/// so their slots are empty); `Scores`, `Probs`, `Ksum` and `PvAcc` are the attention's
/// scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTensor {
    Ln1,
    K,
    V,
    Q,
    Scores,
    Probs,
    Ksum,
    PvAcc,
    Att,
    Res2,
    Ln2,
    H,
    /// The block's output (the next block's input).
    Y,
}

impl BlockTensor {
    pub const ALL: [BlockTensor; 13] = [
        BlockTensor::Ln1,
        BlockTensor::K,
        BlockTensor::V,
        BlockTensor::Q,
        BlockTensor::Scores,
        BlockTensor::Probs,
        BlockTensor::Ksum,
        BlockTensor::PvAcc,
        BlockTensor::Att,
        BlockTensor::Res2,
        BlockTensor::Ln2,
        BlockTensor::H,
        BlockTensor::Y,
    ];

    /// The tensor's name in the schedule (`blocks.<l>.<name>`) and, upper-cased, in model.h.
    pub fn name(self) -> &'static str {
        match self {
            BlockTensor::Ln1 => "ln1",
            BlockTensor::K => "k",
            BlockTensor::V => "v",
            BlockTensor::Q => "q",
            BlockTensor::Scores => "scores",
            BlockTensor::Probs => "probs",
            BlockTensor::Ksum => "ksum",
            BlockTensor::PvAcc => "pv_acc",
            BlockTensor::Att => "att",
            BlockTensor::Res2 => "res2",
            BlockTensor::Ln2 => "ln2",
            BlockTensor::H => "h",
            BlockTensor::Y => "y",
        }
    }

    /// Bytes and lifetime: written by the first operator, last read by the second (`None`:
    /// the block's output, alive until the next block's residual or the final layer norm has
    /// read it).
    fn spec(self, d: &BlockDims) -> (usize, Op, Option<Op>) {
        use BlockTensor as T;
        let (t, c) = (d.seq_len, d.embed_dim);
        match self {
            T::Ln1 => (t * c, Op::Ln1, Some(Op::Q)),
            T::K => (d.kv_bytes, Op::K, Some(Op::Attention)),
            T::V => (d.kv_bytes, Op::V, Some(Op::Attention)),
            T::Q => (d.rows * c, Op::Q, Some(Op::Attention)),
            T::Scores => (4 * t, Op::Attention, Some(Op::Attention)),
            T::Probs => (t, Op::Attention, Some(Op::Attention)),
            T::Ksum => (4 * t, Op::Attention, Some(Op::Attention)),
            T::PvAcc => (4 * d.head_dim, Op::Attention, Some(Op::Attention)),
            T::Att => (d.rows * c, Op::Attention, Some(Op::Proj)),
            T::Res2 => (d.rows * c, Op::Proj, Some(Op::Down)),
            T::Ln2 => (d.rows * c, Op::Ln2, Some(Op::Up)),
            T::H => (d.rows * d.ffn_dim, Op::Up, Some(Op::Down)),
            T::Y => (d.rows * c, Op::Down, None),
        }
    }
}

/// A block's operators in execution order: block `l`'s operator `op` is operator
/// `1 + OPS·l + op` of the forward pass (0 is the embedding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ln1,
    K,
    V,
    Q,
    Attention,
    /// Output projection ⊕ the block input (its second reader, after `Ln1`).
    Proj,
    Ln2,
    /// Up-projection with the GELU table.
    Up,
    /// Down-projection ⊕ `res2`.
    Down,
}

const OPS: usize = 9;

/// The sizes one block's tensors are planned for.
struct BlockDims {
    seq_len: usize,
    embed_dim: usize,
    ffn_dim: usize,
    head_dim: usize,
    /// Rows past keys and values (one in `tiny_bert_generator`'s last block).
    rows: usize,
    /// Bytes of the arena's keys (and values): `tiny_bert_generator` only.
    kv_bytes: usize,
}

/// The arena slots of one block's tensors, read by name: `slots[BlockTensor::Q]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerSlots([Slot; BlockTensor::ALL.len()]);

impl std::ops::Index<BlockTensor> for LayerSlots {
    type Output = Slot;
    fn index(&self, t: BlockTensor) -> &Slot {
        &self.0[t as usize]
    }
}

/// The schedule of a Transformer's forward pass as a list of tensors with lifetimes, its
/// memory plan, and the resulting slots (the generated C's `#define` offsets).
///
/// Operators, in order: `0` embedding → `x0`; per block `l` the [`Op`]s from `1 + 9l` (`ln1`,
/// `k`, `v`, `q`, attention, projection ⊕ residual → `res2`, `ln2`, up + GELU → `h`,
/// down ⊕ residual → `y`); then `ln_f` and the head (whose logits are the caller's output
/// buffer, outside the arena). Tensors are sized for a full window (`seq_len` rows);
/// `tiny_bert_generator`'s last block carries one row past its keys and values.
#[derive(Debug, Clone)]
pub struct Layout {
    pub x0: Slot,
    pub layers: Vec<LayerSlots>,
    pub lnf: Slot,
    /// Tensor names, lifetimes and the plan (same order).
    pub names: Vec<String>,
    pub tensors: Vec<plan::Tensor>,
    pub plan: Plan,
    /// The lower bound of any plan (the planner reaches it; tested).
    pub peak_bytes: usize,
    /// `tiny_gpt`'s KV cache `[layers][2][seq_len][C]` int8, a separate static buffer that
    /// lives across decoding steps (0 for `tiny_bert_generator`).
    pub kv_cache_bytes: usize,
}

/// The named tensors of a forward pass with their lifetimes, before planning.
struct Schedule {
    names: Vec<String>,
    tensors: Vec<plan::Tensor>,
}

impl Schedule {
    fn new(cfg: &ModelConfig) -> Schedule {
        let (t, c) = (cfg.seq_len, cfg.embed_dim);
        let bert = cfg.kind == Kind::TinyBertGenerator;
        let layers = cfg.num_layers;
        let head_op = 1 + OPS * layers;
        // x_l is read by block l's ln1 and its residual, or by ln_f.
        let reader = |l: usize| {
            if l < layers {
                1 + OPS * l + Op::Proj as usize
            } else {
                head_op
            }
        };
        let mut s = Schedule {
            names: Vec::new(),
            tensors: Vec::new(),
        };
        s.add("x0".into(), t * c, 0, reader(0));
        for l in 0..layers {
            let o = 1 + OPS * l;
            let d = BlockDims {
                seq_len: t,
                embed_dim: c,
                ffn_dim: cfg.ffn_dim,
                head_dim: c / cfg.num_heads,
                rows: if bert && l + 1 == layers { 1 } else { t },
                kv_bytes: if bert { t * c } else { 0 },
            };
            for n in BlockTensor::ALL {
                let (bytes, first, last) = n.spec(&d);
                let last = last.map_or(reader(l + 1), |op| o + op as usize);
                s.add(
                    format!("blocks.{l}.{}", n.name()),
                    bytes,
                    o + first as usize,
                    last,
                );
            }
        }
        let rh = if bert { 1 } else { t };
        s.add("ln_f".into(), rh * c, head_op, head_op + 1);
        s
    }

    fn add(&mut self, name: String, bytes: usize, first: usize, last: usize) {
        self.names.push(name);
        self.tensors.push(plan::Tensor::new(bytes, first, last));
    }
}

impl Layout {
    pub fn new(cfg: &ModelConfig) -> Layout {
        let Schedule { names, tensors } = Schedule::new(cfg);
        let plan = plan::plan(&tensors);
        let slot = |i: usize| Slot {
            offset: plan.offsets[i],
            bytes: tensors[i].bytes,
        };
        // Tensor order: x0, the blocks' tensors, ln_f.
        let per = BlockTensor::ALL.len();
        let layers = (0..cfg.num_layers)
            .map(|l| LayerSlots(std::array::from_fn(|j| slot(1 + per * l + j))))
            .collect();
        let bert = cfg.kind == Kind::TinyBertGenerator;
        let (t, c) = (cfg.seq_len, cfg.embed_dim);
        Layout {
            x0: slot(0),
            layers,
            lnf: slot(tensors.len() - 1),
            peak_bytes: plan::peak(&tensors),
            kv_cache_bytes: if bert { 0 } else { 2 * cfg.num_layers * t * c },
            names,
            tensors,
            plan,
        }
    }

    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes
    }

    /// The block input of layer `l` (`x0` or the previous block's output).
    fn input(&self, l: usize) -> Slot {
        if l == 0 {
            self.x0
        } else {
            self.layers[l - 1][BlockTensor::Y]
        }
    }

    /// The final hidden state (input of `ln_f`).
    fn last(&self) -> Slot {
        self.input(self.layers.len())
    }
}

/// Typed views of arena slots. A view is used only while its tensor is alive (from the
/// operator that writes it to the last that reads it); the views of one operator are tensors
/// alive at that operator, which the plan keeps disjoint (`plan::check`, run once in
/// [`State::new`]).
struct Arena(*mut u8);

impl Arena {
    /// # Safety
    /// No other view in use may overlap `s` (see the type notes), and `len` must fit.
    unsafe fn i8<'a>(&self, s: Slot, len: usize) -> &'a mut [i8] {
        assert!(len <= s.bytes);
        std::slice::from_raw_parts_mut(self.0.add(s.offset) as *mut i8, len)
    }
    /// # Safety
    /// As [`Arena::i8`].
    unsafe fn u8<'a>(&self, s: Slot, len: usize) -> &'a mut [u8] {
        assert!(len <= s.bytes);
        std::slice::from_raw_parts_mut(self.0.add(s.offset), len)
    }
    /// # Safety
    /// As [`Arena::i8`] (offsets are multiples of `plan::ALIGN` in an 8-aligned arena).
    unsafe fn i32<'a>(&self, s: Slot, len: usize) -> &'a mut [i32] {
        assert!(4 * len <= s.bytes);
        std::slice::from_raw_parts_mut(self.0.add(s.offset) as *mut i32, len)
    }
}

/// One model instance's memory: the activation arena (one allocation, made once), the
/// `tiny_gpt` KV cache and the logits of the last row.
#[derive(Debug, Clone)]
pub struct State {
    /// The model sizes this state was planned for.
    pub config: ModelConfig,
    arena: Vec<u64>,
    pub layout: Layout,
    /// KV cache `[layers][2][seq_len][C]` (`tiny_gpt`; empty for `tiny_bert_generator`).
    pub kv: Vec<i8>,
    /// Logits of the last row computed.
    pub logits: Vec<f32>,
    /// Tokens whose keys and values are in the cache (`tiny_gpt`).
    pub len: usize,
}

impl State {
    pub fn new(cfg: &ModelConfig) -> State {
        let layout = Layout::new(cfg);
        if let Err(e) = plan::check(&layout.tensors, &layout.plan) {
            panic!("internal error: invalid memory plan: {e}");
        }
        State {
            config: cfg.clone(),
            arena: vec![0; layout.arena_bytes().div_ceil(8)],
            kv: vec![0; layout.kv_cache_bytes],
            layout,
            logits: vec![0.0; cfg.vocab_size],
            len: 0,
        }
    }

    /// Bytes of the activation arena.
    pub fn arena_bytes(&self) -> usize {
        self.layout.arena_bytes()
    }

    fn arena(&mut self) -> Arena {
        Arena(self.arena.as_mut_ptr() as *mut u8)
    }
}

// ----------------------------------------------------------------------------
// Forward pieces

fn embed(m: &Transformer, c: usize, out: &mut [i8], tokens: &[u32], pos0: usize) {
    for (r, &tok) in tokens.iter().enumerate() {
        let (tok, pos) = (tok as usize, pos0 + r);
        let tr = Requant {
            mult: m.tok_mult[tok],
            shift: m.tok_shift[tok],
        };
        let pr = Requant {
            mult: m.pos_mult[pos],
            shift: m.pos_shift[pos],
        };
        kernels::add2_row(
            &mut out[r * c..(r + 1) * c],
            &m.tok_emb[tok * c..(tok + 1) * c],
            tr,
            &m.pos_emb[pos * c..(pos + 1) * c],
            pr,
            m.x0_zp,
        );
    }
}

fn requant(l: &Linear, zp: i32) -> Epilogue<'_> {
    Epilogue::Requant {
        mult: &l.mult,
        shift: &l.shift,
        zp,
    }
}

/// Which rows one block runs: `rows` rows, whose keys/values go to rows `kv0..kv0 + rows` of
/// the layer's cache (or its arena slots); attention sees rows `0..kv0 + rows`. With
/// `last_only`, only the last row goes past K/V.
#[derive(Debug, Clone, Copy)]
struct Pass {
    rows: usize,
    kv0: usize,
    causal: bool,
    last_only: bool,
}

impl Pass {
    /// The rows that go past K/V: (how many, index of the first).
    fn query_rows(&self) -> (usize, usize) {
        if self.last_only {
            (1, self.rows - 1)
        } else {
            (self.rows, 0)
        }
    }
}

/// One block's arena tensors, viewed by name.
struct BlockArena {
    ar: Arena,
    slots: LayerSlots,
    /// The block input (`x0` or the previous block's `y`).
    input: Slot,
}

impl BlockArena {
    /// # Safety
    /// As [`Arena::i8`]: the views in use are tensors alive at the current operator.
    unsafe fn i8<'a>(&self, t: BlockTensor, len: usize) -> &'a mut [i8] {
        self.ar.i8(self.slots[t], len)
    }
    /// # Safety
    /// As [`Arena::u8`].
    unsafe fn u8<'a>(&self, t: BlockTensor, len: usize) -> &'a mut [u8] {
        self.ar.u8(self.slots[t], len)
    }
    /// # Safety
    /// As [`Arena::i32`].
    unsafe fn i32<'a>(&self, t: BlockTensor, len: usize) -> &'a mut [i32] {
        self.ar.i32(self.slots[t], len)
    }
    /// # Safety
    /// As [`Arena::i8`] (the input is alive until the block's residual).
    unsafe fn input<'a>(&self, len: usize) -> &'a mut [i8] {
        self.ar.i8(self.input, len)
    }
}

/// Block `layer`: the attention phase, then the FFN phase, from its input slot to its output
/// slot.
fn block(b: &Block, s: &mut State, layer: usize, cfg: &ModelConfig, exp_lut: &[i32], p: Pass) {
    let (c, t) = (cfg.embed_dim, cfg.seq_len);
    let a = BlockArena {
        slots: s.layout.layers[layer],
        input: s.layout.input(layer),
        ar: s.arena(),
    };
    let (kc, vc): (&mut [i8], &mut [i8]) = if cfg.kind == Kind::TinyGpt {
        s.kv[2 * layer * t * c..(2 * layer + 2) * t * c].split_at_mut(t * c)
    } else {
        // SAFETY: k and v are alive from their projections to the attention, disjoint from
        // each other and from every tensor used in between.
        unsafe { (a.i8(BlockTensor::K, t * c), a.i8(BlockTensor::V, t * c)) }
    };
    attention(b, &a, kc, vc, cfg, exp_lut, p);
    ffn(b, &a, cfg, p.query_rows().0);
}

/// The attention phase: `ln1` of the input → keys and values (into `kc`/`vc` at row `kv0`) and
/// queries → attention → `att` → output projection ⊕ the block input → `res2`.
fn attention(
    b: &Block,
    a: &BlockArena,
    kc: &mut [i8],
    vc: &mut [i8],
    cfg: &ModelConfig,
    exp_lut: &[i32],
    p: Pass,
) {
    use BlockTensor as T;
    let c = cfg.embed_dim;
    let n = p.rows * c;
    let (q_rows, first) = p.query_rows();
    let m = q_rows * c;
    let fc = |out: &mut [i8], x: &[i8], l: &Linear, zp, rows| {
        kernels::fc(
            out,
            x,
            &l.w,
            &l.bias,
            rows,
            l.in_dim,
            l.out_dim,
            &requant(l, zp),
        )
    };
    // SAFETY (every arena view below): the views of one operator are tensors alive at that
    // operator, disjoint by the checked plan.
    unsafe {
        let ln1 = a.i8(T::Ln1, n);
        let ln = &b.ln1;
        kernels::layernorm(
            ln1,
            a.input(n),
            &ln.a,
            &ln.b,
            ln.var_scale,
            ln.eps,
            p.rows,
            c,
        );
        fc(&mut kc[p.kv0 * c..], ln1, &b.k, b.attn.k_zp, p.rows);
        fc(&mut vc[p.kv0 * c..], ln1, &b.v, b.attn.v_zp, p.rows);
        let q = a.i8(T::Q, m);
        fc(q, &ln1[first * c..n], &b.q, b.attn.q_zp, q_rows);
        let n_keys = p.kv0 + p.rows;
        kernels::attention(
            a.i8(T::Att, m),
            q,
            kc,
            vc,
            q_rows,
            p.kv0 + first,
            n_keys,
            p.causal,
            &b.attn,
            exp_lut,
            &mut kernels::AttnScratch {
                scores: a.i32(T::Scores, n_keys),
                probs: a.u8(T::Probs, n_keys),
                ksum: a.i32(T::Ksum, n_keys),
                acc: a.i32(T::PvAcc, c / cfg.num_heads),
            },
        );
        kernels::fc(
            a.i8(T::Res2, m),
            a.i8(T::Att, m),
            &b.proj.w,
            &b.proj.bias,
            q_rows,
            c,
            c,
            &Epilogue::Residual {
                mult: &b.proj.mult,
                shift: &b.proj.shift,
                res: &a.input(n)[first * c..],
                res_zp: b.x_zp,
                res_rq: b.res1,
                zp: b.res2_zp,
            },
        );
    }
}

/// The FFN phase on `rows` rows: `ln2` of `res2` → up-projection and GELU table → `h` →
/// down-projection ⊕ `res2` → `y`.
fn ffn(b: &Block, a: &BlockArena, cfg: &ModelConfig, rows: usize) {
    use BlockTensor as T;
    let (c, f) = (cfg.embed_dim, cfg.ffn_dim);
    let m = rows * c;
    // SAFETY: as in `attention`.
    unsafe {
        let ln = &b.ln2;
        let res2 = a.i8(T::Res2, m);
        let ln2 = a.i8(T::Ln2, m);
        kernels::layernorm(ln2, res2, &ln.a, &ln.b, ln.var_scale, ln.eps, rows, c);
        let h = a.i8(T::H, rows * f);
        kernels::fc(
            h,
            ln2,
            &b.up.w,
            &b.up.bias,
            rows,
            c,
            f,
            &Epilogue::Lut {
                mult: &b.up.mult,
                shift: &b.up.shift,
                zp: b.up_zp,
                lut: &b.gelu,
            },
        );
        kernels::fc(
            a.i8(T::Y, m),
            h,
            &b.down.w,
            &b.down.bias,
            rows,
            f,
            c,
            &Epilogue::Residual {
                mult: &b.down.mult,
                shift: &b.down.shift,
                res: res2,
                res_zp: b.res2_zp,
                res_rq: b.res2,
                zp: b.y_zp,
            },
        );
    }
}

/// Final layer norm and head on rows `x_row0..x_row0 + rows` of the last hidden state,
/// logits into `out[rows, vocab]`.
fn head(
    m: &Transformer,
    cfg: &ModelConfig,
    s: &mut State,
    x_row0: usize,
    rows: usize,
    out: &mut [f32],
) {
    let (c, v) = (cfg.embed_dim, cfg.vocab_size);
    let (xs, lnf) = (s.layout.last(), s.layout.lnf);
    let ar = s.arena();
    // SAFETY: ln_f's input and output are alive together, disjoint by the plan.
    unsafe {
        let x = ar.i8(xs, (x_row0 + rows) * c);
        let ln = ar.i8(lnf, rows * c);
        kernels::layernorm(
            ln,
            &x[x_row0 * c..],
            &m.ln_f.a,
            &m.ln_f.b,
            m.ln_f.var_scale,
            m.ln_f.eps,
            rows,
            c,
        );
        kernels::fc_logits(
            out,
            ln,
            m.head_weight(),
            &m.head_bias,
            &m.head_scale,
            rows,
            c,
            v,
        );
    }
}

/// Runs `tokens` (at positions `pos0..`) through every block. `tiny_gpt`: causal, keys and
/// values appended to the cache at `kv0`. `tiny_bert_generator`: one window, last-row block
/// at the end (its output has one row; with no blocks, the head reads the window's last row).
fn blocks(
    m: &Transformer,
    cfg: &ModelConfig,
    s: &mut State,
    tokens: &[u32],
    pos0: usize,
    kv0: usize,
) {
    let c = cfg.embed_dim;
    let x0 = s.layout.x0;
    let ar = s.arena();
    // SAFETY: x0 is the only tensor of the embedding operator.
    embed(m, c, unsafe { ar.i8(x0, tokens.len() * c) }, tokens, pos0);
    let bert = cfg.kind == Kind::TinyBertGenerator;
    let layers = m.blocks.len();
    for (l, b) in m.blocks.iter().enumerate() {
        let pass = Pass {
            rows: tokens.len(),
            kv0,
            causal: !bert,
            last_only: bert && l + 1 == layers,
        };
        block(b, s, l, cfg, &m.exp_lut, pass);
    }
}

// ----------------------------------------------------------------------------
// Public entry points

/// The int8 embedded window `x0[len, C]` of `tokens` at positions `0..len`: what a graph that
/// leaves the embedding outside (the TFLite export without embedding) takes as its input.
pub fn embed_window(m: &Transformer, cfg: &ModelConfig, tokens: &[u32]) -> Result<Vec<i8>, String> {
    if tokens.len() > cfg.seq_len {
        return Err(format!(
            "window of {} tokens (at most {})",
            tokens.len(),
            cfg.seq_len
        ));
    }
    check_tokens(cfg, tokens)?;
    let c = cfg.embed_dim;
    let mut out = vec![0i8; tokens.len() * c];
    embed(m, c, &mut out, tokens, 0);
    Ok(out)
}

/// Checks tokens against the vocabulary (a bad token id is the caller's error, not a panic
/// deep in a kernel).
/// A state planned for other sizes would read outside its arena: refused.
fn check_state(cfg: &ModelConfig, s: &State) -> Result<(), String> {
    if s.config != *cfg {
        return Err("activation state was built for another model configuration".into());
    }
    Ok(())
}

fn check_tokens(cfg: &ModelConfig, tokens: &[u32]) -> Result<(), String> {
    match tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
        Some(t) => Err(format!(
            "token id {t} outside the vocabulary of {}",
            cfg.vocab_size
        )),
        None => Ok(()),
    }
}

/// Logits of one window (`1 ≤ len ≤ seq_len`) into `out`: `[len, vocab]` for `tiny_gpt`
/// (which also leaves the window in the KV cache), `[1, vocab]` for `tiny_bert_generator`
/// (a short window sits at the last positions, as in the float model).
pub fn window_logits(
    m: &Transformer,
    cfg: &ModelConfig,
    s: &mut State,
    tokens: &[u32],
    out: &mut [f32],
) -> Result<(), String> {
    let n = tokens.len();
    if !(1..=cfg.seq_len).contains(&n) {
        return Err(format!(
            "window of {n} tokens (1..={} allowed)",
            cfg.seq_len
        ));
    }
    check_tokens(cfg, tokens)?;
    check_state(cfg, s)?;
    match cfg.kind {
        Kind::TinyGpt => {
            blocks(m, cfg, s, tokens, 0, 0);
            s.len = n;
            head(m, cfg, s, 0, n, out);
        }
        _ => {
            blocks(m, cfg, s, tokens, cfg.seq_len - n, 0);
            // The last block leaves one row; with no blocks the window's last row is read.
            let row = if m.blocks.is_empty() { n - 1 } else { 0 };
            head(m, cfg, s, row, 1, out);
        }
    }
    Ok(())
}

/// `tiny_gpt` decoding with the KV cache and the context policy described in the module notes.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub state: State,
    /// The tokens whose keys and values are in the cache.
    pub tokens: Vec<u32>,
    /// Tokens kept when the cache is full (`1..seq_len`).
    pub keep: usize,
    /// Scratch for a re-prefill (allocated once).
    window: Vec<u32>,
}

impl Decoder {
    pub fn new(cfg: &ModelConfig) -> Decoder {
        Decoder {
            state: State::new(cfg),
            tokens: Vec::with_capacity(cfg.seq_len),
            keep: cfg.seq_len.saturating_sub(1).max(1),
            window: Vec::with_capacity(cfg.seq_len),
        }
    }

    /// Resets the cache and runs `tokens` (`1..=seq_len`); the last row's logits are in
    /// `state.logits`.
    pub fn prefill(
        &mut self,
        m: &Transformer,
        cfg: &ModelConfig,
        tokens: &[u32],
    ) -> Result<&[f32], String> {
        let n = tokens.len();
        if !(1..=cfg.seq_len).contains(&n) {
            return Err(format!(
                "prefill of {n} tokens (1..={} allowed)",
                cfg.seq_len
            ));
        }
        check_tokens(cfg, tokens)?;
        check_state(cfg, &self.state)?;
        let s = &mut self.state;
        blocks(m, cfg, s, tokens, 0, 0);
        s.len = n;
        let mut logits = std::mem::take(&mut s.logits);
        head(m, cfg, s, n - 1, 1, &mut logits);
        s.logits = logits;
        self.tokens.clear();
        self.tokens.extend_from_slice(tokens);
        Ok(&self.state.logits)
    }

    /// Appends one token: one incremental step while the cache has room, otherwise a
    /// re-prefill of the last `keep` tokens followed by the step.
    pub fn step(
        &mut self,
        m: &Transformer,
        cfg: &ModelConfig,
        token: u32,
    ) -> Result<&[f32], String> {
        check_tokens(cfg, &[token])?;
        if self.tokens.is_empty() {
            return self.prefill(m, cfg, &[token]);
        }
        if self.tokens.len() == cfg.seq_len {
            let keep = self.keep.clamp(1, cfg.seq_len - 1);
            let mut window = std::mem::take(&mut self.window);
            window.clear();
            window.extend_from_slice(&self.tokens[cfg.seq_len - keep..]);
            window.push(token);
            let done = self.prefill(m, cfg, &window).map(|_| ());
            self.window = window;
            done?;
            return Ok(&self.state.logits);
        }
        let pos = self.tokens.len();
        check_state(cfg, &self.state)?;
        let s = &mut self.state;
        blocks(m, cfg, s, &[token], pos, pos);
        s.len = pos + 1;
        let mut logits = std::mem::take(&mut s.logits);
        head(m, cfg, s, 0, 1, &mut logits);
        s.logits = logits;
        self.tokens.push(token);
        Ok(&self.state.logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: Kind, t: usize, c: usize, heads: usize, layers: usize, f: usize) -> ModelConfig {
        ModelConfig {
            kind,
            vocab_size: 4096,
            seq_len: t,
            embed_dim: c,
            num_heads: heads,
            num_layers: layers,
            ffn_dim: f,
            hidden_dim: c,
            dropout: 0.0,
            tie_embeddings: false,
        }
    }

    #[test]
    fn model_arenas_reach_the_peak_and_never_overlap_live_tensors() {
        for kind in [Kind::TinyGpt, Kind::TinyBertGenerator] {
            for c in [
                cfg(kind, 32, 128, 4, 2, 512),
                cfg(kind, 12, 32, 2, 2, 64),
                cfg(kind, 64, 256, 8, 4, 1024),
                cfg(kind, 7, 24, 3, 1, 40),
                cfg(kind, 5, 16, 1, 0, 16),
                cfg(kind, 3, 8, 2, 3, 8),
            ] {
                let l = Layout::new(&c);
                plan::check(&l.tensors, &l.plan).unwrap();
                assert_eq!(l.arena_bytes(), l.peak_bytes, "{c:?}");
                // Every slot is one of the planned tensors.
                assert_eq!(l.tensors.len(), 2 + BlockTensor::ALL.len() * c.num_layers);
                // The slots are the planned tensors of the same names.
                for (i, ls) in l.layers.iter().enumerate() {
                    for n in BlockTensor::ALL {
                        let j = l
                            .names
                            .iter()
                            .position(|x| *x == format!("blocks.{i}.{}", n.name()))
                            .unwrap();
                        assert_eq!(ls[n].offset, l.plan.offsets[j]);
                        assert_eq!(ls[n].bytes, l.tensors[j].bytes);
                    }
                }
            }
        }
        // The reference size (seq 32, C 128, F 512): the peak is at the FFN up-projection:
        // res2 + ln2 + h = 32·(128 + 128 + 512) bytes.
        let l = Layout::new(&cfg(Kind::TinyGpt, 32, 128, 4, 2, 512));
        assert_eq!(l.arena_bytes(), 32 * (128 + 128 + 512));
        assert_eq!(l.kv_cache_bytes, 2 * 2 * 32 * 128);
        let b = Layout::new(&cfg(Kind::TinyBertGenerator, 32, 128, 4, 2, 512));
        assert_eq!(b.arena_bytes(), 32 * (128 + 128 + 512));
        assert_eq!(b.kv_cache_bytes, 0);
    }

    #[test]
    fn a_plan_from_a_wrong_lifetime_is_caught() {
        let c = cfg(Kind::TinyGpt, 32, 128, 4, 2, 512);
        let l = Layout::new(&c);
        // `res2` is read again by the down-projection's residual; a schedule that let it die
        // at `ln2` would let the planner put `h` over it.
        let res2 = l.names.iter().position(|n| n == "blocks.0.res2").unwrap();
        let mut wrong = l.tensors.clone();
        wrong[res2].last = 1 + Op::Ln2 as usize;
        let p = plan::plan(&wrong);
        plan::check(&wrong, &p).unwrap();
        let e = plan::check(&l.tensors, &p).unwrap_err();
        assert!(e.contains("overlap"), "{e}");
    }
}
