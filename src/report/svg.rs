//! An SVG chart for the Markdown summary.

use std::fmt::Write as _;

use super::junit::xml_escape;
use crate::campaign::{CrashReport, ModeStats};

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
