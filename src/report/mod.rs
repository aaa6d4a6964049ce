//! Reports: JSON, JUnit XML and Markdown renderings of a crash campaign,
//! and writing them safely: every output path is checked before a
//! campaign starts, and each file is written atomically.

mod junit;
mod markdown;
mod svg;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use junit::{junit, junit_many, run_label};
pub use markdown::{
    copy_rows, hazard_notes, io_error_notes, labelled, markdown, stats_rows, store_lacks_line,
    COPY_COLUMNS, STATS_COLUMNS,
};
pub use svg::svg_chart;

/// An output that cannot be written, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct OutputError {
    /// The path.
    pub path: PathBuf,
    /// What is wrong.
    pub msg: String,
}

fn out_err(path: &Path, msg: impl Into<String>) -> OutputError {
    OutputError {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Checks, before any work, that a file can be written at `path`: it is
/// not a directory, and its nearest existing ancestor is a directory that
/// accepts a new file (tried with a temporary file that is removed at
/// once). Creates nothing that stays.
pub fn check_output(path: &Path) -> Result<(), OutputError> {
    if path.is_dir() {
        return Err(out_err(path, "is a directory"));
    }
    check_dir_writable(path.parent().unwrap_or(Path::new("")), path)
}

/// Checks that the directory `dir` (which may not exist yet) could be
/// created and written: its nearest existing ancestor accepts a new file.
/// Errors name `shown`.
pub fn check_dir_writable(dir: &Path, shown: &Path) -> Result<(), OutputError> {
    let mut at = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    if !at.is_dir() {
        return Err(out_err(
            shown,
            format!("{} is not a directory", at.display()),
        ));
    }
    // A new file of ours, removed at once; its error is the OS's own.
    let probe = at.join(format!(".crashcheck-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(out_err(
            shown,
            format!("cannot create files in {}: {e}", at.display()),
        )),
    }
}

/// Writes `text` to `path` atomically: into a temporary file in the same
/// directory, synced, then renamed over `path`. Missing parent directories
/// are created. On failure nothing is left at `path` that was not there
/// before, and no temporary file remains.
pub fn write_file(path: &Path, text: &str) -> Result<(), OutputError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| out_err(path, e.to_string()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".crashcheck-")
        .tempfile_in(dir)
        .map_err(|e| out_err(path, e.to_string()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| out_err(path, os_error(&e)))?;
    tmp.persist(path)
        .map_err(|e| out_err(path, os_error(&e.error)))?;
    Ok(())
}

/// The OS error alone ("No space left on device (os error 28)"), without
/// the temporary file's name that the error may carry.
fn os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}
