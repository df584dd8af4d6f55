//! The C text and sampling twins (`tz_text.c`, `tz_sample.c`, `tokenizer.c`, `app.c`)
//! compiled with the host compiler and compared with the Rust originals.

use super::c_test_support::{run_with_input, STRICT_CFLAGS};
use super::c_tokenizer::{c_string_literal, emit};
use crate::config::{ModelName, Normalization, Prediction, Preprocessing, Strategy};
use crate::config::{TokenizerKind, WordPattern};
use crate::data::TextTokenizer;
use crate::lm::LanguageModel;
use crate::models::ModelConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use textzoo_rt::sample::{exp, SampleConfig, TokenSampler};
use textzoo_rt::Rng;

const TZ_TEXT_H: &str = include_str!("c/tz_text.h");
const TZ_TEXT_C: &str = include_str!("c/tz_text.c");
const TZ_SAMPLE_H: &str = include_str!("c/tz_sample.h");
const TZ_SAMPLE_C: &str = include_str!("c/tz_sample.c");
const APP_C: &str = include_str!("c/app.c");
const APP_H: &str = include_str!("c/textzoo_app.h");

const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover",
    "-g",
];

/// A line-oriented test driver over the C functions (hex for bytes, so any text passes).
const DRIVER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "tokenizer.h"
#include "tz_sample.h"
#include "tz_text.h"

static char line[1 << 22];
static unsigned char buf[1 << 21];
static uint16_t ids[1 << 20];
static char out[1 << 22];
static float logits[TZ_VOCAB_SIZE];

static int hexval(int c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static void puthex(const void *p, int n)
{
    const unsigned char *b = (const unsigned char *)p;
    int i;
    for (i = 0; i < n; i++) {
        printf("%02x", b[i]);
    }
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void)
{
    while (fgets(line, sizeof line, stdin)) {
        char *p = line + 1, *end;
        int i, n = 0, r, settled;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == 'E') {
            while (*p == ' ') p++;
            while (p[0] && p[1]) {
                buf[n++] = (unsigned char)(hexval(p[0]) * 16 + hexval(p[1]));
                p += 2;
            }
            r = tz_encode_n((const char *)buf, n, ids, 1 << 20);
            printf("%d", r);
            for (i = 0; i < r; i++) printf(" %u", ids[i]);
        } else if (line[0] == 'D') {
            for (;;) {
                unsigned long v = strtoul(p, &end, 10);
                if (end == p) break;
                ids[n++] = (uint16_t)v;
                p = end;
            }
            r = tz_decode_settled(ids, n, out, sizeof out, &settled);
            printf("%d %d ", r, settled);
            puthex(out, r < 0 ? 0 : r);
            if (r >= 0 && out[r] != '\0') printf(" unterminated");
        } else if (line[0] == 'V') {
            for (i = 0; i < TZ_TOKENIZER_VOCAB_SIZE; i++) {
                puthex(tz_vocab_str[i], tz_vocab_len[i]);
                printf("\n");
            }
            printf("end");
        } else if (line[0] == 'S') {
            tz_sample_cfg cfg;
            tz_rng rng;
            unsigned long long seed;
            int draws, vocab;
            cfg.greedy = (int)strtol(p, &p, 10);
            cfg.temperature = from_bits((uint32_t)strtoul(p, &p, 16));
            cfg.top_k = (int)strtol(p, &p, 10);
            cfg.top_p = from_bits((uint32_t)strtoul(p, &p, 16));
            cfg.allow_special = (int)strtol(p, &p, 10);
            cfg.repetition_penalty = from_bits((uint32_t)strtoul(p, &p, 16));
            cfg.no_repeat_ngram_size = (int)strtol(p, &p, 10);
            seed = strtoull(p, &p, 10);
            draws = (int)strtol(p, &p, 10);
            vocab = (int)strtol(p, &p, 10);
            for (i = 0; i < vocab; i++) logits[i] = from_bits((uint32_t)strtoul(p, &p, 16));
            n = (int)strtol(p, &p, 10);
            for (i = 0; i < n; i++) ids[i] = (uint16_t)strtoul(p, &p, 10);
            tz_rng_init(&rng, (uint64_t)seed);
            for (i = 0; i < draws; i++) {
                int t = n < 0 ? tz_sample_pick(logits, vocab, &cfg, &rng)
                              : tz_sample_pick_in_context(logits, vocab, &cfg, &rng, ids, n);
                printf("%s%d", i ? " " : "", t);
            }
        } else if (line[0] == 'X') {
            for (;;) {
                unsigned long v = strtoul(p, &end, 16);
                if (end == p) break;
                printf("%08x ", (unsigned)to_bits(tz_sample_exp(from_bits((uint32_t)v))));
                p = end;
            }
        } else if (line[0] == 'R') {
            tz_rng rng;
            unsigned long long seed = strtoull(p, &p, 10);
            int count = (int)strtol(p, &p, 10);
            tz_rng_init(&rng, (uint64_t)seed);
            for (i = 0; i < count; i++) {
                uint32_t u = tz_rng_u32(&rng);
                printf("%u %08x ", (unsigned)u, (unsigned)to_bits(tz_rng_f32(&rng)));
            }
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn compile(dir: &Path, sources: &[&str], exe: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(exe);
    let status = Command::new("cc")
        .args(STRICT_CFLAGS)
        .arg("-O2")
        .args(extra)
        .arg("-I")
        .arg(dir)
        .args(sources.iter().map(|s| dir.join(s)))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("cc runs");
    assert!(
        status.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    out
}

fn run(exe: &Path, args: &[&str], input: &str) -> String {
    run_with_input(Command::new(exe).args(args), input)
}

/// The tokenizer's C files plus the static ones, in a fresh directory.
fn project(tok: &TextTokenizer, vocab_macro: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = emit(tok).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("tokenizer.h", &files.tokenizer_h);
    write("tokenizer.c", &files.tokenizer_c);
    write("tz_text.h", TZ_TEXT_H);
    write("tz_text.c", TZ_TEXT_C);
    write("tz_sample.h", TZ_SAMPLE_H);
    write("tz_sample.c", TZ_SAMPLE_C);
    write("driver.c", DRIVER_C);
    write(
        "model.h",
        &format!("#define TZ_VOCAB_SIZE {vocab_macro}\n#include \"textzoo_rt.h\"\n"),
    );
    write(
        "textzoo_rt.h",
        "#ifndef TZ_FAKE_RT_H\n#define TZ_FAKE_RT_H\n#include <stdint.h>\n\
         typedef struct tz_model { int unused; } tz_model;\n\
         extern const tz_model TZ_MODEL;\nvoid tz_reset(void);\n\
         const float *tz_next_logits(const tz_model *m, const uint16_t *context, int n);\n\
         #endif\n",
    );
    dir
}

struct Driver {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Driver {
    fn new(tok: &TextTokenizer, sanitize: bool) -> Self {
        let dir = project(tok, 512);
        let extra = if sanitize { SANITIZE } else { &[] };
        let exe = compile(
            dir.path(),
            &["driver.c", "tz_text.c", "tz_sample.c", "tokenizer.c"],
            "driver",
            extra,
        );
        Self { _dir: dir, exe }
    }

    fn ask(&self, requests: &[String]) -> Vec<String> {
        let out = run(&self.exe, &[], &(requests.join("\n") + "\n"));
        out.lines().map(str::to_string).collect()
    }

    fn vocab(&self) -> Vec<Vec<u8>> {
        let lines = self.ask(&["V".into()]);
        assert_eq!(lines.last().map(String::as_str), Some("end"));
        lines[..lines.len() - 1].iter().map(|l| unhex(l)).collect()
    }

    fn encode(&self, texts: &[&str]) -> Vec<Vec<u32>> {
        let req: Vec<String> = texts
            .iter()
            .map(|t| format!("E {}", hex(t.as_bytes())))
            .collect();
        self.ask(&req)
            .iter()
            .map(|l| {
                let mut it = l.split(' ');
                let n: i64 = it.next().unwrap().parse().unwrap();
                assert!(n >= 0, "tz_encode failed with {n}");
                it.map(|x| x.parse().unwrap()).collect()
            })
            .collect()
    }

    /// (text, settled length) per id sequence.
    fn decode(&self, seqs: &[Vec<u32>]) -> Vec<(Vec<u8>, usize)> {
        let req: Vec<String> = seqs
            .iter()
            .map(|s| {
                let ids: Vec<String> = s.iter().map(u32::to_string).collect();
                format!("D {}", ids.join(" "))
            })
            .collect();
        self.ask(&req)
            .iter()
            .map(|l| {
                let mut it = l.splitn(3, ' ');
                let n: i64 = it.next().unwrap().parse().unwrap();
                let settled: usize = it.next().unwrap().parse().unwrap();
                let text = unhex(it.next().unwrap_or(""));
                assert_eq!(n as usize, text.len(), "{l}");
                (text, settled)
            })
            .collect()
    }
}

fn corpus(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    std::fs::read_to_string(root.join(name)).unwrap()
}

const ODD: &[&str] = &[
    "",
    "   ",
    "to be or not",
    "To be, or not to be: that is the question.",
    "I don't know; 'tis Zoë's café.",
    "hello   world  \n\n tabs\there\r\n",
    "a <pad> b",
    "x<unk>y<pad><pad>",
    "<PAD> <Unk> <pa d>",
    "it's they're we've I'll I'd I'm 'S 'RE ''s",
    "ΣΊΣΥΦΟΣ Ｆull-width ﬁ ligature\u{a0}nbsp\ttab e\u{301} Zoë's «café» 123abc_x\r\n\u{2028}",
    "İstanbul \u{212a}elvin ǅemal ÀÉÎÕÜ straße",
    "emoji 🙂 ok 日本語のテキスト 12.5% (really) [x] {y} $3 well-known o'er don’t",
    "snake_case __init__ x2 2x 3.14159 -42",
    "\u{1} control \u{7f} del \u{85} nel \u{3000} ideographic space",
    "?????/ */ /* \\ \" trigraph ??= ??/",
];

/// Every check the C tokenizer must pass against `tok`.
fn check_tokenizer(tok: &TextTokenizer, texts: &[&str], sanitize: bool) {
    let c = Driver::new(tok, sanitize);
    // The vocabulary round-trips byte for byte.
    let vocab = c.vocab();
    assert_eq!(vocab.len(), tok.vocab_size());
    for (id, bytes) in vocab.iter().enumerate() {
        if tok.kind() == TokenizerKind::Bpe {
            assert_eq!(
                String::from_utf8_lossy(bytes),
                tok.decode(&[id as u32]),
                "token {id}"
            );
        } else {
            assert_eq!(bytes, tok.token(id as u32).as_bytes(), "token {id}");
        }
    }
    // Encoding.
    let got = c.encode(texts);
    let mut seqs = Vec::new();
    for (text, ids) in texts.iter().zip(&got) {
        let want = tok.encode(text).unwrap();
        assert_eq!(ids, &want, "{:?} encoding {text:?}", tok.kind());
        seqs.push(want);
    }
    // Decoding: the encoded texts, and random sequences rich in punctuation.
    let mut rng = Rng::new(7);
    let punct: Vec<u32> = (0..tok.vocab_size() as u32)
        .filter(|&i| {
            !tok.token(i)
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
        })
        .collect();
    for _ in 0..300 {
        let len = rng.below(12) as usize;
        seqs.push(
            (0..len)
                .map(|_| {
                    if rng.below(2) == 0 && !punct.is_empty() {
                        punct[rng.below(punct.len() as u32) as usize]
                    } else {
                        rng.below(tok.vocab_size() as u32 + 2)
                    }
                })
                .collect(),
        );
    }
    let decoded = c.decode(&seqs);
    for (ids, (text, _)) in seqs.iter().zip(&decoded) {
        assert_eq!(
            String::from_utf8_lossy(text),
            tok.decode(ids),
            "{:?} decoding {ids:?}",
            tok.kind()
        );
    }
    // Settled text never changes when ids are appended.
    let prefixes: Vec<Vec<u32>> = seqs[texts.len()..]
        .iter()
        .flat_map(|s| (0..=s.len()).map(|k| s[..k].to_vec()))
        .collect();
    let partial = c.decode(&prefixes);
    for (ids, (text, settled)) in prefixes.iter().zip(&partial) {
        let full = seqs
            .iter()
            .find(|s| s.starts_with(ids) && s.len() >= ids.len())
            .unwrap();
        let whole = &decoded[seqs.iter().position(|s| s == full).unwrap()].0;
        assert!(*settled <= text.len());
        assert_eq!(
            &text[..*settled],
            &whole[..*settled],
            "{ids:?} then {full:?}"
        );
    }
}

fn trained(kind: TokenizerKind, vocab: usize, f: impl FnOnce(&mut Preprocessing)) -> TextTokenizer {
    let mut s = Preprocessing {
        tokenizer: kind,
        vocab_size: vocab,
        ..Preprocessing::default()
    };
    f(&mut s);
    let text = corpus("tinyshakespeare.txt");
    let mut train = text[..120_000].to_string();
    train.push_str(&ODD.join("\n").repeat(3));
    TextTokenizer::train(&s, &train).unwrap()
}

fn texts(alice: &str) -> Vec<&str> {
    let mut texts: Vec<&str> = ODD.to_vec();
    texts.extend(alice.lines().take(600));
    texts.push(&alice[..20_000]);
    texts
}

#[test]
fn c_string_literals_round_trip_any_bytes() {
    let cases: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        b"\"quoted\" back\\slash ??/ ??= ??' ??( ??) ??! ??< ??> ??- */ /* //".to_vec(),
        b"\x00nul\x00\x00end".to_vec(),
        b"\x1b[0m\r\n\t\x0b\x0c\x07\x08\x7f".to_vec(),
        vec![
            0xe9, b'a', b'b', b'c', b'1', b'2', 0xff, b'f', b'F', 0x80, b'9',
        ],
        "Zoë ’ 🙂".as_bytes().to_vec(),
        vec![0xc3],
        Vec::new(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut src = String::from("#include <stdio.h>\nstatic const char *const s[] = {\n");
    for c in &cases {
        src.push_str(&format!("    {},\n", c_string_literal(c)));
    }
    src.push_str("};\nstatic const unsigned n[] = {");
    for c in &cases {
        src.push_str(&format!("{}u, ", c.len()));
    }
    src.push_str(
        "};\nint main(void)\n{\n    unsigned i, j;\n    for (i = 0; i < sizeof n / sizeof n[0]; i++) {\n        \
         for (j = 0; j < n[i]; j++) printf(\"%02x\", (unsigned char)s[i][j]);\n        \
         printf(\" %d\\n\", s[i][n[i]]);\n    }\n    return 0;\n}\n",
    );
    std::fs::write(dir.path().join("lit.c"), src).unwrap();
    let exe = compile(dir.path(), &["lit.c"], "lit", &["-trigraphs"]);
    let out = run(&exe, &[], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (line, case) in lines.iter().zip(&cases) {
        // Same bytes, and the literal ends right after them (its NUL).
        assert_eq!(*line, format!("{} 0", hex(case)));
    }
}

#[test]
fn word_unicode_tokenizer_encodes_and_decodes_like_rust() {
    let alice = corpus("alice_in_wonderland.txt");
    let tok = trained(TokenizerKind::Word, 2000, |_| {});
    check_tokenizer(&tok, &texts(&alice), false);
}

#[test]
fn word_keras_and_cased_tokenizers_encode_and_decode_like_rust() {
    let alice = corpus("alice_in_wonderland.txt");
    let keras = trained(TokenizerKind::Word, 1500, |s| {
        s.word_pattern = WordPattern::Keras
    });
    check_tokenizer(&keras, &texts(&alice), false);
    let cased = trained(TokenizerKind::Word, 1500, |s| s.lowercase = false);
    check_tokenizer(&cased, &texts(&alice), false);
}

#[test]
fn char_tokenizers_encode_and_decode_like_rust() {
    let alice = corpus("alice_in_wonderland.txt");
    let lower = trained(TokenizerKind::Char, 300, |_| {});
    check_tokenizer(&lower, &texts(&alice), false);
    let cased = trained(TokenizerKind::Char, 300, |s| s.lowercase = false);
    check_tokenizer(&cased, &texts(&alice), false);
    // NFKC is not replayed on the device, but ASCII text is unaffected by it.
    let nfkc = trained(TokenizerKind::Char, 300, |s| {
        s.normalization = Normalization::Nfkc
    });
    let ascii: Vec<&str> = alice.lines().take(300).filter(|l| l.is_ascii()).collect();
    check_tokenizer(&nfkc, &ascii, false);
}

#[test]
fn bpe_tokenizers_encode_and_decode_like_rust() {
    let alice = corpus("alice_in_wonderland.txt");
    let cased = trained(TokenizerKind::Bpe, 1200, |s| s.lowercase = false);
    check_tokenizer(&cased, &texts(&alice), false);
    let lower = trained(TokenizerKind::Bpe, 800, |_| {});
    check_tokenizer(&lower, &texts(&alice), false);
}

#[test]
fn hostile_vocabularies_survive_and_pass_the_sanitizers() {
    // A word vocabulary with every kind of awkward token, swapped into a real tokenizer.
    let base = TextTokenizer::train(
        &Preprocessing {
            tokenizer: TokenizerKind::Word,
            vocab_size: 50,
            ..Preprocessing::default()
        },
        "a b c",
    )
    .unwrap();
    let hostile = [
        "<pad>",
        "<unk>",
        "\"",
        "\\",
        "??/",
        "??=x",
        "*/",
        "/*",
        "a\"b\\c",
        "\u{1}\u{2}\u{1f}",
        "x\u{0}y",
        "\u{0}",
        "é1",
        "\u{7f}f",
        "é",
        "ab",
        "'",
        "-",
        ",",
        "(",
        "don",
        "t",
        "’",
        "\n",
        "%",
        "$",
        "?",
    ];
    let mut json: serde_json::Value = serde_json::from_str(&base.to_json()).unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = hostile
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), serde_json::Value::from(i)))
        .collect();
    json["model"]["vocab"] = serde_json::Value::Object(vocab);
    let word = TextTokenizer::from_json(&json.to_string()).unwrap();
    assert_eq!(word.vocab(), hostile);
    check_tokenizer(&word, ODD, true);

    // Byte-level BPE trained on hostile text: tokens with NUL, control bytes, trigraphs and
    // partial UTF-8 sequences.
    let text =
        "\"quo\\ted\" ??/ ??= */ /* x\u{0}y \u{1}\u{2}\u{1b}[0m 日本語のテキスト 🙂🙂 é1 é2 café\n"
            .repeat(40);
    let bpe = TextTokenizer::train(
        &Preprocessing {
            tokenizer: TokenizerKind::Bpe,
            vocab_size: 400,
            lowercase: false,
            ..Preprocessing::default()
        },
        &text,
    )
    .unwrap();
    let files = emit(&bpe).unwrap();
    assert!(files.tokenizer_c.contains("\\000"), "a token holds NUL");
    let alphabet = TextTokenizer::decode;
    let partial = (0..bpe.vocab_size() as u32)
        .filter(|&i| alphabet(&bpe, &[i]).contains('\u{fffd}'))
        .count();
    assert!(partial > 0, "some token is a partial UTF-8 sequence");
    let mut texts: Vec<&str> = ODD.to_vec();
    texts.extend(text.lines().take(3));
    check_tokenizer(&bpe, &texts, true);
}

#[test]
fn emitted_tables_are_self_describing() {
    let tok = trained(TokenizerKind::Word, 300, |s| {
        s.normalization = Normalization::Nfc
    });
    let f = emit(&tok).unwrap();
    for needle in [
        "#define TZ_TOKENIZER_KIND TZ_KIND_WORD",
        "#define TZ_TOKENIZER_VOCAB_SIZE 300",
        "#define TZ_TOKENIZER_LOWERCASE 1",
        "#define TZ_TOKENIZER_NORMALIZATION 1",
        "NFC normalization, which the device does not",
    ] {
        assert!(f.tokenizer_h.contains(needle), "{needle}");
    }
    assert!(f.tokenizer_c.contains("tz_vocab_sorted"));
}

fn config(greedy: bool, temperature: f32, top_k: usize, top_p: f32, allow: bool) -> SampleConfig {
    SampleConfig {
        greedy,
        temperature,
        top_k,
        top_p,
        allow_special: allow,
        repetition_penalty: 1.0,
        no_repeat_ngram_size: 0,
    }
}

/// `config` with the context controls on.
fn controls(base: SampleConfig, penalty: f32, ngram: usize) -> SampleConfig {
    SampleConfig {
        repetition_penalty: penalty,
        no_repeat_ngram_size: ngram,
        ..base
    }
}

#[test]
fn c_sampler_draws_like_rust() {
    let tok = trained(TokenizerKind::Char, 100, |_| {});
    let c = Driver::new(&tok, false);
    // PCG32 streams.
    let lines = c.ask(&["R 42 50".into(), "R 18446744073709551615 5".into()]);
    for (line, seed) in lines.iter().zip([42u64, u64::MAX]) {
        let mut rng = Rng::new(seed);
        let want: String = (0..line.split(' ').count() / 2)
            .map(|_| {
                let u = rng.next_u32();
                format!("{u} {:08x} ", rng.next_f32().to_bits())
            })
            .collect();
        assert_eq!(line.trim_end(), want.trim_end());
    }
    // exp, bit for bit, on a sweep and on random bit patterns.
    let mut xs: Vec<f32> = (0..4000).map(|i| -110.0 + i as f32 * 0.0501).collect();
    let mut rng = Rng::new(3);
    xs.extend((0..4000).map(|_| f32::from_bits(rng.next_u32())));
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        88.72,
        -103.98,
        1e-30,
    ]);
    let req: String = xs.iter().map(|x| format!(" {:08x}", x.to_bits())).collect();
    let got = c.ask(&[format!("X{req}")]);
    let want: String = xs
        .iter()
        .map(|&x| {
            let y = exp(x);
            // NaN payloads may differ; compare NaN as NaN.
            format!(
                "{:08x} ",
                if y.is_nan() { 0x7fc0_0000 } else { y.to_bits() }
            )
        })
        .collect();
    let got: String = got[0]
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let b = u32::from_str_radix(s, 16).unwrap();
            format!(
                "{:08x} ",
                if f32::from_bits(b).is_nan() {
                    0x7fc0_0000
                } else {
                    b
                }
            )
        })
        .collect();
    assert_eq!(got, want);
    // Picks for many logit vectors and settings.
    let mut req = Vec::new();
    let mut want = Vec::new();
    let settings = [
        config(true, 1.0, 0, 1.0, false),
        config(true, 1.0, 0, 1.0, true),
        config(false, 1.0, 0, 1.0, false),
        config(false, 0.7, 0, 1.0, false),
        config(false, 1.3, 5, 1.0, false),
        config(false, 1.0, 0, 0.9, false),
        config(false, 0.8, 40, 0.95, true),
        config(false, 0.05, 0, 1.0, false),
        config(false, 1e-30, 3, 0.5, false),
        controls(config(true, 1.0, 0, 1.0, false), 1.3, 0),
        controls(config(true, 1.0, 0, 1.0, false), 1.0, 2),
        controls(config(true, 1.0, 0, 1.0, true), 0.7, 1),
        controls(config(false, 0.9, 0, 1.0, false), 1.7, 3),
        controls(config(false, 1.0, 10, 0.95, false), 9.5, 2),
        controls(config(false, 1.0, 0, 1.0, false), 1.0, 0),
    ];
    for case in 0..40u64 {
        let vocab = [2usize, 3, 17, 100, 512][case as usize % 5];
        let mut logits: Vec<f32> = (0..vocab)
            .map(|_| (rng.next_u32() % 2000) as f32 / 100.0 - 10.0)
            .collect();
        match case % 4 {
            0 => logits.iter_mut().for_each(|l| *l = (*l * 0.3).round()),
            1 if vocab > 4 => {
                logits[2] = f32::NAN;
                logits[3] = f32::NEG_INFINITY;
                logits[vocab - 1] = -0.0;
                logits[vocab - 2] = 0.0;
            }
            2 => logits.iter_mut().for_each(|l| *l *= 1e30),
            _ => {}
        }
        // A context with repeats (some ids beyond the vocabulary), or none: `pick` itself.
        let context: Option<Vec<u32>> = (case % 3 != 0).then(|| {
            (0..(case as usize * 3) % 40)
                .map(|j| match j % 4 {
                    0 => 2 + (case as u32 % 3),
                    1 => rng.next_u32() % (vocab as u32 + 2),
                    _ => 2 + (j as u32 % 4),
                })
                .collect()
        });
        for (k, &s) in settings.iter().enumerate() {
            let seed = case * 31 + k as u64;
            let mut r = TokenSampler::new(s, seed);
            let picks: Vec<String> = (0..25)
                .map(|_| match &context {
                    Some(c) => r.pick_in_context(&logits, c),
                    None => r.pick(&logits),
                })
                .map(|t| t.to_string())
                .collect();
            want.push(picks.join(" "));
            let bits: Vec<String> = logits
                .iter()
                .map(|l| format!("{:x}", l.to_bits()))
                .collect();
            let context_text = match &context {
                Some(c) => {
                    let ids: Vec<String> = c.iter().map(u32::to_string).collect();
                    format!("{} {}", c.len(), ids.join(" "))
                }
                None => "-1".into(),
            };
            req.push(format!(
                "S {} {:x} {} {:x} {} {:x} {} {seed} 25 {vocab} {} {context_text}",
                s.greedy as u8,
                s.temperature.to_bits(),
                s.top_k,
                s.top_p.to_bits(),
                s.allow_special as u8,
                s.repetition_penalty.to_bits(),
                s.no_repeat_ngram_size,
                bits.join(" ")
            ));
        }
    }
    assert_eq!(c.ask(&req), want);
}

/// A stand-in model: logits from a hash of the context, computed identically by the fake C
/// runtime below (integer arithmetic, then one exact-int / 100 division).
struct FakeLm {
    config: ModelConfig,
}

fn fake_logits(context: &[u32], vocab: usize) -> Vec<f32> {
    let mut h: u32 = context.len() as u32 * 97;
    for (j, &t) in context.iter().enumerate() {
        h = h
            .wrapping_mul(31)
            .wrapping_add(t.wrapping_mul(j as u32 + 1));
    }
    (0..vocab as u32)
        .map(|i| {
            let x = i
                .wrapping_mul(2_654_435_761)
                .wrapping_add(h.wrapping_mul(40_503))
                >> 8;
            (x % 1000) as f32 / 100.0
        })
        .collect()
}

const FAKE_RT_C: &str = r#"
#include "model.h"
const tz_model TZ_MODEL = {0};
static float logits[TZ_VOCAB_SIZE];
void tz_reset(void) {}
const float *tz_next_logits(const tz_model *m, const uint16_t *context, int n)
{
    uint32_t h = (uint32_t)n * 97u, i;
    int j;
    (void)m;
    for (j = 0; j < n; j++) h = h * 31u + (uint32_t)context[j] * (uint32_t)(j + 1);
    for (i = 0; i < TZ_VOCAB_SIZE; i++) {
        uint32_t x = (i * 2654435761u + h * 40503u) >> 8;
        logits[i] = (float)(x % 1000u) / 100.0f;
    }
    return logits;
}
"#;

/// The real platform layer of host builds.
const PLATFORM_H: &str = include_str!("c/platform.h");
const PLATFORM_C: &str = include_str!("c/platform/platform_host.c");

impl LanguageModel for FakeLm {
    fn config(&self) -> &ModelConfig {
        &self.config
    }
    fn window_logits(&mut self, _: &[u32], _: usize, _: usize) -> Vec<f32> {
        unreachable!("the fake model only answers next_logits")
    }
    fn next_logits(&mut self, context: &[u32]) -> Vec<f32> {
        fake_logits(context, self.config.vocab_size)
    }
}

fn build_app(
    tok: &TextTokenizer,
    app_config: &str,
    extra: &[&str],
) -> (tempfile::TempDir, PathBuf) {
    let dir = project(tok, tok.vocab_size());
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("app.c", APP_C);
    write("textzoo_app.h", APP_H);
    write("rt.c", FAKE_RT_C);
    write("platform.h", PLATFORM_H);
    write("platform.c", PLATFORM_C);
    write("app_config.h", app_config);
    let exe = compile(
        dir.path(),
        &[
            "app.c",
            "rt.c",
            "platform.c",
            "tz_text.c",
            "tz_sample.c",
            "tokenizer.c",
        ],
        "app",
        extra,
    );
    (dir, exe)
}

fn rust_generate(tok: &TextTokenizer, settings: &Prediction, seed: u64) -> String {
    let mut lm = FakeLm {
        config: ModelConfig {
            kind: ModelName::TinyGpt,
            vocab_size: tok.vocab_size(),
            seq_len: 16,
            embed_dim: 8,
            num_heads: 1,
            num_layers: 1,
            ffn_dim: 8,
            hidden_dim: 8,
            dropout: 0.0,
            tie_embeddings: false,
        },
    };
    let mut streamed = String::new();
    let text = crate::prediction::generate(&mut lm, tok, settings, seed, |s| streamed.push_str(s))
        .unwrap();
    text + "\n"
}

#[test]
fn app_prints_what_prediction_generates() {
    let word = trained(TokenizerKind::Word, 400, |_| {});
    let char_tok = trained(TokenizerKind::Char, 120, |_| {});
    let bpe = trained(TokenizerKind::Bpe, 500, |s| s.lowercase = false);
    let prompts = [
        "to be or not",
        "I don '",
        "",
        "First Citizen: well -",
        "Zoë's «café» (",
        "we 'll see, my lord",
    ];
    for (tok, sanitize) in [(&word, true), (&char_tok, false), (&bpe, false)] {
        let app_config = "#define TZ_PROMPT \"to be or not\"\n#define TZ_MAX_TOKENS 12\n\
                          #define TZ_GREEDY 0\n#define TZ_TEMPERATURE 0.8\n#define TZ_SEED 5\n";
        let extra: &[&str] = if sanitize { SANITIZE } else { &[] };
        let (_dir, exe) = build_app(tok, app_config, &[&["-DTZ_HOST"], extra].concat());
        // The compiled-in defaults.
        let defaults = Prediction {
            prompt: "to be or not".into(),
            max_tokens: 12,
            strategy: Strategy::Sample,
            temperature: 0.8,
            ..Prediction::default()
        };
        assert_eq!(
            run(&exe, &[], ""),
            rust_generate(tok, &defaults, 5),
            "{:?}",
            tok.kind()
        );
        // Command-line overrides.
        for (i, prompt) in prompts.iter().enumerate() {
            for (strategy, top_k, top_p, temperature, penalty, ngram) in [
                (Strategy::Greedy, 0, 1.0, 1.0, 1.0, 0),
                (Strategy::Sample, 0, 1.0, 1.0, 1.0, 0),
                (Strategy::Sample, 5, 0.9, 1.5, 1.0, 0),
                (Strategy::Greedy, 0, 1.0, 1.0, 1.3, 2),
                (Strategy::Sample, 0, 1.0, 0.8, 2.5, 3),
            ] {
                let settings = Prediction {
                    prompt: prompt.to_string(),
                    max_tokens: 25,
                    strategy,
                    temperature,
                    top_k,
                    top_p,
                    repetition_penalty: penalty,
                    no_repeat_ngram_size: ngram,
                    ..Prediction::default()
                };
                let seed = 100 + i as u64;
                let args = [
                    "--prompt".to_string(),
                    prompt.to_string(),
                    "--max-tokens".into(),
                    "25".into(),
                    "--seed".into(),
                    seed.to_string(),
                    if strategy == Strategy::Greedy {
                        "--greedy"
                    } else {
                        "--sample"
                    }
                    .into(),
                    "--temperature".into(),
                    temperature.to_string(),
                    "--top-k".into(),
                    top_k.to_string(),
                    "--top-p".into(),
                    top_p.to_string(),
                    "--repetition-penalty".into(),
                    penalty.to_string(),
                    "--no-repeat-ngram-size".into(),
                    ngram.to_string(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                assert_eq!(
                    run(&exe, &args, ""),
                    rust_generate(tok, &settings, seed),
                    "{:?} {prompt:?} {strategy:?}",
                    tok.kind()
                );
            }
        }
        // The trace: prompt ids, then each step's token and logits.
        let out = run(&exe, &["--trace", "--max-tokens", "3", "--greedy"], "");
        let lines: Vec<&str> = out.lines().collect();
        let ids = tok.encode("to be or not").unwrap();
        let mut want = "prompt_ids".to_string();
        ids.iter().for_each(|i| want.push_str(&format!(" {i}")));
        assert_eq!(lines[0], want);
        assert_eq!(lines.len(), 4);
        let mut context = ids.clone();
        let mut sampler = crate::prediction::Sampler::new(&Prediction::default(), 5);
        for (step, line) in lines[1..].iter().enumerate() {
            let logits = fake_logits(&context, tok.vocab_size());
            let token = sampler.pick(&logits);
            let bits: Vec<String> = logits
                .iter()
                .map(|l| format!("{:08x}", l.to_bits()))
                .collect();
            assert_eq!(
                *line,
                format!("step {step} token {token} logits {}", bits.join(" "))
            );
            context.push(token);
        }
    }
}

#[test]
fn app_refuses_too_long_prompts_and_bad_options() {
    let word = trained(TokenizerKind::Word, 200, |_| {});
    let (_dir, exe) = build_app(&word, "", &["-DTZ_HOST", "-DTZ_PROMPT_CAP=4"]);
    let out = Command::new(&exe)
        .args(["--prompt", "one two three four five"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("TZ_PROMPT_CAP = 4"));
    let out = Command::new(&exe).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    for bad in [
        ["--repetition-penalty", "0"],
        ["--repetition-penalty", "11"],
        ["--no-repeat-ngram-size", "-1"],
    ] {
        let out = Command::new(&exe).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("repetition penalty"));
    }
    // A board build (no TZ_HOST) compiles too, with the prompt ids given by the host, and
    // prints the on-board timing line after the text (here the host platform's ticks, in ns,
    // stand in for DWT cycles at 1 GHz); benchmarking's parser reads it back.
    let (_dir, exe) = build_app(
        &word,
        "#define TZ_PROMPT \"to be\"\n#define TZ_PROMPT_IDS 7, 9\n#define TZ_PROMPT_ID_COUNT 2\n\
         #define TZ_MAX_TOKENS 3\n#define TZ_SYSCLK_HZ 1000000000u\n",
        &[],
    );
    let out = run(&exe, &[], "");
    assert!(out.starts_with("to be"), "{out}");
    let (text, timing) = out
        .split_once("\ntiming: ")
        .expect("a timing line after the text");
    assert!(!text.contains("timing"), "{out}");
    let m = crate::benchmarking::board_log::parse(&format!("timing: {timing}"), "app").unwrap();
    assert_eq!((m.tokens, m.sysclk_hz), (2, 1_000_000_000), "{out}");
    assert!(m.cycles_per_token > 0, "{out}");
    // Without TZ_SYSCLK_HZ a board build stops with a message saying what is missing.
    let dir = project(&word, word.vocab_size());
    for (name, text) in [
        ("app.c", APP_C),
        ("textzoo_app.h", APP_H),
        ("platform.h", PLATFORM_H),
        ("app_config.h", ""),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new("cc")
        .args(["-std=c99", "-c", "-o", "/dev/null", "app.c"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TZ_SYSCLK_HZ (app_config.h) is needed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
