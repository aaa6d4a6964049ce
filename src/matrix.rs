//! The version matrix: crash campaigns and selftests run against several
//! RocksDB versions (scripts/versions.sh, scripts/matrix.sh), one row per
//! engine. Reports from different engines are never added up: a count
//! means something only for the RocksDB it came from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::campaign::CrashReport;
use crate::selftest::SelftestReport;
use crate::store::engine::Engine;

/// One engine's results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MatrixRow {
    /// The engine (`rocksdb_version`, ... at the top level).
    #[serde(flatten)]
    pub engine: Engine,
    /// Crash campaigns merged into this row.
    pub campaigns: usize,
    /// Crash cycles.
    pub cycles: u64,
    /// Wall time of the campaigns, added up.
    pub duration_s: f64,
    /// Cycles per second over the campaigns.
    pub cycles_per_s: f64,
    /// Violations.
    pub violations: usize,
    /// Violation classes → count.
    pub violation_classes: BTreeMap<String, usize>,
    /// Anomaly kinds → count (hangs, known RocksDB bugs, ...).
    pub anomalies: BTreeMap<String, usize>,
    /// Faults that could not run on this engine, with the reason.
    pub unsupported_faults: Vec<String>,
    /// Selftests run.
    pub selftests: usize,
    /// Every selftest passed (`None` without a selftest).
    pub selftest_passed: Option<bool>,
    /// Mutants caught / run / not runnable here, over the selftests.
    pub mutants_caught: usize,
    /// Mutants run.
    pub mutants_run: usize,
    /// Mutants whose fault this engine cannot inject.
    pub mutants_unsupported: usize,
}

/// The matrix: one row per engine, oldest RocksDB first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Matrix {
    /// No violation and every selftest passed, on every engine.
    pub passed: bool,
    /// The rows.
    pub rows: Vec<MatrixRow>,
}

/// Sort key for a RocksDB version string (`8.10.0` before `11.8.1`).
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Groups campaign and selftest reports by engine.
pub fn matrix(crash: &[CrashReport], selftests: &[SelftestReport]) -> Matrix {
    let mut rows: BTreeMap<String, MatrixRow> = BTreeMap::new();
    let row = |rows: &mut BTreeMap<String, MatrixRow>, e: &Engine| -> String {
        let k = e.to_string();
        rows.entry(k.clone()).or_insert_with(|| MatrixRow {
            engine: e.clone(),
            ..MatrixRow::default()
        });
        k
    };
    for r in crash {
        let k = row(&mut rows, &r.engine);
        let m = rows.get_mut(&k).expect("inserted above");
        m.campaigns += 1;
        m.cycles += r.cycles;
        m.duration_s += r.duration_s;
        m.violations += r.violations.len();
        for v in &r.violations {
            *m.violation_classes
                .entry(v.class.name().to_string())
                .or_default() += 1;
        }
        for a in &r.anomalies {
            *m.anomalies.entry(a.kind.name().to_string()).or_default() += 1;
        }
        for u in &r.unsupported_faults {
            if !m.unsupported_faults.contains(u) {
                m.unsupported_faults.push(u.clone());
            }
        }
    }
    for s in selftests {
        let k = row(&mut rows, &s.engine);
        let m = rows.get_mut(&k).expect("inserted above");
        m.selftests += 1;
        m.selftest_passed = Some(m.selftest_passed.unwrap_or(true) && s.passed);
        m.mutants_caught += s.mutants.iter().filter(|x| x.caught).count();
        m.mutants_unsupported += s.mutants.iter().filter(|x| x.unsupported).count();
        m.mutants_run += s.mutants.iter().filter(|x| !x.unsupported).count();
    }
    let mut rows: Vec<MatrixRow> = rows.into_values().collect();
    for m in &mut rows {
        m.cycles_per_s = if m.duration_s > 0.0 {
            m.cycles as f64 / m.duration_s
        } else {
            0.0
        };
    }
    rows.sort_by_key(|m| version_key(&m.engine.rocksdb_version));
    Matrix {
        passed: rows
            .iter()
            .all(|m| m.violations == 0 && m.selftest_passed != Some(false)),
        rows,
    }
}

fn counts(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "0".into();
    }
    m.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The matrix as Markdown.
pub fn matrix_markdown(m: &Matrix) -> String {
    let mut s = String::from("# crashcheck version matrix\n\n");
    let _ = writeln!(
        s,
        "| RocksDB | rust-rocksdb | librocksdb-sys | cycles | cycles/s | violations | anomalies | selftest | mutants caught |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in &m.rows {
        let rocks = match &r.engine.rocksdb_patch {
            Some(p) => format!("{} + {p}", r.engine.rocksdb_version),
            None => r.engine.rocksdb_version.clone(),
        };
        let selftest = match r.selftest_passed {
            None => "-".to_string(),
            Some(true) => "passed".into(),
            Some(false) => "FAILED".into(),
        };
        let _ = writeln!(
            s,
            "| {rocks} | {} | {} | {} | {:.1} | {} | {} | {selftest} | {}/{}{} |",
            r.engine.rust_rocksdb_version,
            r.engine.librocksdb_sys_version,
            r.cycles,
            r.cycles_per_s,
            if r.violations == 0 {
                "0".into()
            } else {
                counts(&r.violation_classes)
            },
            counts(&r.anomalies),
            r.mutants_caught,
            r.mutants_run,
            if r.mutants_unsupported > 0 {
                format!(" ({} not runnable here)", r.mutants_unsupported)
            } else {
                String::new()
            },
        );
    }
    for r in &m.rows {
        for u in &r.unsupported_faults {
            let _ = writeln!(
                s,
                "\nRocksDB {}: unsupported, not run: {u}",
                r.engine.rocksdb_version
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{}",
        if m.passed {
            "Every engine: no violation, every selftest passed."
        } else {
            "FAILED: a violation or a failed selftest on at least one engine (a violation on stock RocksDB is a finding: docs/findings.md)."
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(version: &str, cycles: u64, secs: f64) -> CrashReport {
        CrashReport {
            engine: Engine {
                rocksdb_version: version.into(),
                rust_rocksdb_version: "0.x".into(),
                librocksdb_sys_version: format!("0.y+{version}"),
                rocksdb_patch: None,
            },
            cycles,
            duration_s: secs,
            ..CrashReport::default()
        }
    }

    #[test]
    fn rows_are_per_engine_and_never_summed_across_engines() {
        let m = matrix(
            &[
                report("11.8.1", 100, 10.0),
                report("8.10.0", 50, 10.0),
                report("11.8.1", 100, 10.0),
            ],
            &[],
        );
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].engine.rocksdb_version, "8.10.0");
        assert_eq!(m.rows[0].cycles, 50);
        assert_eq!(m.rows[1].cycles, 200);
        assert!((m.rows[1].cycles_per_s - 10.0).abs() < 1e-9);
        assert!(m.passed);
        assert!(matrix_markdown(&m).contains("| 8.10.0 | 0.x | 0.y+8.10.0 | 50 | 5.0 |"));
    }

    #[test]
    fn a_failed_selftest_on_one_engine_fails_the_matrix() {
        let r = report("9.9.3", 10, 1.0);
        let failed = SelftestReport {
            engine: r.engine.clone(),
            passed: false,
            budget_s: 60.0,
            control: crate::selftest::ControlResult {
                crash_cycles: 10,
                run_checks: 1,
                violations: 1,
                failures: vec!["power-loss x wal-sync, cycle 3 (seed 9): hole: ...".into()],
            },
            mutants: Vec::new(),
        };
        let m = matrix(&[r], &[failed]);
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].selftest_passed, Some(false));
        assert!(!m.passed);
        assert!(matrix_markdown(&m).contains("FAILED"));
    }
}
