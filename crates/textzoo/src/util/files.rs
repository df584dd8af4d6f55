//! Writing files so that a crash or a full disk never leaves a half-written artifact.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path`, then
/// syncs the directory so that the rename itself survives a power loss (without that, the
/// directory entry may still name the old file, or none, after a crash).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let context = || format!("writing {}", path.display());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(context(), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(context(), e));
    }
    sync_dir(dir).map_err(|e| Error::io(format!("syncing the directory of {}", path.display()), e))
}

/// Makes `link` name the same file as `target` (a hard link, or a copy where the file system
/// has none), replacing what `link` named in one rename: a reader sees the old file or the
/// new one, never a missing or half-written one.
pub fn link_atomic(target: &Path, link: &Path) -> Result<()> {
    let context = || format!("linking {} to {}", link.display(), target.display());
    let dir = link
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = std::fs::hard_link(target, &tmp)
        .or_else(|_| std::fs::copy(target, &tmp).map(|_| ()))
        .and_then(|()| std::fs::rename(&tmp, link));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(context(), e));
    }
    sync_dir(dir).map_err(|e| Error::io(context(), e))
}

/// Flushes the directory entry of a file just renamed into `dir`. Some platforms and file
/// systems cannot sync a directory (Windows cannot open one as a file; some network and FUSE
/// file systems refuse `fsync` on one): those errors are ignored, as there is nothing more to
/// do there; any other error is reported.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let result = std::fs::File::open(dir).and_then(|d| d.sync_all());
    match result {
        // Windows: opening a directory as a file is denied; Linux file systems without
        // directory sync return EINVAL (`InvalidInput`) or ENOSYS/ENOTSUP (`Unsupported`).
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::Unsupported | ErrorKind::InvalidInput
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The size of the file at `path` in bytes, 0 if it cannot be read (sizes are reported, never
/// relied on).
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/metrics.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
