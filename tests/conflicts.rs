//! Writers that contend (`lock K` inside `txn`, docs/durability.md C1-C3):
//! on both transactional stores, four writers run clean through kills and
//! power cuts while the stores refuse some of their units as conflicts,
//! and a wrapper whose optimistic commits never conflict is caught as
//! `lost-update`.

mod common;
use common::{run, text};

/// A short four-writer campaign of the `txn` profile on `store`: its exit
/// code, its JSON report and its output.
fn campaign(
    store: &str,
    mode: &str,
    fault: &str,
    cycles: &str,
) -> (i32, serde_json::Value, String) {
    let t = tempfile::tempdir().unwrap();
    campaign_in(t.path(), store, mode, fault, cycles)
}

/// [`campaign`], run in `dir` (where its artifacts go).
fn campaign_in(
    dir: &std::path::Path,
    store: &str,
    mode: &str,
    fault: &str,
    cycles: &str,
) -> (i32, serde_json::Value, String) {
    let report = dir.join("r.json");
    let o = run(
        &[
            "crash",
            "--store",
            store,
            "--profile",
            "txn",
            "--writers",
            "4",
            "--mode",
            mode,
            "--fault",
            fault,
            "--cycles",
            cycles,
            "--seed",
            "1",
            "--no-shrink",
            "--no-stats",
            "--report",
            report.to_str().unwrap(),
        ],
        dir,
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, text(&o))
}

fn classes(v: &serde_json::Value) -> Vec<String> {
    v["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["class"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(feature = "txn-db")]
#[test]
fn pessimistic_writers_meet_locks_and_stay_clean() {
    let (code, v, out) = campaign("transaction-db", "wal-sync,wal", "kill,power-loss", "40");
    assert_eq!(code, 0, "{out}");
    let tx = &v["transactions"];
    assert!(tx["conflicts"].as_u64().unwrap() > 0, "{tx}");
    assert!(tx["committed"].as_u64().unwrap() > 100, "{tx}");
    assert!(out.contains(" conflicts"), "{out}");
}

#[test]
fn optimistic_writers_fail_commits_and_stay_clean() {
    let (code, v, out) = campaign("optimistic-transaction-db", "wal,no-wal", "kill", "40");
    assert_eq!(code, 0, "{out}");
    let tx = &v["transactions"];
    assert!(tx["conflicts"].as_u64().unwrap() > 0, "{tx}");
}

/// Reading the locked keys with a plain read (never tracked) lets an
/// optimistic commit succeed over another writer's write: `lost-update`,
/// and nothing else. Its repro file replays to it (the writers run
/// concurrently again, not one op at a time).
#[test]
fn a_commit_that_skips_the_conflict_check_is_caught_and_replays() {
    let t = tempfile::tempdir().unwrap();
    let (code, v, out) = campaign_in(
        t.path(),
        "mutant:txn-skips-conflict-check",
        "wal",
        "kill",
        "20",
    );
    assert_eq!(code, 1, "{out}");
    let c = classes(&v);
    assert!(c.iter().any(|c| c == "lost-update"), "{c:?}");
    assert!(c.iter().all(|c| c == "lost-update"), "{c:?}");
    let art = v["violations"][0]["artifact"].as_str().unwrap().to_string();
    let case = format!("{art}/case.repro");
    let o = run(&["replay", &case], t.path());
    let replayed = text(&o);
    assert!(
        replayed.contains("verdict 'lost-update' matches the saved verdict"),
        "{replayed}"
    );
}
