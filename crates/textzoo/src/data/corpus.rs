//! Reading corpora: UTF-8 text files, checked and split by position.

use crate::error::{Error, Result};
use std::path::Path;

/// Reads a corpus file; refuses missing files, directories, invalid UTF-8 (with the byte offset)
/// and text that is empty or only whitespace. CRLF is read as LF.
pub fn read_corpus(path: &Path) -> Result<String> {
    if path.is_dir() {
        return Err(Error::input(
            path,
            "is a directory, expected a UTF-8 text file",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let text = decode_utf8(&bytes).map_err(|message| Error::input(path, message))?;
    if text.trim().is_empty() {
        return Err(Error::input(path, "the corpus is empty or only whitespace"));
    }
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text
    })
}

/// UTF-8 with a precise complaint: where the first bad byte is and what it is.
pub fn decode_utf8(bytes: &[u8]) -> std::result::Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            Err(format!(
                "not valid UTF-8: byte 0x{:02X} at byte offset {at} (line {}); convert the file to UTF-8",
                bytes[at],
                bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1
            ))
        }
    }
}

/// The three parts of a corpus, by position: `[train | validation | test]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSplits {
    pub train: String,
    pub validation: String,
    pub test: String,
}

/// Cuts `text` by position at line boundaries: the last `validation + test` fraction is held
/// out, validation first, test at the very end. Nothing is shuffled, so no held-out sentence
/// leaks into training.
pub fn split_by_position(text: &str, validation: f64, test: f64) -> TextSplits {
    let n = text.len();
    let cut_val = line_boundary(text, ((1.0 - validation - test) * n as f64) as usize);
    let cut_test = line_boundary(text, ((1.0 - test) * n as f64) as usize).max(cut_val);
    TextSplits {
        train: text[..cut_val].to_string(),
        validation: text[cut_val..cut_test].to_string(),
        test: text[cut_test..].to_string(),
    }
}

/// The first position after a newline at or after `at` (or the end of the text).
fn line_boundary(text: &str, at: usize) -> usize {
    if at == 0 || at >= text.len() {
        return at.min(text.len());
    }
    match text.as_bytes()[at..].iter().position(|&b| b == b'\n') {
        Some(i) => at + i + 1,
        None => text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_reports_offset_and_line() {
        let err = decode_utf8(b"ab\ncd\xFFef").unwrap_err();
        assert!(
            err.contains("offset 5") && err.contains("0xFF") && err.contains("line 2"),
            "{err}"
        );
        assert_eq!(decode_utf8("\u{FEFF}héllo".as_bytes()).unwrap(), "héllo");
    }

    #[test]
    fn splits_at_line_boundaries_in_order() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let s = split_by_position(&text, 0.1, 0.1);
        assert_eq!(format!("{}{}{}", s.train, s.validation, s.test), text);
        assert!(s.train.ends_with('\n') && s.validation.ends_with('\n'));
        let frac = |p: &str| p.len() as f64 / text.len() as f64;
        assert!((frac(&s.validation) - 0.1).abs() < 0.02 && (frac(&s.test) - 0.1).abs() < 0.02);
        assert!(split_by_position(&text, 0.1, 0.0).test.is_empty());
    }

    #[test]
    fn refuses_empty_whitespace_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank.txt");
        std::fs::write(&blank, " \n\t\n").unwrap();
        assert!(read_corpus(&blank)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(read_corpus(dir.path())
            .unwrap_err()
            .to_string()
            .contains("directory"));
        let crlf = dir.path().join("crlf.txt");
        std::fs::write(&crlf, "a\r\nb\r\n").unwrap();
        assert_eq!(read_corpus(&crlf).unwrap(), "a\nb\n");
    }
}
