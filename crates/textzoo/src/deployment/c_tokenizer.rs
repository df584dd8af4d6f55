//! The tokenizer as C tables (`tokenizer.h`, `tokenizer.c`) for `tz_text.c`, which encodes
//! prompts and decodes tokens on the device exactly like [`TextTokenizer`].
//!
//! Every token is stored as its real bytes (byte-level BPE tokens are mapped back from the
//! byte alphabet) in a C string literal with an explicit length, so any byte sequence survives:
//! NUL, quotes, backslashes, trigraphs, invalid UTF-8. Unicode knowledge the device would need
//! tables for is computed here and emitted only as far as it matters: character classes for the
//! regexes that cut text (word `\w`, BPE `\p{L}`/`\p{N}`), and lowercase mappings (all of them
//! for BPE, which can encode any character; for word and char vocabularies only the characters
//! whose lowercase could reach a vocabulary token or change a class).

use super::c_arrays::{CArray, CArrays, Linkage};
use crate::config::{Normalization, TokenizerKind, WordPattern};
use crate::data::TextTokenizer;
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

pub struct CTokenizerFiles {
    pub tokenizer_h: String,
    pub tokenizer_c: String,
}

/// Character class bits shared with `tz_text.c`.
const CLASS_WORD: u8 = 1;
const CLASS_LETTER: u8 = 2;
const CLASS_NUMBER: u8 = 4;

/// The Keras word pattern as textzoo writes it into `tokenizer.json` (data/tokenizer.rs).
const KERAS_WORDS: &str = r"[a-z0-9]+|[^a-z0-9\s]";

/// Word joining tables: must equal `data/detokenize.rs` (the C-vs-Rust decode tests use every
/// one of them, so a drift fails there).
const CLOSERS: &[&str] = &[".", ",", ";", ":", "!", "?", ")", "]", "}", "%"];
const OPENERS: &[&str] = &["(", "[", "{", "$"];
const JOINERS: &[&str] = &["'", "-", "’"];
const FLAG_WORD: u8 = 1;
const FLAG_CLOSER: u8 = 2;
const FLAG_OPENER: u8 = 4;
const FLAG_JOINER: u8 = 8;

/// C99 guarantees string literals of 4095 characters; longer tokens would need an extension.
const MAX_LITERAL: usize = 4095;

/// `bytes` as a C99 string literal that yields exactly these bytes (use an explicit length
/// when they may hold NUL). Only printable ASCII is written as itself; `?` is always escaped
/// (no trigraph can form), `/` after `*` too (no comment terminator even if quoted in a
/// comment), and everything else uses three-digit octal escapes, which cannot swallow a
/// following digit the way a hex escape swallows following hex digits.
pub fn c_string_literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    let mut prev = 0u8;
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' => out.push_str("\\?"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'/' if prev == b'*' => out.push_str("\\057"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
        prev = b;
    }
    out.push('"');
    out
}

/// The pipeline settings read back from the tokenizer's JSON (the device replays them).
struct Settings {
    lowercase: bool,
    normalization: Normalization,
    pattern: WordPattern,
}

fn settings(tok: &TextTokenizer, json: &serde_json::Value) -> Result<Settings> {
    let mut types = Vec::new();
    if let Some(n) = json.get("normalizer").filter(|n| !n.is_null()) {
        let list = n
            .get("normalizers")
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_else(|| vec![n.clone()]);
        for x in list {
            types.push(
                x.get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    if let Some(t) = types
        .iter()
        .find(|t| !["NFC", "NFKC", "Lowercase"].contains(&t.as_str()))
    {
        return Err(Error::Usage(format!(
            "the tokenizer's normalizer `{t}` has no C version for the device"
        )));
    }
    let normalization = if types.iter().any(|t| t == "NFKC") {
        Normalization::Nfkc
    } else if types.iter().any(|t| t == "NFC") {
        Normalization::Nfc
    } else {
        Normalization::None
    };
    let keras = serde_json::to_string(KERAS_WORDS).unwrap_or_default();
    let pattern = if tok.kind() == TokenizerKind::Word
        && json
            .get("pre_tokenizer")
            .is_some_and(|p| p.to_string().contains(&keras))
    {
        WordPattern::Keras
    } else {
        WordPattern::Unicode
    };
    Ok(Settings {
        lowercase: types.iter().any(|t| t == "Lowercase"),
        normalization,
        pattern,
    })
}

/// GPT-2's byte alphabet, reversed: the byte each alphabet character stands for.
fn alphabet_bytes() -> HashMap<char, u8> {
    let mut bs: Vec<u8> = (b'!'..=b'~')
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut cs: Vec<u32> = bs.iter().map(|&b| b as u32).collect();
    let mut n = 0;
    for b in 0..=255u8 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter()
        .zip(cs)
        .filter_map(|(&b, c)| char::from_u32(c).map(|c| (c, b)))
        .collect()
}

/// A token's real bytes: for byte-level BPE, each alphabet character back to its byte (a
/// token with a character outside the alphabet, such as a special token, stays as UTF-8,
/// as the HF ByteLevel decoder does).
fn token_bytes(kind: TokenizerKind, token: &str, alphabet: &HashMap<char, u8>) -> Vec<u8> {
    if kind != TokenizerKind::Bpe {
        return token.as_bytes().to_vec();
    }
    token
        .chars()
        .map(|c| alphabet.get(&c).copied())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| token.as_bytes().to_vec())
}

/// Class bits of every code point (`\w`, `\p{L}`, `\p{N}` as the Rust regex crate, which
/// both the fast encoder and HF's fancy-regex use, defines them). Computed once per process
/// by running each class over a string of all non-ASCII characters.
fn classes() -> &'static [u8] {
    static CLASSES: OnceLock<Vec<u8>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let all: String = (0x80u32..=0x10ffff).filter_map(char::from_u32).collect();
        let mut bits = vec![0u8; 0x110000];
        for (pattern, bit) in [
            (r"\w+", CLASS_WORD),
            (r"\p{L}+", CLASS_LETTER),
            (r"\p{N}+", CLASS_NUMBER),
        ] {
            // A fixed pattern: it always compiles.
            if let Ok(re) = regex::Regex::new(pattern) {
                for m in re.find_iter(&all) {
                    for c in m.as_str().chars() {
                        bits[c as usize] |= bit;
                    }
                }
            }
        }
        bits
    })
}

fn class_of(c: char) -> u8 {
    classes()[c as usize]
}

/// Ranges `[lo, hi, bits]` of non-ASCII code points with a nonzero class under `mask`.
fn class_ranges(mask: u8) -> Vec<[u32; 3]> {
    let mut out: Vec<[u32; 3]> = Vec::new();
    if mask == 0 {
        return out;
    }
    for (cp, &b) in classes().iter().enumerate().skip(0x80) {
        let b = b & mask;
        if b == 0 {
            continue;
        }
        let cp = cp as u32;
        match out.last_mut() {
            Some(last) if last[1] + 1 == cp && last[2] == b as u32 => last[1] = cp,
            _ => out.push([cp, cp, b as u32]),
        }
    }
    out
}

/// Non-ASCII lowercase mappings the device needs (see the module docs). Each maps to at most
/// two characters (`İ` → `i̇` is the only two-character case in Unicode).
fn lower_map(kind: TokenizerKind, vocab_chars: &BTreeSet<char>) -> Result<Vec<[u32; 3]>> {
    let mut out = Vec::new();
    for c in (0x80u32..=0x10ffff).filter_map(char::from_u32) {
        let lower: Vec<char> = c.to_lowercase().collect();
        if lower == [c] {
            continue;
        }
        if lower.len() > 2 {
            return Err(Error::Internal(format!(
                "lowercase of U+{:04X} has {} characters",
                c as u32,
                lower.len()
            )));
        }
        let needed = kind == TokenizerKind::Bpe
            || lower.len() > 1
            || vocab_chars.contains(&c)
            || lower.iter().all(|l| vocab_chars.contains(l))
            || class_of(c) != class_of(lower[0]);
        if needed {
            out.push([
                c as u32,
                lower[0] as u32,
                lower.get(1).map_or(0, |&l| l as u32),
            ]);
        }
    }
    Ok(out)
}

/// BPE merges as `(left id, right id) → (rank, merged id)`, from the tokenizer's JSON.
fn bpe_merges(
    json: &serde_json::Value,
    vocab: &[String],
) -> Result<BTreeMap<(u16, u16), (u16, u16)>> {
    let model = json
        .get("model")
        .ok_or_else(|| Error::Internal("tokenizer JSON has no model".into()))?;
    if model.get("ignore_merges").and_then(|v| v.as_bool()) == Some(true) {
        return Err(Error::Usage(
            "BPE tokenizers with ignore_merges have no C version for the device".into(),
        ));
    }
    let ids: HashMap<&str, u16> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u16))
        .collect();
    let list = model
        .get("merges")
        .and_then(|m| m.as_array())
        .ok_or_else(|| Error::Internal("BPE tokenizer JSON has no merges".into()))?;
    let mut merges = BTreeMap::new();
    for (rank, m) in list.iter().enumerate() {
        let (a, b) = match m {
            serde_json::Value::String(s) => match s.split_once(' ') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => return Err(Error::Internal(format!("odd BPE merge {s:?}"))),
            },
            serde_json::Value::Array(pair) if pair.len() == 2 => (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            ),
            other => return Err(Error::Internal(format!("odd BPE merge {other}"))),
        };
        let merged = format!("{a}{b}");
        match (
            ids.get(a.as_str()),
            ids.get(b.as_str()),
            ids.get(merged.as_str()),
        ) {
            (Some(&l), Some(&r), Some(&m)) => {
                merges.entry((l, r)).or_insert((rank as u16, m));
            }
            _ => {
                return Err(Error::Internal(format!(
                    "BPE merge {a:?} + {b:?} refers to tokens outside the vocabulary"
                )))
            }
        }
    }
    Ok(merges)
}

/// C forbids empty arrays: an empty table gets one unused entry (its count macro stays 0).
fn rows<T: Copy>(table: &[T], filler: T) -> Vec<T> {
    if table.is_empty() {
        vec![filler]
    } else {
        table.to_vec()
    }
}

/// Word joining flags of each token (the word vocabulary's `tz_token_flags`).
fn word_flags(vocab: &[String]) -> Vec<u8> {
    vocab
        .iter()
        .map(|t| {
            let mut f = 0u8;
            if t.chars().next().is_some_and(char::is_alphanumeric) {
                f |= FLAG_WORD;
            }
            for (list, bit) in [
                (CLOSERS, FLAG_CLOSER),
                (OPENERS, FLAG_OPENER),
                (JOINERS, FLAG_JOINER),
            ] {
                if list.contains(&t.as_str()) {
                    f |= bit;
                }
            }
            f
        })
        .collect()
}

/// Token ids ordered by their bytes (memcmp order, shorter first; ties by id), for the
/// device's binary search.
fn sorted_ids(tokens: &[Vec<u8>]) -> Vec<usize> {
    let mut sorted: Vec<usize> = (0..tokens.len()).collect();
    sorted.sort_by(|&a, &b| tokens[a].cmp(&tokens[b]).then(a.cmp(&b)));
    sorted
}

/// The byte-level BPE tables: each byte's token and the merges.
struct BpeTables {
    /// The token of each single byte (`u16::MAX`: none).
    byte_ids: [u16; 256],
    /// `(left id, right id) → (rank, merged id)`, sorted by the pair.
    merges: Vec<((u16, u16), (u16, u16))>,
}

impl BpeTables {
    fn of(
        json: &serde_json::Value,
        vocab: &[String],
        alphabet: &HashMap<char, u8>,
    ) -> Result<Self> {
        let merges = bpe_merges(json, vocab)?.into_iter().collect();
        // As the BPE model looks bytes up: by their alphabet character's token.
        let ids: HashMap<&str, u16> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u16))
            .collect();
        let mut byte_ids = [u16::MAX; 256];
        for (ch, &b) in alphabet {
            if let Some(&id) = ids.get(ch.to_string().as_str()) {
                byte_ids[b as usize] = id;
            }
        }
        Ok(BpeTables { byte_ids, merges })
    }
}

/// Everything the two files are rendered from, gathered and checked first: the pipeline
/// settings, the tokens' bytes and the tables the tokenizer's kind needs.
struct Tables {
    kind: TokenizerKind,
    settings: Settings,
    /// Each token's real bytes.
    tokens: Vec<Vec<u8>>,
    /// Longest token in bytes (at least 1).
    max_bytes: usize,
    /// Non-ASCII class ranges `[first, last, bits]`.
    ranges: Vec<[u32; 3]>,
    /// Non-ASCII lowercase mappings `[from, to, second or 0]`.
    lower: Vec<[u32; 3]>,
    /// Ids by token bytes; word and char vocabularies (BPE encodes by merges instead).
    sorted: Option<Vec<usize>>,
    /// Word joining flags; word vocabularies only.
    flags: Option<Vec<u8>>,
    bpe: Option<BpeTables>,
}

impl Tables {
    fn gather(tok: &TextTokenizer) -> Result<Tables> {
        let json: serde_json::Value = serde_json::from_str(&tok.to_json())
            .map_err(|e| Error::Internal(format!("tokenizer JSON: {e}")))?;
        let settings = settings(tok, &json)?;
        let kind = tok.kind();
        let vocab = tok.vocab();
        if vocab.len() > u16::MAX as usize {
            return Err(Error::Usage(format!(
                "the device stores token ids as uint16_t: a vocabulary of {} tokens is too large",
                vocab.len()
            )));
        }
        let alphabet = alphabet_bytes();
        let tokens: Vec<Vec<u8>> = vocab
            .iter()
            .map(|t| token_bytes(kind, t, &alphabet))
            .collect();
        if let Some((id, t)) = tokens
            .iter()
            .enumerate()
            .find(|(_, t)| t.len() > MAX_LITERAL)
        {
            return Err(Error::Usage(format!(
                "token {id} is {} bytes long; C99 string literals hold at most {MAX_LITERAL}",
                t.len()
            )));
        }
        let max_bytes = tokens.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let class_mask = match (kind, settings.pattern) {
            (TokenizerKind::Word, WordPattern::Unicode) => CLASS_WORD,
            (TokenizerKind::Bpe, _) => CLASS_LETTER | CLASS_NUMBER,
            _ => 0,
        };
        let lower = if settings.lowercase {
            let vocab_chars: BTreeSet<char> = vocab.iter().flat_map(|t| t.chars()).collect();
            lower_map(kind, &vocab_chars)?
        } else {
            Vec::new()
        };
        let bpe = match kind {
            TokenizerKind::Bpe => Some(BpeTables::of(&json, vocab, &alphabet)?),
            TokenizerKind::Word | TokenizerKind::Char => None,
        };
        Ok(Tables {
            kind,
            settings,
            sorted: (kind != TokenizerKind::Bpe).then(|| sorted_ids(&tokens)),
            flags: (kind == TokenizerKind::Word).then(|| word_flags(vocab)),
            tokens,
            max_bytes,
            ranges: class_ranges(class_mask),
            lower,
            bpe,
        })
    }

    /// The `TZ_KIND_*` macro and how the files' comments name the kind.
    fn kind_names(&self) -> (&'static str, &'static str) {
        match self.kind {
            TokenizerKind::Word => ("TZ_KIND_WORD", "word"),
            TokenizerKind::Char => ("TZ_KIND_CHAR", "char"),
            TokenizerKind::Bpe => ("TZ_KIND_BPE", "byte-level BPE"),
        }
    }

    /// Most bytes one token adds to `tz_decode`'s text (a space, U+FFFD replacements).
    fn text_max(&self) -> usize {
        match self.kind {
            TokenizerKind::Word => self.max_bytes.max(5) + 1,
            TokenizerKind::Char => self.max_bytes.max(5),
            TokenizerKind::Bpe => 3 * self.max_bytes,
        }
    }

    /// Every table, in file order: the `.c` defines them, the `.h` declares them.
    fn arrays(&self) -> CArrays {
        const VOCAB: &str = "[TZ_TOKENIZER_VOCAB_SIZE]";
        let mut a = CArrays::new(Linkage::External, "\n", 0);
        let strings = CArray::new("char *const", "tz_vocab_str", VOCAB, 1).with_comment(
            "/* Token bytes (byte-level BPE: the real bytes), lengths in tz_vocab_len. */",
        );
        a.add(&strings, self.tokens.iter().map(|t| c_string_literal(t)));
        let lengths = CArray::new("uint16_t", "tz_vocab_len", VOCAB, 12);
        a.add(&lengths, self.tokens.iter().map(Vec::len));
        if let Some(sorted) = &self.sorted {
            let array = CArray::new("uint16_t", "tz_vocab_sorted", VOCAB, 12).with_comment(
                "/* Ids by token bytes (memcmp order, shorter first), for binary search. */",
            );
            a.add(&array, sorted);
        }
        if let Some(flags) = &self.flags {
            let array = CArray::new("uint8_t", "tz_token_flags", VOCAB, 12)
                .with_comment("/* Word joining: 1 word, 2 closer, 4 opener, 8 joiner. */");
            a.add(&array, flags);
        }
        let ranges = CArray::new("uint32_t", "tz_class_ranges", "[][3]", 12).with_comment(
            "/* Non-ASCII class ranges {first, last, bits}: 1 \\w, 2 \\p{L}, 4 \\p{N}. */",
        );
        a.add(
            &ranges,
            rows(&self.ranges, [0, 0, 0])
                .iter()
                .map(|r| format!("{{0x{:x}, 0x{:x}, {}}}", r[0], r[1], r[2])),
        );
        let lower = CArray::new("uint32_t", "tz_lower_map", "[][3]", 12)
            .with_comment("/* Non-ASCII lowercase {from, to, second or 0}. */");
        a.add(
            &lower,
            rows(&self.lower, [0, 0, 0])
                .iter()
                .map(|r| format!("{{0x{:x}, 0x{:x}, 0x{:x}}}", r[0], r[1], r[2])),
        );
        if let Some(bpe) = &self.bpe {
            let bytes = CArray::new("uint16_t", "tz_byte_ids", "[256]", 12)
                .with_comment("/* The token of each single byte (0xffff: none). */");
            a.add(&bytes, bpe.byte_ids);
            let m = rows(&bpe.merges, ((0, 0), (0, 0)));
            let keys = CArray::new("uint32_t", "tz_bpe_merge_key", "[]", 12).with_comment(
                "/* Merges sorted by (left << 16 | right), with rank and merged id. */",
            );
            a.add(
                &keys,
                m.iter().map(|((l, r), _)| ((*l as u32) << 16) | *r as u32),
            );
            let ranks = CArray::new("uint16_t", "tz_bpe_merge_rank", "[]", 12);
            a.add(&ranks, m.iter().map(|(_, (rank, _))| rank));
            let ids = CArray::new("uint16_t", "tz_bpe_merge_id", "[]", 12);
            a.add(&ids, m.iter().map(|(_, (_, id))| id));
        }
        a
    }

    /// `tokenizer.c`: the tables' definitions.
    fn source(&self, arrays: &CArrays) -> String {
        let (_, kind_name) = self.kind_names();
        let mut c = format!(
            "/* Generated by textzoo: the {kind_name} tokenizer's tables ({} tokens). Do not \
             edit. */\n#include \"tokenizer.h\"\n\n",
            self.tokens.len()
        );
        c.push_str(arrays.definitions());
        // The shared tables end with a blank line, the BPE merge tables without one.
        if self.bpe.is_none() {
            c.push('\n');
        }
        c
    }

    /// `tokenizer.h`: the settings `tz_text.c` replays, the table sizes and the declarations.
    fn header(&self, arrays: &CArrays) -> String {
        let s = &self.settings;
        let (kind_macro, kind_name) = self.kind_names();
        let mut h = String::new();
        let _ = writeln!(
            h,
            "/* Generated by textzoo: the {kind_name} tokenizer for tz_text.c. Do not edit.{} */",
            match s.normalization {
                Normalization::None => String::new(),
                n => format!(
                    "\n * The tokenizer applies {} normalization, which the device does not: prompts\n * must already be in that form (plain ASCII always is).",
                    if n == Normalization::Nfc { "NFC" } else { "NFKC" }
                ),
            }
        );
        h.push_str("#ifndef TZ_TOKENIZER_H\n#define TZ_TOKENIZER_H\n\n#include <stdint.h>\n\n");
        h.push_str("#define TZ_KIND_WORD 0\n#define TZ_KIND_CHAR 1\n#define TZ_KIND_BPE 2\n");
        let _ = writeln!(h, "#define TZ_TOKENIZER_KIND {kind_macro}");
        let _ = writeln!(h, "#define TZ_TOKENIZER_VOCAB_SIZE {}", self.tokens.len());
        let _ = writeln!(h, "#define TZ_TOKENIZER_LOWERCASE {}", s.lowercase as u8);
        let _ = writeln!(
            h,
            "/* 0 unicode (\\w+|[^\\w\\s]), 1 keras ([a-z0-9]+|[^a-z0-9\\s]) */\n#define TZ_TOKENIZER_WORD_PATTERN {}",
            (s.pattern == WordPattern::Keras) as u8
        );
        let _ = writeln!(
            h,
            "/* 0 none, 1 NFC, 2 NFKC (not applied on the device) */\n#define TZ_TOKENIZER_NORMALIZATION {}",
            match s.normalization {
                Normalization::None => 0,
                Normalization::Nfc => 1,
                Normalization::Nfkc => 2,
            }
        );
        let _ = writeln!(
            h,
            "/* Longest token, in bytes. */\n#define TZ_TOKEN_MAX_BYTES {}",
            self.max_bytes
        );
        let _ = writeln!(
            h,
            "/* Most bytes one token adds to tz_decode's text (space, U+FFFD replacements). */\n#define TZ_TOKEN_TEXT_MAX {}",
            self.text_max()
        );
        let _ = writeln!(h, "#define TZ_CLASS_RANGE_COUNT {}", self.ranges.len());
        let _ = writeln!(h, "#define TZ_LOWER_MAP_COUNT {}", self.lower.len());
        let merges = self.bpe.as_ref().map_or(0, |b| b.merges.len());
        let _ = writeln!(h, "#define TZ_BPE_MERGE_COUNT {merges}\n");
        h.push_str(arrays.declarations());
        h.push_str("\n#endif\n");
        h
    }
}

/// The tokenizer's C files: the tables are gathered (and anything the device cannot replay
/// refused) first, then both files are rendered from the same list of arrays.
pub fn emit(tok: &TextTokenizer) -> Result<CTokenizerFiles> {
    let tables = Tables::gather(tok)?;
    let arrays = tables.arrays();
    Ok(CTokenizerFiles {
        tokenizer_h: tables.header(&arrays),
        tokenizer_c: tables.source(&arrays),
    })
}
