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

/// How many files directly in `dir` have names ending in `suffix`, and
/// their bytes (0, 0 when `dir` cannot be read).
pub fn files_ending(dir: &Path, suffix: &str) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .fold((0, 0), |(n, b), e| {
            (n + 1, b + e.metadata().map_or(0, |m| m.len()))
        })
}

/// Removes a directory tree crashcheck made; a missing one is fine.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Removes crashcheck's own directories off the caller's path: a
/// directory handed to [`Trash::remove`] is renamed next to itself at once
/// (so the path is free for the next cycle) and removed by a background
/// thread, so a campaign's cycles do not wait for the unlinks. Dropping the
/// trash waits until everything handed to it is gone.
pub struct Trash {
    tx: Option<std::sync::mpsc::Sender<std::path::PathBuf>>,
    thread: Option<std::thread::JoinHandle<()>>,
    n: u64,
}

impl Default for Trash {
    fn default() -> Trash {
        let (tx, rx) = std::sync::mpsc::channel::<std::path::PathBuf>();
        let thread = std::thread::spawn(move || {
            for dir in rx {
                let _ = remove_tree(&dir);
            }
        });
        Trash {
            tx: Some(tx),
            thread: Some(thread),
            n: 0,
        }
    }
}

impl Trash {
    /// Removes `dir` (a missing one is fine): renamed to `<dir>.trash-N`
    /// now, removed in the background; removed here when it cannot be
    /// renamed.
    pub fn remove(&mut self, dir: &Path) -> std::io::Result<()> {
        self.n += 1;
        let mut to = dir.as_os_str().to_owned();
        to.push(format!(".trash-{}", self.n));
        let to = std::path::PathBuf::from(to);
        match std::fs::rename(dir, &to) {
            Ok(()) => match &self.tx {
                Some(tx) if tx.send(to.clone()).is_ok() => Ok(()),
                _ => remove_tree(&to),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => remove_tree(dir),
        }
    }
}

impl Drop for Trash {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trash_frees_the_path_at_once_and_removes_everything_by_drop() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("db");
        {
            let mut trash = Trash::default();
            for _ in 0..3 {
                std::fs::create_dir_all(d.join("sub")).unwrap();
                std::fs::write(d.join("sub/f"), b"x").unwrap();
                trash.remove(&d).unwrap();
                assert!(!d.exists(), "the path is free for the next cycle");
            }
            trash.remove(&t.path().join("missing")).unwrap();
        }
        let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
