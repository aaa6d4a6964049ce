//! The op driver: the one place that maps an [`Op`] to [`Store`] calls.
//!
//! Every harness runs ops through [`drive`]: the in-process run check
//! ([`crate::check`]), the crash writer child ([`crate::crash`]), the fuzz
//! targets ([`crate::fuzzing`]) and the state-machine test. What differs
//! between them (progress records, kill phases, which reads they can
//! check) lives in their [`Hooks`]; adding an op means one new arm here and
//! none in the harnesses, unless one of them must treat it specially.

use std::path::PathBuf;

use super::{Store, StoreResult};
use crate::op::Op;

/// What a store call handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The op ran and returns nothing: a write unit was acknowledged, a
    /// durability call, snapshot, compaction, reopen or copy returned Ok.
    Done,
    /// A point read (`get`, `getat`): the value, `None` when absent.
    Value(Option<Vec<u8>>),
    /// A multi-key read, one result per key of the op.
    Values(Vec<Option<Vec<u8>>>),
    /// A range read (`scan`, `scanat`): entries in iteration order.
    Entries(Vec<(Vec<u8>, Vec<u8>)>),
    /// A transaction's reads (its `get` and `scan` steps), one answer each
    /// ([`Answer::Value`] or [`Answer::Entries`]), in order.
    Reads(Vec<Answer>),
    /// The hooks chose not to run the op (see [`Go::Skip`]).
    Skipped,
}

/// Whether [`drive`] runs an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Go {
    /// Call the store.
    Run,
    /// Do not call the store; [`drive`] returns [`Answer::Skipped`] and
    /// calls no `after` hook. For reads the harness cannot check (a
    /// snapshot it does not track) or ops it does not support here.
    Skip,
}

/// What a harness does around each store call.
pub trait Hooks {
    /// Called before op `op` runs; decides whether it runs. The crash
    /// writer enters its kill phase and records "started" here.
    fn before(&mut self, _op: &Op) -> Go {
        Go::Run
    }

    /// Called after the op's store call returned (not for skipped ops),
    /// with its outcome. The crash writer records acknowledgements and
    /// durability points here.
    fn after(&mut self, _op: &Op, _result: &StoreResult<Answer>) {}

    /// The directory a `checkpoint`, `backup` or `copy` op writes to, or
    /// `None` to skip it: only the crash cycle manages those directories.
    fn copy_dir(&mut self, _op: &Op) -> Option<PathBuf> {
        None
    }
}

std::thread_local! {
    static ON_STEP: std::cell::Cell<Option<fn()>> = const { std::cell::Cell::new(None) };
    /// WAL appends seen on this thread since [`reset_wal_appends`].
    static WAL_APPENDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// True while [`wal_append_point`] runs the step hook.
    static AT_WAL_APPEND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The store called [`step_point`] since the last WAL append.
    static STORE_POINT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True inside a step point that [`wal_append_point`] made (the append
/// follows it), false inside one the store called.
pub fn at_wal_append() -> bool {
    AT_WAL_APPEND.with(std::cell::Cell::get)
}

/// Called by the fault filesystem before every append to a WAL file
/// (csrc/fault_env.cc `HookedWalFile`): every append after the first since
/// [`reset_wal_appends`] is a [`step_point`], unless the store called
/// `step_point` itself since the last append (one point per gap). A store
/// that writes one unit as several RocksDB writes is thus killed between
/// them even if it never calls `step_point` (RocksDB's own unit reaches
/// the WAL as one append).
pub fn wal_append_point() {
    let n = WAL_APPENDS.with(std::cell::Cell::get);
    WAL_APPENDS.with(|c| c.set(n.saturating_add(1)));
    // A store that marks its own steps gets one point per gap, not two.
    let marked = STORE_POINT.with(|c| c.replace(false));
    if n > 0 && !marked {
        AT_WAL_APPEND.with(|c| c.set(true));
        step_point();
        AT_WAL_APPEND.with(|c| c.set(false));
    }
}

/// Starts counting WAL appends afresh on this thread (at the start of the
/// op a kill aims inside).
pub fn reset_wal_appends() {
    WAL_APPENDS.with(|c| c.set(0));
    STORE_POINT.with(|c| c.set(false));
}

/// A point between two internal steps of one write unit. A store that
/// carries out a unit in several steps (a range delete done key by key, a
/// batch written in parts, a put plus an index update) calls this before
/// every step after the first, so the crash writer can kill the process
/// exactly there (a [`crate::crash::KillPlan::InsideOp`] kill) and a replay
/// lands at the same step. RocksDB's own write units are single steps.
pub fn step_point() {
    if !AT_WAL_APPEND.with(std::cell::Cell::get) {
        STORE_POINT.with(|c| c.set(true));
    }
    if let Some(f) = ON_STEP.with(std::cell::Cell::get) {
        f();
    }
}

/// What [`lock_point`] calls: the key read for update.
type LockHook = fn(&[u8]);

std::thread_local! {
    static ON_LOCK: std::cell::Cell<Option<LockHook>> = const { std::cell::Cell::new(None) };
    static ON_COMMIT: std::cell::Cell<Option<fn()>> = const { std::cell::Cell::new(None) };
}

/// Called by a store right after a `GetForUpdate` of `key` inside a
/// transaction returned `Ok` ([`Store::transaction_steps`]): the crash
/// writer notes when the key was read (and may wait a little for its
/// owner to write it, so that writers really contend).
pub fn lock_point(key: &[u8]) {
    if let Some(f) = ON_LOCK.with(std::cell::Cell::get) {
        f(key);
    }
}

/// Called by a store right before it commits a transaction that read keys
/// for update: the crash writer notes which of them another writer wrote
/// since, so that a commit that returns `Ok` all the same is seen
/// (docs/durability.md C2, `lost-update`).
pub fn commit_point() {
    if let Some(f) = ON_COMMIT.with(std::cell::Cell::get) {
        f();
    }
}

/// Sets the functions [`lock_point`] and [`commit_point`] call on this
/// thread (`None`: none).
pub fn set_txn_hooks(lock: Option<LockHook>, commit: Option<fn()>) {
    ON_LOCK.with(|s| s.set(lock));
    ON_COMMIT.with(|s| s.set(commit));
}

/// Sets the function [`step_point`] calls on this thread (`None`: none).
pub fn set_step_hook(f: Option<fn()>) {
    ON_STEP.with(|s| s.set(f));
}

/// Hooks that run every op except checkpoints, backups and copies.
pub struct Plain;

impl Hooks for Plain {}

/// Runs `op` against `store`: the one mapping from ops to store calls.
pub fn drive(store: &mut dyn Store, op: &Op, hooks: &mut dyn Hooks) -> StoreResult<Answer> {
    if hooks.before(op) == Go::Skip {
        return Ok(Answer::Skipped);
    }
    let r = call(store, op, hooks);
    if !matches!(r, Ok(Answer::Skipped)) {
        hooks.after(op, &r);
    }
    r
}

fn call(store: &mut dyn Store, op: &Op, hooks: &mut dyn Hooks) -> StoreResult<Answer> {
    let done = |r: StoreResult<()>| r.map(|()| Answer::Done);
    match op {
        Op::Ingest { mode, puts } => done(store.ingest(puts, *mode)),
        Op::Write(_) | Op::Batch(_) => {
            done(store.write(op.write_ops(), matches!(op, Op::Batch(_))))
        }
        Op::Txn(t) if !t.is_plain() => store.transaction_steps(t).map(|answers| {
            if t.reads().next().is_some() {
                Answer::Reads(answers)
            } else {
                Answer::Done
            }
        }),
        Op::Txn(t) => {
            let commit = t.end == crate::op::TxnEnd::Commit;
            done(match &t.prepare {
                None => store.transaction(&t.writes, commit),
                Some(name) => store.prepared_transaction(name, &t.writes, commit),
            })
        }
        Op::Get { key } => store.get(key, None).map(Answer::Value),
        Op::GetAt { id, key } => store.get(key, Some(*id)).map(Answer::Value),
        Op::MultiGet { keys } => store.multi_get(keys).map(Answer::Values),
        Op::Scan(scan) => store.scan(scan, None).map(Answer::Entries),
        Op::ScanAt { id, scan } => store.scan(scan, Some(*id)).map(Answer::Entries),
        Op::Snapshot { id } => done(store.snapshot(*id)),
        Op::Release { id } => done(store.release(*id)),
        Op::Flush => done(store.flush()),
        Op::FlushCfs { cfs } => done(store.flush_cfs(cfs.as_deref())),
        Op::FlushWal { sync } => done(store.flush_wal(*sync)),
        Op::Compact { lo, hi } => done(store.compact(lo.as_deref(), hi.as_deref())),
        Op::CompactTo { level } => done(store.compact_to(*level)),
        Op::Reopen => done(store.reopen()),
        Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. } => {
            let Some(dir) = hooks.copy_dir(op) else {
                return Ok(Answer::Skipped);
            };
            done(match op {
                Op::Checkpoint { .. } => store.checkpoint(&dir),
                Op::Backup { .. } => store.backup(&dir),
                _ => store.copy_files(&dir),
            })
        }
    }
}

/// One result of a read: a key and its value (`None`: absent).
pub type ReadPair<'a> = (&'a [u8], Option<&'a [u8]>);

impl Answer {
    /// A transaction's read answers ([`Answer::Reads`]) flattened as
    /// [`crate::model::Model::txn_reads`] gives them: a get's key and
    /// value, a scan's entries, in order. `None` for another answer, or
    /// answers that do not fit `t`'s reads.
    pub fn txn_reads<'a>(&'a self, t: &'a crate::op::Txn) -> Option<Vec<ReadPair<'a>>> {
        let Answer::Reads(rs) = self else {
            return None;
        };
        let mut out = Vec::new();
        for (r, kind) in rs.iter().zip(t.reads()) {
            match (r, kind) {
                (Answer::Value(v), crate::op::TxnStepKind::Get(k)) => {
                    out.push((k.as_slice(), v.as_deref()));
                }
                (Answer::Entries(es), crate::op::TxnStepKind::Scan(_)) => {
                    out.extend(es.iter().map(|(k, v)| (k.as_slice(), Some(v.as_slice()))));
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// The value hashes of a read's answer, as `(key, hash or absent)`
    /// pairs comparable with [`crate::model::history::ExpectedRead`];
    /// `None` for answers that are not reads.
    pub fn hashes(&self, op: &Op) -> Option<Vec<(Vec<u8>, Option<u128>)>> {
        use crate::model::value_hash;
        Some(match (self, op) {
            (Answer::Value(v), Op::Get { key } | Op::GetAt { key, .. }) => {
                vec![(key.clone(), v.as_deref().map(value_hash))]
            }
            (Answer::Values(vs), Op::MultiGet { keys }) => keys
                .iter()
                .cloned()
                .zip(vs.iter().map(|v| v.as_deref().map(value_hash)))
                .collect(),
            (Answer::Reads(_), Op::Txn(t)) => self
                .txn_reads(t)?
                .into_iter()
                .map(|(k, v)| (k.to_vec(), v.map(value_hash)))
                .collect(),
            (Answer::Entries(es), _) => es
                .iter()
                .map(|(k, v)| (k.clone(), Some(value_hash(v))))
                .collect(),
            _ => return None,
        })
    }
}
