//! Reports: JSON, JUnit XML and Markdown renderings of a crash campaign.

use std::fmt::Write as _;
use std::path::Path;

use crate::campaign::{CrashReport, ModeStats};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one testcase per mode × fault, failed when that cell had a
/// violation.
pub fn junit(r: &CrashReport) -> String {
    let cells: Vec<(&String, &String, &ModeStats)> = r
        .by_fault
        .iter()
        .flat_map(|(f, modes)| modes.iter().map(move |(m, st)| (f, m, st)))
        .collect();
    let failures = cells.iter().filter(|c| c.2.violations > 0).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuite name=\"crashcheck.crash\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        cells.len(),
        r.duration_s
    );
    for (fault, mode, m) in cells {
        let _ = write!(
            s,
            "  <testcase classname=\"crashcheck.crash.{}\" name=\"{mode} x {fault} x {} ({} cycles)\"",
            xml_escape(&r.profile),
            xml_escape(&r.option_profile),
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

/// A Markdown summary a person reads in a minute.
pub fn markdown(r: &CrashReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# crashcheck crash campaign\n");
    let _ = writeln!(
        s,
        "seed {} · fault `{}` · {} cycles in {:.1} s ({:.1} cycles/s) · {} job(s) · {} · profile `{}` · options `{}` · store `{}`\n",
        r.seed,
        r.fault,
        r.cycles,
        r.duration_s,
        r.cycles_per_s,
        r.jobs,
        if r.chain { "chained" } else { "fresh DB per cycle" },
        r.profile,
        r.option_profile,
        r.store
    );
    let _ = writeln!(
        s,
        "| fault | mode | cycles | acked writes | lost within guarantee | survived beyond guarantee | in-flight survived | kills in flush/open/compaction | violations | anomalies |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (fault, mode, m) in r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (f, m, st)))
    {
        let _ = writeln!(
            s,
            "| {fault} | {mode} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.cycles,
            m.acked_writes,
            m.lost_within_guarantee,
            m.survived_beyond_guarantee,
            m.in_flight_survived,
            m.kills_in_background_phase,
            m.violations,
            m.anomalies
        );
    }
    if r.violations.is_empty() {
        let _ = writeln!(s, "\n**No violations.**");
    } else {
        let _ = writeln!(s, "\n## Violations\n");
        for v in &r.violations {
            let _ = writeln!(
                s,
                "- **{}** in `{}` × `{}`, cycle {} (seed {}): {}",
                v.class,
                v.mode,
                v.fault.name(),
                v.cycle,
                v.cycle_seed,
                v.detail
            );
            if let Some(c) = &v.replay {
                let _ = writeln!(s, "  - replay: `{c}`");
            }
        }
    }
    if !r.anomalies.is_empty() {
        let _ = writeln!(s, "\n## Anomalies (not violations)\n");
        for a in &r.anomalies {
            let _ = writeln!(
                s,
                "- {} in `{}`, cycle {}: {}",
                a.kind, a.mode, a.cycle, a.detail
            );
        }
    }
    let _ = writeln!(
        s,
        "\n*lost within guarantee*: acknowledged writes the mode allowed to lose (evidence that kills land between durability points). *survived beyond guarantee*: writes the mode did not promise but RocksDB kept anyway; information, not a violation. Options: `{}`",
        r.options
    );
    s
}

/// Writes `text` to `path`, creating parent directories.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        if !p.as_os_str().is_empty() {
            std::fs::create_dir_all(p)?;
        }
    }
    std::fs::write(path, text)
}
