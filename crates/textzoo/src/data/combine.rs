//! Corpus combination, the counterpart of the model zoo's `combine_corpus.py`: merge text files
//! (globs allowed) into one corpus, optionally normalised.

use super::corpus::read_corpus;
use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::path::{Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// How to clean up text while combining.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalize {
    /// `nfc` or `nfkc` Unicode normalisation.
    pub unicode: Option<UnicodeForm>,
    pub lowercase: bool,
    /// Runs of blank lines become one blank line.
    pub collapse_blank_lines: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnicodeForm {
    Nfc,
    Nfkc,
}

impl Normalize {
    /// Applies the normalisation; CRLF and lone CR always become LF.
    pub fn apply(&self, text: &str) -> String {
        let mut s = text.replace("\r\n", "\n").replace('\r', "\n");
        s = match self.unicode {
            Some(UnicodeForm::Nfc) => s.nfc().collect(),
            Some(UnicodeForm::Nfkc) => s.nfkc().collect(),
            None => s,
        };
        if self.lowercase {
            s = s.to_lowercase();
        }
        if self.collapse_blank_lines {
            s = collapse_blank_lines(&s);
        }
        s
    }
}

fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
            out.push('\n');
        } else {
            blank_run = 0;
            out.push_str(line);
        }
    }
    out
}

/// Expands each input (a path or a glob pattern) to files, in the order given, each pattern's
/// matches sorted. A pattern that matches nothing is an error.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let is_pattern = input.contains(['*', '?', '[']);
        if !is_pattern {
            files.push(PathBuf::from(input));
            continue;
        }
        let paths =
            glob::glob(input).map_err(|e| Error::input(input, format!("bad glob pattern: {e}")))?;
        let mut matched: Vec<PathBuf> = paths
            .filter_map(|p| p.ok())
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(Error::input(input, "the pattern matches no file"));
        }
        matched.sort();
        files.extend(matched);
    }
    if files.is_empty() {
        return Err(Error::Usage("no input files given".into()));
    }
    Ok(files)
}

/// What a combination produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CombineReport {
    pub files: Vec<(PathBuf, usize)>,
    pub output_bytes: usize,
}

/// Reads every input (all are checked before anything is written), normalises, joins them
/// with a blank line between files, and writes `output` atomically.
pub fn combine(inputs: &[String], output: &Path, normalize: &Normalize) -> Result<CombineReport> {
    let files = expand_inputs(inputs)?;
    let mut parts = Vec::with_capacity(files.len());
    let mut report = Vec::with_capacity(files.len());
    for file in &files {
        if file.canonicalize().ok() == output.canonicalize().ok() && output.exists() {
            return Err(Error::input(file, "is also the output file"));
        }
        let text = normalize.apply(&read_corpus(file)?);
        report.push((file.clone(), text.len()));
        parts.push(text.trim_end_matches('\n').to_string());
    }
    let mut combined = parts.join("\n\n");
    combined.push('\n');
    write_atomic(output, combined.as_bytes())?;
    Ok(CombineReport {
        files: report,
        output_bytes: combined.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_options() {
        let n = Normalize {
            unicode: Some(UnicodeForm::Nfkc),
            lowercase: true,
            collapse_blank_lines: true,
        };
        assert_eq!(n.apply("Ａ\r\nB\n\n\n\nC\r"), "a\nb\n\nc\n");
        let nfc = Normalize {
            unicode: Some(UnicodeForm::Nfc),
            ..Normalize::default()
        };
        assert_eq!(nfc.apply("e\u{301}"), "\u{e9}");
    }

    #[test]
    fn combines_globs_in_order_and_refuses_bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("b.txt", "second\n"), ("a.txt", "first\r\n"), ("c.md", "x")] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let out = dir.path().join("out/corpus.txt");
        let pattern = format!("{}/*.txt", dir.path().display());
        let report = combine(&[pattern], &out, &Normalize::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "first\n\nsecond\n");
        assert_eq!(report.files.len(), 2);
        let missing = format!("{}/*.nope", dir.path().display());
        assert!(combine(&[missing], &out, &Normalize::default()).is_err());
        std::fs::write(dir.path().join("bad.txt"), b"ok\xC3(").unwrap();
        let bad = dir.path().join("bad.txt").display().to_string();
        let err = combine(&[bad], &out, &Normalize::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8") && err.contains("offset 2"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "first\n\nsecond\n",
            "output kept"
        );
    }
}
