//! proptest-state-machine test: reference = crashcheck's model, system under
//! test = RocksDB through the adapter. Failures shrink to short sequences.
//! A second test plants a wrong model rule and asserts that the checker
//! fails and shrinks the counterexample to a handful of ops. A third runs
//! transactions (committed and rolled back) on the OptimisticTransactionDB
//! store.

use std::marker::PhantomData;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use crashcheck::model::Model;
use crashcheck::op::{Op, Scan, Txn, TxnEnd, TxnStep, TxnStepKind, Value, WriteOp};
use crashcheck::store::drive::{drive, Answer, Plain};
use crashcheck::store::txn::{OptimisticTransactionDbFactory, TransactionDbFactory};
use crashcheck::store::{RocksStore, Store, StoreFactory, StoreOptions};

/// Keys over three column families (`c0/`..`c2/`; unprefixed keys go to
/// the default one, as `c0/` does): with one column family they all share
/// `default`.
fn key() -> impl Strategy<Value = Vec<u8>> {
    (0u8..8, 0u8..4).prop_map(|(i, c)| {
        if c == 3 {
            format!("k{i}").into_bytes()
        } else {
            format!("c{c}/k{i}").into_bytes()
        }
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..1000, 1u32..40).prop_map(|(seed, len)| Value::Gen { seed, len }),
        (0u64..1000).prop_map(|seed| Value::Gen { seed, len: 5000 }),
    ]
}

/// A bulk load: 1-4 puts in key order, all in one column family.
fn ingest() -> impl Strategy<Value = Op> {
    (
        0u8..4,
        proptest::collection::btree_map(0u8..8, value(), 1..5),
        any::<bool>(),
    )
        .prop_map(|(c, m, mv)| Op::Ingest {
            mode: if mv {
                crashcheck::op::IngestMode::Move
            } else {
                crashcheck::op::IngestMode::Copy
            },
            puts: m
                .into_iter()
                .map(|(i, value)| WriteOp::Put {
                    key: if c == 3 {
                        format!("k{i}")
                    } else {
                        format!("c{c}/k{i}")
                    }
                    .into_bytes(),
                    value,
                })
                .collect(),
        })
}

fn write() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(key, value)| WriteOp::Put { key, value }),
        2 => key().prop_map(|key| WriteOp::Delete { key }),
        1 => (key(), key()).prop_map(|(a, b)| if a <= b { WriteOp::DeleteRange { start: a, end: b } } else { WriteOp::DeleteRange { start: b, end: a } }),
        2 => (key(), value()).prop_map(|(key, operand)| WriteOp::Merge { key, operand }),
    ]
}

fn scan() -> impl Strategy<Value = Scan> {
    (
        proptest::option::of(key()),
        proptest::option::of(key()),
        any::<bool>(),
        1u32..10,
    )
        .prop_map(|(lo, hi, reverse, limit)| Scan {
            lo,
            hi,
            reverse,
            limit,
        })
}

/// A reference model; `BUGGY` plants a wrong rule (range deletes that also
/// remove their end key).
#[derive(Clone, Debug)]
struct Ref<const BUGGY: bool>;

#[derive(Clone, Debug, Default)]
struct RefState {
    model: Model,
    snaps: Vec<u32>,
    next_snap: u32,
    /// What the last transaction's reads returned (the model before it),
    /// flattened: a get's key and value, a scan's entries.
    txn_reads: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl<const BUGGY: bool> ReferenceStateMachine for Ref<BUGGY> {
    type State = RefState;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<RefState> {
        Just(RefState {
            next_snap: 1,
            ..RefState::default()
        })
        .boxed()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Op> {
        let snap = state.snaps.last().copied();
        let next = state.next_snap;
        let mut s = prop_oneof![
            8 => write().prop_map(Op::Write),
            3 => proptest::collection::vec(write(), 2..5).prop_map(Op::Batch),
            1 => ingest(),
            4 => key().prop_map(|key| Op::Get { key }),
            1 => proptest::collection::vec(key(), 1..4).prop_map(|keys| Op::MultiGet { keys }),
            2 => scan().prop_map(Op::Scan),
            1 => Just(Op::Snapshot { id: next }),
            1 => Just(Op::Flush),
            1 => prop_oneof![Just(None), (0u8..3).prop_map(|c| Some(vec![c]))]
                .prop_map(|cfs| Op::FlushCfs { cfs }),
            1 => any::<bool>().prop_map(|sync| Op::FlushWal { sync }),
            1 => Just(Op::Compact { lo: None, hi: None }),
            1 => (1u8..=5).prop_map(|level| Op::CompactTo { level }),
            1 => Just(Op::Reopen),
        ]
        .boxed();
        if let Some(id) = snap {
            s = prop_oneof![
                4 => s,
                1 => key().prop_map(move |key| Op::GetAt { id, key }),
                1 => scan().prop_map(move |scan| Op::ScanAt { id, scan }),
                1 => Just(Op::Release { id }),
            ]
            .boxed();
        }
        s
    }

    fn apply(mut state: RefState, op: &Op) -> RefState {
        match op {
            Op::Write(WriteOp::DeleteRange { start, end }) if BUGGY => {
                state.model.apply(&WriteOp::DeleteRange {
                    start: start.clone(),
                    end: end.clone(),
                });
                state.model.apply(&WriteOp::Delete { key: end.clone() });
            }
            Op::Snapshot { id } => {
                state.snaps.push(*id);
                state.next_snap = id + 1;
                state.model.apply_op(op);
            }
            Op::Release { id } => {
                state.snaps.retain(|s| s != id);
                state.model.apply_op(op);
            }
            Op::Reopen => {
                state.snaps.clear();
                state.model.apply_op(op);
            }
            _ => state.model.apply_op(op),
        }
        state
    }

    fn preconditions(state: &RefState, op: &Op) -> bool {
        match op {
            Op::GetAt { id, .. } | Op::ScanAt { id, .. } | Op::Release { id } => {
                state.snaps.contains(id)
            }
            Op::Snapshot { id } => !state.snaps.contains(id) && state.snaps.len() < 3,
            _ => true,
        }
    }
}

/// The store's whole state equals the model's at the end of a sequence.
fn final_state_matches(store: &mut dyn Store, after: &RefState) {
    let got = store.scan_all().expect("scan all");
    let want: Vec<_> = after
        .model
        .state()
        .iter()
        .map(|(k, e)| (k.clone(), e.value.to_vec()))
        .collect();
    assert_eq!(got, want, "final state");
}

struct Sut {
    _dir: tempfile::TempDir,
    store: RocksStore,
}

struct RocksTest<const BUGGY: bool, const CFS: u8>(PhantomData<()>);

impl<const BUGGY: bool, const CFS: u8> StateMachineTest for RocksTest<BUGGY, CFS> {
    type SystemUnderTest = Sut;
    type Reference = Ref<BUGGY>;

    fn init_test(_: &RefState) -> Sut {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions {
            write_buffer_size: 64 << 10,
            column_families: CFS,
            ..StoreOptions::default()
        };
        let store = RocksStore::open(&dir.path().join("db"), &opts).expect("open");
        Sut { _dir: dir, store }
    }

    fn apply(mut sut: Sut, after: &RefState, op: Op) -> Sut {
        let m = &after.model;
        let owned = |e: Option<&crashcheck::model::Entry>| e.map(|e| e.value.to_vec());
        let entries = |v: Vec<(&[u8], &crashcheck::model::Entry)>| -> Vec<(Vec<u8>, Vec<u8>)> {
            v.into_iter()
                .map(|(k, e)| (k.to_vec(), e.value.to_vec()))
                .collect()
        };
        // The one op driver the checker uses everywhere; `Plain` runs every
        // op but checkpoints, backups and copies (not generated here).
        let answer = drive(&mut sut.store, &op, &mut Plain).expect("store call");
        match (&op, answer) {
            (Op::Get { key }, Answer::Value(got)) => {
                assert_eq!(got, owned(m.get(key, None).flatten()), "{op}");
            }
            (Op::GetAt { id, key }, Answer::Value(got)) => {
                let want = m.get(key, Some(*id)).expect("model snapshot");
                assert_eq!(got, owned(want), "{op}");
            }
            (Op::MultiGet { keys }, Answer::Values(got)) => {
                let want: Vec<_> = keys
                    .iter()
                    .map(|k| owned(m.get(k, None).flatten()))
                    .collect();
                assert_eq!(got, want, "{op}");
            }
            (Op::Scan(sc), Answer::Entries(got)) => {
                assert_eq!(got, entries(m.scan(sc, None).expect("scan")), "{op}");
            }
            (Op::ScanAt { id, scan }, Answer::Entries(got)) => {
                assert_eq!(
                    got,
                    entries(m.scan(scan, Some(*id)).expect("snapshot")),
                    "{op}"
                );
            }
            (Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. }, _) => {
                unreachable!("not generated here: {op}")
            }
            (_, Answer::Done) => {}
            (_, other) => panic!("`{op}` answered {other:?}"),
        }
        sut
    }

    fn teardown(mut sut: Sut, after: RefState) {
        final_state_matches(&mut sut.store, &after);
    }
}

/// Writes a transactional store takes (no range deletes).
fn txn_write() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(key, value)| WriteOp::Put { key, value }),
        2 => key().prop_map(|key| WriteOp::Delete { key }),
        2 => (key(), value()).prop_map(|(key, operand)| WriteOp::Merge { key, operand }),
    ]
}

/// Steps inside a transaction of `n` writes: reads of its keys (never
/// after a merge of the same key in it: `Transaction::Get` may answer
/// `MergeInProgress` there) and writes a savepoint undoes, sorted by place.
fn txn_steps(n: usize) -> impl Strategy<Value = Vec<TxnStep>> {
    let step = prop_oneof![
        2 => key().prop_map(TxnStepKind::Get),
        1 => scan().prop_map(TxnStepKind::Scan),
        1 => proptest::collection::vec(txn_write(), 1..3).prop_map(TxnStepKind::Undone),
    ];
    proptest::collection::vec((0..=n as u32, step), 0..3).prop_map(|mut v| {
        v.sort_by_key(|(after, _)| *after);
        v.into_iter()
            .map(|(after, kind)| TxnStep { after, kind })
            .collect()
    })
}

/// The reference for the transactional store: the model's rules
/// ([`Ref`]'s `apply`), with transactions committed or rolled back among
/// the ops that store supports.
#[derive(Clone, Debug)]
/// `TWO_PHASE`: half of the transactions are two-phase (named, prepared,
/// then committed or rolled back), for `TransactionDB`.
struct TxnRef<const TWO_PHASE: bool>;

impl<const TWO_PHASE: bool> ReferenceStateMachine for TxnRef<TWO_PHASE> {
    type State = RefState;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<RefState> {
        Ref::<false>::init_state()
    }

    fn transitions(state: &RefState) -> BoxedStrategy<Op> {
        let next = state.next_snap;
        let txn = (
            proptest::collection::vec(txn_write(), 1..5),
            any::<bool>(),
            any::<bool>(),
            0u8..4,
        )
            .prop_flat_map(|(writes, commit, two, n)| {
                let steps = txn_steps(writes.len());
                (Just((writes, commit, two, n)), steps, any::<bool>())
            })
            .prop_map(|((writes, commit, two, n), mut steps, snapshot)| {
                // Reads never after a merge of the transaction (RocksDB
                // may answer `MergeInProgress` there).
                steps.retain(|st| match &st.kind {
                    TxnStepKind::Get(k) => !writes[..st.after as usize]
                        .iter()
                        .any(|w| matches!(w, WriteOp::Merge { key, .. } if key == k)),
                    TxnStepKind::Scan(_) => !writes[..st.after as usize]
                        .iter()
                        .any(|w| matches!(w, WriteOp::Merge { .. })),
                    _ => true,
                });
                Op::Txn(Txn {
                    writes,
                    end: if commit {
                        TxnEnd::Commit
                    } else {
                        TxnEnd::Rollback
                    },
                    // Names may repeat: each transaction is resolved
                    // before the next one begins.
                    prepare: (TWO_PHASE && two).then(|| format!("sm.{n}")),
                    steps,
                    snapshot,
                })
            });
        let mut s = prop_oneof![
            6 => txn,
            3 => txn_write().prop_map(Op::Write),
            1 => proptest::collection::vec(txn_write(), 2..4).prop_map(Op::Batch),
            3 => key().prop_map(|key| Op::Get { key }),
            2 => scan().prop_map(Op::Scan),
            1 => Just(Op::Snapshot { id: next }),
            1 => prop_oneof![Just(None), (0u8..3).prop_map(|c| Some(vec![c]))]
                .prop_map(|cfs| Op::FlushCfs { cfs }),
            1 => any::<bool>().prop_map(|sync| Op::FlushWal { sync }),
            1 => Just(Op::Reopen),
        ]
        .boxed();
        if let Some(id) = state.snaps.last().copied() {
            s = prop_oneof![
                4 => s,
                1 => key().prop_map(move |key| Op::GetAt { id, key }),
                1 => Just(Op::Release { id }),
            ]
            .boxed();
        }
        s
    }

    fn apply(mut state: RefState, op: &Op) -> RefState {
        if let Op::Txn(t) = op {
            state.txn_reads = (state.model.txn_reads(t).into_iter())
                .map(|(k, e)| (k, e.map(|e| e.value.to_vec())))
                .collect();
        }
        Ref::<false>::apply(state, op)
    }

    fn preconditions(state: &RefState, op: &Op) -> bool {
        Ref::<false>::preconditions(state, op)
    }
}

/// The optimistic transactional store (`TWO_PHASE`: the TransactionDB
/// store, with two-phase transactions) against [`TxnRef`], with the same
/// checks as [`RocksTest`] (it is opened in place of RocksDB's plain store).
struct TxnTest<const TWO_PHASE: bool>;

struct TxnSut {
    _dir: tempfile::TempDir,
    store: Box<dyn Store>,
}

impl<const TWO_PHASE: bool> StateMachineTest for TxnTest<TWO_PHASE> {
    type SystemUnderTest = TxnSut;
    type Reference = TxnRef<TWO_PHASE>;

    fn init_test(_: &RefState) -> TxnSut {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions {
            write_buffer_size: 64 << 10,
            column_families: 3,
            ..StoreOptions::default()
        };
        let factory: Box<dyn StoreFactory> = match TWO_PHASE {
            true => Box::new(TransactionDbFactory::new()),
            false => Box::new(OptimisticTransactionDbFactory::new()),
        };
        let store = factory.open(&dir.path().join("db"), &opts).expect("open");
        TxnSut { _dir: dir, store }
    }

    fn apply(mut sut: TxnSut, after: &RefState, op: Op) -> TxnSut {
        let answer = drive(sut.store.as_mut(), &op, &mut Plain).expect("store call");
        let m = &after.model;
        let owned = |e: Option<&crashcheck::model::Entry>| e.map(|e| e.value.to_vec());
        match (&op, answer) {
            (Op::Get { key }, Answer::Value(got)) => {
                assert_eq!(got, owned(m.get(key, None).flatten()), "{op}");
            }
            (Op::GetAt { id, key }, Answer::Value(got)) => {
                assert_eq!(got, owned(m.get(key, Some(*id)).expect("snapshot")), "{op}");
            }
            (Op::Scan(sc), Answer::Entries(got)) => {
                let want: Vec<(Vec<u8>, Vec<u8>)> = m
                    .scan(sc, None)
                    .expect("scan")
                    .into_iter()
                    .map(|(k, e)| (k.to_vec(), e.value.to_vec()))
                    .collect();
                assert_eq!(got, want, "{op}");
            }
            (Op::Txn(t), got @ Answer::Reads(_)) => {
                let flat: Vec<(Vec<u8>, Option<Vec<u8>>)> = (got.txn_reads(t))
                    .unwrap_or_else(|| panic!("`{op}` read {got:?}"))
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect();
                assert_eq!(flat, after.txn_reads, "{op}");
            }
            (_, Answer::Done) => {}
            (_, other) => panic!("`{op}` answered {other:?}"),
        }
        sut
    }

    fn teardown(mut sut: TxnSut, after: RefState) {
        final_state_matches(sut.store.as_mut(), &after);
    }
}

proptest_state_machine::prop_state_machine! {
    #![proptest_config(Config { cases: 48, failure_persistence: None, .. Config::default() })]
    #[test]
    fn rocksdb_matches_the_model(sequential 1..60 => RocksTest<false, 1>);

    #[test]
    fn rocksdb_with_column_families_matches_the_model(sequential 1..60 => RocksTest<false, 3>);

    #[test]
    fn transactions_match_the_model(sequential 1..60 => TxnTest<false>);

    #[test]
    fn two_phase_transactions_match_the_model(sequential 1..60 => TxnTest<true>);
}

#[test]
fn a_wrong_model_rule_is_caught_and_shrunk() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(
        &Ref::<true>::sequential_strategy(1..60),
        |(init, transitions, seen)| {
            RocksTest::<true, 1>::test_sequential(Config::default(), init, transitions, seen);
            Ok(())
        },
    );
    match result {
        Err(TestError::Fail(_, (_, transitions, _))) => {
            assert!(
                transitions.len() <= 5,
                "counterexample not shrunk to a handful of ops: {transitions:?}"
            );
            assert!(
                transitions
                    .iter()
                    .any(|t| matches!(t, Op::Write(WriteOp::DeleteRange { .. }) | Op::Batch(_))),
                "the counterexample must involve the wrong rule: {transitions:?}"
            );
        }
        other => panic!("the planted model bug was not caught: {other:?}"),
    }
}
