//! The token cache: ids as little-endian `u16` (vocabularies are capped at 65 536), two bytes a
//! token, so a run directory keeps exactly what the model was trained on.

use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::path::Path;

pub fn write_ids(path: &Path, ids: &[u32]) -> Result<()> {
    let mut bytes = Vec::with_capacity(ids.len() * 2);
    for &id in ids {
        let id = u16::try_from(id)
            .map_err(|_| Error::Internal(format!("token id {id} does not fit u16")))?;
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Reads a token cache back. textzoo itself never does (every run encodes its corpus afresh), so
/// the cache carries no checksum; this is for tests and for tools that consume a run's cache.
pub fn read_ids(path: &Path) -> Result<Vec<u32>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(path, format!("cannot read token cache: {e}")))?;
    if bytes.len() % 2 != 0 {
        return Err(Error::input(
            path,
            "token cache has an odd number of bytes (truncated?)",
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.u16");
        write_ids(&path, &[0, 1, 65535, 42]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
        assert_eq!(read_ids(&path).unwrap(), vec![0, 1, 65535, 42]);
        assert!(write_ids(&path, &[70000]).is_err());
    }
}
