//! The crashcheck command line: parses arguments, calls the library and
//! prints. Exit status: 0 consistent, 1 violation (or finding, or
//! surviving mutant), 2 usage or environment error, with a one-line
//! message.

mod args;
mod crash;
mod run;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use args::{Cli, Cmd, Common};
use crashcheck::store::lock_holder;
use crashcheck::store::WalMode;
use crashcheck::workload::Profile;

/// A failure that is not a violation: bad input or environment (exit 2).
pub(super) struct EnvError(String);

impl<E: std::fmt::Display> From<E> for EnvError {
    fn from(e: E) -> Self {
        EnvError(e.to_string())
    }
}

pub(super) type Res<T> = Result<T, EnvError>;

pub(super) fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(EnvError(msg.into()))
}

/// Parses `60s`, `20m`, `2h`, `500ms` or plain seconds (the library's
/// parser, which `crash_check_in_test` shares for `CRASHCHECK_DURATION`).
pub(super) fn parse_duration(s: &str) -> Res<Duration> {
    Ok(crashcheck::campaign::config::parse_duration(s)?)
}

pub(super) fn profile(name: Option<&str>, default: &str) -> Res<Profile> {
    let n = name.unwrap_or(default);
    Profile::by_name(n).ok_or_else(|| {
        EnvError(format!(
            "unknown profile '{n}' (known: {})",
            Profile::names().join(", ")
        ))
    })
}

/// The user's options (`--options-file`, `--options`), merged and checked
/// by the library; prints what it ignored and what crashcheck overrode.
pub(super) fn options(c: &Common) -> Res<crashcheck::campaign::config::UserOptions> {
    let u = crashcheck::campaign::config::user_options(
        c.options_file.as_deref(),
        c.options.as_deref(),
    )?;
    for cf in &u.ignored_sections {
        eprintln!(
            "crashcheck: --options-file {}: [{cf}] ignored (crashcheck tests the default column family)",
            u.source.as_deref().unwrap_or("")
        );
    }
    for ov in &u.overrides {
        eprintln!(
            "crashcheck: overriding {}={} with {}: {}",
            ov.key, ov.theirs, ov.ours, ov.why
        );
    }
    Ok(u)
}

pub(super) fn modes(s: &str) -> Res<Vec<WalMode>> {
    if s == "all" {
        return Ok(WalMode::ALL.to_vec());
    }
    s.split(',')
        .map(|m| m.trim().parse::<WalMode>().map_err(EnvError))
        .collect()
}

/// crashcheck's own working directory: a fresh `crashcheck-XXXXXX` inside
/// `--dir` (or the system temp dir), removed at the end. A `--dir` that
/// did not exist is created (that directory only, not its parents) and
/// removed again at the end if crashcheck left nothing else in it.
pub(super) struct WorkDir {
    tmp: Option<tempfile::TempDir>,
    created: Option<PathBuf>,
}

impl WorkDir {
    /// The working directory.
    pub(super) fn path(&self) -> &Path {
        self.tmp.as_ref().map_or(Path::new("."), |t| t.path())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        drop(self.tmp.take());
        if let Some(d) = &self.created {
            // Only removes an empty directory: never anything else.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Creates crashcheck's own working directory (see [`WorkDir`]).
pub(super) fn work_dir(dir: Option<&Path>) -> Res<WorkDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("crashcheck-");
    let Some(d) = dir else {
        let tmp = b
            .tempdir()
            .map_err(|e| EnvError(format!("cannot create a temporary directory: {e}")))?;
        return Ok(WorkDir {
            tmp: Some(tmp),
            created: None,
        });
    };
    let mut created = None;
    if !d.exists() {
        std::fs::create_dir(d)
            .map_err(|e| EnvError(format!("--dir {}: cannot create it: {e}", d.display())))?;
        created = Some(d.to_path_buf());
    } else if !d.is_dir() {
        return fail(format!("--dir {}: not a directory", d.display()));
    }
    let mut wd = WorkDir { tmp: None, created };
    wd.tmp = Some(b.tempdir_in(d).map_err(|e| {
        EnvError(format!(
            "--dir {}: cannot create a working directory there: {e}",
            d.display()
        ))
    })?);
    Ok(wd)
}

/// Refuses a `--db` path that another process has locked, or that holds
/// anything (crashcheck never changes files it did not create).
pub(super) fn check_db_path(p: &Path) -> Res<()> {
    if let Some(pid) = lock_holder(&p.join("LOCK")) {
        return fail(format!(
            "--db {}: database is locked by another process (pid {pid})",
            p.display()
        ));
    }
    if p.exists() {
        let empty = std::fs::read_dir(p)
            .map_err(|e| EnvError(format!("--db {}: {e}", p.display())))?
            .next()
            .is_none();
        if !empty {
            return fail(format!(
                "--db {}: directory is not empty; crashcheck only writes into directories it creates",
                p.display()
            ));
        }
    }
    std::fs::create_dir_all(p)
        .map_err(|e| EnvError(format!("--db {}: cannot create it: {e}", p.display())))
}

/// Writes `text` to a new file near `want`, never overwriting one.
pub(super) fn write_new(want: &Path, text: &str) -> Res<PathBuf> {
    if let Some(parent) = want.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    for i in 0..1000 {
        let p = if i == 0 {
            want.to_path_buf()
        } else {
            want.with_extension(format!("{i}.repro"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(text.as_bytes())?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return fail(format!("cannot write {}: {e}", p.display())),
        }
    }
    fail(format!(
        "cannot find a free file name near {}",
        want.display()
    ))
}

extern "C" fn on_interrupt(sig: libc::c_int) {
    if crashcheck::campaign::interrupted() {
        // A second Ctrl-C: stop now, the default way.
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    crashcheck::campaign::interrupt();
}

/// On SIGINT or SIGTERM, a campaign finishes the cycles in progress,
/// reports what it did and removes its working directory; a second
/// signal stops at once.
pub(super) fn stop_campaigns_on_interrupt() {
    let h = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that only touches atomics (and, the
    // second time, restores the default and re-raises).
    unsafe {
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
    }
}

pub fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`crashcheck ... | head`),
    // as command-line tools do, instead of panicking on the write.
    // SAFETY: resetting a signal disposition at start-up, before threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run::cmd_run(a),
        Cmd::Crash(a) => crash::cmd_crash(*a),
        Cmd::Replay(a) => run::cmd_replay(a),
        Cmd::Selftest(a) => tools::cmd_selftest(a),
        Cmd::RecoveryModes(a) => tools::cmd_recovery(a),
        Cmd::Bench(a) => tools::cmd_bench(a),
        Cmd::MergeReports(a) => crash::cmd_merge(a),
        Cmd::Matrix(a) => crash::cmd_matrix(a),
        Cmd::FuzzRepro(a) => tools::cmd_fuzz_repro(a),
        Cmd::FuzzSeed(a) => tools::cmd_fuzz_seed(a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(EnvError(msg)) => {
            eprintln!("crashcheck: error: {msg}");
            ExitCode::from(2)
        }
    }
}
