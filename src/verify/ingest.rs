//! File ingestion's own rule (docs/durability.md I1).
//!
//! An ingest that returned Ok is durable on its own: RocksDB syncs the
//! ingested file (db/external_sst_file_ingestion_job.cc L159-175 for a
//! moved file, L208 "CopyFile also syncs the new file"), fsyncs its
//! directory (L235-250) and records it in the MANIFEST
//! (db/db_impl/db_impl.cc `CommitFileIngestionHandles`, `LogAndApply`
//! L6654), but it neither writes nor syncs the WAL, and flushes the
//! memtable only when the file overlaps it (L6558 `NeedsFlush`). After a power cut (or, without the
//! WAL, any crash) an ingest can therefore outlive earlier writes that
//! were only in an unsynced WAL or a memtable. The ingested keys carry a
//! sequence number above every earlier write, so the state is then
//! **a prefix `P` plus the ingests after it**: units `1..=P`, then the
//! ingest units in `(P, Q]` in order (the other units of that stretch
//! lost), where `Q` reaches at least the last ingest that returned Ok.
//! Part of an ingest is never admitted.

use crate::model::history::History;
use crate::model::{fingerprint_of, Model};
use crate::observe::Recovered;
use crate::op::Op;
use crate::oracle::Admissible;

use super::explain::Matched;

/// The state `rec` equals: units `1..=P` plus the ingests in `(P, Q]` for
/// some `Q` at or after the last ingest acknowledged by unit `acked`
/// (`Matched::PrefixPlusIngests`, or `Matched::Prefix` when no ingest
/// after `P` is needed); `None` when there is none or `h` has no ingest.
pub fn ingest_match(h: &History, adm: &Admissible, acked: u64, rec: &Recovered) -> Option<Matched> {
    let hi = adm.hi.min(h.units());
    let ingests: Vec<u64> = (1..=hi)
        .filter(|&u| matches!(h.ops[h.op_of_unit[u as usize - 1]], Op::Ingest { .. }))
        .collect();
    if ingests.is_empty() {
        return None;
    }
    let must = ingests
        .iter()
        .copied()
        .filter(|&u| u <= acked)
        .max()
        .unwrap_or(0);
    let want = fingerprint_of(rec.entries.iter().map(|(k, v)| (k.as_slice(), *v)));
    for p in (adm.lo..=hi).rev() {
        let mut m = Model::from_state(h.state_at(p));
        if p >= must && m.fingerprint() == want {
            return Some(Matched::Prefix(p));
        }
        let mut applied = Vec::new();
        for &u in ingests.iter().filter(|&&u| u > p) {
            for w in h.ops[h.op_of_unit[u as usize - 1]].write_ops() {
                m.apply(w);
            }
            applied.push(u);
            if u >= must && m.fingerprint() == want {
                return Some(Matched::PrefixPlusIngests {
                    prefix: p,
                    ingests: applied,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{IngestMode, Value, WriteOp};

    fn put(k: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            key: k.as_bytes().to_vec(),
            value: Value::Lit(v.as_bytes().to_vec()),
        }
    }

    fn state(h: &History, units: &[u64]) -> Recovered {
        super::super::recovered_of_units(h, units.iter().copied())
    }

    #[test]
    fn an_ingest_may_outlive_earlier_writes_but_not_be_lost_or_torn() {
        let h = History::new(
            vec![
                Op::Write(put("a", "1")),
                Op::Write(put("b", "2")),
                Op::Ingest {
                    mode: IngestMode::Copy,
                    puts: vec![put("c", "3"), put("d", "4")],
                },
                Op::Write(put("e", "5")),
            ],
            Default::default(),
        );
        let adm = Admissible {
            lo: 1,
            hi: 4,
            rule: "test",
        };
        // Unit 2 lost, the acked ingest (unit 3) kept: admitted at P = 1,
        // and the match names exactly that state.
        let rec = state(&h, &[1, 3]);
        let m = ingest_match(&h, &adm, 3, &rec).unwrap();
        assert_eq!(
            m,
            Matched::PrefixPlusIngests {
                prefix: 1,
                ingests: vec![3]
            }
        );
        let named = m.state(&h, 1);
        assert_eq!(
            named
                .iter()
                .map(|(k, e)| (k.clone(), e.hash))
                .collect::<Vec<_>>(),
            rec.entries
        );
        // Not the plain prefix 1 a chain used to carry on (unit 3 missing).
        assert_ne!(named.len(), h.state_at(1).len());
        // The acked ingest lost: not admitted.
        assert_eq!(ingest_match(&h, &adm, 3, &state(&h, &[1])), None);
        // Unit 2 kept, unit 1 lost: a hole, not admitted.
        assert_eq!(ingest_match(&h, &adm, 3, &state(&h, &[2, 3])), None);
        // Half of the ingest: not admitted.
        let mut half = state(&h, &[1]);
        half.entries
            .push((b"c".to_vec(), crate::model::value_hash(b"3")));
        assert_eq!(ingest_match(&h, &adm, 3, &half), None);
    }
}
