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

fn junit_suite(r: &CrashReport) -> String {
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
        xml_escape(&r.option_profile),
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

/// An SVG bar chart of cycles, acknowledged writes lost within the
/// guarantee and violations per mode × fault, for the Markdown summary.
pub fn svg_chart(r: &CrashReport) -> String {
    let cells: Vec<(String, &ModeStats)> = r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (format!("{m} / {f}"), st)))
        .collect();
    let row = 34.0;
    let left = 190.0;
    let width = 420.0;
    let h = 50.0 + row * cells.len() as f64;
    let max = cells
        .iter()
        .map(|(_, st)| st.cycles.max(st.lost_within_guarantee))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 120.0
    );
    let _ = writeln!(s, "<text x=\"10\" y=\"18\" font-weight=\"bold\">cycles (blue), acked writes lost within the guarantee (orange), violations (red)</text>");
    for (i, (name, st)) in cells.iter().enumerate() {
        let y = 34.0 + row * i as f64;
        let bar = |v: u64| (v as f64 / max * width).max(if v > 0 { 1.0 } else { 0.0 });
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{}\">{}</text>",
            y + 14.0,
            xml_escape(name)
        );
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"10\" fill=\"#4a7bd0\"/>",
            bar(st.cycles)
        );
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"10\" fill=\"#e8912d\"/>",
            y + 12.0,
            bar(st.lost_within_guarantee)
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">{} cycles, {} lost, {} violations</text>",
            left + width + 6.0 - 0.0,
            y + 14.0,
            if st.violations > 0 { "#c0392b" } else { "#333" },
            st.cycles,
            st.lost_within_guarantee,
            st.violations
        );
    }
    s.push_str("</svg>\n");
    s
}
