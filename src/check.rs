//! The in-process checker: runs ops against a store and the model side by
//! side and compares every read, then the whole final state.

use std::fmt;

use serde::Serialize;

use crate::model::{scan_state, Entry, Model};
use crate::op::Op;
use crate::store::{Store, StoreError};

/// What the in-process checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunViolation {
    /// Index (0-based) of the op that exposed it; `ops.len()` for the final
    /// full-state comparison.
    pub op_index: usize,
    /// The op's text form.
    pub op: String,
    /// `read-mismatch`, `final-state-mismatch` or `store-error`.
    pub class: String,
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

/// Runs one op against store and model; `Ok(n)` is the number of read
/// results compared, `Err` a description of a mismatch.
pub fn step(store: &mut dyn Store, model: &mut Model, op: &Op) -> Result<u64, (String, String)> {
    let serr = |e: StoreError| ("store-error".to_string(), e.to_string());
    let mismatch = |d: String| ("read-mismatch".to_string(), d);
    let mut checked = 0;
    match op {
        Op::Write(_) | Op::Batch(_) => {
            store
                .write(op.write_ops(), matches!(op, Op::Batch(_)))
                .map_err(serr)?;
        }
        Op::Get { key } => {
            let got = store.get(key, None).map_err(serr)?;
            let want = model.get(key, None).flatten();
            if let Some(d) = cmp_value(key, got.as_deref(), want) {
                return Err(mismatch(d));
            }
            checked = 1;
        }
        Op::GetAt { id, key } => {
            if let Some(want) = model.get(key, Some(*id)) {
                let got = store.get(key, Some(*id)).map_err(serr)?;
                if let Some(d) = cmp_value(key, got.as_deref(), want) {
                    return Err(mismatch(format!("at snapshot {id}: {d}")));
                }
                checked = 1;
            }
        }
        Op::MultiGet { keys } => {
            let got = store.multi_get(keys).map_err(serr)?;
            if got.len() != keys.len() {
                return Err(mismatch(format!(
                    "multi_get returned {} results for {} keys",
                    got.len(),
                    keys.len()
                )));
            }
            for (k, g) in keys.iter().zip(&got) {
                if let Some(d) = cmp_value(k, g.as_deref(), model.get(k, None).flatten()) {
                    return Err(mismatch(d));
                }
            }
            checked = keys.len() as u64;
        }
        Op::Scan(scan) => {
            let got = store.scan(scan, None).map_err(serr)?;
            let want = scan_state(model.state(), scan);
            if let Some(d) = cmp_entries(&got, &want) {
                return Err(mismatch(d));
            }
            checked = 1;
        }
        Op::ScanAt { id, scan } => {
            if let Some(want) = model.scan(scan, Some(*id)) {
                let got = store.scan(scan, Some(*id)).map_err(serr)?;
                if let Some(d) = cmp_entries(&got, &want) {
                    return Err(mismatch(format!("at snapshot {id}: {d}")));
                }
                checked = 1;
            }
        }
        Op::Snapshot { id } => store.snapshot(*id).map_err(serr)?,
        Op::Release { id } => store.release(*id).map_err(serr)?,
        Op::Flush => store.flush().map_err(serr)?,
        Op::FlushCfs { cfs } => store.flush_cfs(cfs.as_deref()).map_err(serr)?,
        // Checkpoints, backups and copies are judged in crash cycles (see
        // `crate::checkpoint`), where their directories are managed.
        Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. } => {}
        Op::FlushWal { sync } => store.flush_wal(*sync).map_err(serr)?,
        Op::Compact { lo, hi } => store.compact(lo.as_deref(), hi.as_deref()).map_err(serr)?,
        Op::Reopen => store.reopen().map_err(serr)?,
    }
    model.apply_op(op);
    Ok(checked)
}

/// Compares the store's whole state with the model.
pub fn compare_full(store: &mut dyn Store, model: &Model) -> Result<(), (String, String)> {
    let got = store
        .scan_all()
        .map_err(|e| ("store-error".to_string(), e.to_string()))?;
    let want: Vec<(&[u8], &Entry)> = model.state().iter().map(|(k, e)| (&k[..], e)).collect();
    match cmp_entries(&got, &want) {
        Some(d) => Err(("final-state-mismatch".into(), d)),
        None => Ok(()),
    }
}

/// Runs `ops` in order, checking every read, then the final state.
/// Stops at the first violation.
pub fn run_ops(store: &mut dyn Store, ops: &[Op]) -> RunOutcome {
    let mut model = Model::new();
    let mut out = RunOutcome::default();
    for (i, op) in ops.iter().enumerate() {
        match step(store, &mut model, op) {
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
    if let Err((class, detail)) = compare_full(store, &model) {
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
