//! The in-process checker: runs ops against a store and the model side by
//! side and compares every read, then the whole final state.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::{scan_state, Entry, Model};
use crate::op::Op;
use crate::store::drive::{drive, Answer, Go, Hooks};
use crate::store::{Store, StoreFactory, StoreOptions};
use crate::verify::ViolationClass;

/// What the in-process checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunViolation {
    /// Index (0-based) of the op that exposed it; `ops.len()` for the final
    /// full-state comparison.
    pub op_index: usize,
    /// The op's text form.
    pub op: String,
    /// `read-mismatch`, `final-state-mismatch` or `store-error`.
    pub class: ViolationClass,
    /// What differed.
    pub detail: String,
}

impl fmt::Display for RunViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at op {} `{}`: {}",
            self.class, self.op_index, self.op, self.detail
        )
    }
}

/// Summary of an in-process run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunOutcome {
    /// Ops executed.
    pub ops_run: usize,
    /// Write units acknowledged.
    pub writes: u64,
    /// Individual read results compared against the model.
    pub reads_checked: u64,
    /// The first violation, if any.
    pub violation: Option<RunViolation>,
}

fn show(v: Option<&[u8]>) -> String {
    match v {
        None => "absent".into(),
        Some(b) if b.len() <= 24 => format!("{:?}", String::from_utf8_lossy(b)),
        Some(b) => format!(
            "{} bytes {:?}..",
            b.len(),
            String::from_utf8_lossy(&b[..16])
        ),
    }
}

fn cmp_value(key: &[u8], got: Option<&[u8]>, want: Option<&Entry>) -> Option<String> {
    let want = want.map(|e| &e.value[..]);
    (got != want).then(|| {
        format!(
            "key {}: store has {}, model has {}",
            String::from_utf8_lossy(key),
            show(got),
            show(want)
        )
    })
}

fn cmp_entries(got: &[(Vec<u8>, Vec<u8>)], want: &[(&[u8], &Entry)]) -> Option<String> {
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        if g.0 != w.0 {
            return Some(format!(
                "entry {i}: store has key {}, model has key {}",
                String::from_utf8_lossy(&g.0),
                String::from_utf8_lossy(w.0)
            ));
        }
        if let Some(d) = cmp_value(&g.0, Some(&g.1), Some(w.1)) {
            return Some(format!("entry {i}: {d}"));
        }
    }
    (got.len() != want.len())
        .then(|| format!("store returned {} entries, model {}", got.len(), want.len()))
}

/// How the run check opens the checkpoints it takes: each one goes into a
/// new directory under `dir` (which crashcheck created), is opened with
/// `factory` and `opts` and compared whole with the model, then removed.
/// Without it, checkpoint ops are skipped.
pub struct Checkpoints<'a> {
    /// Opens a checkpoint (the store under test's own factory).
    pub factory: &'a dyn StoreFactory,
    /// The options the database was opened with.
    pub opts: &'a StoreOptions,
    /// Where the checkpoints go.
    pub dir: &'a Path,
}

/// The in-process checker's hooks: a read at a snapshot the model does
/// not have is not run; a checkpoint runs only with somewhere to put it.
struct RunHooks<'a> {
    model: &'a Model,
    checkpoint: Option<PathBuf>,
}

impl Hooks for RunHooks<'_> {
    fn before(&mut self, op: &Op) -> Go {
        match op {
            Op::GetAt { id, .. } | Op::ScanAt { id, .. } if !self.model.has_snapshot(*id) => {
                Go::Skip
            }
            _ => Go::Run,
        }
    }

    fn copy_dir(&mut self, op: &Op) -> Option<PathBuf> {
        match op {
            Op::Checkpoint { .. } => self.checkpoint.clone(),
            _ => None,
        }
    }
}

/// Runs one op against store and model; `Ok(n)` is the number of read
/// results compared, `Err` the class and description of a mismatch.
pub fn step(
    store: &mut dyn Store,
    model: &mut Model,
    op: &Op,
) -> Result<u64, (ViolationClass, String)> {
    step_with(store, model, op, None)
}

/// Opens the checkpoint at `dir` and compares it whole with the model.
///
/// rust-rocksdb's `Checkpoint::create_checkpoint` passes
/// `log_size_for_flush = 0`, so RocksDB flushes the memtables first
/// (include/rocksdb/utilities/checkpoint.h, `CreateCheckpoint`: "0 ...
/// means flush is always triggered"): a checkpoint that returned Ok holds
/// exactly the writes acknowledged before the call, in every WAL mode.
fn check_checkpoint(cp: &Checkpoints<'_>, dir: &Path, model: &Model) -> Result<(), String> {
    let mut copy = cp
        .factory
        .open_read_only(dir, cp.opts)
        .map_err(|e| format!("the checkpoint does not open: {e}"))?;
    let r = compare_full(copy.as_mut(), model);
    let _ = copy.close();
    r.map_err(|(_, d)| format!("the checkpoint differs from the model: {d}"))
}

/// [`step`], with checkpoints taken and checked when `cp` says where.
pub fn step_with(
    store: &mut dyn Store,
    model: &mut Model,
    op: &Op,
    cp: Option<&Checkpoints<'_>>,
) -> Result<u64, (ViolationClass, String)> {
    let dir = match (op, cp) {
        (Op::Checkpoint { .. }, Some(cp)) => Some(fresh_dir(cp.dir)?),
        _ => None,
    };
    let mut hooks = RunHooks {
        model: &*model,
        checkpoint: dir.clone(),
    };
    let answer = drive(store, op, &mut hooks);
    if let (Some(dir), Some(cp), Ok(_)) = (&dir, cp, &answer) {
        let r = check_checkpoint(cp, dir, model);
        let _ = crate::fsutil::remove_tree(dir);
        r.map_err(|d| (ViolationClass::CheckpointMismatch, d))?;
        return Ok(1);
    }
    if let Some(dir) = &dir {
        let _ = crate::fsutil::remove_tree(dir);
    }
    let answer = answer.map_err(|e| (ViolationClass::StoreError, e.to_string()))?;
    let mismatch = |d: String| Err((ViolationClass::ReadMismatch, d));
    let checked = match (op, &answer) {
        (Op::Get { key }, Answer::Value(got)) => {
            if let Some(d) = cmp_value(key, got.as_deref(), model.get(key, None).flatten()) {
                return mismatch(d);
            }
            1
        }
        (Op::GetAt { id, key }, Answer::Value(got)) => {
            let want = model.get(key, Some(*id)).flatten();
            if let Some(d) = cmp_value(key, got.as_deref(), want) {
                return mismatch(format!("at snapshot {id}: {d}"));
            }
            1
        }
        (Op::MultiGet { keys }, Answer::Values(got)) => {
            if got.len() != keys.len() {
                return mismatch(format!(
                    "multi_get returned {} results for {} keys",
                    got.len(),
                    keys.len()
                ));
            }
            for (k, g) in keys.iter().zip(got) {
                if let Some(d) = cmp_value(k, g.as_deref(), model.get(k, None).flatten()) {
                    return mismatch(d);
                }
            }
            keys.len() as u64
        }
        (Op::Scan(scan), Answer::Entries(got)) => {
            if let Some(d) = cmp_entries(got, &scan_state(model.state(), scan)) {
                return mismatch(d);
            }
            1
        }
        (Op::Txn(t), answer @ Answer::Reads(_)) => {
            let want = model.txn_reads(t);
            let got = answer.txn_reads(t).unwrap_or_default();
            if got.len() != want.len() {
                return mismatch(format!(
                    "`{op}` read {} results, the model {}",
                    got.len(),
                    want.len()
                ));
            }
            for ((gk, g), (k, w)) in got.iter().zip(&want) {
                if *gk != k.as_slice() {
                    return mismatch(format!(
                        "inside `{op}`: key {} where the model has {}",
                        show(Some(gk)),
                        show(Some(k.as_slice()))
                    ));
                }
                if let Some(d) = cmp_value(k, *g, w.as_ref()) {
                    return mismatch(format!("inside `{op}`: {d}"));
                }
            }
            want.len() as u64
        }
        (Op::ScanAt { id, scan }, Answer::Entries(got)) => {
            let want = model.scan(scan, Some(*id)).unwrap_or_default();
            if let Some(d) = cmp_entries(got, &want) {
                return mismatch(format!("at snapshot {id}: {d}"));
            }
            1
        }
        _ => 0,
    };
    model.apply_op(op);
    Ok(checked)
}

/// A name under `root` (created if missing) that does not exist yet: the
/// checkpoint creates it.
fn fresh_dir(root: &Path) -> Result<PathBuf, (ViolationClass, String)> {
    std::fs::create_dir_all(root).map_err(|e| {
        (
            ViolationClass::StoreError,
            format!("cannot create {}: {e}", root.display()),
        )
    })?;
    (0..u32::MAX)
        .map(|i| root.join(format!("checkpoint-{i}")))
        .find(|p| !p.exists())
        .ok_or_else(|| (ViolationClass::StoreError, "no free checkpoint name".into()))
}

/// Compares the store's whole state with the model.
pub fn compare_full(store: &mut dyn Store, model: &Model) -> Result<(), (ViolationClass, String)> {
    compare_final(store, model, &[])
}

/// The keys a store without scans is read at: every key `ops` write, and
/// every key the model holds (a checkpoint's state has no ops of its own).
fn keys_to_read<'a>(model: &'a Model, ops: &'a [Op]) -> std::collections::BTreeSet<&'a Vec<u8>> {
    let written = ops
        .iter()
        .flat_map(|o| o.write_ops())
        .filter_map(|w| match w {
            crate::op::WriteOp::Put { key, .. }
            | crate::op::WriteOp::Delete { key }
            | crate::op::WriteOp::Merge { key, .. } => Some(key),
            crate::op::WriteOp::DeleteRange { .. } => None,
        });
    written.chain(model.state().keys()).collect()
}

/// [`compare_full`] for a store that may lack scans: then every key that
/// `ops` write is read point-wise instead
/// ([`crate::store::Capabilities::scans`]).
fn compare_final(
    store: &mut dyn Store,
    model: &Model,
    ops: &[Op],
) -> Result<(), (ViolationClass, String)> {
    let got = match store.scan_all() {
        Err(crate::store::StoreError::Unsupported(_)) => {
            let mut all = Vec::new();
            for k in keys_to_read(model, ops) {
                if let Some(v) = store
                    .get(k, None)
                    .map_err(|e| (ViolationClass::StoreError, e.to_string()))?
                {
                    all.push((k.clone(), v));
                }
            }
            all
        }
        other => other.map_err(|e| (ViolationClass::StoreError, e.to_string()))?,
    };
    let want: Vec<(&[u8], &Entry)> = model.state().iter().map(|(k, e)| (&k[..], e)).collect();
    match cmp_entries(&got, &want) {
        Some(d) => Err((ViolationClass::FinalStateMismatch, d)),
        None => Ok(()),
    }
}

/// Runs `ops` in order, checking every read, then the final state.
/// Stops at the first violation. Checkpoint ops are skipped.
pub fn run_ops(store: &mut dyn Store, ops: &[Op]) -> RunOutcome {
    run_ops_with(store, ops, None)
}

/// [`run_ops`], with every checkpoint op taken and checked when `cp`
/// says where.
pub fn run_ops_with(store: &mut dyn Store, ops: &[Op], cp: Option<&Checkpoints<'_>>) -> RunOutcome {
    let mut model = Model::new();
    let mut out = RunOutcome::default();
    for (i, op) in ops.iter().enumerate() {
        match step_with(store, &mut model, op, cp) {
            Ok(n) => {
                out.reads_checked += n;
                out.writes += op.is_write() as u64;
                out.ops_run += 1;
            }
            Err((class, detail)) => {
                out.violation = Some(RunViolation {
                    op_index: i,
                    op: op.to_string(),
                    class,
                    detail,
                });
                return out;
            }
        }
    }
    if let Err((class, detail)) = compare_final(store, &model, ops) {
        out.violation = Some(RunViolation {
            op_index: ops.len(),
            op: "(final full scan)".into(),
            class,
            detail,
        });
    } else {
        out.reads_checked += 1;
    }
    out
}

/// Shrinks a failing run: drops ops while a fresh store (opened by
/// `factory` under `work`) still fails with `class`. Returns the shrunk
/// sequence and the number of runs it took.
pub fn shrink_run(
    factory: &dyn StoreFactory,
    opts: &StoreOptions,
    work: &std::path::Path,
    ops: Vec<Op>,
    class: ViolationClass,
) -> (Vec<Op>, usize) {
    let mut n = 0;
    let out = crate::repro::shrink(ops, 400, |cand| {
        n += 1;
        let d = work.join(format!("shrink-{n}"));
        let Ok(mut s) = factory.open(&d, opts) else {
            let _ = crate::fsutil::remove_tree(&d);
            return false;
        };
        let cp = Checkpoints {
            factory,
            opts,
            dir: &d.with_extension("checkpoints"),
        };
        let r = run_ops_with(s.as_mut(), cand, Some(&cp));
        let _ = s.close();
        let _ = crate::fsutil::remove_tree(&d.with_extension("checkpoints"));
        let _ = crate::fsutil::remove_tree(&d);
        r.violation.is_some_and(|x| x.class == class)
    });
    (out, n)
}
