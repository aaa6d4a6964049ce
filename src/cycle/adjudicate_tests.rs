//! Tests of the adjudication (`cycle/adjudicate.rs`).

use super::*;
use crate::model::State;
use crate::op::{IngestMode, Value, WriteOp};

#[test]
fn an_open_both_children_failed_on_a_rejected_configuration_is_no_violation() {
    let m = "Not implemented: WRITE_COMMITTED is incompatible with unordered_writes";
    let w = WriterStop::OpenFailed(format!("open failed: {m}"));
    let o = open_failed((&w, false), m.into());
    assert!(
        matches!(
            o,
            CycleOutcome::Anomaly {
                kind: AnomalyKind::ConfigurationRejected,
                ..
            }
        ),
        "{o:?}"
    );
    // A writer killed while it opened never got past the open either.
    let killed = open_failed((&WriterStop::Killed, true), m.into());
    assert_eq!(killed.class(), None, "{killed:?}");
    let other = open_failed((&WriterStop::Killed, true), "IO error: x".into());
    assert_eq!(other.class(), Some(ViolationClass::UnexpectedOpenFailure));
    // A writer that opened, or another failure, leaves a violation.
    let c = "Corruption: Column family inconsistency";
    for (w, m) in [(WriterStop::Hung, m), (WriterStop::OpenFailed(c.into()), c)] {
        let o = open_failed((&w, false), m.into());
        assert_eq!(
            o.class(),
            Some(ViolationClass::UnexpectedOpenFailure),
            "{o:?}"
        );
    }
}

#[test]
fn a_writer_open_that_failed_as_the_known_bug_is_not_also_an_abnormal_exit() {
    let m = "corruption: Corruption: Column family inconsistency: SST file contains data beyond the point of corruption";
    let w = WriterStop::OpenFailed(format!("open failed: {m}"));
    let bug = |detail: String| CycleOutcome::KnownBug {
        bug: known_bugs::TWO_PC_REPLAYS_DAMAGED_WAL,
        detail,
    };
    let same = bug(format!(
        "the TransactionDB reopen failed ({m}); a plain DB opens a copy"
    ));
    assert_eq!(writer_anomaly_after(&w, &same), None);
    // Another failure, or no known bug, keeps the writer's anomaly.
    let other = bug("the TransactionDB reopen failed (IO error: x)".into());
    assert!(writer_anomaly_after(&w, &other).is_some());
    let v = CycleOutcome::Violation {
        class: ViolationClass::UnexpectedOpenFailure,
        detail: m.into(),
        diff: Vec::new(),
    };
    let kind = writer_anomaly_after(&w, &v).map(|a| a.0);
    assert_eq!(kind, Some(AnomalyKind::AbnormalExit));
}

#[test]
fn a_stat_of_a_missing_sst_is_finding_7_and_other_store_errors_are_violations() {
    let known = crate::store::engine::excuses(&known_bugs::BLOB_FILE_OWN_PATH);
    let stop = |msg: &str| WriterStop::StoreError {
        op: 7,
        msg: msg.into(),
    };
    let f7 = "IO error: No such file or directory: while stat a file for size: /t/db-0/000099.sst: No such file or directory";
    match writer_verdict(&stop(f7)) {
        Some(CycleOutcome::KnownBug { bug, .. }) => assert!(known && bug.finding == 7),
        Some(CycleOutcome::Violation { .. }) => assert!(!known),
        o => panic!("{o:?}"),
    }
    let other = "IO error: No such file or directory: While open a file for random read: /t/db-0/000099.sst";
    assert!(matches!(
        writer_verdict(&stop(other)),
        Some(CycleOutcome::Violation {
            class: ViolationClass::StoreError,
            ..
        })
    ));
}

#[test]
fn a_hang_inside_resume_is_finding_5_and_any_other_hang_is_an_anomaly() {
    use crate::crash::Phase;
    let stock = crate::store::engine::excuses(&known_bugs::RESUME_STALE_FLUSH);
    match hang(Phase::Resuming) {
        CycleOutcome::KnownBug { bug, .. } => {
            assert!(stock);
            assert_eq!(bug.id, "resume-stale-flush-request");
        }
        CycleOutcome::Anomaly { kind, .. } => assert!(!stock && kind == AnomalyKind::Hang),
        o => panic!("{o:?}"),
    }
    for p in [Phase::Flushing, Phase::Writing, Phase::Opening, Phase::Done] {
        match hang(p) {
            CycleOutcome::Anomaly {
                kind: AnomalyKind::Hang,
                detail,
            } => {
                assert!(detail.contains(&format!("{p:?}")), "{detail}")
            }
            o => panic!("{p:?}: {o:?}"),
        }
    }
}

fn put(k: &str) -> WriteOp {
    WriteOp::Put {
        key: k.as_bytes().to_vec(),
        value: Value::Lit(b"v".to_vec()),
    }
}

#[test]
fn a_snapshot_before_any_write_but_ingests_may_be_at_seqno_zero() {
    let ingest = Op::Ingest {
        mode: IngestMode::Copy,
        puts: vec![put("a")],
    };
    let snap = Op::Snapshot { id: 1 };
    let opening = History::new(vec![ingest.clone(), snap.clone()], State::new());
    assert!(has_snapshot_at_seqno_zero(&opening));
    let written_first = History::new(vec![Op::Write(put("b")), snap.clone()], State::new());
    assert!(!has_snapshot_at_seqno_zero(&written_first));
    let mut m = crate::model::Model::default();
    m.apply(&put("z"));
    let base = m.state().clone();
    let on_a_base = History::new(vec![ingest, snap], base);
    assert!(!has_snapshot_at_seqno_zero(&on_a_base));
}
