//! `crash` and `merge-reports`: campaigns and their reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::args::{CrashArgs, MatrixArgs, MergeArgs};
use super::*;
use crashcheck::campaign::{self, CrashConfig, CrashReport, ModeStats};
use crashcheck::fault::Fault;
use crashcheck::mutants::factory_by_name;

/// One line on the power cuts' directory images, when there were any.
fn print_dir_image(r: &CrashReport) {
    let dirs = r.by_mode.values().fold(ModeStats::default(), |mut a, m| {
        a.add(m);
        a
    });
    if dirs.dir_image_cycles > 0 {
        println!(
            "directory entries at the power cut: {} of {} cycles had unsynced entries; {} file(s) dropped, {} rename(s) undone",
            dirs.dir_unsynced_cycles, dirs.dir_image_cycles, dirs.dir_entries_dropped, dirs.renames_undone
        );
    }
}

/// What the store under test lacks, and what that leaves out.
fn print_store_lacks(r: &CrashReport) {
    if let Some(l) = crashcheck::report::store_lacks_line(r) {
        println!("{}", l.replace('`', "'"));
    }
}

fn print_crash_summary(r: &CrashReport) {
    println!(
        "{} cycles in {:.1} s ({:.1} cycles/s), fault {}, seed {}{}",
        r.cycles,
        r.duration_s,
        r.cycles_per_s,
        r.fault,
        r.seed,
        match r.budget.as_str() {
            "" => String::new(),
            b => format!(", budget {b}"),
        }
    );
    println!("engine: {}", r.engine);
    for u in &r.unsupported_faults {
        println!("unsupported here, not run: {u}");
    }
    println!(
        "{:<19} {:<17} {:>7} {:>9} {:>11} {:>11} {:>10} {:>8}",
        "fault", "mode", "cycles", "acked", "lost-ok", "beyond", "violations", "anomal."
    );
    for (f, m, s) in r
        .by_fault
        .iter()
        .flat_map(|(f, ms)| ms.iter().map(move |(m, st)| (f, m, st)))
    {
        println!(
            "{:<19} {:<17} {:>7} {:>9} {:>11} {:>11} {:>10} {:>8}",
            f,
            m,
            s.cycles,
            s.acked_writes,
            s.lost_within_guarantee,
            s.survived_beyond_guarantee,
            s.violations,
            s.anomalies
        );
    }
    println!(
        "acked: writes acknowledged before the crash; lost-ok: acknowledged writes lost where the mode allows it; \
         beyond: writes kept although the mode did not promise it (information, not a violation)"
    );
    print_dir_image(r);
    print_store_lacks(r);
    let mid: u64 = r.by_mode.values().map(|m| m.kills_mid_unit).sum();
    if mid > 0 {
        println!(
            "kills inside a write unit (between a store's internal steps): {mid} of {} cycles",
            r.cycles
        );
    }
    println!(
        "{}",
        match r.violations.len() {
            0 => "no violations".to_string(),
            n => format!("{n} violation(s):"),
        }
    );
    for v in &r.violations {
        println!(
            "VIOLATION {} ({} x {}, cycle {}): {}",
            v.class,
            v.mode,
            v.fault.name(),
            v.cycle,
            v.detail
        );
        if let Some(c) = &v.replay {
            println!("  replay: {c}");
        }
    }
    print_workload_lines(r);
    for n in crashcheck::report::io_error_notes(r) {
        println!("io errors: {}", n.replace('`', ""));
    }
    for n in crashcheck::report::hazard_notes(r) {
        println!("hazard (not a violation): {}", n.replace('`', ""));
    }
    use crashcheck::report::{copy_rows, labelled, stats_rows, COPY_COLUMNS, STATS_COLUMNS};
    for (title, rows, columns) in [
        (
            "checkpoints, backups and plain copies:",
            copy_rows(r),
            &COPY_COLUMNS[..],
        ),
        (
            "RocksDB statistics (writer, per cycle):",
            stats_rows(r),
            &STATS_COLUMNS[..],
        ),
    ] {
        if !rows.is_empty() {
            println!("{title}");
            for row in rows {
                println!("  {}", labelled(&row, columns));
            }
        }
    }
    for a in &r.anomalies {
        println!(
            "anomaly {} ({} x {}, cycle {}): {}",
            a.kind,
            a.mode,
            a.fault.name(),
            a.cycle,
            a.detail
        );
        if let Some(art) = &a.artifact {
            println!("  artifact: {}", art.display());
        }
    }
}

/// What the cycles exercised: the LSM shape at the kill and its summary,
/// and the transactions (each only when there is something to say).
fn print_workload_lines(r: &CrashReport) {
    let shape = &r.lsm.cycles_by_levels_populated;
    if !shape.is_empty() {
        let cells: Vec<String> = shape.iter().map(|(l, n)| format!("{l}: {n}")).collect();
        println!(
            "LSM shape at the kill (non-empty levels: cycles): {}",
            cells.join(", ")
        );
        println!("LSM: {}", r.lsm.summary(r.cycles));
    }
    if let Some(t) = crashcheck::campaign::txn_stats::TxnStats::summary(&r.by_mode) {
        println!("transactions: {t}");
    }
}

fn write_reports(
    r: &CrashReport,
    json: Option<&Path>,
    junit: Option<&Path>,
    md: Option<&Path>,
) -> Res<()> {
    use crashcheck::report;
    if let Some(p) = json {
        report::write_file(p, &serde_json::to_string_pretty(r)?)?;
    }
    if let Some(p) = junit {
        report::write_file(p, &report::junit(r))?;
    }
    if let Some(p) = md {
        report::write_file(p, &report::markdown(r))?;
    }
    Ok(())
}

fn progress_printer(total: Option<u64>, quiet: bool) -> Option<Arc<campaign::ProgressFn>> {
    if quiet {
        return None;
    }
    let tty =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none();
    let start = std::time::Instant::now();
    if tty {
        let bar = match total {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cycles {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        return Some(Arc::new(move |done, viol| {
            bar.set_position(done);
            let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{rate:.1}/s, {viol} violations"));
        }));
    }
    let last = std::sync::Mutex::new(std::time::Instant::now());
    Some(Arc::new(move |done, viol| {
        if let Ok(mut l) = last.lock() {
            if l.elapsed() >= Duration::from_secs(5) {
                *l = std::time::Instant::now();
                let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
                eprintln!("crashcheck: {done} cycles, {rate:.1}/s, {viol} violations");
            }
        }
    }))
}

/// `--fault`: a comma-separated list, or `all` (with several writers, the
/// faults that work with them).
fn crash_faults(arg: &str, writers: usize) -> Res<Vec<Fault>> {
    if arg == "all" {
        return Ok(Fault::all()
            .iter()
            .copied()
            .filter(|f| f.works_with_writers(writers))
            .collect());
    }
    arg.split(',')
        .map(|f| f.trim().parse().map_err(EnvError))
        .collect()
}

/// `--shard I/N` (none: the whole campaign).
fn parse_shard(arg: Option<&str>) -> Res<(u64, u64)> {
    let Some(s) = arg else {
        return Ok((0, 1));
    };
    match s
        .split_once('/')
        .map(|(i, n)| (i.trim().parse::<u64>(), n.trim().parse::<u64>()))
    {
        Some((Ok(i), Ok(n))) => Ok((i, n)),
        _ => fail(format!("--shard '{s}': expected I/N with 0 <= I < N")),
    }
}

/// Every output is checked before the first cycle, not after the run.
fn check_outputs(a: &CrashArgs) -> Res<()> {
    for (flag, p) in [
        ("--report", &a.out.report),
        ("--junit", &a.out.junit),
        ("--markdown", &a.out.markdown),
    ] {
        if let Some(p) = p {
            crashcheck::report::check_output(p).map_err(|e| EnvError(format!("{flag} {e}")))?;
        }
    }
    crashcheck::report::check_dir_writable(&a.artifacts, &a.artifacts)
        .map_err(|e| EnvError(format!("--artifacts {e}")))
}

/// The Prometheus endpoint at `addr`.
fn start_metrics(addr: &str) -> Res<crashcheck::metrics::MetricsServer> {
    let m = crashcheck::metrics::serve(addr).map_err(EnvError)?;
    eprintln!(
        "crashcheck: Prometheus metrics at http://{}/metrics",
        m.addr
    );
    Ok(m)
}

pub(super) fn cmd_crash(a: CrashArgs) -> Res<u8> {
    let prof = profile(a.common.profile.as_deref(), "crash")?;
    let user = options(&a.common)?;
    let mut opts = user.opts.clone();
    if a.cfs != 1 {
        // Checked by CrashConfig::validate (1 to keyspace::MAX_CFS).
        opts.column_families = a.cfs;
    }
    opts.atomic_flush |= a.atomic_flush;
    opts.statistics = !a.no_stats;
    let forced_style = a
        .compaction_style
        .as_deref()
        .map(crashcheck::store::option_profiles::compaction_style_options)
        .transpose()
        .map_err(EnvError)?;
    let cf_flush = a
        .cf_flush
        .as_deref()
        .map(|s| s.parse::<crashcheck::workload::FlushStyle>())
        .transpose()
        .map_err(EnvError)?;
    let faults = crash_faults(&a.fault, a.writers)?;
    let duration = a.duration.as_deref().map(parse_duration).transpose()?;
    let shard = parse_shard(a.shard.as_deref())?;
    let cycles = match (a.cycles, duration) {
        (None, None) => Some(100),
        (c, _) => c,
    };
    let factory = factory_by_name(&a.common.store).map_err(EnvError)?;
    let mut cfg = CrashConfig {
        modes: modes(&a.mode)?,
        faults,
        cycles,
        duration,
        budget_source: match (a.cycles, duration) {
            (Some(_), _) => "--cycles",
            (None, Some(_)) => "--duration",
            (None, None) => "default",
        }
        .into(),
        seed: a.seed,
        chain: a.chain,
        deep_base: !a.empty_start,
        seqno_zero_opening: a.empty_start,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        ops_per_cycle: a.ops,
        profile: prof,
        options: opts,
        forced_options: forced_style.unwrap_or_default().to_string(),
        option_profile: a.option_profile.clone().unwrap_or_else(|| {
            if user.source.is_some() || a.common.options.is_some() {
                "defaults".into()
            } else {
                "deep".into()
            }
        }),
        work_dir: PathBuf::new(),
        artifacts: a.artifacts.clone(),
        timeout: parse_duration(&a.timeout)?,
        shrink: !a.no_shrink,
        store_name: a.common.store.clone(),
        replay_command: None,
        stop_on_violation: a.stop_on_violation,
        shard,
        ack_kills_only: false,
        writers: a.writers,
        cf_flush,
    };
    cfg.validate()?;
    check_outputs(&a)?;
    let wd = work_dir(a.common.dir.as_deref())?;
    cfg.work_dir = wd.path().to_path_buf();
    let metrics = match &a.metrics_addr {
        Some(addr) => Some(start_metrics(addr)?),
        None => None,
    };
    let sink = metrics
        .as_ref()
        .map(|m| m.sink() as Arc<dyn campaign::CycleSink>);
    stop_campaigns_on_interrupt();
    let mut r = campaign::run_campaign_with(
        cfg,
        Arc::from(factory),
        progress_printer(cycles, a.quiet),
        sink,
    )?;
    r.options_source = user.source;
    r.options_overridden = user.overrides;
    print_crash_summary(&r);
    write_reports(
        &r,
        a.out.report.as_deref(),
        a.out.junit.as_deref(),
        a.out.markdown.as_deref(),
    )?;
    if !r.violations.is_empty() {
        return Ok(1);
    }
    if r.interrupted {
        eprintln!(
            "crashcheck: interrupted after {} cycles; the report covers only those",
            r.cycles
        );
        return Ok(130);
    }
    Ok(0)
}

pub(super) fn cmd_merge(a: MergeArgs) -> Res<u8> {
    let mut rs = Vec::new();
    for p in &a.inputs {
        let text =
            std::fs::read_to_string(p).map_err(|e| EnvError(format!("{}: {e}", p.display())))?;
        let r: CrashReport = serde_json::from_str(&text).map_err(|e| {
            EnvError(format!(
                "{}: not a crashcheck crash report: {e}",
                p.display()
            ))
        })?;
        rs.push(r);
    }
    if let Some(other) = rs.iter().find(|r| r.engine != rs[0].engine) {
        return Err(EnvError(format!(
            "the reports come from different engines ({} and {}); counts are never added across RocksDB versions: use `crashcheck matrix`",
            rs[0].engine, other.engine
        )));
    }
    let m = CrashReport::merge(&rs, !a.sequential);
    write_reports(&m, a.out.report.as_deref(), None, a.out.markdown.as_deref())?;
    if let Some(p) = &a.out.junit {
        crashcheck::report::write_file(p, &crashcheck::report::junit_many(&rs))?;
    }
    if let Some(p) = &a.svg {
        crashcheck::report::write_file(p, &crashcheck::report::svg_chart(&m))?;
    }
    print_crash_summary(&m);
    Ok(if m.violations.is_empty() { 0 } else { 1 })
}

pub(super) fn cmd_matrix(a: MatrixArgs) -> Res<u8> {
    let (mut crash, mut selftests) = (Vec::new(), Vec::new());
    for p in &a.inputs {
        let text =
            std::fs::read_to_string(p).map_err(|e| EnvError(format!("{}: {e}", p.display())))?;
        let bad = |e: serde_json::Error| {
            EnvError(format!(
                "{}: not a crashcheck crash or selftest report: {e}",
                p.display()
            ))
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
        if v.get("mutants").is_some() {
            selftests.push(serde_json::from_value(v).map_err(bad)?);
        } else {
            crash.push(serde_json::from_value::<CrashReport>(v).map_err(bad)?);
        }
    }
    let m = crashcheck::matrix::matrix(&crash, &selftests);
    let md = crashcheck::matrix::matrix_markdown(&m);
    if let Some(p) = &a.markdown {
        crashcheck::report::write_file(p, &md)?;
    }
    if let Some(p) = &a.report {
        let json = serde_json::to_string_pretty(&m).map_err(|e| EnvError(e.to_string()))?;
        crashcheck::report::write_file(p, &json)?;
    }
    print!("{md}");
    Ok(if m.passed { 0 } else { 1 })
}
