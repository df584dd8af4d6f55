//! Run directories: one per run, never shared between two runs.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Creates the run directory. `wanted` is used if it does not exist or is an empty directory
/// (claimed atomically);
/// otherwise `wanted_1`, `wanted_2`, … — so two runs started in the same second (same
/// `${now:…}` name) never mix their files. Creation is atomic (`create_dir`), so two
/// processes racing for a name cannot both win it.
pub fn create_run_dir(wanted: &Path) -> Result<PathBuf> {
    let io = |e| Error::io(format!("creating run directory {}", wanted.display()), e);
    if let Some(parent) = wanted.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // An existing empty directory is claimed by creating its `.hydra` folder, which only one
    // of several runs started at once can do; the others move on to `wanted_1`, ….
    if is_empty_dir(wanted) && std::fs::create_dir(wanted.join(".hydra")).is_ok() {
        return Ok(wanted.to_path_buf());
    }
    for n in 0..10_000 {
        let candidate = if n == 0 {
            wanted.to_path_buf()
        } else {
            let mut name = wanted.as_os_str().to_owned();
            name.push(format!("_{n}"));
            PathBuf::from(name)
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Err(Error::Internal(format!(
        "no free run directory name next to {}",
        wanted.display()
    )))
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reuses_a_directory_with_content() {
        let root = tempfile::tempdir().unwrap();
        let wanted = root.path().join("runs/2026_01_01_00_00_00");
        let a = create_run_dir(&wanted).unwrap();
        std::fs::write(a.join("x"), "1").unwrap();
        let b = create_run_dir(&wanted).unwrap();
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("_1"));
        let c = create_run_dir(&wanted).unwrap();
        assert!(c.to_string_lossy().ends_with("_2"));
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(create_run_dir(&empty).unwrap(), empty);
    }
}
