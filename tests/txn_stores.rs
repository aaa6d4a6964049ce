//! The transactional stores (`--store transaction-db`,
//! `--store optimistic-transaction-db`): every write unit one
//! transaction. They agree with the model in-process, survive a short
//! crash campaign of kills and power cuts with acknowledged writes, and a
//! store that splits a unit into two transactions is caught.

use std::path::Path;
use std::sync::Arc;

use crashcheck::campaign::CrashConfig;
use crashcheck::fault::Fault;
use crashcheck::harness::crash_check_in_test;
use crashcheck::mutants::factory_by_name;
use crashcheck::op::{Value, WriteOp};
use crashcheck::store::txn::{TransactionDbFactory, NAMES};
use crashcheck::store::{
    Capabilities, Store, StoreError, StoreFactory, StoreOptions, StoreResult, WalMode,
};

mod common;
use common::{run, text};

fn put(k: &str, v: &str) -> WriteOp {
    WriteOp::Put {
        key: k.as_bytes().to_vec(),
        value: Value::Lit(v.as_bytes().to_vec()),
    }
}

#[test]
fn each_store_writes_in_transactions_and_reads_back() {
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        assert_eq!(f.name(), name);
        let t = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            column_families: 2,
            wal_mode: WalMode::WalSync,
            ..StoreOptions::default()
        };
        let mut s = f.open(t.path(), &opts).unwrap();
        // A batch across both column families (keyspace: `c1/` is family 1).
        let batch = [put("a", "1"), put("c1/b", "2"), put("z", "3")];
        s.write(&batch, true).unwrap();
        s.write(&[WriteOp::Delete { key: b"z".to_vec() }], false)
            .unwrap();
        s.snapshot(1).unwrap();
        s.write(&[put("a", "4")], false).unwrap();
        assert_eq!(s.get(b"a", Some(1)).unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.get(b"a", None).unwrap().as_deref(), Some(&b"4"[..]));
        let all = s.scan_all().unwrap();
        assert_eq!(all.len(), 2, "{name}: {all:?}");
        // Range deletes are not declared and not taken.
        assert!(!f.capabilities().range_deletes);
        let dr = WriteOp::DeleteRange {
            start: b"a".to_vec(),
            end: b"b".to_vec(),
        };
        assert!(matches!(
            s.write(&[dr], false),
            Err(StoreError::Unsupported(_))
        ));
        s.flush_cfs(None).unwrap();
        s.reopen().unwrap();
        let got = s.multi_get(&[b"a".to_vec(), b"c1/b".to_vec(), b"z".to_vec()]);
        let got = got.unwrap();
        assert_eq!(got[0].as_deref(), Some(&b"4"[..]), "{name}");
        assert_eq!(got[1].as_deref(), Some(&b"2"[..]), "{name}");
        assert_eq!(got[2], None, "{name}");
        // Compaction: only where rust-rocksdb offers it, and declared so.
        let c = s.compact(None, None);
        assert_eq!(c.is_ok(), f.capabilities().compact, "{name}: {c:?}");
        s.close().unwrap();
    }
}

#[test]
fn each_store_agrees_with_the_model() {
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        let t = tempfile::tempdir().unwrap();
        let mut s = f.open(t.path(), &StoreOptions::default()).unwrap();
        let mut profile = crashcheck::workload::Profile::by_name("crash").unwrap();
        f.capabilities().restrict(&mut profile.weights);
        let ops = crashcheck::workload::Generator::new(3, profile).ops(800);
        let out = crashcheck::check::run_ops(s.as_mut(), &ops);
        assert!(out.violation.is_none(), "{name}: {:?}", out.violation);
        assert_eq!(out.ops_run, 800, "{name}");
        assert!(
            out.writes > 300 && out.reads_checked > 50,
            "{name}: {out:?}"
        );
    }
}

/// Acknowledged writes of a report, over every mode.
fn acked(v: &serde_json::Value) -> u64 {
    v["by_mode"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .map(|m| m["acked_writes"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_short_crash_campaign_is_clean_for_each_store() {
    let t = tempfile::tempdir().unwrap();
    for &name in NAMES {
        let report = t.path().join(format!("{name}.json"));
        let args = [
            "crash",
            "--store",
            name,
            "--mode",
            "all",
            "--fault",
            "kill,power-loss",
            "--cycles",
            "40",
            "--seed",
            "1",
            "--quiet",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ];
        let o = run(&args, t.path());
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(v["cycles"], 40, "{name}");
        assert_eq!(v["violations"].as_array().map(Vec::len), Some(0), "{name}");
        assert!(acked(&v) > 1000, "{name}: {} acked", acked(&v));
        // Power cuts reached the store (its RocksDB is on the fault
        // filesystem): the campaign ran them, and was not refused.
        let pl = &v["by_fault"]["power-loss"];
        let pl_cycles: u64 = pl
            .as_object()
            .unwrap()
            .values()
            .map(|m| m["cycles"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(pl_cycles, 20, "{name}: {pl}");
        let lacks = v["store_lacks"].as_array().unwrap();
        assert!(lacks.iter().any(|l| l == "range-deletes"), "{name}");
        // No DB::Resume through either API: said, not hidden.
        assert!(lacks.iter().any(|l| l == "resume"), "{name}");
        assert!(text(&o).contains("never let the space come back"), "{name}");
    }
}

/// A wrapper that commits a batch as two transactions: the torn unit a
/// transactional layer must never show.
struct SplitTxn(Box<dyn Store>);

impl Store for SplitTxn {
    fn write(&mut self, ops: &[WriteOp], batch: bool) -> StoreResult<()> {
        if ops.len() < 2 {
            return self.0.write(ops, batch);
        }
        let (a, b) = ops.split_at(ops.len() / 2);
        self.0.write(a, true)?;
        self.0.write(b, true)
    }

    fn get(&mut self, key: &[u8], snap: Option<u32>) -> StoreResult<Option<Vec<u8>>> {
        self.0.get(key, snap)
    }
}

struct SplitTxnFactory;

impl StoreFactory for SplitTxnFactory {
    fn name(&self) -> String {
        "split-transaction".into()
    }

    fn open(&self, path: &Path, opts: &StoreOptions) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(SplitTxn(
            TransactionDbFactory::new().open(path, opts)?,
        )))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            deletes: true,
            merges: true,
            ..Capabilities::MINIMAL
        }
    }
}

#[test]
fn a_unit_split_into_two_transactions_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let r = crash_check_in_test(
        "a_unit_split_into_two_transactions_is_caught",
        CrashConfig {
            modes: vec![WalMode::WalSync],
            faults: vec![Fault::KILL],
            cycles: Some(200),
            seed: 5,
            stop_on_violation: true,
            ..CrashConfig::new(t.path())
        },
        Arc::new(SplitTxnFactory),
    )
    .unwrap();
    let v = r
        .violations
        .first()
        .expect("the split transaction was not caught");
    assert_eq!(v.class.name(), "torn-batch", "{v:#?}");
}

#[test]
fn run_draws_only_what_each_store_supports() {
    let t = tempfile::tempdir().unwrap();
    for &name in NAMES {
        let o = run(
            &["run", "--store", name, "--ops", "1500", "--seed", "1"],
            t.path(),
        );
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {out}");
        // Neither can carry out the deep load (range deletes): said.
        assert!(out.contains("no deep load"), "{name}: {out}");
        assert!(out.contains("ok: 1500 ops"), "{name}: {out}");
    }
}

/// The fuzz targets take these stores (`CRASHCHECK_FUZZ_STORE`): inputs
/// with ops a store lacks (range deletes, compactions) are fitted to it,
/// and the in-process power cut reaches it.
#[test]
fn the_fuzz_targets_pass_with_each_store() {
    use arbitrary::{Arbitrary, Unstructured};
    use crashcheck::fuzzing::{encode_ops, run_crash, run_ops, CrashInput, OpsInput};
    let fs = Arc::new(crashcheck::store::fault_fs::FaultFs::new());
    for &name in NAMES {
        let f = factory_by_name(name).unwrap();
        // Some input holds an op the store lacks (else this tests nothing).
        let mut fitted = false;
        for seed in 1..4u8 {
            let p = crashcheck::workload::Profile::by_name("small-keyspace").unwrap();
            let ops = crashcheck::workload::Generator::new(u64::from(seed), p).ops(64);
            fitted |= f.capabilities().fit_ops(&ops).len() < ops.len();
            let mut bytes = vec![seed];
            bytes.extend(encode_ops(&ops));
            let input = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            run_ops(f.as_ref(), &input).unwrap_or_else(|e| panic!("{name} ops: {e}"));
            for m in 0..4u8 {
                let mut b = vec![m, seed * 13, 3, (seed << 1) | (seed & 1)];
                b.extend_from_slice(&bytes[1..]);
                let input = CrashInput::arbitrary(&mut Unstructured::new(&b)).unwrap();
                run_crash(f.as_ref(), &fs, &input)
                    .unwrap_or_else(|e| panic!("{name} crash mode {m}: {e}"));
            }
        }
        assert!(fitted, "{name}: no input needed fitting");
    }
}
