//! End-to-end tests of the `crashcheck` binary. Crash campaigns run in the
//! binary (a fresh process that never used RocksDB before forking), never
//! in this multi-threaded test process.

use std::path::Path;

mod common;
use common::{run, text};

#[test]
fn run_is_consistent_on_stock_rocksdb() {
    let t = tempfile::tempdir().unwrap();
    for mode in ["wal", "no-wal"] {
        let o = run(
            &["run", "--seed", "3", "--ops", "3000", "--mode", mode],
            t.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            text(&o).contains("consistent with the model"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let t = tempfile::tempdir().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--ops", "many"],
        vec!["crash", "--mode", "sometimes", "--cycles", "1"],
        vec!["run", "--options", "bogus_option=1"],
        vec!["run", "--profile", "nope"],
        vec!["run", "--dir", "/definitely/not/here"],
        vec!["crash", "--fault", "meteor", "--cycles", "1"],
        vec!["replay", "/definitely/not/here.repro"],
    ];
    for args in cases {
        let o = run(&args, t.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            !String::from_utf8_lossy(&o.stderr).trim().is_empty(),
            "{args:?}: no message"
        );
    }
    let o = run(&["run", "--options", "bogus_option=1"], t.path());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus_option"));
}

#[test]
fn malformed_repro_names_the_line() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("bad.repro");
    std::fs::write(
        &f,
        "# crashcheck repro v1\ncheck: run\nops:\nput k1 \"a\"\nput k2\n",
    )
    .unwrap();
    let o = run(&["replay", f.to_str().unwrap()], t.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(":5:"),
        "{}",
        text(&o)
    );
}

#[test]
fn locked_db_dir_exits_2() {
    use std::os::fd::AsRawFd;
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(db.join("LOCK"))
        .unwrap();
    // Lock it the way RocksDB does (fcntl F_SETLK, write lock).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    assert_eq!(
        unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_SETLK, &fl) },
        0
    );
    let o = run(
        &["run", "--ops", "10", "--db", db.to_str().unwrap()],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("locked"), "{}", text(&o));
    // Nothing of ours was left in the directory we did not create.
    let names: Vec<_> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("LOCK")]);
}

#[test]
fn dir_is_left_as_found() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("mine.txt"), "user data").unwrap();
    let o = run(
        &["run", "--ops", "500", "--dir", t.path().to_str().unwrap()],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("mine.txt")]);
}

#[test]
fn run_violation_writes_a_repro_that_replays_to_the_same_verdict() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "run",
            "--seed",
            "2",
            "--ops",
            "2000",
            "--store",
            "mutant:stale-read",
            "--repro-out",
            "case.repro",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("replay: crashcheck replay"),
        "{}",
        text(&o)
    );
    let case = std::fs::read_to_string(t.path().join("case.repro")).unwrap();
    assert!(
        crashcheck::repro::Case::engine_of(&case).is_some_and(|e| e.starts_with("RocksDB ")),
        "{case}"
    );
    let ops = case.lines().skip_while(|l| *l != "ops:").count() - 1;
    assert!(ops <= 10, "shrunk repro still has {ops} ops:\n{case}");
    let o = run(&["replay", "case.repro"], t.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("matches the saved verdict"),
        "{}",
        text(&o)
    );
}

#[test]
fn short_crash_campaign_per_mode_is_clean() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash",
            "--mode",
            "all",
            "--cycles",
            "96",
            "--seed",
            "5",
            "--jobs",
            "2",
            "--report",
            "r.json",
            "--junit",
            "j.xml",
            "--markdown",
            "m.md",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["cycles"], 96);
    assert_eq!(r["violations"].as_array().unwrap().len(), 0);
    for m in ["wal-sync", "wal", "wal-manual-flush", "no-wal"] {
        let s = &r["by_mode"][m];
        assert_eq!(s["cycles"], 24, "{m}");
        assert!(s["acked_writes"].as_u64().unwrap() > 0, "{m}");
        assert_eq!(s["violations"], 0, "{m}");
    }
    // kills land between durability points where the mode allows loss
    assert!(
        r["by_mode"]["no-wal"]["lost_within_guarantee"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(r["by_mode"]["wal-sync"]["lost_within_guarantee"], 0);
    assert_eq!(r["by_mode"]["wal"]["lost_within_guarantee"], 0);
    // The LSM shape at the kill: levels populated -> cycles, for the
    // cycles that published RocksDB figures.
    let shape = r["lsm"]["cycles_by_levels_populated"].as_object().unwrap();
    let counted: u64 = shape.values().map(|n| n.as_u64().unwrap()).sum();
    assert!(counted > 0 && counted <= 96, "{r}");
    assert!(
        shape.keys().any(|l| l != "0"),
        "some cycle reached L0 or below: {r}"
    );
    let junit = std::fs::read_to_string(t.path().join("j.xml")).unwrap();
    assert!(junit.contains("<testcase"));
    let md = std::fs::read_to_string(t.path().join("m.md")).unwrap();
    assert!(md.contains("| no-wal |"));
    // Provenance: every report names the engine under test, as the binary
    // itself does.
    let v = run(&["--version"], t.path());
    let rocks = r["rocksdb_version"].as_str().unwrap();
    let rust = r["rust_rocksdb_version"].as_str().unwrap();
    assert!(rocks.split('.').count() == 3 && !rust.is_empty(), "{r}");
    assert!(
        text(&v).contains(&format!("RocksDB {rocks} (rust-rocksdb {rust}")),
        "{}",
        text(&v)
    );
    assert!(junit.contains(&format!(
        "<property name=\"rocksdb_version\" value=\"{rocks}\"/>"
    )));
    assert!(md.contains(&format!("engine: RocksDB {rocks}")), "{md}");
}

#[test]
fn crash_violation_leaves_an_artifact_that_replays() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash",
            "--mode",
            "wal",
            "--cycles",
            "200",
            "--seed",
            "1",
            "--jobs",
            "1",
            "--store",
            "mutant:early-ack",
            "--stop-on-violation",
            "--artifacts",
            "arts",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let dir = std::fs::read_dir(t.path().join("arts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for f in [
        "case.repro",
        "kill.json",
        "diff.txt",
        "README.txt",
        "options.txt",
        "db/CURRENT",
    ] {
        assert!(dir.join(f).exists(), "artifact lacks {f}");
    }
    let repro = if dir.join("shrunk.repro").exists() {
        "shrunk.repro"
    } else {
        "case.repro"
    };
    let o = run(&["replay", dir.join(repro).to_str().unwrap()], t.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("matches the saved verdict"),
        "{}",
        text(&o)
    );
}

#[test]
fn power_loss_env_is_really_in_use() {
    // A SIGKILL alone never loses an acknowledged `wal` write (the kill
    // campaign above asserts that); under the fault filesystem, unsynced
    // WAL writes are lost in some cycles, and synced ones never.
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash",
            "--mode",
            "wal,wal-sync",
            "--fault",
            "power-loss",
            "--cycles",
            "40",
            "--seed",
            "11",
            "--jobs",
            "2",
            "--report",
            "p.json",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("p.json")).unwrap()).unwrap();
    let pl = &r["by_fault"]["power-loss"];
    assert!(
        pl["wal"]["lost_within_guarantee"].as_u64().unwrap() > 0,
        "{pl}"
    );
    assert_eq!(pl["wal-sync"]["lost_within_guarantee"], 0, "{pl}");
    assert!(pl["wal-sync"]["acked_writes"].as_u64().unwrap() > 0, "{pl}");
}

#[test]
fn quick_recovery_mode_matrix_matches_the_documentation() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "recovery-modes",
            "--trials",
            "1",
            "--seed",
            "5",
            "--wal-compression",
            "both",
            "--report",
            "m.json",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("m.json")).unwrap()).unwrap();
    let cells = m["cells"].as_array().unwrap();
    // 4 modes x 7 damage kinds x 2 WALs x 2 compressions
    assert_eq!(cells.len(), 4 * 7 * 2 * 2);
    for c in cells {
        assert_eq!(c["contradictions"], 0, "{c}");
        assert!(
            c["counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
                >= 1
        );
    }
    // The two silent holes are admitted but flagged as hazards.
    assert!(cells.iter().any(|c| c["damage"] == "missing-file"
        && c["target"] == "older"
        && !c["hazard"].is_null()));
}

#[test]
fn runs_with_a_users_options_file_and_reports_overrides() {
    let t = tempfile::tempdir().unwrap();
    // A database written by RocksDB leaves an OPTIONS file; use it as "production" options.
    let o = run(
        &[
            "run",
            "--ops",
            "300",
            "--db",
            "prod",
            "--options",
            "use_fsync=true;bytes_per_sync=1048576",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let file = std::fs::read_dir(t.path().join("prod"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("OPTIONS-")
        })
        .max()
        .unwrap();
    // production paths must never be used: add a wal_dir to the file
    let opts = std::fs::read_to_string(&file)
        .unwrap()
        .replace("[DBOptions]\n", "[DBOptions]\n  wal_dir=/somewhere/else\n");
    std::fs::write(t.path().join("OPTIONS-prod"), opts).unwrap();
    let o = run(
        &[
            "crash",
            "--options-file",
            "OPTIONS-prod",
            "--cycles",
            "12",
            "--report",
            "r.json",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("overriding wal_dir=/somewhere/else"),
        "{}",
        text(&o)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["options_source"], "OPTIONS-prod");
    assert!(
        r["options"].as_str().unwrap().contains("use_fsync=true"),
        "{}",
        r["options"]
    );
    assert!(r["options_overridden"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["key"] == "wal_dir"));
    assert!(!Path::new("/somewhere/else").exists());
    // a bad file: exit 2, naming it
    std::fs::write(
        t.path().join("bad-options"),
        "[DBOptions]\n  not_an_option_at_all=3\n",
    )
    .unwrap();
    let o = run(
        &["crash", "--options-file", "bad-options", "--cycles", "1"],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not_an_option_at_all"),
        "{}",
        text(&o)
    );
}

#[test]
fn io_error_read_error_and_disk_full_campaigns_inject_errors_and_stay_clean() {
    // Stock RocksDB under injected EIO (writes) and failed or damaged
    // reads: no violation, and the report shows errors really injected.
    let t = tempfile::tempdir().unwrap();
    for (fault, failed) in [
        ("io-error", "io_failed_ops"),
        ("read-error", "io_failed_reads"),
        ("disk-full", "resumes"),
    ] {
        let o = run(
            &[
                "crash", "--mode", "all", "--fault", fault, "--cycles", "60", "--seed", "1",
                "--report", "r.json", "-q",
            ],
            t.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{fault}: {}", text(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap())
                .unwrap();
        let sum = |k: &str| -> u64 {
            r["by_mode"]
                .as_object()
                .unwrap()
                .values()
                .map(|m| m[k].as_u64().unwrap())
                .sum()
        };
        // disk-full fills the whole disk once: nothing is counted per thread.
        assert!(
            fault == "disk-full" || sum("io_errors_injected") > 0,
            "{fault}: {r}"
        );
        assert!(sum(failed) > 0, "{fault}: {r}");
        if fault != "read-error" {
            // Failed writes and flushes are background errors.
            assert!(sum("background_errors") > 0, "{fault}: {r}");
        }
        if fault == "io-error" {
            // Both kinds of EIO, by type.
            assert!(sum("io_errors_retryable") > 0, "{r}");
            let writes: u64 = r["by_mode"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|m| m["io_errors_by_type"]["write"].as_u64())
                .sum();
            assert!(writes > 0, "{r}");
        }
        if fault == "disk-full" {
            // Space came back past a failed write, and later writes were
            // judged: no violation.
            assert!(sum("resumed_past_failed_write") > 0, "{r}");
        }
        assert_eq!(r["violations"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn io_error_and_disk_full_violations_replay_to_the_same_verdict() {
    // The injected errors come from the cycle's own ops, and the failed op
    // counts as run: a replay meets the same error at the same op (and,
    // with disk-full, the same choice to resume).
    for (mutant, fault, mode) in [
        ("swallow-sync-error", "io-error", "wal-manual-flush"),
        ("resume-drops-memtable", "disk-full", "wal-sync"),
        ("ingest-not-durable", "kill", "wal-sync"),
    ] {
        replays_to_the_same_verdict(mutant, fault, mode);
    }
}

fn replays_to_the_same_verdict(mutant: &str, fault: &str, mode: &str) {
    let t = tempfile::tempdir().unwrap();
    let store = format!("mutant:{mutant}");
    let o = run(
        &[
            "crash",
            "--store",
            &store,
            "--fault",
            fault,
            "--mode",
            mode,
            "--cycles",
            "40",
            "--seed",
            "2",
            "--artifacts",
            "art",
            "-q",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{mutant}: {}", text(&o));
    let art = std::fs::read_dir(t.path().join("art"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let case = art.join("case.repro");
    let o = run(&["replay", case.to_str().unwrap()], t.path());
    assert!(
        text(&o).contains("matches the saved verdict"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_default_campaign_starts_from_a_deep_base_and_reaches_three_levels() {
    // Without flags a single-writer campaign clones a base database several
    // levels deep for every cycle; --empty-start turns it off.
    let t = tempfile::tempdir().unwrap();
    let lsm = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "crash",
            "--mode",
            "all",
            "--fault",
            "kill,power-loss",
            "--cycles",
            "40",
            "--seed",
            "1",
            "--report",
            "r.json",
            "-q",
        ];
        args.extend_from_slice(extra);
        let o = run(&args, t.path());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap())
                .unwrap();
        r["lsm"].clone()
    };
    let deep = lsm(&[]);
    assert_eq!(deep["base_cycles"], 40, "{deep}");
    let by = deep["cycles_by_levels_populated"].as_object().unwrap();
    let three: u64 = by
        .iter()
        .filter(|(k, _)| k.parse::<u64>().unwrap() >= 3)
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert!(three >= 12, "{deep}");
    // Half of the deep profile's cycles put large values in blob files,
    // and the parent counts them at the kill.
    let blob = deep["blob_cycles"].as_u64().unwrap();
    assert!(
        blob >= 8 && deep["blob_files"].as_u64().unwrap() >= blob,
        "{deep}"
    );
    let flat = lsm(&["--empty-start", "--option-profile", "defaults"]);
    assert_eq!(flat["base_cycles"], 0, "{flat}");
    assert_eq!(flat["compaction_styles"]["level"], 40, "{flat}");
    // Nothing of the bases is left behind in the working directory's parent.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "r.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn fifo_drops_old_data_within_its_rule_and_run_refuses_it() {
    // Forced FIFO compaction deletes its oldest files within the cycles;
    // the states it leaves are admitted by rule F1 (and counted), nothing
    // else is.
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash",
            "--mode",
            "all",
            "--fault",
            "kill,power-loss",
            "--cycles",
            "60",
            "--seed",
            "1",
            "--compaction-style",
            "fifo",
            "--report",
            "r.json",
            "-q",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["lsm"]["compaction_styles"]["fifo"], 60, "{}", r["lsm"]);
    assert!(
        r["lsm"]["fifo_dropped_cycles"].as_u64().unwrap() > 0,
        "{}",
        r["lsm"]
    );
    let o = run(
        &[
            "crash",
            "--cycles",
            "1",
            "--compaction-style",
            "tiered",
            "-q",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("unknown compaction style"),
        "{}",
        text(&o)
    );
    let o = run(
        &[
            "run",
            "--ops",
            "100",
            "--options",
            "compaction_style=kCompactionStyleFIFO",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("FIFO"), "{}", text(&o));
}

#[test]
fn reports_of_different_engines_are_tabled_per_engine_never_summed() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash", "--cycles", "4", "--seed", "3", "-q", "--report", "a.json",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The same report as if it came from another RocksDB.
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("a.json")).unwrap()).unwrap();
    let here = r["rocksdb_version"].as_str().unwrap().to_string();
    r["rocksdb_version"] = "8.10.0".into();
    r["librocksdb_sys_version"] = "0.16.0+8.10.0".into();
    std::fs::write(t.path().join("b.json"), r.to_string()).unwrap();
    let m = run(&["merge-reports", "a.json", "b.json"], t.path());
    assert_eq!(m.status.code(), Some(2), "{}", text(&m));
    assert!(text(&m).contains("different engines"), "{}", text(&m));
    let x = run(
        &[
            "matrix",
            "a.json",
            "b.json",
            "--markdown",
            "m.md",
            "--report",
            "m.json",
        ],
        t.path(),
    );
    assert_eq!(x.status.code(), Some(0), "{}", text(&x));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("m.json")).unwrap()).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    assert_eq!(rows[0]["rocksdb_version"], "8.10.0");
    assert_eq!(rows[1]["rocksdb_version"], here.as_str());
    assert_eq!(rows[0]["cycles"], 4);
    assert_eq!(rows[1]["cycles"], 4);
    let md = std::fs::read_to_string(t.path().join("m.md")).unwrap();
    assert!(
        md.contains("| 8.10.0 |") && md.contains(&format!("| {here} |")),
        "{md}"
    );
}
