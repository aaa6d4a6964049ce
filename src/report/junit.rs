//! JUnit XML: one test case per mode and fault, one suite per run.

use std::fmt::Write as _;

use crate::campaign::{CrashReport, ModeStats};

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one testcase per mode × fault, failed when that cell had a
/// violation.
pub fn junit(r: &CrashReport) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        junit_suite(r)
    )
}

/// Several campaigns (e.g. one per option profile, or shards) as one JUnit
/// document: a `<testsuite>` each.
pub fn junit_many(rs: &[CrashReport]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for r in rs {
        s.push_str(&junit_suite(r));
    }
    s.push_str("</testsuites>\n");
    s
}

/// A short name for a campaign's setting: the option profile, plus the
/// workload profile, column families and writers when not the defaults
/// (`defaults+checkpoint+cfs3+writers4`), so merged runs stay apart.
pub fn run_label(r: &CrashReport) -> String {
    let mut l = r.option_profile.clone();
    if r.chain {
        l.push_str("+chain");
    }
    if r.profile != "crash" {
        l.push_str(&format!("+{}", r.profile));
    }
    let cfs = r
        .options
        .split(';')
        .find_map(|kv| kv.strip_prefix("column_families="))
        .unwrap_or("1");
    if cfs != "1" {
        l.push_str(&format!("+cfs{cfs}"));
    }
    if r.options.contains("atomic_flush=true") {
        l.push_str("+atomic");
    }
    if r.writers > 1 {
        l.push_str(&format!("+writers{}", r.writers));
    }
    l
}

fn junit_suite(r: &CrashReport) -> String {
    let label = run_label(r);
    let cells: Vec<(&String, &String, &ModeStats)> = r
        .by_fault
        .iter()
        .flat_map(|(f, modes)| modes.iter().map(move |(m, st)| (f, m, st)))
        .collect();
    let failures = cells.iter().filter(|c| c.2.violations > 0).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<testsuite name=\"crashcheck.crash.{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        xml_escape(&label),
        cells.len(),
        r.duration_s
    );
    let e = &r.engine;
    let _ = writeln!(s, "  <properties>");
    for (k, v) in [
        ("rocksdb_version", e.rocksdb_version.as_str()),
        ("rust_rocksdb_version", e.rust_rocksdb_version.as_str()),
        ("librocksdb_sys_version", e.librocksdb_sys_version.as_str()),
        ("rocksdb_patch", e.rocksdb_patch.as_deref().unwrap_or("")),
        ("seed", &r.seed.to_string()),
    ] {
        let _ = writeln!(
            s,
            "    <property name=\"{k}\" value=\"{}\"/>",
            xml_escape(v)
        );
    }
    let _ = writeln!(s, "  </properties>");
    for (fault, mode, m) in cells {
        let _ = write!(
            s,
            "  <testcase classname=\"crashcheck.crash.{}\" name=\"{mode} x {fault} x {} ({} cycles)\"",
            xml_escape(&r.profile),
            xml_escape(&label),
            m.cycles
        );
        let vs: Vec<_> = r
            .violations
            .iter()
            .filter(|v| v.mode.name() == mode && v.fault.name() == fault)
            .collect();
        if vs.is_empty() {
            s.push_str("/>\n");
        } else {
            s.push_str(">\n");
            let mut body = String::new();
            for v in &vs {
                let _ = writeln!(
                    body,
                    "cycle {} ({}): {}{}",
                    v.cycle,
                    v.class,
                    v.detail,
                    v.replay
                        .as_ref()
                        .map(|c| format!("\nreplay: {c}"))
                        .unwrap_or_default()
                );
            }
            let _ = writeln!(
                s,
                "    <failure message=\"{} violation(s)\">{}</failure>\n  </testcase>",
                vs.len(),
                xml_escape(&body)
            );
        }
    }
    s.push_str("</testsuite>\n");
    s
}
