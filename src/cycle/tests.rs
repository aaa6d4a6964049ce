//! Chains through the admitted non-prefix states: a cycle whose recovered
//! state is admitted by a rule other than "a plain prefix" (I1, E5,
//! column families apart, F1) carries exactly that state into the next
//! cycle, whose verdict is then right; carrying "the prefix" instead (what
//! chains did before) turns the next cycle's verdict into a false alarm.
//! A violation (E7 among them) carries nothing.

use super::*;
use crate::crash::{ChildEnd, Phase, Progress};
use crate::op::{IngestMode, Value, WriteOp};
use crate::store::WalMode;

fn put(k: &str, seed: u64) -> WriteOp {
    WriteOp::Put {
        key: k.as_bytes().to_vec(),
        value: Value::Gen { seed, len: 16 },
    }
}

fn w(k: &str, seed: u64) -> Op {
    Op::Write(put(k, seed))
}

fn writer(acked: u64) -> WriterRun {
    let progress = Progress {
        started: acked,
        acked,
        ..Progress::default()
    };
    WriterRun {
        end: ChildEnd::Killed,
        stop: WriterStop::Killed,
        progress,
        writers: vec![progress],
        stats: None,
        copies: Vec::new(),
        copies_skipped: 0,
        ops_done: 0,
        phase: Phase::Writing,
        killed_mid_unit: false,
        schedule: None,
        ops_done_each: vec![0],
        steps_in_op: vec![None],
        io: Default::default(),
        closed_in_error: None,
        refused: vec![Vec::new()],
        conflicts: 0,
    }
}

fn result(acked: u64) -> CycleResult {
    CycleResult {
        writer: writer(acked),
        adm: Admissible {
            lo: 0,
            hi: 0,
            rule: "test",
        },
        outcome: CycleOutcome::Anomaly {
            kind: AnomalyKind::AbnormalExit,
            detail: "not judged".into(),
        },
        writer_anomaly: None,
        divergence: None,
        copies: CopyOutcome::default(),
        recovered: None,
        image: None,
        dirs: None,
        blob_files: (0, 0),
        reopen_kill: None,
    }
}

/// What a database holding `state` reads back as.
fn read_back(state: &State) -> Recovered {
    Recovered {
        entries: state.iter().map(|(k, e)| (k.clone(), e.hash)).collect(),
        point_reads: Vec::new(),
        ..Recovered::default()
    }
}

fn state_of_units(h: &History, units: &[u64]) -> State {
    let mut m = crate::model::Model::from_state(h.base.clone());
    for &u in units {
        m.apply_op(&h.ops[h.op_of_unit[u as usize - 1]]);
    }
    m.state().clone()
}

/// Judges `rec` as a cycle of `histories` under `opts` and `fault`, with
/// `voided` the failed unit (E5); the result holds the outcome and what
/// was read.
fn judge(
    opts: &StoreOptions,
    fault: Fault,
    histories: &[History],
    voided: Option<u64>,
    acked: u64,
    rec: Recovered,
) -> CycleResult {
    let d = Durability::of(opts);
    let mut res = result(acked);
    let j = Judge {
        d: &d,
        loss: fault.loss(),
        promise: cross_cf_promise(&d, &res.writer.progress),
        histories,
        voided: voided_histories(histories, voided),
    };
    res.outcome = j.recovered(&rec, &mut res);
    res.recovered = Some(rec);
    res
}

fn wal(cfs: u8) -> StoreOptions {
    StoreOptions {
        wal_mode: WalMode::Wal,
        column_families: cfs,
        ..StoreOptions::default()
    }
}

fn consistent(res: &CycleResult) -> &Explanation {
    match &res.outcome {
        CycleOutcome::Consistent { explanation } => explanation,
        o => panic!("not consistent: {o:?}"),
    }
}

/// The next cycle of a chain: `ops` on `base`, all of them recovered.
fn next_cycle(opts: &StoreOptions, base: State, ops: Vec<Op>) -> (History, CycleResult) {
    let h = History::new(ops, base);
    let all: Vec<u64> = (1..=h.units()).collect();
    let rec = read_back(&state_of_units(&h, &all));
    let res = judge(
        opts,
        Fault::KILL,
        std::slice::from_ref(&h),
        None,
        h.units(),
        rec,
    );
    (h, res)
}

#[test]
fn an_ingest_that_outlived_earlier_writes_is_carried_as_such() {
    let opts = wal(1);
    let ingest = Op::Ingest {
        mode: IngestMode::Copy,
        puts: vec![put("c", 3)],
    };
    let h = History::new(vec![w("a", 1), w("b", 2), ingest, w("d", 4)], State::new());
    // A power cut lost the unsynced WAL (units 1, 2, 4); the acknowledged
    // ingest (unit 3) survived on its own (I1).
    let rec = read_back(&state_of_units(&h, &[3]));
    let hs = [h];
    let res = judge(&opts, Fault::POWER_LOSS, &hs, None, 4, rec);
    let e = consistent(&res);
    assert!(e.ingest_outlived() && !e.is_plain(), "{e}");
    let carried = res.recovered_state(&hs, 1).expect("explained");
    assert_eq!(carried.keys().collect::<Vec<_>>(), vec![b"c"]);
    // The next cycle on the carried state is judged right ...
    let (_, next) = next_cycle(&opts, carried, vec![w("e", 5)]);
    assert!(next.explanation().is_some_and(Explanation::is_plain));
    // ... and on "the prefix" (what chains carried before) the same
    // database is a false alarm.
    let prefix = hs[0].state_at(e.prefix());
    let h2 = History::new(vec![w("e", 5)], prefix);
    let mut held = state_of_units(&hs[0], &[3]);
    held.extend(state_of_units(
        &History::new(vec![w("e", 5)], State::new()),
        &[1],
    ));
    let stale = judge(&opts, Fault::KILL, &[h2], None, 1, read_back(&held));
    assert!(stale.outcome.class().is_some(), "{:?}", stale.outcome);
}

#[test]
fn a_history_with_a_voided_unit_is_carried_without_it() {
    let opts = wal(1);
    // Unit 2 failed (disk full) and the store resumed: it is in flight for
    // good, and unit 3 was acknowledged after it (E5).
    let h = History::new(vec![w("a", 1), w("a", 2), w("b", 3)], State::new());
    let rec = read_back(&state_of_units(&h, &[1, 3]));
    let hs = [h];
    let res = judge(&opts, Fault::DISK_FULL, &hs, Some(2), 3, rec);
    let e = consistent(&res);
    assert_eq!(e.voided_unit, Some(2), "{e}");
    let carried = res.recovered_state(&hs, 1).expect("explained");
    assert_eq!(carried, state_of_units(&hs[0], &[1, 3]));
    assert_ne!(carried, hs[0].state_at(e.prefix()), "not the plain prefix");
    let (_, next) = next_cycle(&opts, carried, vec![w("c", 4)]);
    assert!(next.explanation().is_some());
}

#[test]
fn column_families_at_their_own_prefixes_are_carried_per_column_family() {
    // WAL off, no atomic flush: each column family may recover to its own
    // prefix (a hazard, not a violation).
    let opts = StoreOptions {
        wal_mode: WalMode::NoWal,
        ..wal(2)
    };
    let h = History::new(
        vec![
            Op::Batch(vec![put("c0/a", 1), put("c1/b", 2)]),
            w("c0/c", 3),
            w("c1/d", 4),
        ],
        State::new(),
    );
    // The default column family kept units 1-2, cf1 nothing.
    let mut held = state_of_units(&h, &[1, 2]);
    held.retain(|k, _| crate::keyspace::cf_of(k, 2) == 0);
    let hs = [h];
    let res = judge(&opts, Fault::KILL, &hs, None, 3, read_back(&held));
    let e = consistent(&res);
    assert!(matches!(e.writers[0], Matched::PerColumnFamily(_)), "{e}");
    assert!(res.divergence.is_some());
    let carried = res.recovered_state(&hs, 2).expect("explained");
    assert_eq!(carried, held);
    let (_, next) = next_cycle(&opts, carried, vec![w("c1/e", 5)]);
    assert!(next.explanation().is_some());
}

#[test]
fn a_fifo_suffix_state_names_what_was_read() {
    let opts = StoreOptions {
        rocksdb: "compaction_style=kCompactionStyleFIFO".into(),
        ..wal(1)
    };
    let h = History::new(vec![w("a", 1), w("b", 2), w("a", 3)], State::new());
    // FIFO dropped the file holding units 1-2 (F1).
    let held = state_of_units(&History::new(h.ops[2..].to_vec(), State::new()), &[1]);
    let hs = [h];
    let res = judge(&opts, Fault::KILL, &hs, None, 3, read_back(&held));
    let e = consistent(&res);
    assert!(e.fifo().is_some(), "{e}");
    assert_eq!(res.recovered_state(&hs, 1), Some(held));
}

#[test]
fn a_violation_carries_nothing() {
    let opts = StoreOptions {
        wal_mode: WalMode::WalSync,
        ..wal(1)
    };
    let h = History::new(vec![w("a", 1), w("b", 2)], State::new());
    // Unit 2 was acknowledged under WAL sync and is lost.
    let rec = read_back(&state_of_units(&h, &[1]));
    let hs = [h];
    let res = judge(&opts, Fault::KILL, &hs, None, 2, rec);
    assert_eq!(res.outcome.class(), Some(ViolationClass::LostAckedWrite));
    assert_eq!(res.recovered_state(&hs, 1), None);
}

#[test]
fn an_explanation_that_does_not_name_the_state_read_is_not_carried() {
    let h = History::new(vec![w("a", 1), w("b", 2)], State::new());
    let mut res = result(2);
    res.outcome = CycleOutcome::Consistent {
        explanation: Explanation::prefixes_of(&[1]),
    };
    res.recovered = Some(read_back(&state_of_units(&h, &[1, 2])));
    assert_eq!(res.recovered_state(&[h], 1), None);
}

#[test]
fn a_loss_after_a_close_in_a_background_error_is_finding_9_only_without_the_wal() {
    use crate::crash::WriterStop;
    use crate::verify::ViolationClass;
    let stock = crate::store::engine::excuses(&crate::known_bugs::CLOSE_IGNORES_SHUTDOWN_FLUSH);
    let lost = || CycleOutcome::Violation {
        class: ViolationClass::LostAckedWrite,
        detail: "acknowledged writes 3..=5 are lost".into(),
        diff: Vec::new(),
    };
    let mut w = writer(9);
    // No close in an error state: nothing is excused.
    let o = adjudicate::excuse_close_in_error(lost(), WalMode::NoWal, &w);
    assert_eq!(o.class(), Some(ViolationClass::LostAckedWrite));
    w.closed_in_error = Some((4, "IO error: while stat a file for size".into()));
    match adjudicate::excuse_close_in_error(lost(), WalMode::NoWal, &w) {
        CycleOutcome::KnownBug { bug, detail } => {
            assert!(stock);
            assert_eq!(bug.finding, 9);
            assert!(
                detail.contains("op #4") && detail.contains("stat a file"),
                "{detail}"
            );
        }
        o => assert!(
            !stock && o.class() == Some(ViolationClass::LostAckedWrite),
            "{o:?}"
        ),
    }
    // With the WAL the reopen replays it: a loss stays a violation.
    let o = adjudicate::excuse_close_in_error(lost(), WalMode::Wal, &w);
    assert_eq!(o.class(), Some(ViolationClass::LostAckedWrite));
    // A read that disagreed before the reopen is not explained by it.
    let read = |op| {
        let mut w = w.clone();
        w.stop = WriterStop::ReadMismatch {
            op,
            msg: "`get a` disagrees".into(),
        };
        let v = CycleOutcome::Violation {
            class: ViolationClass::ReadMismatch,
            detail: "writer read".into(),
            diff: Vec::new(),
        };
        adjudicate::excuse_close_in_error(v, WalMode::NoWal, &w)
    };
    assert_eq!(read(3).class(), Some(ViolationClass::ReadMismatch));
    assert_eq!(
        read(5).class() == Some(ViolationClass::ReadMismatch),
        !stock
    );
    // Other classes are never excused by it.
    let other = CycleOutcome::Violation {
        class: ViolationClass::StoreError,
        detail: "x".into(),
        diff: Vec::new(),
    };
    let o = adjudicate::excuse_close_in_error(other, WalMode::NoWal, &w);
    assert_eq!(o.class(), Some(ViolationClass::StoreError));
}

#[test]
fn a_loss_with_a_dropped_wal_under_two_write_queues_is_finding_10() {
    use crate::fault::dirs::DirImage;
    use crate::verify::ViolationClass;
    let stock = crate::store::engine::excuses(&crate::known_bugs::TWO_WRITE_QUEUES_WAL_DIR_SYNC);
    let lost = || CycleOutcome::Violation {
        class: ViolationClass::LostAckedWrite,
        detail: "acknowledged writes 230..=233 are lost".into(),
        diff: Vec::new(),
    };
    let dropped = DirImage {
        unsynced: 2,
        dropped: 2,
        wals_dropped: 1,
        ..DirImage::default()
    };
    let wal = Some(dropped);
    let sst_only = Some(DirImage {
        wals_dropped: 0,
        ..dropped
    });
    let two = "use_fsync=true;two_write_queues=true";
    let excuse =
        |mode, opts: &str, dirs| adjudicate::excuse_unsynced_wal_dir(lost(), mode, opts, dirs);
    match excuse(WalMode::WalSync, two, wal) {
        CycleOutcome::KnownBug { bug, detail } => {
            assert!(stock);
            assert_eq!(bug.finding, 10);
            assert!(detail.contains("230..=233"), "{detail}");
        }
        o => assert!(
            !stock && o.class() == Some(ViolationClass::LostAckedWrite),
            "{o:?}"
        ),
    }
    // Without any one of the conditions, the loss stays a violation.
    for (mode, opts, dirs) in [
        (WalMode::WalSync, "two_write_queues=false", wal),
        (WalMode::WalSync, two, sst_only),
        (WalMode::WalSync, two, None),
        (WalMode::Wal, two, wal),
    ] {
        let o = excuse(mode, opts, dirs);
        assert_eq!(
            o.class(),
            Some(ViolationClass::LostAckedWrite),
            "{mode:?} {opts} {dirs:?}"
        );
    }
}

#[test]
fn a_lost_prepare_with_pipelined_writes_is_finding_11() {
    use crate::verify::ViolationClass;
    let stock =
        crate::store::engine::excuses(&crate::known_bugs::PIPELINED_WRITE_DROPS_PREPARE_LOG);
    let v = |class| CycleOutcome::Violation {
        class,
        detail: "transaction 'p0.7' (op 126) was prepared".into(),
        diff: Vec::new(),
    };
    let on = "use_fsync=true;enable_pipelined_write=true";
    match adjudicate::excuse_pipelined_prepare(v(ViolationClass::LostPrepared), on) {
        CycleOutcome::KnownBug { bug, detail } => {
            assert!(stock);
            assert_eq!(bug.finding, 11);
            assert!(detail.contains("p0.7"), "{detail}");
        }
        o => assert!(
            !stock && o.class() == Some(ViolationClass::LostPrepared),
            "{o:?}"
        ),
    }
    // Without the option, or another class: a violation still.
    for (class, opts) in [
        (ViolationClass::LostPrepared, "enable_pipelined_write=false"),
        (ViolationClass::LostPrepared, ""),
        (ViolationClass::BadPrepared, on),
        (ViolationClass::Hole, on),
    ] {
        let o = adjudicate::excuse_pipelined_prepare(v(class), opts);
        assert_eq!(o.class(), Some(class), "{opts}");
    }
}
