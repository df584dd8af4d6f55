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

/// The arena slots of one block's tensors. `k`/`v` are arena tensors for
/// `tiny_bert_generator` only (`tiny_gpt` keeps them in its KV cache); `scores`, `probs`,
/// `ksum` and `pv_acc` are the attention's scratch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerSlots {
    pub ln1: Slot,
    pub k: Slot,
    pub v: Slot,
    pub q: Slot,
    pub scores: Slot,
    pub probs: Slot,
    pub ksum: Slot,
    pub pv_acc: Slot,
    pub att: Slot,
    pub res2: Slot,
    pub ln2: Slot,
    pub h: Slot,
    /// The block's output (the next block's input).
    pub y: Slot,
}

/// The schedule of a Transformer's forward pass as a list of tensors with lifetimes, its
/// memory plan, and the resulting slots (the generated C's `#define` offsets).
///
/// Operators, in order: `0` embedding → `x0`; per block `l` (operators `1 + 9l …`): `ln1`,
/// `k`, `v`, `q`, attention, projection ⊕ residual → `res2`, `ln2`, up + GELU → `h`,
/// down ⊕ residual → `y`; then `ln_f` and the head (whose logits are the caller's output
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

impl Layout {
    pub fn new(cfg: &ModelConfig) -> Layout {
        let (t, c, f) = (cfg.seq_len, cfg.embed_dim, cfg.ffn_dim);
        let hd = c / cfg.num_heads;
        let bert = cfg.kind == Kind::TinyBertGenerator;
        let layers = cfg.num_layers;
        let mut names = Vec::new();
        let mut tensors = Vec::new();
        let mut add = |name: String, bytes: usize, first: usize, last: usize| {
            names.push(name);
            tensors.push(plan::Tensor::new(bytes, first, last));
            tensors.len() - 1
        };
        const OPS: usize = 9;
        let head_op = 1 + OPS * layers;
        // x_l is read by block l's ln1 and its residual (op + 5), or by ln_f.
        let reader = |l: usize| {
            if l < layers {
                1 + OPS * l + 5
            } else {
                head_op
            }
        };
        let x0 = add("x0".into(), t * c, 0, reader(0));
        let mut ids = Vec::new();
        for l in 0..layers {
            let o = 1 + OPS * l;
            let rq = if bert && l + 1 == layers { 1 } else { t };
            let kv = if bert { t * c } else { 0 };
            let p = |n: &str| format!("blocks.{l}.{n}");
            ids.push([
                add(p("ln1"), t * c, o, o + 3),
                add(p("k"), kv, o + 1, o + 4),
                add(p("v"), kv, o + 2, o + 4),
                add(p("q"), rq * c, o + 3, o + 4),
                add(p("scores"), 4 * t, o + 4, o + 4),
                add(p("probs"), t, o + 4, o + 4),
                add(p("ksum"), 4 * t, o + 4, o + 4),
                add(p("pv_acc"), 4 * hd, o + 4, o + 4),
                add(p("att"), rq * c, o + 4, o + 5),
                add(p("res2"), rq * c, o + 5, o + 8),
                add(p("ln2"), rq * c, o + 6, o + 7),
                add(p("h"), rq * f, o + 7, o + 8),
                add(p("y"), rq * c, o + 8, reader(l + 1)),
            ]);
        }
        let rh = if bert { 1 } else { t };
        let lnf = add("ln_f".into(), rh * c, head_op, head_op + 1);
        let plan = plan::plan(&tensors);
        let slot = |i: usize| Slot {
            offset: plan.offsets[i],
            bytes: tensors[i].bytes,
        };
        let layer_slots = ids
            .iter()
            .map(|id| LayerSlots {
                ln1: slot(id[0]),
                k: slot(id[1]),
                v: slot(id[2]),
                q: slot(id[3]),
                scores: slot(id[4]),
                probs: slot(id[5]),
                ksum: slot(id[6]),
                pv_acc: slot(id[7]),
                att: slot(id[8]),
                res2: slot(id[9]),
                ln2: slot(id[10]),
                h: slot(id[11]),
                y: slot(id[12]),
            })
            .collect();
        Layout {
            x0: slot(x0),
            layers: layer_slots,
            lnf: slot(lnf),
            peak_bytes: plan::peak(&tensors),
            kv_cache_bytes: if bert { 0 } else { 2 * layers * t * c },
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
            self.layers[l - 1].y
        }
    }

    /// The final hidden state (input of `ln_f`).
    fn last(&self) -> Slot {
        self.input(self.layers.len())
    }
}

/// Typed views of arena slots. A view is created right before the operator that uses it;
/// the views of one operator are tensors alive at that operator, which the plan keeps
/// disjoint (`plan::check`, run once in [`State::new`]).
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

/// Block `layer` over `rows` rows at positions `pos0..`, from its input slot to its output
/// slot. Keys/values go to rows `kv0..kv0 + rows` of the layer's cache (or its arena slots);
/// attention sees rows `0..kv0 + rows`. With `last_only`, only the last row goes past K/V.
#[allow(clippy::too_many_arguments)]
fn block(
    b: &Block,
    s: &mut State,
    layer: usize,
    cfg: &ModelConfig,
    exp_lut: &[i32],
    rows: usize,
    kv0: usize,
    causal: bool,
    last_only: bool,
) {
    let (c, f, t) = (cfg.embed_dim, cfg.ffn_dim, cfg.seq_len);
    let n = rows * c;
    let ls = s.layout.layers[layer];
    let xs = s.layout.input(layer);
    let ar = s.arena();
    // SAFETY (every `ar` view below): the views of one call are tensors alive at that
    // operator, disjoint by the checked plan.
    unsafe {
        kernels::layernorm(
            ar.i8(ls.ln1, n),
            ar.i8(xs, n),
            &b.ln1.a,
            &b.ln1.b,
            b.ln1.var_scale,
            b.ln1.eps,
            rows,
            c,
        );
    }
    let (kc, vc): (&mut [i8], &mut [i8]) = if cfg.kind == Kind::TinyGpt {
        let (k, v) = s.kv[2 * layer * t * c..(2 * layer + 2) * t * c].split_at_mut(t * c);
        (k, v)
    } else {
        // SAFETY: k and v are alive from their projections to the attention, disjoint from
        // each other and from every tensor used in between.
        unsafe { (ar.i8(ls.k, t * c), ar.i8(ls.v, t * c)) }
    };
    let ln1 = unsafe { ar.i8(ls.ln1, n) };
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
    fc(&mut kc[kv0 * c..], ln1, &b.k, b.attn.k_zp, rows);
    fc(&mut vc[kv0 * c..], ln1, &b.v, b.attn.v_zp, rows);
    // Rows that go on: all of them, or the last one.
    let (q_rows, first) = if last_only { (1, rows - 1) } else { (rows, 0) };
    let m = q_rows * c;
    unsafe {
        fc(
            ar.i8(ls.q, m),
            &ln1[first * c..n],
            &b.q,
            b.attn.q_zp,
            q_rows,
        );
        let n_keys = kv0 + rows;
        kernels::attention(
            ar.i8(ls.att, m),
            ar.i8(ls.q, m),
            kc,
            vc,
            q_rows,
            kv0 + first,
            n_keys,
            causal,
            &b.attn,
            exp_lut,
            &mut kernels::AttnScratch {
                scores: ar.i32(ls.scores, n_keys),
                probs: ar.u8(ls.probs, n_keys),
                ksum: ar.i32(ls.ksum, n_keys),
                acc: ar.i32(ls.pv_acc, c / cfg.num_heads),
            },
        );
        kernels::fc(
            ar.i8(ls.res2, m),
            ar.i8(ls.att, m),
            &b.proj.w,
            &b.proj.bias,
            q_rows,
            c,
            c,
            &Epilogue::Residual {
                mult: &b.proj.mult,
                shift: &b.proj.shift,
                res: &ar.i8(xs, n)[first * c..],
                res_zp: b.x_zp,
                res_rq: b.res1,
                zp: b.res2_zp,
            },
        );
        kernels::layernorm(
            ar.i8(ls.ln2, m),
            ar.i8(ls.res2, m),
            &b.ln2.a,
            &b.ln2.b,
            b.ln2.var_scale,
            b.ln2.eps,
            q_rows,
            c,
        );
        kernels::fc(
            ar.i8(ls.h, q_rows * f),
            ar.i8(ls.ln2, m),
            &b.up.w,
            &b.up.bias,
            q_rows,
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
            ar.i8(ls.y, m),
            ar.i8(ls.h, q_rows * f),
            &b.down.w,
            &b.down.bias,
            q_rows,
            f,
            c,
            &Epilogue::Residual {
                mult: &b.down.mult,
                shift: &b.down.shift,
                res: ar.i8(ls.res2, m),
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
        let last_only = bert && l + 1 == layers;
        block(
            b,
            s,
            l,
            cfg,
            &m.exp_lut,
            tokens.len(),
            kv0,
            !bert,
            last_only,
        );
    }
}

// ----------------------------------------------------------------------------
// Public entry points

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
                assert_eq!(l.tensors.len(), 2 + 13 * c.num_layers);
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
}
