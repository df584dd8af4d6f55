//! Tokenizers (word, char, byte-level BPE) built with HuggingFace `tokenizers`, saved as a
//! standard `tokenizer.json` that Python's `tokenizers.Tokenizer.from_file` loads unchanged.

use super::detokenize::join_words;
use super::fast_encode::FastEncoder;
use crate::config::{Normalization, Preprocessing, TokenizerKind, WordPattern};
use crate::error::{Error, Result};
use crate::util::checksum;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::{Lowercase, NormalizerWrapper, Sequence as NormSequence, NFC, NFKC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";
/// Special tokens take the first ids, in this order.
pub const SPECIAL_TOKENS: [&str; 2] = [PAD, UNK];
pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;

/// Unicode words, or any other single non-space character.
pub(super) const UNICODE_WORDS: &str = r"\w+|[^\w\s]";
/// The Keras anchor's tokens (applied after lowercasing): `[a-z0-9]` runs or any other char.
pub(super) const KERAS_WORDS: &str = r"[a-z0-9]+|[^a-z0-9\s]";
/// Every character, newlines and spaces included.
pub(super) const EVERY_CHAR: &str = r"[\s\S]";

/// Text in, token ids out, and back: the tokenizer of a model.
#[derive(Clone)]
pub struct TextTokenizer {
    kind: TokenizerKind,
    inner: Tokenizer,
    /// Token strings by id, for decoding and for the generated C vocabulary.
    vocab: Vec<String>,
    /// The same pipeline replayed directly, for speed on big texts (word and char kinds).
    fast: Option<FastEncoder>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TextTokenizer({:?}, {} tokens)",
            self.kind,
            self.vocab.len()
        )
    }
}

fn internal(what: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl TextTokenizer {
    /// Trains a tokenizer of the configured kind on `train_text` (the training split only).
    pub fn train(settings: &Preprocessing, train_text: &str) -> Result<Self> {
        let mut tokenizer = skeleton(settings)?;
        let specials: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .map(|t| AddedToken::from(*t, true))
            .collect();
        let mut trainer: TrainerWrapper = match settings.tokenizer {
            TokenizerKind::Bpe => BpeTrainerBuilder::new()
                .vocab_size(settings.vocab_size)
                .min_frequency(settings.min_frequency)
                .show_progress(false)
                .special_tokens(specials)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .build()
                .into(),
            TokenizerKind::Word | TokenizerKind::Char => WordLevelTrainer::builder()
                .vocab_size(settings.vocab_size)
                .min_frequency(settings.min_frequency)
                .show_progress(false)
                .special_tokens(specials)
                .build()
                .map_err(|e| Error::Internal(format!("word-level trainer: {e}")))?
                .into(),
        };
        tokenizer
            .train(&mut trainer, train_text.split_inclusive('\n'))
            .map_err(internal("training the tokenizer"))?;
        Self::from_tokenizer(settings.tokenizer, tokenizer)
    }

    /// Loads a `tokenizer.json`; refuses a file that is not a tokenizer or is of another kind
    /// than `expected`, and one whose checksum sidecar (written by [`TextTokenizer::save`])
    /// disagrees with its contents. A file without sidecar (from another tool or an older
    /// textzoo) loads with a note.
    pub fn load(path: &Path, expected: TokenizerKind) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        checksum::verify_sidecar(path, &bytes)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| Error::input(path, format!("is not UTF-8 text: {e}")))?;
        let tokenizer = Self::from_json(&text).map_err(|message| Error::input(path, message))?;
        if tokenizer.kind != expected {
            return Err(Error::input(
                path,
                format!(
                    "is a `{}` tokenizer but preprocessing.tokenizer is `{}`",
                    kind_name(tokenizer.kind),
                    kind_name(expected)
                ),
            ));
        }
        Ok(tokenizer)
    }

    /// Parses the JSON of a tokenizer built by textzoo (from a file or a model's metadata).
    pub fn from_json(json: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| format!("is not a tokenizer.json (not JSON: {e})"))?;
        let kind = detect_kind(&value)?;
        // `tokenizers` slices every BPE merge's second token past this prefix without checking
        // its length (a panic on a short token); textzoo's byte-level BPE never sets one.
        let prefix = value["model"]["continuing_subword_prefix"].as_str();
        if kind == TokenizerKind::Bpe && prefix.is_some_and(|p| !p.is_empty()) {
            return Err("has a BPE continuing_subword_prefix; textzoo's BPE uses none".into());
        }
        let tokenizer: Tokenizer = json
            .parse()
            .map_err(|e| format!("is not a valid HuggingFace tokenizer.json: {e}"))?;
        Self::from_tokenizer(kind, tokenizer).map_err(|e| e.to_string())
    }

    fn from_tokenizer(kind: TokenizerKind, inner: Tokenizer) -> Result<Self> {
        let size = inner.get_vocab_size(true);
        // Ids are 0..size in every tokenizer textzoo writes. A file with an id past that
        // (say 4e9) would make `tokenizers` walk and record every missing id up to it when it
        // serializes the vocabulary (and overflow at u32::MAX), and would encode to ids the
        // model has no row for.
        if let Some(id) = inner
            .get_vocab(true)
            .into_values()
            .find(|&id| id as usize >= size)
        {
            return Err(Error::Internal(format!(
                "tokenizer has token id {id} but only {size} tokens"
            )));
        }
        let vocab: Vec<String> = (0..size as u32)
            .map(|id| inner.id_to_token(id).unwrap_or_default())
            .collect();
        for (id, special) in SPECIAL_TOKENS.iter().enumerate() {
            if vocab.get(id).map(String::as_str) != Some(*special) {
                return Err(Error::Internal(format!(
                    "tokenizer lacks {special} at id {id}"
                )));
            }
        }
        let fast = settings_of(kind, &inner).and_then(|s| FastEncoder::new(&s, &vocab));
        Ok(Self {
            kind,
            inner,
            vocab,
            fast,
        })
    }

    pub fn to_json(&self) -> String {
        // A trained tokenizer always serializes; an empty string would be refused on load.
        self.inner.to_string(true).unwrap_or_default()
    }

    /// Writes the tokenizer as HuggingFace's `tokenizer.json`, with its checksum in the sidecar
    /// `tokenizer.json.checksum` (the format is HuggingFace's, so the checksum cannot go inside):
    /// a run's tokenizer is read back by `preprocessing.tokenizer_path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        checksum::write_with_sidecar(path, self.to_json().as_bytes())
    }

    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The token string of `id` (as stored: byte-level BPE tokens use the byte alphabet).
    pub fn token(&self, id: u32) -> &str {
        self.vocab.get(id as usize).map_or(UNK, String::as_str)
    }

    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    /// Encodes a text of any size: it is cut at line ends into pieces encoded in parallel, so
    /// memory stays proportional to the ids, not to HuggingFace's per-token bookkeeping.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if let Some(fast) = self.fast.as_ref().filter(|f| f.handles(text)) {
            return Ok(fast.encode(&line_chunks(text, 1 << 16).collect::<Vec<_>>()));
        }
        self.encode_with_hf(text)
    }

    /// The reference path through HuggingFace `tokenizers`.
    pub fn encode_with_hf(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 4);
        for group in line_chunks(text, 1 << 16).collect::<Vec<_>>().chunks(64) {
            let encodings = self
                .inner
                .encode_batch_fast(group.to_vec(), false)
                .map_err(internal("encoding"))?;
            for e in encodings {
                ids.extend_from_slice(e.get_ids());
            }
        }
        Ok(ids)
    }

    /// Text for `ids`. Word tokens are joined with spaces except around punctuation
    /// ("to be, or not"), characters are concatenated, BPE bytes are reassembled.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self.kind {
            TokenizerKind::Word => join_words(ids.iter().map(|&id| self.token(id))),
            TokenizerKind::Char => ids.iter().map(|&id| self.token(id)).collect(),
            TokenizerKind::Bpe => self.inner.decode(ids, false).unwrap_or_default(),
        }
    }
}

pub fn kind_name(kind: TokenizerKind) -> &'static str {
    match kind {
        TokenizerKind::Word => "word",
        TokenizerKind::Char => "char",
        TokenizerKind::Bpe => "bpe",
    }
}

/// Pieces of `text` of about `size` bytes, each ending at a line end.
fn line_chunks(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let end = match rest.as_bytes()[end..].iter().position(|&b| b == b'\n') {
            Some(i) if end < rest.len() => end + i + 1,
            _ => rest.len(),
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The preprocessing settings a word/char tokenizer was built with, read back from its
/// pipeline (so a tokenizer loaded from a file gets the fast path too).
fn settings_of(kind: TokenizerKind, inner: &Tokenizer) -> Option<Preprocessing> {
    let json: serde_json::Value = serde_json::from_str(&inner.to_string(false).ok()?).ok()?;
    let text = json.to_string();
    let norm_types: Vec<String> = match json.get("normalizer") {
        Some(n) if !n.is_null() => {
            let list = n
                .get("normalizers")
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_else(|| vec![n.clone()]);
            list.iter()
                .filter_map(|x| x.get("type")?.as_str().map(str::to_string))
                .collect()
        }
        _ => Vec::new(),
    };
    let known = ["NFC", "NFKC", "Lowercase"];
    if norm_types.iter().any(|t| !known.contains(&t.as_str())) {
        return None;
    }
    let normalization = if norm_types.iter().any(|t| t == "NFKC") {
        Normalization::Nfkc
    } else if norm_types.iter().any(|t| t == "NFC") {
        Normalization::Nfc
    } else {
        Normalization::None
    };
    let word_pattern = if text.contains(&serde_json::to_string(KERAS_WORDS).ok()?) {
        WordPattern::Keras
    } else if kind == TokenizerKind::Word
        && !text.contains(&serde_json::to_string(UNICODE_WORDS).ok()?)
    {
        return None;
    } else {
        WordPattern::Unicode
    };
    Some(Preprocessing {
        tokenizer: kind,
        lowercase: norm_types.iter().any(|t| t == "Lowercase"),
        normalization,
        word_pattern,
        ..Preprocessing::default()
    })
}

/// A textzoo tokenizer's kind, from its JSON structure.
fn detect_kind(value: &serde_json::Value) -> std::result::Result<TokenizerKind, String> {
    let model = value
        .get("model")
        .and_then(|m| m.get("type"))
        .and_then(|t| t.as_str())
        .ok_or("is not a tokenizer.json (no model.type)")?;
    let decoder = value
        .get("decoder")
        .and_then(|d| d.get("type"))
        .and_then(|t| t.as_str());
    match (model, decoder) {
        ("BPE", _) => Ok(TokenizerKind::Bpe),
        ("WordLevel", Some("Fuse")) => Ok(TokenizerKind::Char),
        ("WordLevel", _) => Ok(TokenizerKind::Word),
        (other, _) => Err(format!(
            "has a `{other}` model; textzoo uses WordLevel (word, char) or BPE"
        )),
    }
}

/// The untrained pipeline: normalizer, pre-tokenizer, model and decoder for the kind.
fn skeleton(settings: &Preprocessing) -> Result<Tokenizer> {
    let regex = |pattern: &str| -> Result<PreTokenizerWrapper> {
        Ok(Split::new(
            SplitPattern::Regex(pattern.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(internal("pre-tokenizer"))?
        .into())
    };
    let mut tokenizer = match settings.tokenizer {
        TokenizerKind::Word => {
            let words = match settings.word_pattern {
                WordPattern::Unicode => UNICODE_WORDS,
                WordPattern::Keras => KERAS_WORDS,
            };
            let mut t = Tokenizer::new(unk_word_level()?);
            t.with_pre_tokenizer(Some(PreSequence::new(vec![
                WhitespaceSplit.into(),
                regex(words)?,
            ])));
            t.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
            t
        }
        TokenizerKind::Char => {
            let mut t = Tokenizer::new(unk_word_level()?);
            t.with_pre_tokenizer(Some(regex(EVERY_CHAR)?));
            t.with_decoder(Some(Fuse::new()));
            t
        }
        TokenizerKind::Bpe => {
            let mut t = Tokenizer::new(BPE::default());
            t.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            t.with_decoder(Some(ByteLevelDecoder::default()));
            t
        }
    };
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    match settings.normalization {
        Normalization::None => {}
        Normalization::Nfc => normalizers.push(NFC.into()),
        Normalization::Nfkc => normalizers.push(NFKC.into()),
    }
    if settings.lowercase {
        normalizers.push(Lowercase.into());
    }
    if !normalizers.is_empty() {
        tokenizer.with_normalizer(Some(NormSequence::new(normalizers)));
    }
    Ok(tokenizer)
}

fn unk_word_level() -> Result<WordLevel> {
    WordLevel::builder()
        .unk_token(UNK.into())
        .build()
        .map_err(internal("word-level model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\nI don't know; 'tis Zoë's café.\n";

    fn settings(kind: TokenizerKind, vocab: usize) -> Preprocessing {
        Preprocessing {
            tokenizer: kind,
            vocab_size: vocab,
            ..Preprocessing::default()
        }
    }

    #[test]
    fn word_tokenizer_splits_punctuation_and_decodes_naturally() {
        let t = TextTokenizer::train(&settings(TokenizerKind::Word, 100), TEXT).unwrap();
        assert_eq!((t.token(PAD_ID), t.token(UNK_ID)), (PAD, UNK));
        let ids = t.encode("Speak, speak.").unwrap();
        let tokens: Vec<&str> = ids.iter().map(|&i| t.token(i)).collect();
        assert_eq!(tokens, ["speak", ",", "speak", "."]);
        assert_eq!(t.decode(&ids), "speak, speak.");
        assert_eq!(
            t.decode(&t.encode("I don't know; Zoë's café.").unwrap()),
            "i don't know; zoë's café."
        );
        assert_eq!(t.encode("unheard-of").unwrap()[0], UNK_ID);
    }

    #[test]
    fn vocab_size_and_min_frequency_limit_the_vocabulary() {
        let t = TextTokenizer::train(&settings(TokenizerKind::Word, 6), TEXT).unwrap();
        assert_eq!(t.vocab_size(), 6);
        // The most frequent tokens survive ("speak" ×3), the rare ones become <unk>.
        assert!(t.encode("speak").unwrap()[0] > UNK_ID);
        assert_eq!(t.encode("famish").unwrap(), vec![UNK_ID]);
        let rare = Preprocessing {
            min_frequency: 3,
            ..settings(TokenizerKind::Word, 1000)
        };
        let t = TextTokenizer::train(&rare, TEXT).unwrap();
        assert_eq!(t.encode("famish").unwrap(), vec![UNK_ID]);
    }

    #[test]
    fn keras_pattern_reproduces_the_anchor_tokenization() {
        let s = Preprocessing {
            word_pattern: WordPattern::Keras,
            ..settings(TokenizerKind::Word, 1000)
        };
        let t = TextTokenizer::train(&s, TEXT).unwrap();
        let ids = t.encode("Don't, Zoë").unwrap();
        let tokens: Vec<&str> = ids.iter().map(|&i| t.token(i)).collect();
        assert_eq!(tokens, ["don", "'", "t", ",", "zo", "ë"]);
        assert_eq!(t.encode("Ωmega").unwrap()[0], UNK_ID);
    }

    #[test]
    fn char_and_bpe_round_trip_exactly() {
        for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
            let s = Preprocessing {
                lowercase: false,
                ..settings(kind, 300)
            };
            let t = TextTokenizer::train(&s, TEXT).unwrap();
            let text = "Before we proceed,\n café?  ";
            let ids = t.encode(text).unwrap();
            assert_eq!(t.decode(&ids), text, "{kind:?}");
            assert_eq!((t.token(PAD_ID), t.token(UNK_ID)), (PAD, UNK));
        }
    }

    /// Found by `tests/fuzz_inputs.rs`: a vocabulary id of `u32::MAX` panicked (overflow)
    /// inside `tokenizers`, and one of 4e9 made it record four billion missing ids.
    #[test]
    fn ids_past_the_vocabulary_are_refused() {
        let t = TextTokenizer::train(&settings(TokenizerKind::Word, 30), TEXT).unwrap();
        for id in [u32::MAX, 4_000_000_000, t.vocab_size() as u32] {
            let mut json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
            json["model"]["vocab"]["speak"] = id.into();
            let err = TextTokenizer::from_json(&json.to_string()).unwrap_err();
            assert!(err.contains(&format!("token id {id}")), "{err}");
        }
    }

    /// Found by `tests/fuzz_inputs.rs`: a BPE `continuing_subword_prefix` longer than a
    /// merge's second token panicked (string slice out of bounds) inside `tokenizers`.
    #[test]
    fn bpe_subword_prefix_is_refused() {
        let t = TextTokenizer::train(&settings(TokenizerKind::Bpe, 300), TEXT).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        json["model"]["continuing_subword_prefix"] = "\u{16ff0}".into();
        let err = TextTokenizer::from_json(&json.to_string()).unwrap_err();
        assert!(err.contains("continuing_subword_prefix"), "{err}");
    }

    #[test]
    fn json_round_trip_and_kind_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let t = TextTokenizer::train(&settings(TokenizerKind::Char, 100), TEXT).unwrap();
        t.save(&path).unwrap();
        let back = TextTokenizer::load(&path, TokenizerKind::Char).unwrap();
        assert_eq!(back.vocab(), t.vocab());
        let err = TextTokenizer::load(&path, TokenizerKind::Word)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`char` tokenizer") && err.contains("`word`"),
            "{err}"
        );
        // One changed byte is caught by the sidecar checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let err = TextTokenizer::load(&path, TokenizerKind::Char).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("damaged: checksum mismatch"),
            "{err}"
        );
        // Files without sidecar (another tool's) are read and checked for what they are.
        let other = dir.path().join("other.json");
        std::fs::write(&other, "{\"hello\": 1}").unwrap();
        assert!(TextTokenizer::load(&other, TokenizerKind::Char)
            .unwrap_err()
            .to_string()
            .contains("not a tokenizer"));
        std::fs::write(&other, "not json").unwrap();
        assert!(TextTokenizer::load(&other, TokenizerKind::Char).is_err());
    }

    #[test]
    fn fast_path_gives_huggingface_ids_on_the_corpora_and_odd_text() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
        let shakespeare = std::fs::read_to_string(root.join("tinyshakespeare.txt")).unwrap();
        let alice = std::fs::read_to_string(root.join("alice_in_wonderland.txt")).unwrap();
        let odd = "ΣΊΣΥΦΟΣ Ｆull-width ﬁ ligature\u{a0}nbsp\ttab e\u{301} Zoë's «café» 123abc_x\r\n\u{2028}";
        for (kind, pattern, norm, lower) in [
            (
                TokenizerKind::Word,
                WordPattern::Unicode,
                Normalization::None,
                true,
            ),
            (
                TokenizerKind::Word,
                WordPattern::Keras,
                Normalization::None,
                true,
            ),
            (
                TokenizerKind::Word,
                WordPattern::Unicode,
                Normalization::Nfkc,
                false,
            ),
            (
                TokenizerKind::Char,
                WordPattern::Unicode,
                Normalization::Nfc,
                true,
            ),
        ] {
            let s = Preprocessing {
                tokenizer: kind,
                word_pattern: pattern,
                normalization: norm,
                lowercase: lower,
                vocab_size: 2000,
                ..Preprocessing::default()
            };
            let t = TextTokenizer::train(&s, &shakespeare[..200_000]).unwrap();
            assert!(t.fast.is_some(), "{kind:?}");
            let reloaded = TextTokenizer::from_json(&t.to_json()).unwrap();
            assert!(reloaded.fast.is_some(), "fast path survives save/load");
            for text in [&alice[..], odd] {
                assert_eq!(
                    t.encode(text).unwrap(),
                    t.encode_with_hf(text).unwrap(),
                    "{kind:?} {pattern:?} {norm:?}"
                );
            }
        }
        let t = TextTokenizer::train(&settings(TokenizerKind::Word, 100), TEXT).unwrap();
        assert_eq!(
            t.encode("a <pad> b").unwrap(),
            t.encode_with_hf("a <pad> b").unwrap()
        );
        assert!(t.encode("<pad>").unwrap().contains(&PAD_ID));
    }

    #[test]
    fn training_is_deterministic_and_chunking_is_invisible() {
        let s = settings(TokenizerKind::Bpe, 280);
        let a = TextTokenizer::train(&s, TEXT).unwrap();
        let b = TextTokenizer::train(&s, TEXT).unwrap();
        assert_eq!(a.to_json(), b.to_json());
        let long: String = TEXT.repeat(500);
        let w = TextTokenizer::train(&settings(TokenizerKind::Word, 100), TEXT).unwrap();
        let whole = w.encode(&long).unwrap();
        let per_line: Vec<u32> = long
            .split_inclusive('\n')
            .flat_map(|l| w.encode(l).unwrap())
            .collect();
        assert_eq!(whole, per_line);
    }
}
