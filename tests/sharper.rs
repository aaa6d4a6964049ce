//! Failures that used to be unshrinkable replay and shrink: a kill at a
//! step point inside a write unit (`kill: in-op N step S`), and a case of
//! four concurrent writers (`interleaving:` replayed in order).

use std::path::{Path, PathBuf};

mod common;
use common::{run, text};

/// Runs a campaign that must fail, and returns its first artifact.
fn first_artifact(args: &[&str], dir: &Path) -> PathBuf {
    let arts = dir.join("art");
    let mut all = vec![
        "crash",
        "--stop-on-violation",
        "--jobs",
        "1",
        "-q",
        "--artifacts",
    ];
    all.push(arts.to_str().unwrap());
    all.extend_from_slice(args);
    let o = run(&all, dir);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&arts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.remove(0)
}

fn replays_the_saved_verdict(repro: &Path, dir: &Path, times: usize) {
    for _ in 0..times {
        let o = run(&["replay", repro.to_str().unwrap()], dir);
        assert!(
            text(&o).contains("matches the saved verdict"),
            "{}: {}",
            repro.display(),
            text(&o)
        );
    }
}

#[test]
fn a_mid_unit_kill_replays_at_the_same_step_and_shrinks() {
    let t = tempfile::tempdir().unwrap();
    let art = first_artifact(
        &[
            "--store",
            "mutant:delrange-by-key",
            "--mode",
            "wal",
            "--cycles",
            "200",
            "--seed",
            "3",
        ],
        t.path(),
    );
    let shrunk = art.join("shrunk.repro");
    let s = std::fs::read_to_string(&shrunk).expect("a shrunk repro");
    assert!(s.contains("\nkill: in-op "), "{s}");
    assert!(s.contains("\nexpect: torn-batch\n"), "{s}");
    assert!(s.lines().skip_while(|l| *l != "ops:").count() <= 12, "{s}");
    replays_the_saved_verdict(&shrunk, t.path(), 3);
}

#[test]
fn four_writers_record_their_interleaving_and_replay_it() {
    let t = tempfile::tempdir().unwrap();
    let art = first_artifact(
        &[
            "--store",
            "mutant:shared-early-ack",
            "--writers",
            "4",
            "--cfs",
            "2",
            "--mode",
            "wal",
            "--cycles",
            "100",
            "--seed",
            "6",
        ],
        t.path(),
    );
    // Which writers got to run before the kill is up to the threads; the
    // order they ran in is recorded (the parser checks it fits the ops).
    let case = std::fs::read_to_string(art.join("case.repro")).unwrap();
    assert!(case.contains("\ninterleaving: "), "{case}");
    replays_the_saved_verdict(&art.join("case.repro"), t.path(), 3);
    replays_the_saved_verdict(&art.join("shrunk.repro"), t.path(), 3);
}

#[test]
fn a_mixed_interleaving_of_four_writers_replays_deterministically() {
    let t = tempfile::tempdir().unwrap();
    let body = |store: &str, expect: &str| {
        let mut s = format!(
            "# crashcheck repro v1\ncheck: crash\nstore: {store}\noptions: wal_mode=wal\nfault: kill\nkill: after-op 2\n"
        );
        s.push_str(&format!(
            "interleaving: 0 1 2 3 3 2 1 0 2 1\nexpect: {expect}\nops:\n"
        ));
        s.push_str("put w00.k1 \"a\"\nget w00.k1\n");
        s.push_str("writer 1:\nput w01.k1 \"b\"\ndel w01.k1\nput w01.k2 \"c\"\n");
        s.push_str("writer 2:\nput w02.k1 \"d\"\nmerge w02.k1 \"e\"\nget w02.k1\n");
        s.push_str(
            "writer 3:\nbatch put w03.k1 \"f\" | put w03.k2 \"g\"\ndelrange w03.k0 w03.k2\n",
        );
        s
    };
    for (store, expect, times) in [
        ("rocksdb", "ok", 3),
        ("mutant:shared-early-ack", "read-mismatch", 3),
    ] {
        let f = t.path().join(format!("{expect}.repro"));
        std::fs::write(&f, body(store, expect)).unwrap();
        replays_the_saved_verdict(&f, t.path(), times);
    }
}
