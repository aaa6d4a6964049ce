//! An SVG chart for the Markdown summary.

use std::fmt::Write as _;

use super::junit::xml_escape;
use crate::campaign::{CrashReport, ModeStats};

/// One panel of the chart: a quantity, its colour and how to read it from
/// a cell.
struct Panel {
    /// CSS class of its bars (`cycles`, `lost`, `violations`).
    class: &'static str,
    /// Its heading, before the scale.
    title: &'static str,
    colour: &'static str,
    value: fn(&ModeStats) -> u64,
}

const PANELS: [Panel; 3] = [
    Panel {
        class: "cycles",
        title: "cycles",
        colour: "#4a7bd0",
        value: |st| st.cycles,
    },
    Panel {
        class: "lost",
        title: "acked writes lost (allowed)",
        colour: "#e8912d",
        value: |st| st.lost_within_guarantee,
    },
    Panel {
        class: "violations",
        title: "violations",
        colour: "#c0392b",
        value: |st| st.violations,
    },
];

/// Width of one panel's bars at their panel's maximum.
const PANEL_WIDTH: f64 = 200.0;
/// The narrowest bar of a non-zero value, so that no count vanishes.
const MIN_BAR: f64 = 2.0;

/// The width of the bar of `v` in a panel whose largest value is `max`: a
/// linear scale of its own, at least [`MIN_BAR`] wide for any `v > 0`.
fn bar_width(v: u64, max: u64) -> f64 {
    if v == 0 {
        return 0.0;
    }
    (v as f64 / max.max(1) as f64 * PANEL_WIDTH).max(MIN_BAR)
}

/// An SVG bar chart of cycles, acknowledged writes lost within the
/// guarantee and violations per mode × fault, for the Markdown summary.
///
/// Each quantity has its own panel on its own linear scale, headed with
/// the value of a full-width bar: the bars of one quantity compare with
/// each other only (lost writes may outnumber cycles a thousandfold), and
/// a non-zero value is never narrower than 2 px. Every row also states its
/// three values.
pub fn svg_chart(r: &CrashReport) -> String {
    let cells: Vec<(String, &ModeStats)> = r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (format!("{m} / {f}"), st)))
        .collect();
    let (row, left, gap) = (22.0, 190.0, 20.0);
    let top = 56.0;
    let panel_x = |p: usize| left + p as f64 * (PANEL_WIDTH + gap);
    let text_x = panel_x(PANELS.len());
    let h = top + 10.0 + row * cells.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        text_x + 260.0
    );
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"18\" font-weight=\"bold\">per mode / fault: cycles, acknowledged writes lost within the guarantee, violations; each on its own scale</text>"
    );
    // Each panel's scale: its quantity's largest value.
    let maxes: Vec<u64> = PANELS
        .iter()
        .map(|p| cells.iter().map(|(_, st)| (p.value)(st)).max().unwrap_or(0))
        .collect();
    for (p, panel) in PANELS.iter().enumerate() {
        let x = panel_x(p);
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"38\" fill=\"{}\">{}</text>",
            panel.colour, panel.title
        );
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"52\" fill=\"#555\">full bar = {}</text>",
            maxes[p]
        );
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{h}\" stroke=\"#bbb\"/>"
        );
    }
    for (i, (name, st)) in cells.iter().enumerate() {
        let y = top + 4.0 + row * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{}\">{}</text>",
            y + 11.0,
            xml_escape(name)
        );
        for (p, panel) in PANELS.iter().enumerate() {
            let v = (panel.value)(st);
            let _ = writeln!(
                s,
                "<rect class=\"{}\" x=\"{}\" y=\"{y}\" width=\"{:.1}\" height=\"14\" fill=\"{}\"><title>{v}</title></rect>",
                panel.class,
                panel_x(p),
                bar_width(v, maxes[p]),
                panel.colour
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{text_x}\" y=\"{}\" fill=\"{}\">{} cycles, {} lost, {} violations</text>",
            y + 11.0,
            if st.violations > 0 { "#c0392b" } else { "#333" },
            st.cycles,
            st.lost_within_guarantee,
            st.violations
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(cycles: u64, lost: u64, violations: u64) -> ModeStats {
        ModeStats {
            cycles,
            lost_within_guarantee: lost,
            violations,
            ..ModeStats::default()
        }
    }

    /// The widths of the bars of class `class`, in row order.
    fn widths(svg: &str, class: &str) -> Vec<f64> {
        let tag = format!("<rect class=\"{class}\"");
        svg.lines()
            .filter(|l| l.starts_with(&tag))
            .map(|l| {
                let w = l.split("width=\"").nth(1).unwrap();
                w[..w.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    /// A report with cells `a` (10 000 cycles, 3 lost), `b` (5 cycles) and
    /// `c` (5 000 cycles, 1 lost, 1 violation), in that row order.
    fn report() -> CrashReport {
        let mut r = CrashReport::default();
        let modes = r.by_fault.entry("kill".into()).or_default();
        modes.insert("a".into(), cell(10_000, 3, 0));
        modes.insert("b".into(), cell(5, 0, 0));
        modes.insert("c".into(), cell(5_000, 1, 1));
        r
    }

    #[test]
    fn each_quantity_has_its_own_scale() {
        let svg = svg_chart(&report());
        let cycles = widths(&svg, "cycles");
        let lost = widths(&svg, "lost");
        let violations = widths(&svg, "violations");
        assert_eq!(cycles.len(), 3, "{svg}");
        // The largest value of each quantity fills its panel, whatever the
        // other quantities' values: 3 lost writes are not measured
        // against 10 000 cycles.
        assert_eq!(cycles[0], PANEL_WIDTH);
        assert_eq!(lost[0], PANEL_WIDTH);
        assert_eq!(violations[2], PANEL_WIDTH);
        // Bars of one quantity compare with each other, linearly.
        assert!((cycles[2] - PANEL_WIDTH / 2.0).abs() < 0.1, "{cycles:?}");
        assert!((lost[2] - PANEL_WIDTH / 3.0).abs() < 0.1, "{lost:?}");
        // Every non-zero value is visible; zero is no bar.
        assert!(cycles[1] >= MIN_BAR, "5 cycles vanished: {cycles:?}");
        assert_eq!((lost[1], violations[0], violations[1]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn each_scale_is_labelled_with_its_maximum() {
        let svg = svg_chart(&report());
        for label in ["full bar = 10000<", "full bar = 3<", "full bar = 1<"] {
            assert!(svg.contains(label), "no '{label}' in {svg}");
        }
        assert!(svg.contains(">5 cycles, 0 lost, 0 violations<"), "{svg}");
    }

    #[test]
    fn an_empty_report_draws_no_bars() {
        let svg = svg_chart(&CrashReport::default());
        assert!(widths(&svg, "cycles").is_empty());
        assert!(svg.contains("full bar = 0<"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
