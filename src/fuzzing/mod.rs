//! Coverage-guided fuzzing support: structure-aware inputs (with an
//! encoder, so corpora can be seeded from the generator), the three
//! targets' bodies, and conversion of a fuzz artifact to a repro file.
//! The `fuzz/` crate's targets are thin wrappers around [`run_ops`],
//! [`run_crash`] and [`run_wal`]; the model, oracle and verifier are the
//! library's own.
//!
//! Inputs are fixed-layout byte records decoded with `arbitrary` one byte
//! at a time, so every byte string decodes, sizes are bounded, and
//! [`encode_ops`] is an exact inverse for the ops it can express.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

mod crash;
mod input;
mod ops;
mod wal;

pub use crash::run_crash;
pub use input::{encode_ops, CfLayout, CrashInput, OpsInput, WalInput, MAX_OPS};
pub use ops::{run_ops, OpsTarget};
pub use wal::run_wal;

use crate::fault::Fault;
use crate::repro::{Case, CheckKind, Expect};
use crate::store::{StoreFactory, StoreOptions};

/// The store the targets check: `CRASHCHECK_FUZZ_STORE` (e.g.
/// `mutant:early-ack`, to plant a bug), else RocksDB.
pub fn fuzz_factory() -> Box<dyn StoreFactory> {
    let name = std::env::var("CRASHCHECK_FUZZ_STORE").unwrap_or_else(|_| "rocksdb".into());
    crate::mutants::factory_by_name(&name).unwrap_or_else(|_| Box::new(crate::store::RocksFactory))
}

/// A scratch directory for one input (tmpfs when available).
pub fn scratch() -> tempfile::TempDir {
    let base = Path::new("/dev/shm");
    if base.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("crashcheck-fuzz-")
            .tempdir_in(base)
        {
            return d;
        }
    }
    tempfile::Builder::new()
        .prefix("crashcheck-fuzz-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a scratch directory: {e}"))
}

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [&str; 3] = ["ops", "crash", "wal_recovery"];

/// Corpus seed `i` of `target`: inputs built from the generator's
/// `small-keyspace` sequences, so fuzzing starts from realistic workloads.
pub fn seed_input(target: &str, i: u64) -> Result<Vec<u8>, String> {
    let prof =
        crate::workload::Profile::by_name("small-keyspace").ok_or("no small-keyspace profile")?;
    // Column-family layouts in turn: 1, 1, 3, 3 with atomic_flush (the
    // ops target's first byte; bits 1-2 of the crash target's fourth).
    let bits = (i % 4) as u8;
    let layout = crate::keyspace::Layout {
        cfs: CfLayout::from_bits(bits).cfs,
        ..Default::default()
    };
    let ops = crate::workload::Generator::new(i + 1, prof)
        .with_layout(layout, crate::workload::FlushStyle::Mixed)
        .ops(64);
    let mut bytes = match target {
        "ops" => vec![bits],
        "crash" => vec![i as u8 % 4, (i * 7) as u8, 0, (bits << 1) | (i as u8 & 1)],
        "wal_recovery" => {
            return Ok(vec![
                (i * 3) as u8,
                i as u8,
                (i * 16) as u8,
                (i * 5) as u8,
                i as u8,
                (i % 2) as u8,
            ])
        }
        o => {
            return Err(format!(
                "unknown fuzz target '{o}' ({})",
                TARGETS.join(", ")
            ))
        }
    };
    bytes.extend(encode_ops(&ops));
    Ok(bytes)
}

/// Converts a fuzz artifact of `target` (`ops` or `crash`) to a repro file
/// that `crashcheck replay` runs.
pub fn to_case(target: &str, data: &[u8]) -> Result<Case, String> {
    let mut u = Unstructured::new(data);
    let base = Case {
        check: CheckKind::Run,
        seed: 0,
        profile: "fuzz".into(),
        store: std::env::var("CRASHCHECK_FUZZ_STORE").unwrap_or_else(|_| "rocksdb".into()),
        options: StoreOptions::default(),
        expect: Expect::Violation(None),
        fault: None,
        kill_after_op: None,
        kill_step: None,
        kill_writer: 0,
        kill_flush: false,
        kill_timed: false,
        comments: vec![format!(
            "converted from a cargo-fuzz artifact of target '{target}'"
        )],
        base: Vec::new(),
        ops: Vec::new(),
        writers: Vec::new(),
        interleaving: None,
    };
    match target {
        "ops" => {
            let i = OpsInput::arbitrary(&mut u).map_err(|e| e.to_string())?;
            Ok(Case {
                options: i.layout.apply(StoreOptions::default()),
                ops: i.ops,
                ..base
            })
        }
        "crash" => {
            let i = CrashInput::arbitrary(&mut u).map_err(|e| e.to_string())?;
            let mut comments = base.comments.clone();
            comments.push(format!(
                "crash image in the fuzzer: {:?}; the replay drops all unsynced data",
                i.image
            ));
            Ok(Case {
                check: CheckKind::Crash,
                options: i.layout.apply(StoreOptions {
                    wal_mode: i.mode,
                    ..StoreOptions::default()
                }),
                fault: Some(Fault::POWER_LOSS),
                kill_after_op: Some(i.crash_after),
                kill_step: None,
                kill_writer: 0,
                kill_flush: false,
                kill_timed: false,
                comments,
                ops: i.ops,
                ..base
            })
        }
        o => Err(format!("target '{o}' has no repro form (ops, crash)")),
    }
}

#[cfg(test)]
mod tests {
    use super::input::{decode_op, decode_ops};
    use super::*;
    use crate::op::Op;
    use crate::workload::{Generator, Profile};

    #[test]
    fn transaction_records_decode_and_fit_stores_without_transactions() {
        use crate::op::TxnEnd;
        use crate::store::Capabilities;
        let commit = decode_op([7, 1, 2, 3, 0x30], 1);
        let rollback = decode_op([7, 1, 2, 3, 0x70], 1);
        let batch = decode_op([7, 1, 2, 3, 0], 1);
        let Op::Txn(t) = &commit else {
            panic!("{commit:?}")
        };
        assert_eq!(t.end, TxnEnd::Commit);
        assert_eq!(
            Op::Batch(t.writes.clone()),
            batch,
            "the same writes as the batch"
        );
        assert!(matches!(&rollback, Op::Txn(t) if t.end == TxnEnd::Rollback));
        // Bit 7: two-phase, each named by its place in the input.
        let mut bytes = vec![7, 1, 2, 3, 0xb0, 7, 4, 2, 3, 0xf0];
        bytes.extend([7, 1, 2, 3, 0x30]);
        let ops = decode_ops(&mut Unstructured::new(&bytes), 1).unwrap();
        let names: Vec<Option<&str>> = ops
            .iter()
            .map(|o| match o {
                Op::Txn(t) => t.prepare.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec![Some("f0"), Some("f1"), None]);
        assert_eq!(encode_ops(&ops[..1])[4] & 0x80, 0x80);
        // Bits 6 and 7 of `b`: a get and a scan after the first write, a
        // put undone by a savepoint; encoded back.
        let stepped = decode_op([7, 1, 2, 0xc3, 0x30], 1);
        let Op::Txn(t) = &stepped else {
            panic!("{stepped:?}")
        };
        assert_eq!(t.reads().count(), 2, "{stepped}");
        assert_eq!(t.steps.len(), 3, "{stepped}");
        let rec = encode_ops(std::slice::from_ref(&stepped));
        assert_eq!(
            decode_op(rec[..5].try_into().unwrap(), 1)
                .to_string()
                .matches("rollback-to-savepoint")
                .count(),
            1
        );
        // Encoding keeps the kind and the end.
        for op in [&commit, &rollback] {
            let rec = encode_ops(std::slice::from_ref(op));
            let back = decode_op(rec[..5].try_into().unwrap(), 1);
            assert!(
                matches!((&back, op), (Op::Txn(a), Op::Txn(b)) if a.end == b.end),
                "{back:?}"
            );
        }
        // A store without transactions: the commit is a batch, the rollback nothing.
        let ops = [commit.clone(), rollback.clone()];
        assert_eq!(Capabilities::ALL.fit_ops(&ops), vec![batch]);
        let with = Capabilities {
            transactions: true,
            ..Capabilities::ALL
        };
        assert_eq!(with.fit_ops(&ops), ops.to_vec());
    }

    #[test]
    fn encoding_round_trips_through_the_decoder() {
        for layout in [0u8, 3] {
            let cfs = CfLayout::from_bits(layout).cfs;
            let ops: Vec<Op> = (0..=255u8)
                .map(|i| {
                    decode_op(
                        [
                            i % 16,
                            i.wrapping_mul(7),
                            (i / 16) * 3,
                            i.wrapping_mul(5),
                            i / 16,
                        ],
                        cfs,
                    )
                })
                .filter(|o| {
                    !matches!(
                        o,
                        Op::Snapshot { .. } | Op::GetAt { .. } | Op::Batch(_) | Op::Txn(_)
                    )
                })
                // One reopen and one checkpoint at most (the decoder's cap).
                .scan((0, 0), |(r, c), o| {
                    let n = match o {
                        Op::Reopen => r,
                        Op::Checkpoint { .. } => c,
                        _ => return Some(Some(o)),
                    };
                    *n += 1;
                    Some((*n == 1).then_some(o))
                })
                .flatten()
                .take(MAX_OPS)
                .collect();
            assert!(ops.contains(&Op::Reopen) && ops.contains(&Op::Checkpoint { id: 1 }));
            let mut bytes = vec![layout];
            bytes.extend(encode_ops(&ops));
            let back = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            assert_eq!(back.layout, CfLayout::from_bits(layout));
            assert_eq!(back.ops.len(), ops.len());
            for (a, b) in back.ops.iter().zip(&ops) {
                // Scans' upper bounds and flush lists are encoded lossily.
                if matches!(b, Op::Scan(_) | Op::FlushCfs { cfs: Some(_) }) {
                    assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b));
                } else {
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn an_input_reopens_and_checkpoints_at_most_once() {
        let reopen = [14u8, 0, 0, 0, 0];
        let checkpoint = [11u8, 0, 0, 0, 0];
        let bytes: Vec<u8> = std::iter::once(0)
            .chain((0..8).flat_map(|_| reopen.into_iter().chain(checkpoint)))
            .collect();
        let back = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        assert_eq!(back.ops.len(), 16);
        assert_eq!(back.ops.iter().filter(|o| **o == Op::Reopen).count(), 1);
        let cps = back
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Checkpoint { .. }));
        assert_eq!(cps.count(), 1);
    }

    #[test]
    fn inputs_cover_column_families_checkpoints_and_cross_cf_batches() {
        let ops: Vec<Op> = (0..=255u8)
            .flat_map(|i| (0..16).map(move |k| decode_op([k, i, i, i.rotate_left(3), i], 3)))
            .collect();
        let cfs_of = |keys: Vec<&[u8]>| {
            let mut c: Vec<usize> = keys.iter().map(|k| crate::keyspace::cf_of(k, 3)).collect();
            c.sort_unstable();
            c.dedup();
            c
        };
        assert!(ops.iter().any(|o| matches!(o, Op::Checkpoint { .. })));
        assert!(ops.iter().any(|o| matches!(o, Op::FlushCfs { cfs: None })));
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::FlushCfs { cfs: Some(l) } if l.len() == 2)));
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::MultiGet { keys } if keys.len() == 3)));
        assert!(ops.iter().any(|o| match o {
            Op::Batch(ws) => cfs_of(ws.iter().map(|w| w.key()).collect()).len() == 3,
            _ => false,
        }));
        let written = cfs_of(
            ops.iter()
                .filter_map(|o| match o {
                    Op::Write(w) => Some(w.key()),
                    _ => None,
                })
                .collect(),
        );
        assert_eq!(written, vec![0, 1, 2]);
    }

    #[test]
    fn generator_sequences_seed_a_corpus() {
        let ops = Generator::new(1, Profile::by_name("small-keyspace").unwrap()).ops(100);
        let bytes = encode_ops(&ops);
        assert_eq!(bytes.len(), 5 * MAX_OPS);
        let back = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        assert!(back.ops.len() > 30);
        assert!(to_case("ops", &bytes).unwrap().ops.len() == back.ops.len());
        assert!(to_case("nope", &bytes).is_err());
    }
}
