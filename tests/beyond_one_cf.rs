//! Column families (atomic flush or not), concurrent writers, checkpoints,
//! backups and copies, and the metrics endpoint, end to end through the
//! CLI.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crashcheck"));
    c.env("CI", "true");
    c
}

fn crash(args: &[&str], cwd: &Path) -> (Output, serde_json::Value) {
    let o = bin()
        .current_dir(cwd)
        .arg("crash")
        .args(args)
        .args(["--report", "r.json", "--markdown", "r.md", "-q"])
        .output()
        .expect("spawn crashcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    let r = serde_json::from_str(&std::fs::read_to_string(cwd.join("r.json")).expect("report"))
        .expect("json");
    (o, r)
}

#[test]
fn four_column_families_with_atomic_flush_are_clean_in_every_mode() {
    let t = tempfile::tempdir().unwrap();
    let (_, r) = crash(
        &[
            "--cfs",
            "4",
            "--atomic-flush",
            "--mode",
            "all",
            "--cycles",
            "48",
            "--seed",
            "5",
        ],
        t.path(),
    );
    assert!(r["options"].as_str().unwrap().contains("column_families=4"));
    assert!(r["options"].as_str().unwrap().contains("atomic_flush=true"));
    for m in ["wal-sync", "wal", "wal-manual-flush", "no-wal"] {
        let s = &r["by_mode"][m];
        assert_eq!(s["violations"], 0, "{m}");
        assert_eq!(s["cf_divergence"], 0, "{m}: atomic flush keeps one prefix");
        assert!(s["acked_writes"].as_u64().unwrap() > 0, "{m}");
        assert!(
            s["rocksdb_samples"].as_u64().unwrap() > 0,
            "{m}: statistics"
        );
    }
}

#[test]
fn without_wal_or_atomic_flush_column_families_diverge_as_a_hazard() {
    let t = tempfile::tempdir().unwrap();
    let (_, r) = crash(
        &[
            "--cfs", "4", "--mode", "no-wal", "--cycles", "40", "--seed", "5",
        ],
        t.path(),
    );
    let s = &r["by_mode"]["no-wal"];
    assert_eq!(s["violations"], 0);
    assert!(s["cf_divergence"].as_u64().unwrap() > 0, "{s}");
    let md = std::fs::read_to_string(t.path().join("r.md")).unwrap();
    assert!(md.contains("Hazards of the configuration"), "{md}");
    assert!(md.contains("db.flush()"), "{md}");
}

#[test]
fn eight_writers_over_column_families_are_clean() {
    let t = tempfile::tempdir().unwrap();
    let (_, r) = crash(
        &[
            "--cfs",
            "2",
            "--atomic-flush",
            "--writers",
            "8",
            "--mode",
            "all",
            "--cycles",
            "24",
            "--seed",
            "7",
        ],
        t.path(),
    );
    assert_eq!(r["writers"], 8);
    assert_eq!(r["violations"].as_array().unwrap().len(), 0);
    let acked: u64 = ["wal-sync", "wal", "wal-manual-flush", "no-wal"]
        .iter()
        .map(|m| r["by_mode"][*m]["acked_writes"].as_u64().unwrap())
        .sum();
    assert!(acked > 100, "{acked}");
}

#[test]
fn checkpoints_backups_and_copies_are_judged() {
    let t = tempfile::tempdir().unwrap();
    let (_, r) = crash(
        &[
            "--profile",
            "checkpoint",
            "--mode",
            "wal,no-wal",
            "--cycles",
            "24",
            "--seed",
            "5",
        ],
        t.path(),
    );
    assert_eq!(r["violations"].as_array().unwrap().len(), 0);
    let (mut ck, mut bk, mut cp) = (0, 0, 0);
    for m in ["wal", "no-wal"] {
        let a = &r["by_mode"][m]["copies"];
        ck += a["checkpoints_ok"].as_u64().unwrap();
        bk += a["backups_ok"].as_u64().unwrap();
        cp += a["copies_consistent"].as_u64().unwrap() + a["copies_inconsistent"].as_u64().unwrap();
    }
    assert!(ck > 0 && bk > 0 && cp > 0, "{ck} {bk} {cp}");
    // Without the WAL a live copy misses the memtables: shown, not a violation.
    assert!(
        r["by_mode"]["no-wal"]["copies"]["copies_inconsistent"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn bad_column_family_and_writer_counts_exit_2() {
    let t = tempfile::tempdir().unwrap();
    for args in [
        vec!["crash", "--cfs", "9"],
        vec!["crash", "--writers", "0"],
        vec!["crash", "--writers", "2", "--chain"],
        vec!["crash", "--writers", "2", "--fault", "power-loss-zeros"],
        vec!["crash", "--cf-flush", "sometimes"],
        vec!["crash", "--metrics-addr", "not-an-address"],
    ] {
        let o = bin().current_dir(t.path()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&o.stderr).trim().is_empty(),
            "{args:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(t.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

fn get_metrics(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn metrics_endpoint_serves_counters_during_a_run() {
    let t = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = t.path().join("work");
    let mut child = bin()
        .current_dir(t.path())
        .args(["crash", "--duration", "20s", "-q", "--cfs", "2"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .arg("--dir")
        .arg(&work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = None;
    for _ in 0..150 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(body) = get_metrics(port) {
            if body.contains("crashcheck_cycles_total{") {
                seen = Some(body);
                break;
            }
        }
    }
    // SIGTERM, as a user's Ctrl-C: the campaign stops and cleans up (a
    // SIGKILL here once leaked its working directory into /tmp).
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let body = seen.expect("no cycle counter served within 15 s");
    assert_eq!(status.code(), Some(130));
    assert!(!work.exists(), "the working directory was left behind");
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{body}"
    );
    for name in [
        "crashcheck_violations_total",
        "crashcheck_cycles_per_second",
        "crashcheck_rocksdb_estimated_keys",
        "crashcheck_rocksdb_block_cache_hit_total",
        "crashcheck_rocksdb_write_stall_micros_total",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
}

/// Kills aim inside the units of every writer, and the torn batches found
/// with four writers replay to their verdict: those killed at a planned
/// step point exactly, and those a timed kill caught between two step
/// points (each writer's step count at the kill, saved as `timed`) nearly
/// always. A timed kill after a step point may land before or after the
/// next write applied, so a replay that misses at the saved point tries
/// the points on either side. Measured over seeds 1-6 of this command: 185
/// of 185 cases replayed, 110 of them timed, 1 at a neighbouring point.
/// Before the neighbours were tried, seeds 1-8 replayed 422 of 433 (97%)
/// here and CI once replayed 22 of 25 of seed 1; before step counts were
/// recorded, 45 of 130 did.
#[test]
fn kills_inside_any_writers_units_replay_to_their_verdict() {
    let t = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(t.path())
        .args([
            "crash",
            "--store",
            "mutant:non-atomic-batch",
            "--writers",
            "4",
            "--mode",
            "no-wal,wal-sync",
            "--cycles",
            "80",
            "--seed",
            "1",
            "--no-shrink",
            "--report",
            "r.json",
            "-q",
        ])
        .output()
        .expect("spawn crashcheck");
    assert_eq!(o.status.code(), Some(1), "the mutant must be caught");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    let by_writer = &r["by_mode"]["wal-sync"]["kills_mid_unit_by_writer"];
    let writers = by_writer.as_object().map_or(0, |m| m.len());
    assert!(writers >= 3, "mid-unit kills by writer: {by_writer}");
    let violations = r["violations"].as_array().unwrap();
    assert!(violations.len() >= 20, "{}", violations.len());
    let (mut replayed, mut other_writers, mut missed) = (0, 0, Vec::new());
    let (mut flushed, mut timed) = (0, 0);
    for v in violations {
        let case = v["artifact"].as_str().unwrap().to_string() + "/case.repro";
        let case = t.path().join(case);
        let text = std::fs::read_to_string(&case).unwrap();
        let elsewhere = text
            .lines()
            .any(|l| l.starts_with("kill: in-op") && l.contains(" writer "));
        let out = bin().arg("replay").arg(&case).output().unwrap();
        let flush = text
            .lines()
            .any(|l| l.starts_with("kill: in-op") && l.ends_with(" flush"));
        timed += usize::from(
            text.lines()
                .any(|l| l.starts_with("kill: in-op") && l.contains(" timed")),
        );
        if String::from_utf8_lossy(&out.stdout).contains("matches the saved verdict") {
            replayed += 1;
            other_writers += usize::from(elsewhere);
            flushed += usize::from(flush && v["mode"] == "no-wal");
        } else {
            // Without the WAL a unit torn in order replays at its tear,
            // whenever the kill came. (With the WAL a timed kill's place
            // is known to within one step point, which the replay tries
            // either side of; within the 5 %.)
            let no_wal_tear = v["class"] == "torn-batch" && v["mode"] == "no-wal";
            assert!(!no_wal_tear, "{}", case.display());
            missed.push(case.display().to_string());
        }
    }
    // Without the WAL a tear survives only through a flush in mid-unit,
    // which the replay makes at the kill (`kill: ... flush`).
    assert!(flushed > 0, "no no-wal tear replayed with a flush");
    assert!(
        replayed * 20 >= violations.len() * 19,
        "{replayed} of {} replayed; missed: {missed:?}",
        violations.len()
    );
    assert!(timed > 0, "no timed kill was saved");
    assert!(other_writers > 0, "no case inside writers 1-3 replayed");
}
