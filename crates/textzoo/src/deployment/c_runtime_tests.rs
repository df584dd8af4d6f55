//! The C runtime (`c/textzoo_rt.c`) with generated models against `textzoo-rt`: tiny int8
//! models of every kind are emitted, compiled with a small driver, and their logits compared
//! bit for bit with `Int8Lm::next_logits` over the same sequence of contexts (so the KV-cache
//! and recurrent-state reuse are exercised the same way on both sides).

use super::c_model::{self, CModelFiles, TEXTZOO_RT_C, TEXTZOO_RT_H};
use super::c_test_support::{run_with_input, STRICT_CFLAGS};
use crate::config::{Calibration, Granularity, ModelName};
use crate::lm::Int8Lm;
use crate::lm::LanguageModel;
use crate::models::{build, ModelConfig};
use crate::quantization::convert::Settings;
use crate::quantization::quantize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use textzoo_rt::{Int8Model, Rng};

const HOST_FLAGS: &[&str] = STRICT_CFLAGS;

/// The driver: reads commands (from stdin, or from `script.h` with `-DTZ_EMBEDDED_SCRIPT` on
/// a board without one), prints one line of f32 bit patterns per result.
/// `C n t1 … tn`: tz_next_logits; `S keep t`: tz_gpt_step; `R`: tz_reset;
/// `Q bits`: tz_sqrtf of the f32 with these (hex) bits.
const DRIVER: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "textzoo_rt.h"
#include "model.h"

#if defined(TZ_EMBEDDED_SCRIPT)
#include "platform.h"
#include "script.h"
static const char *in = tz_script;
static void out(const char *s, int n) { tz_platform_write(s, n); }
#else
static char script[1 << 20];
static const char *in = script;
static void out(const char *s, int n) { fwrite(s, 1, (size_t)n, stdout); }
#endif

static uint16_t ctx[4096];
static char line[9 * TZ_VOCAB_SIZE + 16];

/* The next whitespace-separated word as a number in `base`; -1 at the end. */
static long next(int base) {
    char *end;
    long v;
    while (*in == ' ' || *in == '\n') in++;
    if (*in == '\0') return -1;
    v = strtol(in, &end, base);
    in = end;
    return v;
}

static void hex8(char *p, uint32_t u) {
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = "0123456789abcdef"[u & 15u];
        u >>= 4;
    }
}

static void print_logits(const float *lg) {
    int i, k = 0;
    if (lg == NULL) {
        out("NULL\n", 5);
        return;
    }
    for (i = 0; i < TZ_VOCAB_SIZE; i++) {
        uint32_t u;
        memcpy(&u, &lg[i], sizeof u);
        if (i > 0) line[k++] = ' ';
        hex8(line + k, u);
        k += 8;
    }
    line[k++] = '\n';
    out(line, k);
}

int main(void) {
#if !defined(TZ_EMBEDDED_SCRIPT)
    size_t got = fread(script, 1, sizeof script - 1, stdin);
    script[got] = '\0';
#endif
    for (;;) {
        char op;
        while (*in == ' ' || *in == '\n') in++;
        op = *in;
        if (op == '\0') break;
        in++;
        if (op == 'R') {
            tz_reset();
        } else if (op == 'C') {
            long n = next(10), i;
            if (n < 0 || n > 4096) return 2;
            for (i = 0; i < n; i++) ctx[i] = (uint16_t)next(10);
            print_logits(tz_next_logits(&TZ_MODEL, ctx, (int)n));
        } else if (op == 'S') {
            long keep = next(10), t = next(10);
            print_logits(tz_gpt_step(&TZ_MODEL, (uint16_t)t, (int)keep));
        } else if (op == 'Q') {
            uint32_t u = (uint32_t)strtoul(in, (char **)&in, 16);
            float x, y;
            memcpy(&x, &u, sizeof u);
            y = tz_sqrtf(x);
            memcpy(&u, &y, sizeof u);
            hex8(line, u);
            line[8] = '\n';
            out(line, 9);
        } else {
            return 2;
        }
    }
    return 0;
}
"#;

fn config(kind: ModelName, tie: bool) -> ModelConfig {
    let rnn = matches!(kind, ModelName::Gru | ModelName::Lstm);
    ModelConfig {
        kind,
        // Not a multiple of 4, nor of the recurrent head's chunk: the kernels' tails run.
        vocab_size: if rnn { 70 } else { 37 },
        seq_len: 8,
        // Tied recurrent heads need embed_dim == hidden_dim.
        embed_dim: if rnn && !tie { 20 } else { 24 },
        num_heads: 2,
        num_layers: 2,
        ffn_dim: 38,
        hidden_dim: 24,
        dropout: 0.0,
        tie_embeddings: tie,
    }
}

/// A randomly initialised float model quantized on random windows (bit-exactness does not
/// need a trained model).
fn tiny_int8(kind: ModelName, tie: bool) -> (Int8Lm, ModelConfig) {
    int8_of(config(kind, tie))
}

/// `tiny_int8` with input widths that are multiples of 16 (embed 32, ffn 48): the sizes the
/// asm loops of the SMLAD kernels take (the other tests' 24 and 38 run their C tails).
fn tiny_int8_wide(tie: bool) -> (Int8Lm, ModelConfig) {
    int8_of(ModelConfig {
        embed_dim: 32,
        ffn_dim: 48,
        ..config(ModelName::TinyGpt, tie)
    })
}

fn int8_of(cfg: ModelConfig) -> (Int8Lm, ModelConfig) {
    let float = build(&cfg, 5);
    let mut rng = Rng::new(17);
    let windows: Vec<Vec<u32>> = (0..12)
        .map(|_| {
            (0..cfg.seq_len)
                .map(|_| rng.below(cfg.vocab_size as u32))
                .collect()
        })
        .collect();
    let st = Settings {
        calibration: Calibration::Minmax,
        percentile: 99.99,
        granularity: Granularity::PerChannel,
    };
    let q = quantize(float.as_ref(), &windows, &st).unwrap();
    (Int8Lm::new(q), cfg)
}

fn write_project(dir: &Path, files: &CModelFiles) {
    std::fs::write(dir.join("model.h"), &files.model_h).unwrap();
    std::fs::write(dir.join("model.c"), &files.model_c).unwrap();
    std::fs::write(dir.join("embedding.h"), &files.embedding_h).unwrap();
    std::fs::write(dir.join("textzoo_rt.h"), TEXTZOO_RT_H).unwrap();
    std::fs::write(dir.join("textzoo_rt.c"), TEXTZOO_RT_C).unwrap();
    std::fs::write(dir.join("driver.c"), DRIVER).unwrap();
}

fn run_compiler(compiler: &str, args: &[String], dir: &Path) {
    let out = Command::new(compiler)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{compiler}` (is it installed and on PATH?): {e}")
        });
    assert!(
        out.status.success(),
        "{compiler} {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the driver with the host compiler; `extra` adds flags (optimisation, sanitizers).
fn build_driver(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let mut args: Vec<String> = HOST_FLAGS.iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    for f in ["textzoo_rt.c", "model.c", "driver.c", "-o", name] {
        args.push(f.into());
    }
    run_compiler("cc", &args, dir);
    dir.join(name)
}

fn run_driver(exe: &Path, input: &str) -> Vec<String> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    run_command(&mut Command::new(exe), dir, input)
}

/// Runs `cmd` in `dir` with `input` on stdin; its stdout lines.
fn run_command(cmd: &mut Command, dir: &Path, input: &str) -> Vec<String> {
    run_with_input(cmd.current_dir(dir), input)
        .lines()
        .map(String::from)
        .collect()
}

fn bits_line(logits: &[f32]) -> String {
    logits
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command script and the lines `textzoo-rt` expects for it.
struct Script {
    input: String,
    want: Vec<String>,
    what: Vec<String>,
}

fn context_cmd(ctx: &[u32]) -> String {
    let ids: Vec<String> = ctx.iter().map(|t| t.to_string()).collect();
    format!("C {} {}\n", ctx.len(), ids.join(" "))
}

/// Growing contexts, contexts past the window (sliding), a changed context that then grows
/// again, a repeated one, an edited one, the empty one; for tiny_gpt also the decoder's
/// half-window re-prefill policy.
fn script(lm: &mut Int8Lm, cfg: &ModelConfig) -> Script {
    let t = cfg.seq_len;
    let v = cfg.vocab_size as u32;
    let mut rng = Rng::new(99);
    let s: Vec<u32> = (0..3 * t).map(|_| rng.below(v)).collect();
    let mut contexts: Vec<Vec<u32>> = vec![Vec::new()];
    for n in 1..=t + 5 {
        contexts.push(s[..n].to_vec());
    }
    contexts.push(s[3..7].to_vec());
    contexts.push(s[3..8].to_vec());
    contexts.push(s[3..8].to_vec());
    let mut edited = s[3..9].to_vec();
    edited[2] = (edited[2] + 1) % v;
    contexts.push(edited);
    contexts.push(s[..2 * t + 3].to_vec());
    contexts.push(Vec::new());
    contexts.push(s[..3].to_vec());
    let mut sc = Script {
        input: String::new(),
        want: Vec::new(),
        what: Vec::new(),
    };
    for ctx in &contexts {
        sc.input.push_str(&context_cmd(ctx));
        sc.want.push(bits_line(&lm.next_logits(ctx)));
        sc.what.push(format!("next_logits({ctx:?})"));
    }
    if cfg.kind == ModelName::TinyGpt {
        let rc = lm.model.config.clone();
        let textzoo_rt::model::Net::Transformer(net) = &lm.model.net else {
            panic!("tiny_gpt is a transformer")
        };
        let mut dec = textzoo_rt::transformer::Decoder::new(&rc);
        dec.keep = t / 2;
        sc.input.push_str("R\n");
        for &tok in &s[..2 * t + 2] {
            sc.input.push_str(&format!("S {} {tok}\n", t / 2));
            sc.want.push(bits_line(dec.step(net, &rc, tok).unwrap()));
            sc.what.push(format!("decoder step {tok} (keep {})", t / 2));
        }
    }
    // Bad input is refused, not a crash.
    sc.input.push_str(&format!("C 2 1 {v}\n"));
    sc.want.push("NULL".into());
    sc.what.push("token outside the vocabulary".into());
    sc
}

fn compare(got: &[String], sc: &Script, label: &str) {
    assert_eq!(got.len(), sc.want.len(), "{label}: number of result lines");
    for (i, (g, w)) in got.iter().zip(&sc.want).enumerate() {
        assert!(
            g == w,
            "{label}: C logits differ from textzoo-rt at {} (command {i}):\n C:    {g}\n Rust: {w}",
            sc.what[i]
        );
    }
}

/// One kind, tied and untied: emitted, built with -O2 (and once with the sanitizers), run,
/// compared bit for bit.
fn check_kind(kind: ModelName) {
    for (tie, sanitize) in [(false, true), (true, false)] {
        let (mut lm, cfg) = tiny_int8(kind, tie);
        let files = c_model::emit(&lm.model);
        check_plan_macros(&lm.model, &files);
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), &files);
        let sc = script(&mut lm, &cfg);
        let label = format!("{kind:?} tied={tie}");
        let exe = build_driver(dir.path(), "driver", &["-O2"]);
        compare(&run_driver(&exe, &sc.input), &sc, &format!("{label} -O2"));
        if sanitize {
            let exe = build_driver(
                dir.path(),
                "driver_san",
                &[
                    "-O1",
                    "-g",
                    "-fsanitize=address,undefined",
                    "-fno-sanitize-recover",
                ],
            );
            compare(
                &run_driver(&exe, &sc.input),
                &sc,
                &format!("{label} sanitizers"),
            );
        }
    }
}

/// model.h's memory macros are the planner's (`Int8Model::memory_bytes`).
fn check_plan_macros(model: &Int8Model, files: &CModelFiles) {
    let macro_value = |name: &str| -> usize {
        let prefix = format!("#define {name} ");
        files
            .model_h
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("model.h lacks {name}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (arena, kv) = model.memory_bytes();
    assert_eq!(macro_value("TZ_ARENA_BYTES"), arena);
    assert_eq!(macro_value("TZ_KV_BYTES"), kv);
    assert_eq!(
        macro_value("TZ_RAM_BYTES"),
        c_model::ram_bytes(model).total()
    );
    assert_eq!(macro_value("TZ_VOCAB_SIZE"), model.config.vocab_size);
}

#[test]
fn c_runtime_matches_textzoo_rt_tiny_gpt() {
    check_kind(ModelName::TinyGpt);
}

#[test]
fn c_runtime_matches_textzoo_rt_tiny_bert_generator() {
    check_kind(ModelName::TinyBertGenerator);
}

#[test]
fn c_runtime_matches_textzoo_rt_gru() {
    check_kind(ModelName::Gru);
}

#[test]
fn c_runtime_matches_textzoo_rt_lstm() {
    check_kind(ModelName::Lstm);
}

#[test]
fn c_sqrt_is_ieee_sqrt() {
    let (lm, _) = tiny_int8(ModelName::Gru, true);
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &c_model::emit(&lm.model));
    let exe = build_driver(dir.path(), "driver", &["-O2"]);
    let mut rng = Rng::new(4);
    let mut xs: Vec<u32> = vec![
        0,
        0x8000_0000,
        1,
        0x7f7f_ffff,
        0x7f80_0000,
        0x3f80_0000,
        0x4080_0000,
        0x0080_0000,
        0x007f_ffff,
        0x3f7f_ffff,
        0x4000_0000,
    ];
    xs.extend((0..20_000).map(|_| rng.next_u32() & 0x7fff_ffff));
    let input: String = xs.iter().map(|b| format!("Q {b:08x}\n")).collect();
    let got = run_driver(&exe, &input);
    assert_eq!(got.len(), xs.len());
    for (b, g) in xs.iter().zip(&got) {
        let x = f32::from_bits(*b);
        let want = x.sqrt().to_bits();
        let g = u32::from_str_radix(g, 16).unwrap();
        let both_nan = x.sqrt().is_nan() && f32::from_bits(g).is_nan();
        assert!(
            g == want || both_nan,
            "sqrt({x:e}) [{b:08x}]: C {g:08x}, Rust {want:08x}"
        );
    }
}

/// The runtime and a generated model cross-compile for the Cortex-M targets (running them
/// under QEMU is the deployment tests' job).
#[test]
fn c_runtime_cross_compiles_for_cortex_m7_and_m55() {
    let (lm, _) = tiny_int8(ModelName::TinyGpt, false);
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &c_model::emit(&lm.model));
    let (rlm, _) = tiny_int8(ModelName::Lstm, true);
    let rdir = tempfile::tempdir().unwrap();
    write_project(rdir.path(), &c_model::emit(&rlm.model));
    for cpu in [
        &["-mcpu=cortex-m7", "-mfpu=fpv5-d16"][..],
        &["-mcpu=cortex-m55"][..],
    ] {
        for d in [dir.path(), rdir.path()] {
            let mut args: Vec<String> = cpu.iter().map(|s| s.to_string()).collect();
            for f in ["-mthumb", "-mfloat-abi=hard", "-O2", "-c"] {
                args.push(f.into());
            }
            args.extend(HOST_FLAGS.iter().map(|s| s.to_string()));
            args.push("textzoo_rt.c".into());
            args.push("model.c".into());
            run_compiler("arm-none-eabi-gcc", &args, d);
        }
    }
}

#[test]
fn ram_use_counts_the_static_buffers() {
    let (lm, cfg) = tiny_int8(ModelName::TinyBertGenerator, true);
    let ram = c_model::ram_bytes(&lm.model);
    let (arena, kv) = lm.model.memory_bytes();
    assert_eq!(ram.arena, arena.div_ceil(4) * 4);
    // tiny_bert_generator has no KV cache: the runtime keeps a one-element placeholder.
    assert_eq!((kv, ram.kv_or_state), (0, 2));
    assert_eq!(ram.logits_and_scratch, 4 * cfg.vocab_size + 4 * cfg.seq_len);
}

/// A reference-size `tiny_gpt` (vocab 4096, seq 32, C 128, F 512, 2 layers, untied head:
/// about 1.6 MB of weights) with random contents: only its sizes matter here.
fn reference_size_model() -> Int8Model {
    use textzoo_rt::kernels::AttnParams;
    use textzoo_rt::model::{Block, LayerNorm, Linear, Net, Transformer};
    use textzoo_rt::quant::Requant;
    let cfg = textzoo_rt::ModelConfig {
        kind: textzoo_rt::Kind::TinyGpt,
        vocab_size: 4096,
        seq_len: 32,
        embed_dim: 128,
        num_heads: 4,
        num_layers: 2,
        ffn_dim: 512,
        hidden_dim: 128,
        dropout: 0.0,
        tie_embeddings: false,
    };
    let mut rng = Rng::new(1);
    let mut i8s = |n: usize| -> Vec<i8> { (0..n).map(|_| rng.next_u32() as i8).collect() };
    let rq = Requant::from_real(0.01);
    let lin = |i8s: &mut dyn FnMut(usize) -> Vec<i8>, k: usize, m: usize| Linear {
        w: i8s(k * m),
        bias: vec![-12345; m],
        mult: vec![rq.mult; m],
        shift: vec![rq.shift; m],
        in_dim: k,
        out_dim: m,
    };
    let ln = |c: usize| LayerNorm {
        a: vec![0.013; c],
        b: vec![-1.5; c],
        var_scale: 1e-7,
        eps: 1e-5,
    };
    let (c, f, v, t) = (128, 512, 4096, 32);
    let blocks = (0..2)
        .map(|_| Block {
            ln1: ln(c),
            q: lin(&mut i8s, c, c),
            k: lin(&mut i8s, c, c),
            v: lin(&mut i8s, c, c),
            attn: AttnParams {
                heads: 4,
                head_dim: 32,
                q_zp: 1,
                k_zp: -2,
                v_zp: 3,
                softmax: rq,
                pv: rq,
                out_zp: 0,
            },
            proj: lin(&mut i8s, c, c),
            res1: rq,
            x_zp: 0,
            res2_zp: 0,
            ln2: ln(c),
            up: lin(&mut i8s, c, f),
            up_zp: 0,
            gelu: i8s(256),
            down: lin(&mut i8s, f, c),
            res2: rq,
            y_zp: 0,
        })
        .collect();
    Int8Model {
        config: cfg,
        net: Net::Transformer(Transformer {
            tok_emb: i8s(v * c),
            tok_mult: vec![rq.mult; v],
            tok_shift: vec![rq.shift; v],
            pos_emb: i8s(t * c),
            pos_mult: vec![rq.mult; t],
            pos_shift: vec![rq.shift; t],
            x0_zp: 0,
            blocks,
            ln_f: ln(c),
            head_w: Some(i8s(v * c)),
            head_bias: vec![7; v],
            head_scale: vec![1e-3; v],
            exp_lut: vec![1 << 16; textzoo_rt::kernels::EXP_LUT_LEN],
        }),
    }
}

#[test]
fn emit_is_fast_and_compact_for_a_reference_size_model() {
    let model = reference_size_model();
    let weights = model.weight_bytes();
    assert!(weights > 1_500_000, "{weights}");
    let start = std::time::Instant::now();
    let files = c_model::emit(&model);
    let took = start.elapsed();
    let total = files.model_c.len() + files.embedding_h.len() + files.model_h.len();
    eprintln!("emit: {weights} weight bytes -> {total} bytes of C in {took:?}");
    assert!(took.as_secs_f64() < 2.0, "emit took {took:?}");
    // int8 values take at most 5 characters ("-128,") plus spacing and line breaks.
    assert!(
        total < 6 * weights,
        "{total} bytes of C for {weights} bytes of weights"
    );
    let ram = c_model::ram_bytes(&model);
    assert_eq!(ram.arena, 24_576);
    assert_eq!(ram.kv_or_state, 16_384);
    assert_eq!(ram.logits_and_scratch, 4 * 4096 + 4 * 32);
}

/// Fails with a clear message when a tool the test needs is missing.
fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "`{tool}` is needed by this test but was not found on PATH"
    );
}

/// The SMLAD kernels (`__ARM_FEATURE_DSP`, taken by the Armv7-A build of the STM32MP157
/// target) run under `qemu-arm` and give textzoo-rt's bits: Thumb-2 (the armhf default) and
/// A32 (`-marm`, the row-pair kernel's word loads instead of doubleword ones), a tied token
/// table among them (read as row pairs by the embedding too).
#[test]
fn c_runtime_smlad_path_matches_textzoo_rt_under_qemu_arm() {
    require("arm-linux-gnueabihf-gcc");
    require("qemu-arm");
    for (kind, tie, mode) in [
        (ModelName::TinyGpt, false, "-mthumb"),
        (ModelName::TinyGpt, true, "-marm"),
        (ModelName::Gru, true, "-mthumb"),
    ] {
        let (mut lm, cfg) = if kind == ModelName::TinyGpt && tie {
            tiny_int8_wide(tie)
        } else {
            tiny_int8(kind, tie)
        };
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), &c_model::emit(&lm.model));
        let mut args: Vec<String> = HOST_FLAGS.iter().map(|s| s.to_string()).collect();
        for f in [
            "-O2",
            "-mcpu=cortex-a7",
            mode,
            "-static",
            "textzoo_rt.c",
            "model.c",
            "driver.c",
            "-o",
            "driver_a7",
        ] {
            args.push(f.into());
        }
        run_compiler("arm-linux-gnueabihf-gcc", &args, dir.path());
        let asm = Command::new("arm-linux-gnueabihf-objdump")
            .args(["-d", "driver_a7"])
            .current_dir(dir.path())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("smlad"))
            .unwrap_or(true);
        assert!(asm, "the Armv7-A build does not use SMLAD");
        let sc = script(&mut lm, &cfg);
        let got = run_command(
            Command::new("qemu-arm").args(["-cpu", "cortex-a7", "driver_a7"]),
            dir.path(),
            &sc.input,
        );
        compare(
            &got,
            &sc,
            &format!("{kind:?} tied={tie} qemu-arm cortex-a7 {mode} (SMLAD)"),
        );
    }
}

/// The Cortex-M7 (SMLAD) and Cortex-M55 (Helium/MVE) builds run on their QEMU stand-ins
/// (mps2-an500, mps3-an547) with the boards' startup and semihosting platform, and give
/// textzoo-rt's bits.
#[test]
fn c_runtime_dsp_and_mve_paths_match_textzoo_rt_under_qemu_system_arm() {
    require("arm-none-eabi-gcc");
    require("qemu-system-arm");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/deployment/c");
    let m7 = &["-mcpu=cortex-m7", "-mfpu=fpv5-d16"][..];
    // Cortex-M7 reads the transformer's matrices as row pairs (TZ_PAIRED_WEIGHTS), the tied
    // token table included; Cortex-M55 reads plain rows with Helium.
    let m55 = &["-mcpu=cortex-m55"][..];
    let targets = [
        (m7, "mps2-an500", ModelName::TinyGpt, false, false),
        (m7, "mps2-an500", ModelName::TinyGpt, true, true),
        (m55, "mps3-an547", ModelName::Lstm, false, false),
        (m55, "mps3-an547", ModelName::TinyGpt, false, false),
    ];
    for (cpu, machine, kind, tie, wide) in targets {
        let (mut lm, cfg) = if wide {
            tiny_int8_wide(tie)
        } else {
            tiny_int8(kind, tie)
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_project(d, &c_model::emit(&lm.model));
        for (from, to) in [
            ("platform.h", "platform.h"),
            ("platform/platform_semihost.c", "platform_semihost.c"),
            ("boards/startup_cortexm.c", "startup_cortexm.c"),
            ("boards/clocks_stm32.c", "clocks_stm32.c"),
            ("boards/cortexm_sections.ld", "cortexm_sections.ld"),
            (&format!("boards/{machine}/{machine}.ld"), "board.ld"),
        ] {
            std::fs::copy(src.join(from), d.join(to))
                .unwrap_or_else(|e| panic!("copying {from} from the board files: {e}"));
        }
        let sc = script(&mut lm, &cfg);
        let bytes: Vec<String> = sc.input.bytes().map(|b| b.to_string()).collect();
        std::fs::write(
            d.join("script.h"),
            format!(
                "static const char tz_script[] = {{{}, 0}};\n",
                bytes.join(",")
            ),
        )
        .unwrap();
        let mut args: Vec<String> = cpu.iter().map(|s| s.to_string()).collect();
        args.extend(HOST_FLAGS.iter().map(|s| s.to_string()));
        for f in [
            "-mthumb",
            "-mfloat-abi=hard",
            "-O2",
            "-DTZ_EMBEDDED_SCRIPT",
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            "-L.",
            "-Tboard.ld",
            "textzoo_rt.c",
            "model.c",
            "driver.c",
            "startup_cortexm.c",
            "clocks_stm32.c",
            "platform_semihost.c",
            "-lm",
            "-o",
            "driver.elf",
        ] {
            args.push(f.into());
        }
        run_compiler("arm-none-eabi-gcc", &args, d);
        let got = run_command(
            Command::new("qemu-system-arm").args([
                "-M",
                machine,
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "none",
                "-chardev",
                "stdio,id=sh0",
                "-semihosting-config",
                "enable=on,target=native,chardev=sh0",
                "-kernel",
                "driver.elf",
            ]),
            d,
            "",
        );
        compare(
            &got,
            &sc,
            &format!("{kind:?} tied={tie} on {machine} ({})", cpu[0]),
        );
    }
}
