//! What a new user's bad input and interruptions do: a check that would
//! check nothing is refused, every output path is checked before the work
//! starts and named when it cannot be written, reports are written
//! atomically, a missing `--dir` is created, and nothing is left behind.

use std::path::Path;

mod common;
use common::{bin, names, run, text};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn checks_that_would_check_nothing_are_usage_errors() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_str().unwrap();
    for (args, says) in [
        (vec!["crash", "--cycles", "0", "--dir", d], "--cycles 0"),
        (
            vec!["crash", "--duration", "0s", "--dir", d],
            "--duration 0",
        ),
        (
            vec!["crash", "--cycles", "5", "--jobs", "0", "--dir", d],
            "--jobs 0",
        ),
        (
            vec!["crash", "--cycles", "5", "--ops", "0", "--dir", d],
            "--ops 0",
        ),
        (vec!["run", "--ops", "0", "--dir", d], "--ops 0"),
        (
            vec!["recovery-modes", "--trials", "0", "--dir", d],
            "--trials 0",
        ),
        (
            vec!["crash", "--cycles", "5", "--cfs", "0", "--dir", d],
            "--cfs 0",
        ),
        (
            vec!["crash", "--cycles", "5", "--writers", "0", "--dir", d],
            "--writers 0",
        ),
        (
            vec!["bench", "run", "--seconds", "0", "--dir", d],
            "--seconds 0",
        ),
        (
            vec!["bench", "crash", "--seconds", "0", "--dir", d],
            "--seconds 0",
        ),
        (vec!["fuzz-seed", "--count", "0"], "--count 0"),
        (
            vec!["recovery-modes", "--only", "bogus", "--dir", d],
            "--only bogus: matches no cell",
        ),
        (
            vec!["run", "--repro-out", "/proc/nope/x.repro", "--dir", d],
            "--repro-out /proc/nope/x.repro",
        ),
    ] {
        let o = run(&args, t.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(
            !text(&o).contains("no violations"),
            "{args:?}: {}",
            text(&o)
        );
        assert!(
            names(t.path()).is_empty(),
            "{args:?} left {:?}",
            names(t.path())
        );
    }
}

#[test]
fn unwritable_outputs_are_refused_before_any_cycle_and_named() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_str().unwrap();
    let file = t.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = format!("{}/r.json", file.display());
    for (flag, path) in [
        ("--report", "/proc/nope/r.json"),
        ("--junit", "/proc/nope/j.xml"),
        ("--markdown", "/proc/nope/m.md"),
        ("--artifacts", "/proc/nope/artifacts"),
        ("--report", under_file.as_str()),
        ("--report", d),
    ] {
        let start = std::time::Instant::now();
        // Far more cycles than could run before the check must fail.
        let o = run(
            &["crash", "--cycles", "100000", "--dir", d, flag, path],
            t.path(),
        );
        assert_eq!(o.status.code(), Some(2), "{flag} {path}: {}", text(&o));
        assert!(
            stderr(&o).contains(flag) && stderr(&o).contains(path),
            "{flag} {path}: the message must name the flag and the path: {}",
            text(&o)
        );
        assert!(
            !text(&o).contains("cycles in"),
            "{flag}: a campaign ran: {}",
            text(&o)
        );
        assert!(start.elapsed().as_secs() < 20, "{flag}: refused too late");
        assert_eq!(names(t.path()), vec!["a-file"], "{flag} {path}");
    }
}

#[test]
fn reports_are_written_whole_with_no_temporary_files_left() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let (json, junit, md) = (out.join("r.json"), out.join("j.xml"), out.join("m.md"));
    // An older report at the same path is replaced whole.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(&json, "old").unwrap();
    let o = run(
        &[
            "crash",
            "--cycles",
            "8",
            "--dir",
            t.path().to_str().unwrap(),
            "--report",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .expect("a whole JSON report");
    assert_eq!(r["cycles"], 8);
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<testsuite"));
    assert!(std::fs::read_to_string(&md).unwrap().starts_with('#'));
    assert_eq!(names(&out), vec!["j.xml", "m.md", "r.json"]);
    assert_eq!(names(t.path()), vec!["out"], "the work dir is gone");
}

#[test]
fn a_missing_dir_is_created_and_removed_again_and_only_it() {
    let t = tempfile::tempdir().unwrap();
    let wd = t.path().join("work");
    let o = run(
        &["crash", "--cycles", "4", "--dir", wd.to_str().unwrap()],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(names(t.path()).is_empty(), "left {:?}", names(t.path()));
    // Its parent must exist: crashcheck creates the directory, not a tree.
    let deep = t.path().join("a").join("b");
    let o = run(
        &["run", "--ops", "10", "--dir", deep.to_str().unwrap()],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains(deep.to_str().unwrap()), "{}", text(&o));
    assert!(!t.path().join("a").exists());
}

#[test]
fn an_interrupted_campaign_reports_what_it_did_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let wd = t.path().join("work");
    std::fs::create_dir(&wd).unwrap();
    let report = t.path().join("r.json");
    let child = bin()
        .current_dir(t.path())
        .args(["crash", "--duration", "60s", "-q", "--dir"])
        .arg(&wd)
        .arg("--report")
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it run cycles (and create its working directory) first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while names(&wd).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    assert!(r["cycles"].as_u64().unwrap() > 0);
    assert!(names(&wd).is_empty(), "left {:?}", names(&wd));
    assert!(!Path::new(&wd).join("artifacts").exists());
}

#[test]
fn a_full_disk_under_a_report_fails_with_its_path_and_leaves_no_half_file() {
    // The disk fills up under crashcheck's own output: RLIMIT_FSIZE makes
    // every write past 256 bytes fail (EFBIG, with SIGXFSZ ignored), as a
    // full disk fails it with ENOSPC. The report must not be left half
    // written, no temporary file may stay, and the message names the path.
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "crash", "--cycles", "8", "--seed", "1", "--report", "r.json", "-q",
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut cmd = bin();
    cmd.args(["merge-reports", "r.json", "--report", "out.json"])
        .current_dir(t.path());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("out.json")
            && stderr(&o).contains("too large")
            && !stderr(&o).contains(".crashcheck-")
            && stderr(&o).lines().count() == 1,
        "one line naming the path and the OS error: {}",
        text(&o)
    );
    assert_eq!(names(t.path()), vec!["r.json"], "nothing half-written left");
}

#[test]
fn the_shard_help_says_shards_count_from_zero() {
    let t = tempfile::tempdir().unwrap();
    let o = run(&["crash", "--help"], t.path());
    assert!(
        text(&o).contains("counting from 0 (`0/4` to `3/4`"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_case_from_a_store_the_binary_does_not_have_is_refused_with_the_way_to_replay_it() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("case.repro");
    std::fs::write(
        &f,
        "# crashcheck repro v1\ncheck: crash\nseed: 1\nprofile: default\nstore: app-kv\noptions: wal_mode=wal\nexpect: torn-batch\nfault: kill\nkill: after-op 1\nops:\nput k000001 gen(1,8)\n",
    )
    .unwrap();
    let o = run(&["replay", f.to_str().unwrap()], t.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    assert!(e.contains("store 'app-kv'"), "{e}");
    assert!(e.contains("CRASHCHECK_REPLAY="), "{e}");
    assert_eq!(names(t.path()), vec!["case.repro"]);
    // In an artifact directory, the command its campaign recorded, for
    // the file given.
    std::fs::write(
        t.path().join("README.txt"),
        "crashcheck violation artifact\n\nreplay:\n  CRASHCHECK_REPLAY=/else/where/shrunk.repro cargo test kv_test -- --exact\n",
    )
    .unwrap();
    let o = run(&["replay", f.to_str().unwrap()], t.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    let want = format!(
        "CRASHCHECK_REPLAY={} cargo test kv_test -- --exact",
        f.display()
    );
    assert!(e.contains(&want), "{e}");
}

/// A deep base database that does not hold its load's state is a
/// violation (no crash involved), not an environment error: exit 1, one
/// report in the JSON and JUnit files, an artifact whose repro is the
/// load as a run case that `replay` reproduces, and the campaign goes on
/// from empty databases.
#[test]
fn a_base_that_does_not_hold_its_load_is_a_violation_that_replays() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_str().unwrap();
    // merge-as-put turns the load's merges into puts: the base it builds
    // is wrong before any kill.
    let o = run(
        &[
            "crash",
            "--store",
            "mutant:merge-as-put",
            "--mode",
            "wal",
            "--fault",
            "kill",
            "--cycles",
            "4",
            "--seed",
            "1",
            "--report",
            "r.json",
            "--junit",
            "j.xml",
            "--artifacts",
            "art",
            "--dir",
            d,
        ],
        t.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    let base: Vec<_> = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["detail"]
                .as_str()
                .unwrap()
                .contains("building the deep base database")
        })
        .collect();
    assert_eq!(base.len(), 1, "reported once: {:#?}", r["violations"]);
    assert_eq!(base[0]["class"], "final-state-mismatch");
    assert_eq!(
        r["lsm"]["base_cycles"], 0,
        "cycles went on from empty databases"
    );
    let junit = std::fs::read_to_string(t.path().join("j.xml")).unwrap();
    assert!(junit.contains("building the deep base database"), "{junit}");
    let art = Path::new(base[0]["artifact"].as_str().unwrap());
    let art = if art.is_absolute() {
        art.to_path_buf()
    } else {
        t.path().join(art)
    };
    let case = std::fs::read_to_string(art.join("case.repro")).unwrap();
    assert!(
        case.contains("check: run") && case.contains("expect: final-state-mismatch"),
        "{case}"
    );
    assert!(art.join("db").is_dir());
    let shrunk = art.join("shrunk.repro");
    let o = run(&["replay", shrunk.to_str().unwrap()], t.path());
    assert!(
        text(&o).contains("matches the saved verdict"),
        "{}",
        text(&o)
    );
}
