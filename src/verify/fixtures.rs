//! Hand-built histories and recovered states for the verifier's unit tests
//! (`classify.rs` and `tests.rs`).

use super::{verify, Verdict, ViolationClass};
use crate::model::history::History;
use crate::model::{value_hash, State};
use crate::observe::Recovered;
use crate::op::{IngestMode, Op, Value, WriteOp};
use crate::oracle::Admissible;

pub(super) fn put(k: &str, v: &str) -> WriteOp {
    WriteOp::Put {
        key: k.into(),
        value: Value::Lit(v.into()),
    }
}

pub(super) fn del(k: &str) -> WriteOp {
    WriteOp::Delete { key: k.into() }
}

pub(super) fn merge(k: &str, v: &str) -> WriteOp {
    WriteOp::Merge {
        key: k.into(),
        operand: Value::Lit(v.into()),
    }
}

pub(super) fn ingest(puts: Vec<WriteOp>) -> Op {
    Op::Ingest {
        mode: IngestMode::Move,
        puts,
    }
}

/// A recovered state holding exactly `kv`.
pub(super) fn state(kv: &[(&str, &[u8])]) -> Recovered {
    let mut entries: Vec<(Vec<u8>, u128)> = kv
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), value_hash(v)))
        .collect();
    entries.sort();
    Recovered {
        entries,
        point_reads: Vec::new(),
        ..Recovered::default()
    }
}

/// The verdict on `rec` after `ops` (from an empty database), with
/// admissible prefixes `[lo, hi]`; panics when it is consistent.
pub(super) fn judge(ops: Vec<Op>, lo: u64, hi: u64, rec: Recovered) -> (ViolationClass, String) {
    let h = History::new(ops, State::new());
    let adm = Admissible {
        lo,
        hi,
        rule: "test",
    };
    match verify(&h, &adm, &rec) {
        Verdict::Violation { class, detail, .. } => (class, detail),
        Verdict::Ok { prefix } => panic!("consistent at prefix {prefix}"),
    }
}
