//! Filesystem helpers for directories crashcheck made itself: copies and
//! hard-linked images of database directories.

use std::path::Path;

/// Copies a directory tree (artifacts and plain-copy ops get real copies,
/// not links).
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// Hard-links every file of `src` into a new directory `dst` (a copy where
/// linking fails), so the DB as the killed child left it can be kept.
pub fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &to)?;
        } else if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// Removes a directory tree crashcheck made; a missing one is fine.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}
