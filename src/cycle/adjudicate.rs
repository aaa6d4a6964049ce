//! Adjudication: the typed findings of a cycle (how the writer stopped,
//! what the verifier saw, the live database's verdict, the checkpoints'
//! and backups' findings) become one [`CycleOutcome`], using the registry
//! of known RocksDB bugs ([`crate::known_bugs`]).

use serde::{Deserialize, Serialize};

use crate::crash::{ChildEnd, WriterStop};
use crate::known_bugs::{self, KnownBug};
use crate::model::history::History;
use crate::op::Op;
use crate::oracle::Durability;
use crate::store::WalMode;
use crate::verify::copies::CopyFinding;
use crate::verify::{Explanation, ViolationClass};

/// What a cycle came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CycleOutcome {
    /// Every database (live, checkpoints, backups) holds an admissible
    /// state; the live one equals the state `explanation` names (a plain
    /// prefix, or one of the non-prefix states the oracle admits).
    Consistent {
        /// Which admitted state the live database equals, per writer.
        explanation: Explanation,
    },
    /// A broken promise.
    Violation {
        /// Class.
        class: ViolationClass,
        /// One-line explanation.
        detail: String,
        /// Diff lines against the nearest admissible prefix.
        diff: Vec<String>,
    },
    /// A failure explained by a known RocksDB bug.
    KnownBug {
        /// Which one.
        bug: KnownBug,
        /// What was seen.
        detail: String,
    },
    /// The cycle could not be judged, or ended in a way that is no verdict.
    Anomaly {
        /// Kind.
        kind: AnomalyKind,
        /// What happened.
        detail: String,
    },
}

/// Kinds of anomaly: cycles that are neither consistent nor a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A child (writer or verifier) did not finish within the timeout.
    Hang,
    /// RocksDB rejected the configuration ("Invalid argument").
    ConfigurationRejected,
    /// A failure matched a known RocksDB bug (see docs/findings.md).
    KnownRocksdbBug,
    /// The database refused to open where that is admitted
    /// (absolute-consistency recovery after a torn WAL tail).
    OpenRefused,
    /// A child died of a signal, panicked, or exited unexpectedly.
    AbnormalExit,
}

impl AnomalyKind {
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Hang => "hang",
            AnomalyKind::ConfigurationRejected => "configuration-rejected",
            AnomalyKind::KnownRocksdbBug => "known-rocksdb-bug",
            AnomalyKind::OpenRefused => "open-refused",
            AnomalyKind::AbnormalExit => "abnormal-exit",
        }
    }

    /// True for anomalies worth an artifact: they may be RocksDB bugs (a
    /// configuration RocksDB rejected is not).
    pub fn keeps_artifact(self) -> bool {
        matches!(self, AnomalyKind::Hang | AnomalyKind::AbnormalExit)
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl CycleOutcome {
    /// The violation class, if the outcome is a violation.
    pub fn class(&self) -> Option<ViolationClass> {
        match self {
            CycleOutcome::Violation { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// The explanation of a consistent outcome.
    pub fn explanation(&self) -> Option<&Explanation> {
        match self {
            CycleOutcome::Consistent { explanation } => Some(explanation),
            _ => None,
        }
    }

    /// The outcome as an anomaly `(kind, detail)`, if it is one (a known
    /// bug is reported as a `known-rocksdb-bug` anomaly).
    pub fn anomaly(&self) -> Option<(AnomalyKind, String)> {
        match self {
            CycleOutcome::Anomaly { kind, detail } => Some((*kind, detail.clone())),
            CycleOutcome::KnownBug { bug, detail } => {
                Some((AnomalyKind::KnownRocksdbBug, format!("{bug}: {detail}")))
            }
            _ => None,
        }
    }
}

/// Violation classes that mean "acknowledged data is missing": a lost
/// write, part of a unit, units out of order (a newer write undone by an
/// older one), a hole, a lost delete (resurrected), a lost merge base.
const MISSING_DATA: [ViolationClass; 7] = [
    ViolationClass::LostAckedWrite,
    ViolationClass::LostAckedAfterError,
    ViolationClass::TornBatch,
    ViolationClass::ReorderedWrites,
    ViolationClass::Hole,
    ViolationClass::ResurrectedDelete,
    ViolationClass::MergeOnStaleBase,
];

/// True when a checkpoint or backup finding matches
/// A writer that did not finish within the timeout: a hang, or, when it
/// hung inside `DB::Resume()` on a RocksDB that has the bug, finding 5
/// ([`known_bugs::RESUME_STALE_FLUSH`]), by that evidence.
pub fn hang(phase: crate::crash::Phase) -> CycleOutcome {
    let bug = known_bugs::RESUME_STALE_FLUSH;
    if phase == crate::crash::Phase::Resuming && crate::store::engine::excuses(&bug) {
        return CycleOutcome::KnownBug {
            bug,
            detail: "the writer hung inside DB::Resume() after a full disk".into(),
        };
    }
    CycleOutcome::Anomaly {
        kind: AnomalyKind::Hang,
        detail: format!("hang: the writer did not finish within the timeout (in phase {phase:?})"),
    }
}

/// [`known_bugs::ATOMIC_FLUSH_EARLY_RETURN`]: WAL disabled, atomic_flush
/// on, a flush by another writer overlapping the call, and acknowledged
/// data missing (lost acknowledged writes, or a cross-CF batch half there).
/// `examples/checkpoint_race.rs` reproduces it without crashcheck.
pub fn copy_finding_is_known_bug(d: &Durability, f: &CopyFinding) -> bool {
    d.mode == WalMode::NoWal
        && d.atomic_flush
        && f.flush_overlap
        && f.inner.is_some_and(|c| MISSING_DATA.contains(&c))
        && crate::store::engine::excuses(&known_bugs::ATOMIC_FLUSH_EARLY_RETURN)
}

/// True when a live-database violation of `class` may be
/// [`known_bugs::ATOMIC_FLUSH_EARLY_RETURN`] in its flush form: atomic
/// flush, concurrent writers whose flushes overlap, acknowledged data
/// missing. The caller then re-checks with only non-overlapping flushes as
/// durability points (`Progress::without_overlapping_flushes`).
pub fn live_violation_may_be_known_bug(
    d: &Durability,
    writers: usize,
    class: ViolationClass,
) -> bool {
    d.atomic_flush
        && writers > 1
        && MISSING_DATA.contains(&class)
        && crate::store::engine::excuses(&known_bugs::ATOMIC_FLUSH_EARLY_RETURN)
}

/// True when a history may hold a snapshot at sequence number 0: it starts
/// on an empty database and takes a snapshot before any op other than
/// ingests (an ingest that overlaps nothing keeps sequence number 0).
pub fn has_snapshot_at_seqno_zero(h: &History) -> bool {
    h.base.is_empty()
        && h.ops
            .iter()
            .find(|o| !matches!(o, Op::Ingest { .. }))
            .is_some_and(|o| matches!(o, Op::Snapshot { .. }))
}

/// A violation in a cycle with a snapshot at sequence number 0 is
/// [`known_bugs::SNAPSHOT_SEQNO_ZERO`] (data missing, a merge on a deleted
/// base, or a read that disagrees), where this RocksDB has that bug; the
/// outcome is returned unchanged otherwise. Such cycles come from
/// `crash --empty-start` (`CrashConfig::seqno_zero_opening`).
pub fn excuse_snapshot_at_seqno_zero(outcome: CycleOutcome, histories: &[History]) -> CycleOutcome {
    match outcome {
        CycleOutcome::Violation { class, detail, .. }
            if (class == ViolationClass::ReadMismatch || MISSING_DATA.contains(&class))
                && histories.iter().any(has_snapshot_at_seqno_zero)
                && crate::store::engine::excuses(&known_bugs::SNAPSHOT_SEQNO_ZERO) =>
        {
            // Before 9.10.0 the same cycles also meet the fixed sibling H1
            // (facebook/rocksdb#13155, docs/findings.md H1).
            let e = crate::store::engine::engine();
            let h1 = known_bugs::parse_version(&e.rocksdb_version).is_some_and(|v| v < (9, 10, 0));
            CycleOutcome::KnownBug {
                bug: known_bugs::SNAPSHOT_SEQNO_ZERO,
                detail: if h1 {
                    format!("{class}: {detail} (RocksDB {} also has H1, facebook/rocksdb#13155, fixed in 9.10.0)", e.rocksdb_version)
                } else {
                    format!("{class}: {detail}")
                },
            }
        }
        o => o,
    }
}

/// [`known_bugs::CLOSE_IGNORES_SHUTDOWN_FLUSH`], by its evidence: with the
/// WAL off, a reopen closed the database while a background error stood
/// (the shutdown flush cannot run on a stopped database, and Close returned
/// OK), and acknowledged data is missing or a read after that reopen
/// disagreed; on a RocksDB that has the bug. Any other outcome is returned
/// unchanged. With the WAL on, the reopen replays the WAL and loses
/// nothing, so no violation there is excused.
pub fn excuse_close_in_error(
    outcome: CycleOutcome,
    mode: WalMode,
    writer: &crate::crash::WriterRun,
) -> CycleOutcome {
    let Some((closed_at, error)) = &writer.closed_in_error else {
        return outcome;
    };
    let after_close = match &writer.stop {
        WriterStop::ReadMismatch { op, .. } => op > closed_at,
        _ => true,
    };
    match outcome {
        CycleOutcome::Violation { class, detail, .. }
            if mode == WalMode::NoWal
                && after_close
                && (class == ViolationClass::ReadMismatch || MISSING_DATA.contains(&class))
                && crate::store::engine::excuses(&known_bugs::CLOSE_IGNORES_SHUTDOWN_FLUSH) =>
        {
            CycleOutcome::KnownBug {
                bug: known_bugs::CLOSE_IGNORES_SHUTDOWN_FLUSH,
                detail: format!(
                    "{class}: {detail} (op #{closed_at} reopened the database while a background error stood: {error})"
                ),
            }
        }
        o => o,
    }
}

/// [`known_bugs::TWO_WRITE_QUEUES_WAL_DIR_SYNC`], by its evidence: sync
/// writes (wal-sync), `two_write_queues=true`, and the power cut dropped a
/// WAL file whose creation no directory fsync had made durable (D1), with
/// acknowledged data missing; on a RocksDB that has the bug. Anything else
/// is returned unchanged.
pub fn excuse_unsynced_wal_dir(
    outcome: CycleOutcome,
    mode: WalMode,
    rocksdb_options: &str,
    dirs: Option<crate::fault::dirs::DirImage>,
) -> CycleOutcome {
    let two_queues = crate::store::user_options::option_value(rocksdb_options, "two_write_queues")
        .is_some_and(|v| v == "true");
    let wal_dropped = dirs.is_some_and(|d| d.wals_dropped > 0);
    match outcome {
        CycleOutcome::Violation { class, detail, .. }
            if mode == WalMode::WalSync
                && two_queues
                && wal_dropped
                && MISSING_DATA.contains(&class)
                && crate::store::engine::excuses(&known_bugs::TWO_WRITE_QUEUES_WAL_DIR_SYNC) =>
        {
            CycleOutcome::KnownBug {
                bug: known_bugs::TWO_WRITE_QUEUES_WAL_DIR_SYNC,
                detail: format!(
                    "{class}: {detail} (two_write_queues; the power cut dropped a WAL whose directory entry was never synced)"
                ),
            }
        }
        o => o,
    }
}

/// [`known_bugs::PIPELINED_WRITE_DROPS_PREPARE_LOG`], by its evidence: a
/// durable prepare lost (`lost-prepared`) with `enable_pipelined_write`
/// on, on a RocksDB that has the bug. Any other class stays what it is.
pub fn excuse_pipelined_prepare(outcome: CycleOutcome, rocksdb_options: &str) -> CycleOutcome {
    let bug = known_bugs::PIPELINED_WRITE_DROPS_PREPARE_LOG;
    let pipelined =
        crate::store::user_options::option_value(rocksdb_options, "enable_pipelined_write")
            .is_some_and(|v| v == "true");
    match outcome {
        CycleOutcome::Violation {
            class: ViolationClass::LostPrepared,
            detail,
            ..
        } if pipelined && crate::store::engine::excuses(&bug) => CycleOutcome::KnownBug {
            bug,
            detail: format!("lost-prepared: {detail} (enable_pipelined_write)"),
        },
        o => o,
    }
}

/// [`known_bugs::BLOB_FILE_OWN_PATH`], by its evidence: the background
/// error that stopped the op is the stat of a missing SST file ("while
/// stat a file for size: <n>.sst: No such file or directory"), which is
/// what `SstFileManagerImpl::OnAddFile` returns when a finished blob file
/// is reported under the path of an empty compaction output that was
/// just deleted; on a RocksDB that has the bug.
fn blob_file_path_bug(msg: &str) -> bool {
    msg.contains("while stat a file for size")
        && msg.contains(".sst: No such file or directory")
        && crate::store::engine::excuses(&known_bugs::BLOB_FILE_OWN_PATH)
}

/// What the writer's stop says before the database is looked at: a
/// violation or anomaly of its own, or nothing (`None`: judge the state).
pub fn writer_verdict(stop: &WriterStop) -> Option<CycleOutcome> {
    match stop {
        WriterStop::ReadMismatch { op, msg } => Some(CycleOutcome::Violation {
            class: ViolationClass::ReadMismatch,
            detail: format!("writer read at op #{op}: {msg}"),
            diff: Vec::new(),
        }),
        WriterStop::LostUpdate { op, msg } => Some(CycleOutcome::Violation {
            class: ViolationClass::LostUpdate,
            detail: format!("transaction at op #{op} committed: {msg}"),
            diff: Vec::new(),
        }),
        // No verdict on a store that lacks what it declared; a campaign
        // stops with a refusal before it records this.
        WriterStop::Unsupported { op, msg } => Some(CycleOutcome::Anomaly {
            kind: AnomalyKind::AbnormalExit,
            detail: format!("op #{op}: {msg} (not a violation: the store lacks it)"),
        }),
        WriterStop::StoreError { op, msg } if msg.starts_with("Invalid argument") => {
            Some(CycleOutcome::Anomaly {
                kind: AnomalyKind::ConfigurationRejected,
                detail: format!("configuration rejected by RocksDB at op #{op}: {msg}"),
            })
        }
        WriterStop::StoreError { op, msg } if blob_file_path_bug(msg) => {
            Some(CycleOutcome::KnownBug {
                bug: known_bugs::BLOB_FILE_OWN_PATH,
                detail: format!("op #{op} failed: {msg}"),
            })
        }
        WriterStop::StoreError { op, msg } => Some(CycleOutcome::Violation {
            class: ViolationClass::StoreError,
            detail: format!("op #{op} failed: {msg}"),
            diff: Vec::new(),
        }),
        _ => None,
    }
}

/// A status by which RocksDB rejects a configuration at open.
fn rejected(msg: &str) -> bool {
    msg.contains("Invalid argument") || msg.contains("Not implemented")
}

/// The verdict on a verifier that could not open the database with
/// `msg`: a configuration RocksDB rejects at open ("Invalid argument", or
/// "Not implemented": TransactionDB's "WRITE_COMMITTED is incompatible with
/// unordered_writes", pessimistic_transaction_db.cc) when the writer could
/// not open it either, with the same status, or was killed while it opened
/// (`killed_opening`): either way nothing was written under it. Any other
/// failure is a violation.
pub fn open_failed((writer, killed_opening): (&WriterStop, bool), msg: String) -> CycleOutcome {
    match writer {
        _ if rejected(&msg) && killed_opening => CycleOutcome::Anomaly {
            kind: AnomalyKind::ConfigurationRejected,
            detail: format!(
                "configuration rejected by RocksDB at open (the writer was killed while it opened): {msg}"
            ),
        },
        WriterStop::OpenFailed(w) if rejected(&msg) && w.ends_with(msg.as_str()) => {
            CycleOutcome::Anomaly {
                kind: AnomalyKind::ConfigurationRejected,
                detail: format!("configuration rejected by RocksDB at open: {msg}"),
            }
        }
        _ => CycleOutcome::Violation {
            class: ViolationClass::UnexpectedOpenFailure,
            detail: format!("reopen after the crash failed: {msg}"),
            diff: Vec::new(),
        },
    }
}

/// An anomaly of the writer that is reported whatever the verdict (a
/// writer that died of a signal or could not open still leaves a
/// database to judge).
pub fn writer_anomaly(stop: &WriterStop) -> Option<(AnomalyKind, String)> {
    match stop {
        WriterStop::Abnormal(ChildEnd::Signaled { signal }) => Some((
            AnomalyKind::AbnormalExit,
            format!("writer died of signal {signal}"),
        )),
        WriterStop::OpenFailed(msg) if rejected(msg) => Some((
            AnomalyKind::ConfigurationRejected,
            format!("writer could not open the database: {msg}"),
        )),
        WriterStop::OpenFailed(msg) => Some((
            AnomalyKind::AbnormalExit,
            format!("writer could not open the database: {msg}"),
        )),
        _ => None,
    }
}

/// The writer's anomaly, unless the writer could not open the database
/// and the verifier's open then failed the same way as a known bug (a
/// chained `transaction-db` cycle that starts from a database finding 8
/// left: one failure, named by its registry id, not also an abnormal
/// exit).
pub fn writer_anomaly_after(
    stop: &WriterStop,
    outcome: &CycleOutcome,
) -> Option<(AnomalyKind, String)> {
    if let (WriterStop::OpenFailed(msg), CycleOutcome::KnownBug { detail, .. }) = (stop, outcome) {
        let why = msg.strip_prefix("open failed: ").unwrap_or(msg);
        if !why.is_empty() && detail.contains(why) {
            return None;
        }
    }
    writer_anomaly(stop)
}

/// The live database was consistent: the first checkpoint or backup
/// finding that no known bug explains is the cycle's violation; if every
/// finding is explained, the cycle is that known bug.
pub fn with_copy_findings(
    d: &Durability,
    explanation: Explanation,
    findings: &[CopyFinding],
) -> CycleOutcome {
    if let Some(f) = findings.iter().find(|f| !copy_finding_is_known_bug(d, f)) {
        return CycleOutcome::Violation {
            class: f.class,
            detail: f.detail.clone(),
            diff: Vec::new(),
        };
    }
    match findings.first() {
        Some(f) => CycleOutcome::KnownBug {
            bug: known_bugs::ATOMIC_FLUSH_EARLY_RETURN,
            detail: format!(
                "checkpoint/backup under atomic_flush without the WAL: {}",
                f.detail
            ),
        },
        None => CycleOutcome::Consistent { explanation },
    }
}

#[cfg(test)]
#[path = "adjudicate_tests.rs"]
mod tests;
