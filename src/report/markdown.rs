//! The Markdown summary, and the rows and hazard notes the terminal
//! summary shares with it.

use std::fmt::Write as _;

use crate::campaign::CrashReport;

/// The title, the engine, what was not run and the campaign's one-line
/// settings (the budget and where it came from among them).
fn header(r: &CrashReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# crashcheck crash campaign\n");
    let _ = writeln!(s, "engine: {}\n", r.engine);
    for u in &r.unsupported_faults {
        let _ = writeln!(s, "unsupported on this engine, not run: {u}\n");
    }
    if let Some(l) = store_lacks_line(r) {
        let _ = writeln!(s, "{l}\n");
    }
    let _ = writeln!(
        s,
        "seed {} · fault `{}` · {} cycles in {:.1} s ({:.1} cycles/s){} · {} job(s) · {} · profile `{}` · options `{}` · store `{}`\n",
        r.seed,
        r.fault,
        r.cycles,
        r.duration_s,
        r.cycles_per_s,
        // Empty in reports written before the budget was recorded.
        match r.budget.as_str() {
            "" => String::new(),
            b => format!(" · budget: {b}"),
        },
        r.jobs,
        match (r.chain, r.lsm.chained_cycles) {
            (false, _) => "fresh DB per cycle",
            // Merged reports of fresh and chained campaigns.
            (true, n) if n < r.cycles => "fresh and chained cycles",
            (true, _) => "chained",
        },
        r.profile,
        r.option_profile,
        r.store
    );
    s
}

/// What the store under test does not support, and what that leaves
/// out of the campaign, or `None` when it lacks nothing.
pub fn store_lacks_line(r: &CrashReport) -> Option<String> {
    if r.store_lacks.is_empty() {
        return None;
    }
    let resume = r.store_lacks.iter().any(|l| l == "resume");
    Some(format!(
        "store `{}` lacks {}: those ops are never generated{} (docs/your-store.md)",
        r.store,
        r.store_lacks.join(", "),
        if resume {
            "; `disk-full` cycles never let the space come back (no DB::Resume): the database is always killed in its error state"
        } else {
            ""
        }
    ))
}

/// A Markdown summary a person reads in a minute.
pub fn markdown(r: &CrashReport) -> String {
    let mut s = header(r);
    let _ = writeln!(
        s,
        "| fault | mode | cycles | acked writes | lost within guarantee | survived beyond guarantee | in-flight survived | kills in flush/open/compaction | kills inside a unit | violations | anomalies |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (fault, mode, m) in r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (f, m, st)))
    {
        let _ = writeln!(
            s,
            "| {fault} | {mode} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.cycles,
            m.acked_writes,
            m.lost_within_guarantee,
            m.survived_beyond_guarantee,
            m.in_flight_survived,
            m.kills_in_background_phase,
            m.kills_mid_unit,
            m.violations,
            m.anomalies
        );
    }
    let _ = writeln!(
        s,
        "\n*Kills inside a unit*: kills that landed between the internal steps of one write unit: at a step point the store under test reports (`store::drive::step_point`), or (one writer) between two WAL appends of one unit. A RocksDB write reaches the WAL as one append unless its record outgrows the write buffer, so stock RocksDB shows few (each a torn WAL record its recovery must drop); other planned kills land right after the unit."
    );
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
    dir_image_section(&mut s, r);
    let shape = &r.lsm.cycles_by_levels_populated;
    if !shape.is_empty() {
        let _ = writeln!(s, "\n## LSM shape at the kill\n");
        let _ = writeln!(s, "| non-empty levels | cycles |\n|---:|---:|");
        for (l, n) in shape {
            let _ = writeln!(s, "| {l} | {n} |");
        }
        let _ = writeln!(s, "\n{}.", r.lsm.summary(r.cycles));
    }
    if let Some(t) = crate::campaign::txn_stats::TxnStats::summary(&r.by_mode) {
        let _ = writeln!(s, "\n## Transactions\n\n{t}.");
    }
    let io = io_error_notes(r);
    if !io.is_empty() {
        let _ = writeln!(s, "\n## Injected I/O errors\n");
        for n in io {
            let _ = writeln!(s, "- {n}");
        }
    }
    let notes = hazard_notes(r);
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Hazards of the configuration (not violations)\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    let aux = copy_rows(r);
    if !aux.is_empty() {
        let _ = writeln!(s, "\n## Checkpoints, backups and plain copies\n");
        let _ = writeln!(s, "| mode | {} |", COPY_COLUMNS.join(" | "));
        let _ = writeln!(s, "|---|{}", "---:|".repeat(COPY_COLUMNS.len()));
        for row in aux {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let _ = writeln!(s, "\nA checkpoint or backup must hold a state between the write before its call and the write after it; a plain recursive copy of the live directory has no such promise (its outcomes are what `cp -r` would give you).");
    }
    let stats = stats_rows(r);
    if !stats.is_empty() {
        let _ = writeln!(s, "\n## RocksDB statistics (writer, per cycle)\n");
        let _ = writeln!(s, "| mode | {} |", STATS_COLUMNS.join(" | "));
        let _ = writeln!(s, "|---|{}", "---:|".repeat(STATS_COLUMNS.len()));
        for row in stats {
            let _ = writeln!(s, "| {} |", row.join(" | "));
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

/// Hazards the configuration allowed, one line each: column families that
/// recovered to different prefixes, and flushes that covered only some
/// column families (`db.flush()` covers only the default one).
pub fn hazard_notes(r: &CrashReport) -> Vec<String> {
    let mut out = Vec::new();
    for (mode, m) in &r.by_mode {
        if m.cf_divergence > 0 {
            out.push(format!(
                "`{mode}`: in {} of {} cycles the column families recovered to different prefixes (per-CF divergence). \
                 Each was a prefix of its own writes, which is all RocksDB promises with the WAL off and atomic_flush off \
                 (or with a flush of only some column families); a WriteBatch spanning column families came back half-applied. \
                 Use atomic_flush and flush all column families together, or keep the WAL.",
                m.cf_divergence, m.cycles
            ));
        }
        // With the WAL the log makes them durable anyway.
        if m.partial_flush_cycles > 0 && mode == "no-wal" {
            out.push(format!(
                "`{mode}`: {} of {} cycles relied on `db.flush()` (default column family only) or flushed only some column families: \
                 without the WAL, writes to the other column families were not made durable by it.",
                m.partial_flush_cycles, m.cycles
            ));
        }
    }
    out
}

/// Injected I/O errors, one line per fault and mode that had any: errors
/// injected on the writer threads, and cycles that ended at a failed op.
pub fn io_error_notes(r: &CrashReport) -> Vec<String> {
    let mut out = Vec::new();
    for (fault, modes) in &r.by_fault {
        for (mode, m) in modes {
            let mut parts = Vec::new();
            if m.io_errors_injected > 0 {
                // With several writers one may die before it counts its own.
                let at_least = if r.writers > 1 { "at least " } else { "" };
                let by_type: Vec<String> = m
                    .io_errors_by_type
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect();
                parts.push(format!(
                    "{at_least}{} I/O errors injected on the writer threads ({}; {} retryable)",
                    m.io_errors_injected,
                    by_type.join(", "),
                    m.io_errors_retryable
                ));
            }
            if m.io_failed_ops > 0 {
                parts.push(format!(
                    "{} ops returned an error in {} cycles (each in flight)",
                    m.io_failed_ops, m.cycles
                ));
            }
            if m.reopens > 0 && m.io_errors_injected > 0 {
                parts.push(format!(
                    "{} reopens, {} of them failed (a failed close or open; in flight, E8)",
                    m.reopens, m.io_failed_reopens
                ));
            }
            if m.background_errors > 0 {
                parts.push(format!("{} background errors", m.background_errors));
            }
            if m.continued_after_error > 0 {
                parts.push(format!(
                    "{} cycles went on after a failed op to the next write, {} of those writes acknowledged",
                    m.continued_after_error, m.acked_after_error
                ));
            }
            if m.resumes + m.resumes_failed > 0 {
                parts.push(format!(
                    "space came back and `DB::Resume` succeeded {} times ({} past a failed write), failed {} times; the disk filled up again during {} of the resumes",
                    m.resumes, m.resumed_past_failed_write, m.resumes_failed, m.resumes_refilled
                ));
            }
            if m.io_failed_reads > 0 {
                parts.push(format!(
                    "{} reads returned an error (allowed; never a wrong value)",
                    m.io_failed_reads
                ));
            }
            if !parts.is_empty() {
                out.push(format!("`{fault}` × `{mode}`: {}", parts.join("; ")));
            }
        }
    }
    out
}

/// Names of the [`copy_rows`] columns after the mode.
pub const COPY_COLUMNS: [&str; 9] = [
    "checkpoints ok",
    "interrupted (nothing left)",
    "backups ok",
    "interrupted (not listed)",
    "copies consistent",
    "copies inconsistent",
    "copies unopenable",
    "copy failed",
    "not judged",
];

/// Names of the [`stats_rows`] columns after the mode.
pub const STATS_COLUMNS: [&str; 6] = [
    "cycles sampled",
    "avg estimated keys",
    "avg SST size",
    "block cache hit rate",
    "compaction CPU total",
    "write stall total",
];

/// One row as `mode: name value, name value, ...` (for terminals).
pub fn labelled(row: &[String], columns: &[&str]) -> String {
    let mode = row.first().map_or("", |m| m.trim_matches('`'));
    let cells: Vec<String> = columns
        .iter()
        .zip(row.iter().skip(1))
        .map(|(c, v)| format!("{c} {v}"))
        .collect();
    format!("{mode}: {}", cells.join(", "))
}

/// Per mode with checkpoints, backups or copies: the outcome counts.
pub fn copy_rows(r: &CrashReport) -> Vec<Vec<String>> {
    r.by_mode
        .iter()
        .filter(|(_, m)| !m.copies.is_empty())
        .map(|(mode, m)| {
            let a = &m.copies;
            let mut row = vec![format!("`{mode}`")];
            row.extend(
                [
                    a.checkpoints_ok,
                    a.checkpoints_interrupted,
                    a.backups_ok,
                    a.backups_interrupted,
                    a.copies_consistent,
                    a.copies_inconsistent,
                    a.copies_unopenable,
                    a.copies_failed,
                    a.not_judged,
                ]
                .map(|v| v.to_string()),
            );
            row
        })
        .collect()
}

/// Per mode with RocksDB figures: averages of the properties, totals of
/// the tickers.
pub fn stats_rows(r: &CrashReport) -> Vec<Vec<String>> {
    r.by_mode
        .iter()
        .filter(|(_, m)| m.rocksdb_samples > 0)
        .map(|(mode, m)| {
            let n = m.rocksdb_samples as f64;
            let st = &m.rocksdb;
            let lookups = st.block_cache_hit + st.block_cache_miss;
            vec![
                format!("`{mode}`"),
                m.rocksdb_samples.to_string(),
                format!("{:.0}", st.estimated_keys as f64 / n),
                format!("{:.1} KiB", st.total_sst_bytes as f64 / n / 1024.0),
                if lookups == 0 {
                    "-".into()
                } else {
                    format!(
                        "{:.1}% of {lookups}",
                        100.0 * st.block_cache_hit as f64 / lookups as f64
                    )
                },
                format!("{:.1} ms", st.compaction_cpu_micros as f64 / 1000.0),
                format!("{:.1} ms", st.write_stall_micros as f64 / 1000.0),
            ]
        })
        .collect()
}

/// How often the power cuts found directory entries RocksDB (or the
/// store) had not made durable, and what the crash image did with them.
fn dir_image_section(s: &mut String, r: &CrashReport) {
    let rows: Vec<_> = r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (f, m, st)))
        .filter(|(_, _, m)| m.dir_image_cycles > 0)
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Directory entries at the power cut\n");
    let _ = writeln!(
        s,
        "| fault | mode | cycles with a directory image | with unsynced entries at the kill | files dropped | renames undone |\n|---|---|---:|---:|---:|---:|"
    );
    for (f, mode, m) in rows {
        let _ = writeln!(
            s,
            "| {f} | {mode} | {} | {} | {} | {} |",
            m.dir_image_cycles, m.dir_unsynced_cycles, m.dir_entries_dropped, m.renames_undone
        );
    }
    let _ = writeln!(
        s,
        "\nA power cut loses the files created, and undoes the renames made, since their directory's last fsync (docs/durability.md D1-D2)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::ModeStats;

    #[test]
    fn the_header_states_the_budget_and_its_source() {
        let r = CrashReport {
            cycles: 12,
            budget: "duration 20m (CRASHCHECK_DURATION)".into(),
            ..CrashReport::default()
        };
        let h = header(&r);
        assert!(
            h.contains(" · budget: duration 20m (CRASHCHECK_DURATION) · "),
            "{h}"
        );
    }

    #[test]
    fn a_report_from_before_the_budget_loads_and_renders_without_it() {
        let mut json = serde_json::to_value(CrashReport::default()).unwrap();
        assert!(json.as_object_mut().unwrap().remove("budget").is_some());
        let r: CrashReport = serde_json::from_value(json).unwrap();
        assert_eq!(r.budget, "");
        assert!(!header(&r).contains("budget"), "{}", header(&r));
    }

    #[test]
    fn merged_reports_list_each_budget_once() {
        let part = |b: &str| CrashReport {
            budget: b.into(),
            ..CrashReport::default()
        };
        let m = CrashReport::merge(
            &[
                part("cycles 100 (--cycles)"),
                part("cycles 100 (--cycles)"),
                part(""),
                part("duration 20m (CRASHCHECK_DURATION)"),
            ],
            true,
        );
        assert_eq!(
            m.budget,
            "cycles 100 (--cycles); duration 20m (CRASHCHECK_DURATION)"
        );
    }

    #[test]
    fn the_directory_image_has_a_row_per_fault_and_mode_that_had_one() {
        let pl = ModeStats {
            cycles: 50,
            dir_image_cycles: 50,
            dir_unsynced_cycles: 21,
            dir_entries_dropped: 30,
            renames_undone: 2,
            ..ModeStats::default()
        };
        let mut r = CrashReport::default();
        r.by_fault
            .insert("power-loss".into(), [("wal".to_string(), pl)].into());
        r.by_fault.insert(
            "kill".into(),
            [(
                "wal".to_string(),
                ModeStats {
                    cycles: 50,
                    ..ModeStats::default()
                },
            )]
            .into(),
        );
        let mut s = String::new();
        dir_image_section(&mut s, &r);
        assert!(s.contains("| power-loss | wal | 50 | 21 | 30 | 2 |"), "{s}");
        assert!(!s.contains("| kill |"), "{s}");
        let mut none = String::new();
        dir_image_section(&mut none, &CrashReport::default());
        assert!(none.is_empty());
    }
}
