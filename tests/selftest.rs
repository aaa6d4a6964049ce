//! Quick selftest: every process-kill mutant must be caught within a bounded
//! number of cycles, and the unmodified adapter must stay clean.

use std::process::Command;

#[test]
fn every_available_mutant_is_caught_quickly_and_the_control_is_clean() {
    let t = tempfile::tempdir().unwrap();
    let report = t.path().join("s.json");
    let o = Command::new(env!("CARGO_BIN_EXE_crashcheck"))
        .args([
            "selftest", "--budget", "60s", "--jobs", "2", "--seed", "3", "--report",
        ])
        .arg(&report)
        .env("CI", "true")
        .output()
        .expect("spawn crashcheck");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["control"]["violations"], 0);
    assert!(r["control"]["crash_cycles"].as_u64().unwrap() > 10);
    let mutants = r["mutants"].as_array().unwrap();
    assert!(mutants.len() >= 9);
    for m in mutants {
        if m["fault_needed"] == "power-loss" {
            continue;
        }
        assert_eq!(m["caught"], true, "{m}");
        assert!(m["cycles"].as_u64().unwrap() <= 300, "{m}");
    }
}
