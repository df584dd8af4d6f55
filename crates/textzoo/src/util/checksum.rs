//! Checksums of the files textzoo writes and later reads back, so that a file whose bytes
//! changed on disk (bit flips, a partial copy, an edit) is refused instead of silently used.
//!
//! The checksum is xxh3 (64 bits), written `xxh3-64:<16 lowercase hex digits>`. It detects
//! accidents, not tampering (it is not a cryptographic hash), and it costs little enough to run
//! on every load. The algorithm is named in the value so that a later version can change it and
//! still tell the old values apart.
//!
//! Files whose format textzoo owns carry the checksum inside (the model files: in their
//! safetensors metadata); files in a format fixed by others (`tokenizer.json`) carry it in a
//! sidecar file beside them, `<name>.checksum`. Files written before checksums existed have
//! none: they still load, with a note saying so.

use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::path::{Path, PathBuf};

const ALGORITHM: &str = "xxh3-64";

/// The checksum of `bytes`, as stored: `xxh3-64:<16 lowercase hex digits>`.
pub fn checksum(bytes: &[u8]) -> String {
    format!("{ALGORITHM}:{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Checks `bytes`, the checksummed contents of the file at `path`, against the checksum the
/// file carries (`stored`). A file without one (written by an older textzoo) is accepted with a
/// note; a different checksum is an input error (`damaged: checksum mismatch`, exit code 2).
pub fn verify(path: &Path, stored: Option<&str>, bytes: &[u8]) -> Result<()> {
    let Some(stored) = stored else {
        tracing::info!(
            "{} has no checksum (written by an older textzoo or by another tool); its contents cannot be verified",
            path.display()
        );
        return Ok(());
    };
    let actual = checksum(bytes);
    if stored == actual {
        return Ok(());
    }
    let known = stored.starts_with(&format!("{ALGORITHM}:"));
    let message = if known {
        format!("is damaged: checksum mismatch (stored {stored}, contents {actual})")
    } else {
        format!("has a checksum of an unknown kind (`{stored}`); this textzoo checks {ALGORITHM}")
    };
    Err(Error::input(path, message))
}

/// The sidecar file holding the checksum of `path`: `<path>.checksum`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checksum");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` and their checksum to its sidecar, both atomically. The sidecar is
/// written last, so a crash between the two leaves a file whose sidecar (if any, from an earlier
/// write) disagrees: refused on load, never silently accepted.
pub fn write_with_sidecar(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes)?;
    write_atomic(
        &sidecar_path(path),
        format!("{}\n", checksum(bytes)).as_bytes(),
    )
}

/// Checks `bytes`, read from `path`, against its sidecar; a file without a sidecar (written by
/// an older textzoo, or by another tool) is accepted with a note.
pub fn verify_sidecar(path: &Path, bytes: &[u8]) -> Result<()> {
    let sidecar = sidecar_path(path);
    let stored = match std::fs::read_to_string(&sidecar) {
        Ok(text) => Some(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::input(&sidecar, format!("cannot read: {e}"))),
    };
    verify(path, stored.as_deref(), bytes).map_err(|e| match e {
        Error::Input { path, message } => Error::Input {
            path,
            message: format!(
                "{message}; if it was changed on purpose, delete {}",
                sidecar.display()
            ),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_deterministic_and_sees_one_flipped_bit() {
        let bytes = b"textzoo model weights".to_vec();
        assert_eq!(checksum(&bytes), checksum(&bytes.clone()));
        assert_eq!(checksum(b""), "xxh3-64:2d06800538d394c2");
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert_ne!(checksum(&bytes), checksum(&flipped));
    }

    #[test]
    fn verify_accepts_match_and_missing_and_refuses_mismatch() {
        let path = Path::new("m.safetensors");
        let sum = checksum(b"abc");
        assert!(verify(path, Some(&sum), b"abc").is_ok());
        assert!(verify(path, None, b"abc").is_ok());
        let err = verify(path, Some(&sum), b"abd").err().unwrap();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("damaged: checksum mismatch"), "{text}");
        assert!(text.contains("m.safetensors"), "{text}");
        let err = verify(path, Some("sha256:00"), b"abc").err().unwrap();
        assert!(err.to_string().contains("unknown kind"));
    }

    #[test]
    fn sidecar_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        write_with_sidecar(&path, b"{\"a\": 1}").unwrap();
        assert!(sidecar_path(&path).exists());
        assert!(verify_sidecar(&path, b"{\"a\": 1}").is_ok());
        let err = verify_sidecar(&path, b"{\"a\": 2}").err().unwrap();
        assert!(err.to_string().contains("damaged: checksum mismatch"));
        std::fs::remove_file(sidecar_path(&path)).unwrap();
        assert!(verify_sidecar(&path, b"{\"a\": 2}").is_ok());
    }
}
