//! Encoding a corpus file of any size without holding the text in memory: read a block, cut it
//! at the last line end, encode, keep only the ids.

use super::tokenizer::TextTokenizer;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const BLOCK: usize = 8 << 20;

/// Encodes the file at `path` block by block; returns the ids and the number of bytes read.
/// Invalid UTF-8 is reported with its byte offset in the whole file.
pub fn encode_file(tokenizer: &TextTokenizer, path: &Path) -> Result<(Vec<u32>, u64)> {
    let io = |e: std::io::Error| Error::input(path, format!("cannot read: {e}"));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut ids = Vec::new();
    let mut buf = Vec::with_capacity(BLOCK * 2);
    let mut offset = 0u64;
    loop {
        let filled = buf.len();
        buf.resize(filled + BLOCK, 0);
        let n = file.read(&mut buf[filled..]).map_err(io)?;
        buf.truncate(filled + n);
        let at_end = n == 0;
        let cut = if at_end {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let text = std::str::from_utf8(&buf[..cut]).map_err(|e| {
            let at = offset + e.valid_up_to() as u64;
            Error::input(path, format!("not valid UTF-8 at byte offset {at}"))
        })?;
        ids.extend(tokenizer.encode(text)?);
        offset += cut as u64;
        buf.drain(..cut);
        if at_end {
            return Ok((ids, offset));
        }
    }
}
