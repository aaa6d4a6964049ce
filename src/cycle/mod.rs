//! One crash cycle, as a pipeline:
//!
//! 1. **plan** ([`plan`]): mode, fault, options, ops per writer, kill
//!    point, keys to read back;
//! 2. **write and kill** ([`crate::crash::run_writer`]): a forked writer
//!    runs the ops through the op driver until the SIGKILL;
//! 3. **after the kill**: the fault's crash image ([`crate::fault`]);
//! 4. **observe** ([`crate::observe`]): a forked verifier reopens the
//!    database and reads it back;
//! 5. **judge** ([`crate::oracle`], [`crate::verify`]): the admissible
//!    range, the recovered state against it, checkpoints and backups
//!    against their windows;
//! 6. **adjudicate** ([`adjudicate`]): one typed [`CycleOutcome`].

pub mod adjudicate;
mod open_evidence;
pub mod plan;
mod prepared;
mod reopen_kill;
mod special;
mod voided;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use adjudicate::{AnomalyKind, CycleOutcome};
pub use plan::{CyclePlan, PlanInputs};
pub use reopen_kill::ReopenKill;
pub use voided::refused_histories;
use voided::voided_histories;

use crate::crash::{self, CrashError, KillPlan, SharedLog, WriterJob, WriterRun, WriterStop};
use crate::fault::{AfterKill, Fault, IoErrors};
use crate::model::history::History;
use crate::model::State;
use crate::observe::{Recovered, Reopened};
use crate::op::Op;
use crate::oracle::{admissible, admissible_in, cross_cf_promise, Admissible, Durability};
use crate::store::{RecoveryMode, StoreFactory, StoreOptions};
use crate::verify::copies::CopyOutcome;
use crate::verify::{verify_all, Explanation, Matched, Verdict, ViolationClass};
use special::{fifo_states, ingest_states};

/// Everything about one finished cycle.
#[derive(Clone, Debug)]
pub struct CycleResult {
    /// The writer's run.
    pub writer: WriterRun,
    /// Admissible range (of the first writer).
    pub adm: Admissible,
    /// What the cycle came to. A consistent outcome carries its
    /// [`Explanation`]: which admitted state the database equals.
    pub outcome: CycleOutcome,
    /// An anomaly of the writer reported whatever the outcome (it died of
    /// a signal, or could not open the database).
    pub writer_anomaly: Option<(AnomalyKind, String)>,
    /// Column families recovered to different prefixes where the
    /// configuration allows it (a hazard, not a violation).
    pub divergence: Option<String>,
    /// How the checkpoints, backups and copies of the cycle were judged.
    pub copies: CopyOutcome,
    /// What the verifier read back (when it opened).
    pub recovered: Option<Recovered>,
    /// The crash image applied after the kill, if any.
    pub image: Option<String>,
    /// The directory image of a power cut (`None`: the cycle had none).
    pub dirs: Option<crate::fault::dirs::DirImage>,
    /// Blob files in the database at the kill, and their bytes.
    pub blob_files: (u64, u64),
    /// A first reopen killed before the verifier's (two-phase stores:
    /// `cycle/reopen_kill.rs`).
    pub reopen_kill: Option<ReopenKill>,
}

impl CycleResult {
    /// The explanation of a consistent cycle.
    pub fn explanation(&self) -> Option<&Explanation> {
        self.outcome.explanation()
    }

    /// The recovered state, derived from the explanation and confirmed
    /// against what the verifier read back: what a chained campaign
    /// carries on to its next cycle. `None` when the cycle was not
    /// consistent (or, which must never happen, the explanation does not
    /// name what was read).
    pub fn recovered_state(&self, histories: &[History], cfs: usize) -> Option<State> {
        let rec = self.recovered.as_ref()?;
        let before = self.explanation()?.state_of(histories, cfs, rec)?;
        // With the recovered prepared transactions resolved (P4).
        crate::verify::prepared::resolved_state(histories, before, rec)
    }
}

/// The directory a cycle on `db` keeps its checkpoints, backups and
/// copies in (created and removed by [`run_cycle`]).
pub fn copies_root(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".aux");
    PathBuf::from(s)
}

/// Removes a directory when dropped (the copies root, whatever happens).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = crate::fsutil::remove_tree(&self.0);
    }
}

/// The options the writer child opens the store with: the fault's
/// filesystem, and WAL appends as step points.
fn writer_options(opts: &StoreOptions, fault: Fault, single: bool) -> StoreOptions {
    StoreOptions {
        lose_unsynced_data: fault.drops_unsynced(opts, single),
        io_fault_env: fault.writer_io_errors().is_some(),
        // WAL appends are step points in every single-writer cycle, so
        // that a kill recorded at a step point replays at the same one.
        // Not with several writers: group commit appends a follower's
        // write from the leader's thread, and a replay, which runs one op
        // at a time, would count the points differently. Not with WAL
        // recycling either: the fault filesystem reuses a WAL by renaming
        // it and opening it anew, truncated (fault_injection_fs.cc
        // ReuseWritableFile), so kill cycles would never meet a recycled
        // WAL's old tail.
        step_env: single && !crate::store::user_options::recycles_wal(&opts.rocksdb),
        ..opts.clone()
    }
}

/// `dir`, empty and ours (a previous cycle on this path made it), removed
/// when the guard drops.
fn fresh_dir(dir: PathBuf) -> Result<RemoveOnDrop, CrashError> {
    let _ = crate::fsutil::remove_tree(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| CrashError::Sys("create journal dir", e))?;
    Ok(RemoveOnDrop(dir))
}

/// Applies the directory image of a power cut to the database tree after
/// the fault's own image, and adds it to the image's description. (The
/// WAL is always in the database directory: crashcheck sets no `wal_dir`
/// and drops a user's, store/user_options.rs.)
fn with_dir_image(
    image: Option<String>,
    journal: &Path,
    db: &Path,
) -> Result<(Option<String>, Option<crate::fault::dirs::DirImage>), CrashError> {
    let d = crate::fault::dirs::apply(journal, &[db])
        .map_err(|e| CrashError::Sys("apply the directory image", e))?;
    let image = match (image, d.dropped + d.renames_undone) {
        (i, 0) => i,
        (i, _) => Some(format!(
            "{}{} unsynced file(s) dropped, {} rename(s) undone",
            i.map(|i| i + "; ").unwrap_or_default(),
            d.dropped,
            d.renames_undone
        )),
    };
    Ok((image, Some(d)))
}

/// The seed of a cycle's injected I/O errors: drawn from the first ops of
/// each writer (not the kill plan or the ops' count, which a repro file
/// states differently), so a replay of the cycle injects the same errors.
fn io_error_seed(histories: &[History]) -> u32 {
    // xxh3, not std's DefaultHasher: its algorithm may change between Rust
    // releases, and a repro file must inject the same errors later.
    let mut text = histories.len().to_string();
    for hist in histories {
        for op in hist.ops.iter().take(8) {
            text.push('\n');
            text.push_str(&op.to_string());
        }
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as u32
}

/// True when some history takes a checkpoint, backup or copy.
fn uses_copies(histories: &[History]) -> bool {
    histories.iter().any(|h| {
        h.ops.iter().any(|o| {
            matches!(
                o,
                Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. }
            )
        })
    })
}

/// How a replay reproduces a recorded run in [`run_cycle`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Replay<'a> {
    /// The recorded interleaving of several writers (see
    /// [`crate::crash::WriterJob::order`]).
    pub order: Option<&'a [u8]>,
    /// Flush right before the planned step-point kill (see
    /// [`crate::crash::WriterJob::flush_at_kill`]).
    pub flush_at_kill: bool,
    /// The cycle's seed: the verifier commits or rolls back each
    /// transaction recovery brought back prepared as it draws
    /// ([`crate::observe::commit_recovered`]).
    pub seed: u64,
}

/// Runs one crash cycle on `db` (which may hold the chain's base state):
/// one writer per history (usually one). `keep_image`: where to keep a
/// hard-linked image of the database as the kill left it. `replay`: how a
/// replay reproduces a recorded run ([`Replay`]; default for a campaign's
/// own cycles).
#[allow(clippy::too_many_arguments)]
pub fn run_cycle(
    shared: &SharedLog,
    factory: &dyn StoreFactory,
    db: &Path,
    opts: &StoreOptions,
    fault: Fault,
    histories: &[History],
    kill: KillPlan,
    sample: &[Vec<u8>],
    timeout: Duration,
    keep_image: Option<&Path>,
    replay: Replay<'_>,
) -> Result<CycleResult, CrashError> {
    let single = histories.len() <= 1;
    let d = Durability::of(opts);

    // Write and kill.
    let root = copies_root(db);
    let copies = uses_copies(histories);
    let mut _root_guard = None;
    if copies {
        // Ours alone (a previous cycle on this path made it): start empty,
        // and remove it whatever happens below.
        let _ = crate::fsutil::remove_tree(&root);
        std::fs::create_dir_all(&root).map_err(|e| CrashError::Sys("create copies dir", e))?;
        _root_guard = Some(RemoveOnDrop(root.clone()));
    }
    let wopts = writer_options(opts, fault, single);
    // A power cut loses the directory entries no fsync made durable: the
    // writer journals them when it runs on the fault filesystem.
    let journal = (fault.is_power_loss() && wopts.uses_fault_env())
        .then(|| fresh_dir(crate::fault::dirs::journal_root(db)))
        .transpose()?;
    let opts = &StoreOptions {
        lose_unsynced_data: false,
        io_fault_env: false,
        step_env: false,
        ..opts.clone()
    };
    let job = WriterJob {
        factory,
        db,
        opts: &wopts,
        histories,
        kill,
        copies_root: &root,
        timeout,
        order: replay.order,
        flush_at_kill: replay.flush_at_kill,
        io_errors: fault.writer_io_errors().map(|e| {
            let may_resume = e.may_resume && factory.capabilities().resume;
            (io_error_seed(histories), IoErrors { may_resume, ..e })
        }),
        dir_journal: journal.as_ref().map(|g| g.0.as_path()),
    };
    let writer = crash::run_writer(shared, &job)?;

    // After the kill: the fault's crash image. Images index WAL records
    // by the single writer's units; with several writers one record may
    // hold a whole write group.
    let adm = admissible(&d, fault.loss(), &writer.progress);
    let blob_files = crate::fsutil::files_ending(db, ".blob");
    let image = match histories.first() {
        Some(h) if single => fault.after_kill(
            db,
            &AfterKill {
                opts,
                acked: writer.progress.acked,
                durable: adm.lo,
                seed: h.fps.last().copied().unwrap_or(0) as u64 ^ writer.progress.acked,
            },
        ),
        _ => None,
    };
    let (image, dirs) = match &journal {
        Some(j) => with_dir_image(image, &j.0, db)?,
        None => (image, None),
    };
    if let Some(img) = keep_image {
        let _ = crate::fsutil::link_tree(db, img);
    }
    let mut res = CycleResult {
        writer_anomaly: adjudicate::writer_anomaly(&writer.stop),
        writer,
        adm,
        outcome: CycleOutcome::Anomaly {
            kind: AnomalyKind::AbnormalExit,
            detail: "not judged".into(),
        },
        divergence: None,
        copies: CopyOutcome::default(),
        recovered: None,
        image,
        dirs,
        blob_files,
        reopen_kill: None,
    };
    if res.writer.stop == WriterStop::Hung {
        res.outcome = adjudicate::hang(res.writer.phase);
        return Ok(res);
    }
    // Units the store refused as conflicts left nothing (C1): the
    // histories without them are the ones judged.
    let refused = refused_histories(histories, &res.writer.refused);
    let histories = refused.as_deref().unwrap_or(histories);
    let judge = Judge {
        d: &d,
        loss: fault.loss(),
        promise: cross_cf_promise(&d, &res.writer.progress),
        histories,
        voided: voided_histories(histories, res.writer.io.voided_unit),
    };
    if copies {
        res.copies = judge.copies(factory, opts, &res.writer, &root, timeout)?;
    }
    judge.observe(factory, db, opts, (sample, replay.seed), timeout, &mut res)?;
    res.writer_anomaly = adjudicate::writer_anomaly_after(&res.writer.stop, &res.outcome);
    Ok(res)
}

/// What judging a cycle needs besides the result: the durability rules,
/// the loss class, the cross-column-family promise and the histories
/// (with the failed unit voided, where one was).
struct Judge<'a> {
    d: &'a Durability,
    loss: crate::fault::Loss,
    promise: Result<&'static str, &'static str>,
    histories: &'a [History],
    voided: Option<(u64, Vec<History>)>,
}

impl Judge<'_> {
    /// Judges the checkpoints, backups and copies; against the voided
    /// histories too when the planned ones leave findings.
    fn copies(
        &self,
        factory: &dyn StoreFactory,
        opts: &StoreOptions,
        writer: &WriterRun,
        root: &Path,
        timeout: Duration,
    ) -> Result<CopyOutcome, CrashError> {
        let judge = |hs: &[History]| {
            crate::verify::copies::judge(
                factory,
                opts,
                self.loss,
                hs,
                writer,
                root,
                self.promise,
                timeout,
            )
        };
        let first = judge(self.histories)?;
        if let (false, Some((_, v))) = (first.findings.is_empty(), &self.voided) {
            let again = judge(v)?;
            if again.findings.is_empty() {
                return Ok(again);
            }
        }
        Ok(first)
    }

    /// Reopens the database in the verifier child, reads it back and
    /// judges it: `res.outcome`, `res.recovered`, `res.divergence`.
    fn observe(
        &self,
        factory: &dyn StoreFactory,
        db: &Path,
        opts: &StoreOptions,
        (sample, seed): (&[Vec<u8>], u64),
        timeout: Duration,
        res: &mut CycleResult,
    ) -> Result<(), CrashError> {
        // Under FIFO the verifier opens with automatic compactions off: a
        // FIFO compaction right after the open would delete old files
        // between the full scan and the point reads, which must agree
        // (FIFO's deletions before the crash are judged by rule F1).
        let vopts;
        let vo = if self.d.fifo {
            let mut parts = crate::store::user_options::split_options(&opts.rocksdb);
            parts.push("disable_auto_compactions=true".into());
            vopts = StoreOptions {
                rocksdb: parts.join(";"),
                ..opts.clone()
            };
            &vopts
        } else {
            opts
        };
        let universe = crate::observe::point_read_keys(factory, self.histories);
        let reads = crate::observe::Reads {
            sample,
            universe: &universe,
            commit_seed: Some(seed),
        };
        res.reopen_kill = reopen_kill::first_reopen(factory, db, vo, seed, timeout)?;
        let reopened = crate::observe::reopen_and_resolve(factory, db, vo, &reads, timeout)?;
        res.outcome = match reopened {
            Reopened::Opened(rec) => {
                let outcome = match adjudicate::writer_verdict(&res.writer.stop) {
                    Some(o) => o,
                    None => self.recovered(&rec, res),
                };
                let outcome = prepared::judge(outcome, self.histories, self.d, self.loss, res, &rec);
                let outcome = adjudicate::excuse_pipelined_prepare(outcome, &opts.rocksdb);
                res.recovered = Some(rec);
                let o = adjudicate::excuse_close_in_error(outcome, self.d.mode, &res.writer);
                let o = adjudicate::excuse_unsynced_wal_dir(o, self.d.mode, &opts.rocksdb, res.dirs);
                adjudicate::excuse_snapshot_at_seqno_zero(o, self.histories)
            }
            // absolute-consistency refuses any torn WAL tail (options.h: "We don't expect
            // to find any corruption in the WAL"); a crash may leave one: admitted.
            Reopened::Failed(msg)
                if opts.wal_recovery_mode == RecoveryMode::AbsoluteConsistency
                    && msg.contains("Corruption") =>
            {
                CycleOutcome::Anomaly {
                    kind: AnomalyKind::OpenRefused,
                    detail: format!(
                        "open refused under absolute-consistency (admitted: a crash may tear the WAL tail): {msg}"
                    ),
                }
            }
            Reopened::Failed(msg) => {
                // A state read back from a copy is judged as this cycle's.
                let admitted = |rec: &Recovered| {
                    let mut scratch = res.clone();
                    matches!(self.recovered(rec, &mut scratch), CycleOutcome::Consistent { .. })
                };
                let at = (db, vo);
                let killed_opening = res.writer.stop == WriterStop::Killed
                    && res.writer.phase == crash::Phase::Opening;
                let w = (&res.writer.stop, killed_opening);
                open_evidence::judge(factory, at, timeout, w, msg, &admitted)?
            }
            Reopened::Died(end) => CycleOutcome::Anomaly {
                kind: if end == crash::ChildEnd::Hung {
                    AnomalyKind::Hang
                } else {
                    AnomalyKind::AbnormalExit
                },
                detail: format!("verifier child ended abnormally: {end:?}"),
            },
        };
        reopen_kill::note(&mut res.outcome, res.reopen_kill);
        Ok(())
    }

    /// The recovered state against the planned histories, then (after a
    /// violation) against the histories with the failed unit voided. If
    /// both fail, the report keeps the milder class (the nearer
    /// explanation: a value of the failed write is no phantom, its absence
    /// no hole).
    fn recovered(&self, rec: &Recovered, res: &mut CycleResult) -> CycleOutcome {
        let first = self.live(self.histories, None, rec, res);
        let (Some(c1), Some((u, v))) = (first.class(), &self.voided) else {
            return first;
        };
        let saved = res.divergence.clone();
        let again = self.live(v, Some(*u), rec, res);
        match again {
            CycleOutcome::Violation { class: c2, .. } if c2 < c1 => {
                res.divergence = saved;
                first
            }
            _ => again,
        }
    }

    /// Judges the recovered live database against `histories` (every
    /// writer, every column family; `voided`: the failed unit voided in
    /// them), then the copies' findings, and adjudicates known bugs.
    fn live(
        &self,
        histories: &[History],
        voided: Option<u64>,
        rec: &Recovered,
        res: &mut CycleResult,
    ) -> CycleOutcome {
        let d = self.d;
        let (loss, promise) = (self.loss, self.promise);
        let cfs = d.column_families.max(1) as usize;
        let progress = |t: usize| res.writer.writers.get(t).copied().unwrap_or_default();
        let adm_of = |t: usize, cf: Option<usize>| admissible_in(d, loss, &progress(t), cf);
        let explained = |writers: Vec<Matched>| Explanation {
            writers,
            voided_unit: voided,
        };
        let cv = verify_all(histories, &adm_of, rec, cfs, promise);
        res.divergence = cv.divergence;
        let (class, detail, diff) = match cv.verdict {
            Verdict::Ok { .. } => {
                return adjudicate::with_copy_findings(
                    d,
                    explained(cv.matched),
                    &res.copies.findings,
                )
            }
            Verdict::Violation {
                class,
                detail,
                diff,
            } => (class, detail, diff),
        };
        if adjudicate::live_violation_may_be_known_bug(d, histories.len(), class) {
            // Would the state pass if flushes that overlapped another had
            // persisted nothing? Then it is the known bug, not something
            // new.
            let solo = |t: usize, cf: Option<usize>| {
                admissible_in(d, loss, &progress(t).without_overlapping_flushes(), cf)
            };
            let again = verify_all(histories, &solo, rec, cfs, promise);
            if matches!(again.verdict, Verdict::Ok { .. }) {
                res.divergence = again.divergence;
                return CycleOutcome::KnownBug {
                    bug: crate::known_bugs::ATOMIC_FLUSH_EARLY_RETURN,
                    detail: format!("{class}: {detail}"),
                };
            }
        }
        // FIFO compaction drops its oldest files by design (F1), and an
        // acknowledged ingest is durable on its own and may outlive
        // earlier writes (I1).
        let special = match d.fifo {
            true => fifo_states(histories, &adm_of, promise.is_err(), rec, cfs),
            false => ingest_states(histories, &adm_of, &progress, rec),
        };
        if let Some(writers) = special {
            res.divergence = None;
            return adjudicate::with_copy_findings(d, explained(writers), &res.copies.findings);
        }
        // Lost only writes acknowledged after an op had failed, with no
        // resume between (E7): a class of its own.
        if let (ViolationClass::LostAckedWrite, Some(e)) = (class, res.writer.io.error_after_unit) {
            let before =
                |t: usize, cf: Option<usize>| admissible_in(d, loss, &progress(t).capped_at(e), cf);
            let again = verify_all(histories, &before, rec, cfs, promise);
            if matches!(again.verdict, Verdict::Ok { .. }) {
                return CycleOutcome::Violation {
                    class: ViolationClass::LostAckedAfterError,
                    detail: format!(
                        "{detail}; every lost write was acknowledged after an op failed with an I/O error (after unit {e}), with no resume between"
                    ),
                    diff,
                };
            }
        }
        CycleOutcome::Violation {
            class,
            detail,
            diff,
        }
    }
}

#[cfg(test)]
mod tests;
