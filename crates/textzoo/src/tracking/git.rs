//! The commit of the working directory's git repository, read from `.git` directly: a git
//! library would be a large dependency for one 40-character string, and the `git` program may
//! not be installed.

use std::path::{Path, PathBuf};

/// The commit `HEAD` points to in the repository containing `start`, if any.
pub fn head_commit(start: &Path) -> Option<String> {
    let git_dir = find_git_dir(start)?;
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:") else {
        return is_hash(head).then(|| head.to_string());
    };
    let reference = reference.trim();
    // Worktrees keep their HEAD apart but share refs with the main repository.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    for dir in [&git_dir, &common] {
        if let Ok(text) = std::fs::read_to_string(dir.join(reference)) {
            let hash = text.trim();
            if is_hash(hash) {
                return Some(hash.to_string());
            }
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (hash, name) = line.split_once(' ')?;
        (name.trim() == reference && is_hash(hash)).then(|| hash.to_string())
    })
}

fn find_git_dir(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).ok()?;
    for dir in start.ancestors() {
        let dot_git = dir.join(".git");
        if dot_git.is_dir() {
            return Some(dot_git);
        }
        if dot_git.is_file() {
            // A worktree or submodule: `.git` is a file saying `gitdir: <path>`.
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            return Some(dir.join(target));
        }
    }
    None
}

fn is_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn reads_loose_and_packed_refs_and_detached_head() {
        let tmp = tempfile::tempdir().unwrap();
        let git = tmp.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        let sub = tmp.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(head_commit(&sub), None);
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack\n{HASH} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(head_commit(&sub).as_deref(), Some(HASH));
        let other = HASH.replace('0', "f");
        std::fs::write(git.join("refs/heads/main"), format!("{other}\n")).unwrap();
        assert_eq!(head_commit(&sub), Some(other));
        std::fs::write(git.join("HEAD"), format!("{HASH}\n")).unwrap();
        assert_eq!(head_commit(tmp.path()).as_deref(), Some(HASH));
    }
}
