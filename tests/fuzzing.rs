//! The fuzz targets' bodies, run here on fixed inputs: stock RocksDB passes,
//! a planted bug is found, and artifacts convert to repro files.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use crashcheck::fuzzing::{
    encode_ops, run_crash, run_ops, run_wal, to_case, CfLayout, CrashInput, OpsInput, WalInput,
};
use crashcheck::mutants::MutantFactory;
use crashcheck::op::{Op, Value, WriteOp};
use crashcheck::store::fault_fs::{CrashImage, FaultFs};
use crashcheck::store::{RecoveryMode, RocksFactory, WalMode};
use crashcheck::workload::{Generator, Profile};

fn puts(n: u32) -> Vec<Op> {
    (0..n)
        .map(|i| {
            Op::Write(WriteOp::Put {
                key: crashcheck::workload::key(i),
                value: Value::Gen {
                    seed: u64::from(i) + 1,
                    len: 9,
                },
            })
        })
        .collect()
}

#[test]
fn targets_pass_on_stock_rocksdb() {
    let fs = Arc::new(FaultFs::new());
    for seed in 1..5u8 {
        // Every column-family layout: 1, 1, 3, 3 with atomic_flush.
        let layout = CfLayout::from_bits(seed);
        let ops = Generator::new(u64::from(seed), Profile::by_name("small-keyspace").unwrap())
            .with_layout(
                crashcheck::keyspace::Layout {
                    cfs: layout.cfs,
                    ..Default::default()
                },
                crashcheck::workload::FlushStyle::Mixed,
            )
            .ops(64);
        let mut bytes = vec![seed];
        bytes.extend(encode_ops(&ops));
        let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        assert_eq!(input.layout, layout);
        run_ops(&RocksFactory, &input).unwrap();
        for (m, mode) in WalMode::ALL.into_iter().enumerate() {
            for img in [0u8, 3] {
                let mut b = vec![m as u8, seed * 13, img, (seed << 1) | (seed & 1)];
                b.extend_from_slice(&bytes[1..]);
                let input = CrashInput::arbitrary(&mut Unstructured::new(&b)).unwrap();
                assert_eq!(input.mode, mode);
                assert_eq!(input.layout, layout);
                run_crash(&RocksFactory, &fs, &input)
                    .unwrap_or_else(|e| panic!("{mode} image {img}: {e}"));
            }
        }
    }
    for i in 0..24u8 {
        let b = [
            i.wrapping_mul(5),
            i,
            i.wrapping_mul(37),
            i.wrapping_mul(11),
            i,
            i % 2,
        ];
        let input = WalInput::arbitrary(&mut Unstructured::new(&b)).unwrap();
        run_wal(&RocksFactory, &input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    }
}

#[test]
fn in_process_power_cut_is_judged_by_the_power_loss_oracle() {
    // Stock RocksDB passes in `wal` (losses allowed back to the last sync)
    // and `wal-sync` (none allowed); stores that lose sync-acknowledged
    // writes across the cut are caught.
    let fs = Arc::new(FaultFs::new());
    let input = CrashInput {
        mode: WalMode::Wal,
        crash_after: 20,
        image: CrashImage::DropUnsynced,
        seed: 0,
        layout: CfLayout::from_bits(0),
        settle: true,
        ops: puts(20),
    };
    run_crash(&RocksFactory, &fs, &input).unwrap();
    // The power may also go while background work runs.
    run_crash(
        &RocksFactory,
        &fs,
        &CrashInput {
            settle: false,
            ..input.clone()
        },
    )
    .unwrap();
    let input = CrashInput {
        mode: WalMode::WalSync,
        ..input
    };
    run_crash(&RocksFactory, &fs, &input).unwrap();
    // A planted bug: a store that acknowledges before writing loses
    // acknowledged sync writes across the cut.
    let early = MutantFactory::new("early-ack").unwrap();
    let err = run_crash(&early, &fs, &input).unwrap_err();
    assert!(err.contains("lost-acked-write"), "{err}");
    let lying = MutantFactory::new("lying-sync").unwrap();
    assert!(
        run_crash(&lying, &fs, &input).is_err(),
        "lying sync must be caught by a power cut"
    );
}

#[test]
fn a_planted_read_bug_is_found_by_the_ops_target_and_converts_to_a_repro() {
    let ops = vec![
        Op::Write(WriteOp::Put {
            key: crashcheck::workload::key(1),
            value: Value::Gen { seed: 1, len: 9 },
        }),
        Op::Get {
            key: crashcheck::workload::key(1),
        },
        Op::Write(WriteOp::Put {
            key: crashcheck::workload::key(1),
            value: Value::Gen { seed: 2, len: 9 },
        }),
        Op::Get {
            key: crashcheck::workload::key(1),
        },
    ];
    let mut bytes = vec![0];
    bytes.extend(encode_ops(&ops));
    let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
    let stale = MutantFactory::new("stale-read").unwrap();
    assert!(run_ops(&stale, &input).is_err());
    assert!(run_ops(&RocksFactory, &input).is_ok());
    let case = to_case("ops", &bytes).unwrap();
    assert_eq!(case.ops, input.ops);
    let back = crashcheck::repro::Case::parse(&case.to_text(), "x").unwrap();
    assert_eq!(back.ops, input.ops);
    let _ = RecoveryMode::PointInTime;
}

#[test]
fn checkpoints_in_the_run_check_are_opened_and_compared_with_the_model() {
    // Without the WAL, a checkpoint that skips the flush holds none of the
    // memtable's writes: the run check must open it and see that; a
    // checkpoint after a proper flush passes.
    let mut ops = puts(5);
    ops.push(Op::Checkpoint { id: 1 });
    ops.push(Op::Write(WriteOp::Delete {
        key: crashcheck::workload::key(0),
    }));
    ops.push(Op::Checkpoint { id: 2 });
    let opts = crashcheck::store::StoreOptions {
        wal_mode: WalMode::NoWal,
        ..Default::default()
    };
    let run = |factory: &dyn crashcheck::store::StoreFactory| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = factory.open(&dir.path().join("db"), &opts).unwrap();
        let cp = crashcheck::check::Checkpoints {
            factory,
            opts: &opts,
            dir: &dir.path().join("cps"),
        };
        let out = crashcheck::check::run_ops_with(store.as_mut(), &ops, Some(&cp));
        let _ = store.close();
        // Each checkpoint was removed once checked.
        let left = std::fs::read_dir(dir.path().join("cps")).unwrap().count();
        assert_eq!(left, 0);
        out
    };
    let ok = run(&RocksFactory);
    assert!(ok.violation.is_none(), "{:?}", ok.violation);
    assert_eq!(ok.reads_checked, 3, "two checkpoints and the final state");
    let bad = run(&MutantFactory::new("checkpoint-no-flush").unwrap());
    let v = bad
        .violation
        .expect("a checkpoint without its writes is caught");
    assert_eq!(v.op_index, 5);
    assert_eq!(v.class.to_string(), "checkpoint-mismatch");
}

#[test]
fn the_known_open_hang_is_skipped_not_rediscovered() {
    // A wal_recovery input the fuzzer found: its damage puts a
    // recyclable-type header in the WAL, on which RocksDB 11.8.1's DB::Open
    // loops forever (docs/findings.md #1). The target must skip it.
    let b = [0x3a, 0x09, 0x09, 0x2d, 0x90, 0x01, 0x09];
    let input = WalInput::arbitrary(&mut Unstructured::new(&b)).unwrap();
    let t = std::time::Instant::now();
    run_wal(&RocksFactory, &input).unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let mut wal = vec![0u8; 7];
    wal[6] = 1; // a full record of length 0
    wal.extend_from_slice(&[0, 0, 0, 0, 9, 0, 5]); // then a recyclable header
    assert!(crashcheck::wal::reaches_recyclable_header(&wal));
    assert!(!crashcheck::wal::reaches_recyclable_header(&wal[..7]));
}

#[test]
fn one_reused_database_serves_many_ops_inputs_and_still_finds_a_planted_bug() {
    let mut t = crashcheck::fuzzing::OpsTarget::new(Box::new(RocksFactory));
    for seed in 1..=12 {
        let ops = Generator::new(seed, Profile::by_name("small-keyspace").unwrap()).ops(48);
        let bytes = encode_ops(&ops);
        let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        t.run(&input).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    // A mutant gets a fresh database per input, and is still caught.
    let mut t =
        crashcheck::fuzzing::OpsTarget::new(Box::new(MutantFactory::new("early-ack").unwrap()));
    let mut ops = puts(3);
    ops.push(Op::Get {
        key: crashcheck::workload::key(1),
    });
    let bytes = encode_ops(&ops);
    let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
    assert!(t.run(&input).is_err(), "early-ack must be caught");
}
