//! Checkpoints, backups and plain copies taken while writes run, and how
//! each is judged after the cycle.
//!
//! The writer records, for every `checkpoint`, `backup` and `copy` op, each
//! writer's acknowledged count when the call started (`lo`) and started
//! count when it returned (`hi`). A checkpoint or backup must then hold,
//! per writer, a prefix in `[lo, hi]`:
//! - Checkpoint (rust-rocksdb passes `log_size_for_flush = 0`): memtables
//!   are flushed first and live WALs copied, so every write acknowledged
//!   before the call is in it (utilities/checkpoint/checkpoint_impl.cc,
//!   db/db_filesnapshot.cc `GetLiveFilesStorageInfo`). It is built in
//!   `<dir>.tmp` and renamed at the end (checkpoint_impl.cc
//!   `CreateCheckpoint`): a crash never leaves a half checkpoint at the
//!   final path, and whatever sits there must be whole.
//! - Backup (`create_new_backup_flush(db, true)`): the same file set; the
//!   backup's meta file is written last, as `meta/.N.tmp` renamed to
//!   `meta/N`, and only `meta/N` files are listed
//!   (utilities/backup/backup_engine.cc `CreateNewBackupWithMetadata`,
//!   `BackupMeta::StoreToFile`, `Initialize`): a backup a crash interrupted
//!   must never be listed, and a listed one must restore whole.
//! - A plain recursive copy of the live directory (what `cp -r` does) has
//!   no such promise: RocksDB documents Checkpoint and BackupEngine for
//!   this (db.h `GetLiveFilesStorageInfo`: files must be copied with file
//!   deletions disabled). Its outcomes are counted, never violations.
//!
//! Without the WAL and with atomic_flush off, the flush before a
//! checkpoint cuts each column family at its own moment, so the same
//! per-column-family rule as for crashes applies (`oracle::cross_cf_promise`).
//! Checkpoint and backup files bypass the power-loss filesystem only for
//! the backup directory, so they are judged after process kills only.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::crash::{CopyKind, CopyRecord, CopyState, CrashError, WriterRun};
use crate::fault::Loss;
use crate::model::history::History;
use crate::observe::{Recovered, Reopened};
use crate::oracle::Admissible;
use crate::store::{StoreFactory, StoreOptions};
use crate::verify::{verify_all, Verdict, ViolationClass};

/// How the checkpoints, backups and copies of one cycle (or many) fared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CopyOutcome {
    /// Checkpoints that opened and held a prefix inside their window.
    pub checkpoints_ok: u64,
    /// Checkpoints a kill interrupted, with nothing at the final path.
    pub checkpoints_interrupted: u64,
    /// Listed backups that restored to a prefix inside their window.
    pub backups_ok: u64,
    /// Backups a kill interrupted that were (rightly) not listed.
    pub backups_interrupted: u64,
    /// Plain copies that opened and held a prefix inside their window.
    pub copies_consistent: u64,
    /// Plain copies that opened but held no admissible state.
    pub copies_inconsistent: u64,
    /// Plain copies RocksDB refused to open.
    pub copies_unopenable: u64,
    /// Plain copies that failed while copying (a file vanished under them).
    pub copies_failed: u64,
    /// Items not judged: taken in a power-loss cycle (the backup directory
    /// is outside the simulated power cut), or past the record table.
    pub not_judged: u64,
    /// Checkpoints and backups that broke their promise, in the order
    /// found (the cycle's adjudication decides what each one is).
    #[serde(skip)]
    pub findings: Vec<CopyFinding>,
}

/// A checkpoint or backup that holds no state of its window, does not
/// open, or is listed wrongly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFinding {
    /// [`ViolationClass::CheckpointMismatch`] or
    /// [`ViolationClass::BackupMismatch`].
    pub class: ViolationClass,
    /// What is wrong, for reports.
    pub detail: String,
    /// When the copy opened: the class of its mismatch with its window
    /// (lost acknowledged writes, a torn batch, ...).
    pub inner: Option<ViolationClass>,
    /// A flush by another writer overlapped the call.
    pub flush_overlap: bool,
}

impl CopyOutcome {
    /// Adds `o`'s counts into `self`.
    pub fn add(&mut self, o: &CopyOutcome) {
        self.checkpoints_ok += o.checkpoints_ok;
        self.checkpoints_interrupted += o.checkpoints_interrupted;
        self.backups_ok += o.backups_ok;
        self.backups_interrupted += o.backups_interrupted;
        self.copies_consistent += o.copies_consistent;
        self.copies_inconsistent += o.copies_inconsistent;
        self.copies_unopenable += o.copies_unopenable;
        self.copies_failed += o.copies_failed;
        self.not_judged += o.not_judged;
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        *self == CopyOutcome::default()
    }
}

/// How opening a checkpoint, restored backup or copy went.
enum DirCheck {
    /// A prefix inside the window, for every writer.
    Consistent,
    /// Opened, but no admissible state: the violation class and detail.
    Mismatch(ViolationClass, String),
    /// RocksDB refused to open it.
    Unopenable(String),
    /// The verifier child hung or died: nothing can be concluded.
    VerifierDied,
}

/// Opens `dir` in a forked verifier and checks it holds, per writer, a
/// prefix inside `rec`'s window.
#[allow(clippy::too_many_arguments)]
fn check_dir(
    factory: &dyn StoreFactory,
    opts: &StoreOptions,
    dir: &Path,
    lanes: &[History],
    writer: &WriterRun,
    rec: &CopyRecord,
    promise: Result<&'static str, &'static str>,
    timeout: Duration,
) -> Result<DirCheck, CrashError> {
    let rec_hi = |t: usize| {
        // A call the kill interrupted may have seen every write started
        // until the kill.
        let at_kill = writer.writers.get(t).map_or(0, |p| p.started.max(p.acked));
        match rec.state {
            CopyState::Started => at_kill,
            _ => rec.hi.get(t).copied().unwrap_or(at_kill),
        }
    };
    let adm = |t: usize, _cf: Option<usize>| {
        let hi = rec_hi(t);
        Admissible {
            lo: rec.lo.get(t).copied().unwrap_or(0).min(hi),
            hi,
            rule: "checkpoint/backup: every write acknowledged before the call, none started after it returned (checkpoint_impl.cc flushes first; backup_engine.cc flush_before_backup)",
        }
    };
    let universe = crate::observe::point_read_keys(factory, lanes);
    let got: Recovered =
        match crate::observe::reopen_and_read(factory, dir, opts, &[], &universe, timeout)? {
            Reopened::Opened(r) => r,
            Reopened::Failed(msg) => return Ok(DirCheck::Unopenable(msg)),
            Reopened::Died(_) => return Ok(DirCheck::VerifierDied),
        };
    let cfs = opts.column_families.max(1) as usize;
    Ok(match verify_all(lanes, &adm, &got, cfs, promise).verdict {
        Verdict::Ok { .. } => DirCheck::Consistent,
        Verdict::Violation { class, detail, .. } => DirCheck::Mismatch(class, detail),
    })
}

/// A listed backup: its id, and the restore error if it did not restore.
type Listed = (u32, Option<String>);

/// What became of listing a writer's backups.
enum Listing {
    /// The listed backups, each restored (or its restore error).
    Listed(Vec<Listed>),
    /// BackupEngine could not open the directory.
    Unopenable(String),
    /// The child hung or died: nothing can be concluded.
    VerifierDied,
}

/// The backups a BackupEngine at `dir` lists, restored (each verified
/// first) into `restore-<lane>-<k>` under `root`. Runs in a forked child
/// (it uses RocksDB), with `timeout` per backup taken.
fn list_and_restore(
    dir: &Path,
    root: &Path,
    lane: usize,
    backups: usize,
    timeout: Duration,
) -> Result<Listing, CrashError> {
    let (end, data) = crate::crash::isolate_output(
        || {
            let mut out = String::new();
            match crate::store::rocks::list_backups(dir) {
                Err(e) => out = format!("E {}\n", e.to_string().replace('\n', " ")),
                Ok(ids) => {
                    for (k, id) in ids.iter().enumerate() {
                        let to = root.join(format!("restore-{lane}-{k}"));
                        match crate::store::rocks::restore_backup(dir, *id, &to) {
                            Ok(()) => out.push_str(&format!("{id} ok\n")),
                            Err(e) => out
                                .push_str(&format!("{id} {}\n", e.to_string().replace('\n', " "))),
                        }
                    }
                }
            }
            out.into_bytes()
        },
        timeout * (backups as u32 + 1),
    )?;
    if end != (crate::crash::ChildEnd::Exited { code: 0 }) {
        return Ok(Listing::VerifierDied);
    }
    let text = String::from_utf8_lossy(&data);
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(e) = line.strip_prefix("E ") {
            return Ok(Listing::Unopenable(e.to_string()));
        }
        let (id, rest) = line.split_once(' ').unwrap_or((line, ""));
        let id = id.parse().unwrap_or(0);
        out.push((id, (rest != "ok").then(|| rest.to_string())));
    }
    Ok(Listing::Listed(out))
}

/// Judges every checkpoint, backup and copy `writer` recorded under
/// `root` (see the module docs). Only process kills are judged: in a
/// power-loss cycle every item counts as not judged.
#[allow(clippy::too_many_arguments)]
pub fn judge(
    factory: &dyn StoreFactory,
    opts: &StoreOptions,
    loss: Loss,
    lanes: &[History],
    writer: &WriterRun,
    root: &Path,
    promise: Result<&'static str, &'static str>,
    timeout: Duration,
) -> Result<CopyOutcome, CrashError> {
    let mut out = CopyOutcome {
        not_judged: writer.copies_skipped,
        ..CopyOutcome::default()
    };
    if loss != Loss::ProcessCrash {
        out.not_judged += writer.copies.len() as u64;
        return Ok(out);
    }
    let j = Judging {
        factory,
        opts,
        lanes,
        writer,
        root,
        promise,
        timeout,
    };
    j.checkpoints_and_copies(&mut out)?;
    j.backups(&mut out)?;
    Ok(out)
}

/// What judging one cycle's checkpoints, backups and copies needs.
struct Judging<'a> {
    factory: &'a dyn StoreFactory,
    opts: &'a StoreOptions,
    lanes: &'a [History],
    writer: &'a WriterRun,
    root: &'a Path,
    promise: Result<&'static str, &'static str>,
    timeout: Duration,
}

impl CopyOutcome {
    /// Records a finding about `rec`.
    fn flag(
        &mut self,
        rec: &CopyRecord,
        class: ViolationClass,
        inner: Option<ViolationClass>,
        detail: String,
    ) {
        self.findings.push(CopyFinding {
            class,
            detail,
            inner,
            flush_overlap: rec.flush_overlap,
        });
    }
}

impl Judging<'_> {
    fn check(&self, dir: &Path, rec: &CopyRecord) -> Result<DirCheck, CrashError> {
        check_dir(
            self.factory,
            self.opts,
            dir,
            self.lanes,
            self.writer,
            rec,
            self.promise,
            self.timeout,
        )
    }

    /// Checkpoints must open and hold a state of their window; plain
    /// copies are counted by how they open.
    fn checkpoints_and_copies(&self, out: &mut CopyOutcome) -> Result<(), CrashError> {
        for rec in self
            .writer
            .copies
            .iter()
            .filter(|r| r.kind != CopyKind::Backup)
        {
            let dir = self.root.join(rec.kind.dir_name(rec.writer, rec.id));
            // A checkpoint is renamed into place whole; whatever sits at the
            // final path must open (checkpoint_impl.cc CreateCheckpoint).
            let present = dir.join("CURRENT").exists();
            match (rec.kind, rec.state) {
                (CopyKind::Copy, CopyState::Failed) => {
                    out.copies_failed += 1;
                    continue;
                }
                (_, CopyState::Failed) => continue, // the writer reported it
                (CopyKind::Copy, CopyState::Started) => continue,
                (CopyKind::Checkpoint, CopyState::Started) if !present => {
                    out.checkpoints_interrupted += 1;
                    continue;
                }
                _ => {}
            }
            let what = format!(
                "checkpoint {} of writer {} ({:?})",
                rec.id, rec.writer, rec.state
            );
            let r = self.check(&dir, rec)?;
            match (rec.kind, r) {
                (_, DirCheck::VerifierDied) => out.not_judged += 1,
                (CopyKind::Copy, DirCheck::Consistent) => out.copies_consistent += 1,
                (CopyKind::Copy, DirCheck::Mismatch(..)) => out.copies_inconsistent += 1,
                (CopyKind::Copy, DirCheck::Unopenable(_)) => out.copies_unopenable += 1,
                (_, DirCheck::Consistent) => out.checkpoints_ok += 1,
                (_, DirCheck::Mismatch(class, detail)) => out.flag(
                    rec,
                    ViolationClass::CheckpointMismatch,
                    Some(class),
                    format!("{what} holds no state of its window: {class}: {detail}"),
                ),
                (_, DirCheck::Unopenable(msg)) => out.flag(
                    rec,
                    ViolationClass::CheckpointMismatch,
                    None,
                    format!("{what} does not open: {msg}"),
                ),
            }
        }
        Ok(())
    }

    /// Each writer's backups: the listing after the crash, then every
    /// listed backup restored and checked.
    fn backups(&self, out: &mut CopyOutcome) -> Result<(), CrashError> {
        let backup_lanes: std::collections::BTreeSet<usize> = self
            .writer
            .copies
            .iter()
            .filter(|r| r.kind == CopyKind::Backup)
            .map(|r| r.writer)
            .collect();
        for lane in backup_lanes {
            let recs: Vec<&CopyRecord> = self
                .writer
                .copies
                .iter()
                .filter(|r| r.kind == CopyKind::Backup && r.writer == lane)
                .collect();
            let Some(&first) = recs.first() else {
                continue;
            };
            let done = recs.iter().filter(|r| r.state == CopyState::Done).count();
            let dir = self.root.join(CopyKind::Backup.dir_name(lane, 0));
            let listed = match list_and_restore(&dir, self.root, lane, recs.len(), self.timeout)? {
                Listing::Listed(l) => l,
                Listing::VerifierDied => {
                    out.not_judged += recs.len() as u64;
                    continue;
                }
                Listing::Unopenable(msg) => {
                    out.flag(
                        first,
                        ViolationClass::BackupMismatch,
                        None,
                        format!("the backup directory of writer {lane} does not open after the crash: {msg}"),
                    );
                    continue;
                }
            };
            // BackupEngine lists only backups whose meta file was renamed into
            // place (backup_engine.cc Initialize): every completed one, and at
            // most the one a kill interrupted after that rename.
            if listed.len() < done || listed.len() > recs.len() {
                out.flag(
                    first,
                    ViolationClass::BackupMismatch,
                    None,
                    format!(
                        "writer {lane}: {done} backups completed, {} started, but {} listed after the crash",
                        recs.len(),
                        listed.len()
                    ),
                );
                continue;
            }
            out.backups_interrupted += (recs.len() - listed.len()) as u64;
            for (k, (id, err)) in listed.iter().enumerate() {
                let rec = recs[k];
                if let Some(e) = err {
                    out.flag(
                        rec,
                        ViolationClass::BackupMismatch,
                        None,
                        format!("backup {id} of writer {lane} is listed but does not restore: {e}"),
                    );
                    continue;
                }
                let to = self.root.join(format!("restore-{lane}-{k}"));
                let what = format!("backup {id} of writer {lane} ({:?})", rec.state);
                match self.check(&to, rec)? {
                    DirCheck::Consistent => out.backups_ok += 1,
                    DirCheck::VerifierDied => out.not_judged += 1,
                    DirCheck::Mismatch(class, detail) => out.flag(
                        rec,
                        ViolationClass::BackupMismatch,
                        Some(class),
                        format!("{what} restores to no state of its window: {class}: {detail}"),
                    ),
                    DirCheck::Unopenable(msg) => out.flag(
                        rec,
                        ViolationClass::BackupMismatch,
                        None,
                        format!("restored {what} does not open: {msg}"),
                    ),
                }
            }
        }
        Ok(())
    }
}
