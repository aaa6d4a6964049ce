//! The crashcheck command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crashcheck::campaign::{self, CrashConfig, CrashReport};
use crashcheck::check::run_ops;
use crashcheck::oracle::Fault;
use crashcheck::repro::{self, Case, CheckKind};
use crashcheck::store::user_options::{absorb, parse_options_file, split_options, Override};
use crashcheck::store::{factory_by_name, lock_holder};
use crashcheck::store::{StoreOptions, WalMode};
use crashcheck::verify::Verdict;
use crashcheck::workload::{Generator, Profile};
use crashcheck::{bench, selftest};

const ABOUT: &str = "Persistence-consistency checker for RocksDB.

crashcheck runs seeded random operation sequences against real RocksDB and
an in-memory reference model. `run` checks every read in-process. `crash`
forks a child that writes, kills it with SIGKILL at a random moment, reopens
the database and checks that it holds exactly the state after some prefix of
the writes, with every WriteBatch whole and every write the durability mode
promised to keep (see docs/durability.md).

Exit status: 0 consistent, 1 violation found, 2 usage or environment error.";

const EXAMPLES: &str = "Examples:
  crashcheck run --seed 1 --ops 20000
  crashcheck crash --mode all --cycles 400 --seed 7 --report r.json
  crashcheck crash --mode all --fault all --options-file /var/lib/app/db/OPTIONS-000042
  crashcheck crash --mode no-wal --duration 20m --chain
  crashcheck replay crashcheck-artifacts/cycle-12-wal-hole/case.repro
  crashcheck recovery-modes --trials 20 --report m.json
  crashcheck selftest --budget 120s --report s.json
  crashcheck bench crash --seconds 10

Environment: CRASHCHECK_DIR (where databases are created; default: a new
temporary directory), CRASHCHECK_SEED (default seed).";

#[derive(Parser)]
#[command(name = "crashcheck", version, about = ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run N ops against RocksDB and the model in-process, checking every read.
    Run(RunArgs),
    /// Crash campaign: fork, SIGKILL at random points, reopen, verify.
    Crash(Box<CrashArgs>),
    /// Rerun a saved repro file and reach the same verdict.
    Replay(ReplayArgs),
    /// Prove the checkers can fail: run broken stores (mutants) until caught.
    Selftest(SelftestArgs),
    /// Damage WALs and check each WAL recovery mode does what RocksDB documents.
    RecoveryModes(RecoveryArgs),
    /// Measure throughput against raw RocksDB / a bare crash loop.
    Bench(BenchArgs),
    /// Turn a cargo-fuzz artifact (target ops or crash) into a repro file.
    FuzzRepro(FuzzReproArgs),
    /// Write fuzz corpus seeds made from the workload generator.
    FuzzSeed(FuzzSeedArgs),
    /// Combine JSON reports of `crash` runs (e.g. the shards of a CI
    /// matrix) into one JSON, JUnit and Markdown report.
    MergeReports(MergeArgs),
}

#[derive(Args)]
struct FuzzReproArgs {
    /// The fuzz target the artifact came from: ops or crash.
    target: String,
    /// The artifact (e.g. fuzz/artifacts/ops/crash-...).
    artifact: PathBuf,
    /// Where to write the repro file.
    #[arg(long, short, default_value = "crashcheck-artifacts/fuzz.repro")]
    out: PathBuf,
}

#[derive(Args)]
struct FuzzSeedArgs {
    /// Corpus root (one directory per target is created below it).
    #[arg(long, default_value = "fuzz/corpus")]
    out: PathBuf,
    /// Seeds per target.
    #[arg(long, default_value_t = 16)]
    count: u64,
}

#[derive(Args)]
struct MergeArgs {
    /// JSON reports written by `crash --report`.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    out: ReportPaths,
    /// SVG chart of cycles and writes lost per mode.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// The runs were one after another (e.g. the nightly's campaigns), not
    /// side by side (shards): wall times add up.
    #[arg(long)]
    sequential: bool,
}

#[derive(Args)]
struct RecoveryArgs {
    /// Trials per cell (mode x damage x WAL x compression).
    #[arg(long, default_value_t = 5)]
    trials: u32,
    /// Seed (trial i uses seed + i).
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    seed: u64,
    /// JSON report path.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Markdown table path.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Only cells matching MODE:DAMAGE@WAL (each part may be *), comma-separated.
    #[arg(long)]
    only: Option<String>,
    /// WAL compression: none, zstd or both.
    #[arg(long, default_value = "both")]
    wal_compression: String,
    /// Parallel trials (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct Common {
    /// Directory in which crashcheck creates its working directory
    /// (never touches anything else there). Default: system temp dir.
    #[arg(long, env = "CRASHCHECK_DIR")]
    dir: Option<PathBuf>,
    /// Workload profile: default, write-heavy, read-heavy, batch-heavy,
    /// large-values, small-keyspace, kv, crash (default of `crash`),
    /// checkpoint (crash plus checkpoints, backups and plain copies).
    #[arg(long)]
    profile: Option<String>,
    /// Options as `key=value;...`: crashcheck's own keys (see README, e.g.
    /// "write_buffer_size=65536;compression=zstd") and any RocksDB option in
    /// RocksDB's options-string form (e.g. "use_fsync=true;bytes_per_sync=1048576").
    #[arg(long)]
    options: Option<String>,
    /// A RocksDB OPTIONS file (e.g. OPTIONS-000007 from your production
    /// database directory): run with those options. crashcheck overrides
    /// only what it must (and says so).
    #[arg(long)]
    options_file: Option<PathBuf>,
    /// Store under test: `rocksdb`, or `mutant:<name>` (see `selftest`).
    #[arg(long, default_value = "rocksdb")]
    store: String,
}

#[derive(Args)]
struct RunArgs {
    /// Seed of the op sequence.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    seed: u64,
    /// Number of ops.
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    /// Durability mode (wal-sync, wal, wal-manual-flush, no-wal).
    #[arg(long, default_value = "wal")]
    mode: String,
    /// Use this database directory (must not exist, or be empty); it is
    /// kept afterwards. Default: a fresh directory inside --dir.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Where to write the repro file on a violation.
    #[arg(long)]
    repro_out: Option<PathBuf>,
    /// Do not shrink a failing sequence.
    #[arg(long)]
    no_shrink: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct CrashArgs {
    /// Durability mode(s): wal-sync, wal, wal-manual-flush, no-wal, or all
    /// (comma-separated list allowed).
    #[arg(long, default_value = "all")]
    mode: String,
    /// Fault(s) to inject, comma-separated: kill (SIGKILL; the OS page
    /// cache survives); power-loss (SIGKILL on a filesystem that keeps
    /// unsynced data in process memory, so it is lost);
    /// power-loss-partial (the WAL's unsynced tail partly written back);
    /// power-loss-zeros / power-loss-garbage (power loss, then a zeroed or
    /// torn tail on the newest WAL); or all.
    #[arg(long, default_value = "kill")]
    fault: String,
    /// Number of crash cycles.
    #[arg(long, conflicts_with = "duration")]
    cycles: Option<u64>,
    /// Run for this long instead (e.g. 60s, 20m, 1h).
    #[arg(long)]
    duration: Option<String>,
    /// Campaign seed.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    seed: u64,
    /// Carry each recovered database into the next cycle (deep LSM trees).
    #[arg(long)]
    chain: bool,
    /// Parallel cycle streams (default: number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Ops per cycle.
    #[arg(long, default_value_t = 300)]
    ops: usize,
    #[command(flatten)]
    out: ReportPaths,
    /// Directory for failure artifacts.
    #[arg(long, default_value = "crashcheck-artifacts")]
    artifacts: PathBuf,
    /// A child running longer than this is reported as a hang (a cycle
    /// normally takes tens of milliseconds).
    #[arg(long, default_value = "20s")]
    timeout: String,
    /// Do not shrink the first violation.
    #[arg(long)]
    no_shrink: bool,
    /// Stop at the first violation.
    #[arg(long)]
    stop_on_violation: bool,
    /// Run shard I of N (e.g. 2/4): this runner takes every N-th cycle of
    /// the campaign, so N CI runners share it; merge with `merge-reports`.
    #[arg(long)]
    shard: Option<String>,
    /// Option profile per cycle: defaults, tiny (tiny memtables and caches:
    /// flushes and compactions all the time) or randomized (compression,
    /// sizes, bloom, caches, fsync, pipelined/unordered writes, compaction
    /// style... drawn per cycle and recorded in artifacts).
    #[arg(long, default_value = "defaults")]
    option_profile: String,
    /// Column families (1-8). Keys route to them by a `c<N>/` prefix;
    /// WriteBatches span them. Without the WAL and without
    /// --atomic-flush each column family may recover to its own prefix:
    /// counted as a hazard (cf-divergence), not a violation.
    #[arg(long, default_value_t = 1)]
    cfs: u8,
    /// Turn on RocksDB's atomic_flush: flushes of several column families
    /// commit as one unit, so a WAL-less database keeps one common prefix.
    #[arg(long)]
    atomic_flush: bool,
    /// Which flush the workload uses with several column families: all
    /// (`flush all`), mixed (all, single column families and `flush`) or
    /// default (`flush`: db.flush(), the default column family only).
    /// Default: all with --atomic-flush, mixed without.
    #[arg(long)]
    cf_flush: Option<String>,
    /// Concurrent writer threads per cycle (1-16), each over its own key
    /// partition, plus batches that cross into other partitions; each
    /// writer must recover to a prefix of its own writes. Faults: kill and
    /// power-loss.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Do not collect RocksDB statistics for the report (slightly faster).
    #[arg(long)]
    no_stats: bool,
    /// Serve Prometheus metrics (cycles, violations, cycles/s, RocksDB
    /// figures) at http://ADDR/metrics while the campaign runs, e.g.
    /// 127.0.0.1:9464.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    common: Common,
}

/// Where a campaign's reports go.
#[derive(Args)]
struct ReportPaths {
    /// JSON report path.
    #[arg(long)]
    report: Option<PathBuf>,
    /// JUnit XML report path.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Markdown summary path.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A repro file written by `run` or `crash`.
    file: PathBuf,
    /// Directory in which the replay creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct SelftestArgs {
    /// Total time budget (e.g. 120s), shared by the mutants.
    #[arg(long, default_value = "120s")]
    budget: String,
    /// JSON report path.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Only these mutants (comma-separated).
    #[arg(long)]
    only: Option<String>,
    /// Campaign seed.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    seed: u64,
    /// Parallel streams per crash check.
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// What to measure: `crash` (cycles/s against a bare fork-kill-reopen
    /// loop) or `run` (checked ops/s against raw RocksDB ops/s).
    what: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Parallel streams (crash).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Ops per cycle (crash) or in total (run).
    #[arg(long)]
    ops: Option<usize>,
    /// Column families (crash): keys spread over them on both sides.
    #[arg(long, default_value_t = 1)]
    cfs: u8,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    dir: Option<PathBuf>,
    /// JSON output path.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// A failure that is not a violation: bad input or environment (exit 2).
struct EnvError(String);

impl<E: std::fmt::Display> From<E> for EnvError {
    fn from(e: E) -> Self {
        EnvError(e.to_string())
    }
}

type Res<T> = Result<T, EnvError>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(EnvError(msg.into()))
}

/// Parses `60s`, `20m`, `2h`, `500ms` or plain seconds.
fn parse_duration(s: &str) -> Res<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Duration::from_secs_f64(v * mult)),
        _ => fail(format!("bad duration '{s}' (examples: 90s, 20m, 1h)")),
    }
}

fn profile(name: Option<&str>, default: &str) -> Res<Profile> {
    let n = name.unwrap_or(default);
    Profile::by_name(n).ok_or_else(|| {
        EnvError(format!(
            "unknown profile '{n}' (known: {})",
            Profile::names().join(", ")
        ))
    })
}

/// Options from `--options` and `--options-file`, validated by RocksDB in a
/// forked child; with the settings crashcheck overrode.
struct UserOptions {
    opts: StoreOptions,
    overrides: Vec<Override>,
    source: Option<String>,
}

fn options(c: &Common) -> Res<UserOptions> {
    let mut o = StoreOptions::default();
    let mut overrides = Vec::new();
    let mut source = None;
    if let Some(path) = &c.options_file {
        let p = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| EnvError(format!("--options-file {p}: {e}")))?;
        let (raw, ignored) =
            parse_options_file(&text).map_err(|e| EnvError(format!("--options-file {p}: {e}")))?;
        overrides.extend(
            absorb(&mut o, &raw).map_err(|e| EnvError(format!("--options-file {p}: {e}")))?,
        );
        for cf in ignored {
            eprintln!("crashcheck: --options-file {p}: [{cf}] ignored (crashcheck tests the default column family)");
        }
        source = Some(p.to_string());
    }
    if let Some(s) = &c.options {
        let (ours, theirs): (Vec<String>, Vec<String>) =
            split_options(s).into_iter().partition(|kv| {
                StoreOptions::KEYS.contains(&kv.split('=').next().unwrap_or("").trim())
            });
        o.apply_options_string(&ours.join(";"))
            .map_err(|e| EnvError(format!("--options: {e}")))?;
        overrides.extend(
            absorb(&mut o, &theirs.join(";")).map_err(|e| EnvError(format!("--options: {e}")))?,
        );
        source.get_or_insert_with(|| "--options".into());
    }
    if !o.rocksdb.is_empty() {
        if let Err(msg) = crashcheck::crash::validate_options(&o)? {
            return fail(format!(
                "{}: RocksDB rejects the options: {msg}",
                source.as_deref().unwrap_or("--options")
            ));
        }
    }
    for ov in &overrides {
        eprintln!(
            "crashcheck: overriding {}={} with {}: {}",
            ov.key, ov.theirs, ov.ours, ov.why
        );
    }
    Ok(UserOptions {
        opts: o,
        overrides,
        source,
    })
}

fn modes(s: &str) -> Res<Vec<WalMode>> {
    if s == "all" {
        return Ok(WalMode::ALL.to_vec());
    }
    s.split(',')
        .map(|m| m.trim().parse::<WalMode>().map_err(EnvError))
        .collect()
}

/// Creates crashcheck's own working directory inside `dir` (or the system
/// temp dir). Everything crashcheck writes goes below it, and it is removed
/// at the end.
fn work_dir(dir: Option<&Path>) -> Res<tempfile::TempDir> {
    let b = {
        let mut b = tempfile::Builder::new();
        b.prefix("crashcheck-");
        b
    };
    match dir {
        None => b
            .tempdir()
            .map_err(|e| EnvError(format!("cannot create a temporary directory: {e}"))),
        Some(d) => {
            if !d.is_dir() {
                return fail(format!("--dir {}: not an existing directory", d.display()));
            }
            b.tempdir_in(d).map_err(|e| {
                EnvError(format!(
                    "--dir {}: cannot create a working directory there: {e}",
                    d.display()
                ))
            })
        }
    }
}

/// Refuses a `--db` path that another process has locked, or that holds
/// anything (crashcheck never changes files it did not create).
fn check_db_path(p: &Path) -> Res<()> {
    if let Some(pid) = lock_holder(&p.join("LOCK")) {
        return fail(format!(
            "--db {}: database is locked by another process (pid {pid})",
            p.display()
        ));
    }
    if p.exists() {
        let empty = std::fs::read_dir(p)
            .map_err(|e| EnvError(format!("--db {}: {e}", p.display())))?
            .next()
            .is_none();
        if !empty {
            return fail(format!(
                "--db {}: directory is not empty; crashcheck only writes into directories it creates",
                p.display()
            ));
        }
    }
    std::fs::create_dir_all(p)
        .map_err(|e| EnvError(format!("--db {}: cannot create it: {e}", p.display())))
}

/// Writes `text` to a new file near `want`, never overwriting one.
fn write_new(want: &Path, text: &str) -> Res<PathBuf> {
    if let Some(parent) = want.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    for i in 0..1000 {
        let p = if i == 0 {
            want.to_path_buf()
        } else {
            want.with_extension(format!("{i}.repro"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(text.as_bytes())?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return fail(format!("cannot write {}: {e}", p.display())),
        }
    }
    fail(format!(
        "cannot find a free file name near {}",
        want.display()
    ))
}

fn cmd_run(a: RunArgs) -> Res<u8> {
    let prof = profile(a.common.profile.as_deref(), "default")?;
    let mut opts = options(&a.common)?.opts;
    opts.wal_mode = a.mode.parse().map_err(EnvError)?;
    let factory = factory_by_name(&a.common.store).map_err(EnvError)?;
    let wd = work_dir(a.common.dir.as_deref())?;
    let db = match &a.db {
        Some(p) => {
            check_db_path(p)?;
            p.clone()
        }
        None => wd.path().join("db"),
    };
    let ops = Generator::new(a.seed, prof.clone()).ops(a.ops);
    let start = std::time::Instant::now();
    let mut store = factory.open(&db, &opts).map_err(|e| match e {
        crashcheck::store::StoreError::Locked(m) => EnvError(format!(
            "{}: database is locked by another process ({m})",
            db.display()
        )),
        e => EnvError(format!("cannot open {}: {e}", db.display())),
    })?;
    let out = run_ops(store.as_mut(), &ops);
    let _ = store.close();
    let secs = start.elapsed().as_secs_f64();
    let Some(v) = out.violation else {
        println!(
            "ok: {} ops ({} writes, {} reads checked) consistent with the model in {:.2} s ({:.0} ops/s); seed {}, profile {}, mode {}, store {}",
            out.ops_run,
            out.writes,
            out.reads_checked,
            secs,
            out.ops_run as f64 / secs.max(1e-9),
            a.seed,
            prof.name,
            opts.wal_mode,
            factory.name()
        );
        return Ok(0);
    };
    println!("VIOLATION: {v}");
    let mut case_ops = ops[..(v.op_index + 1).min(ops.len())].to_vec();
    if !a.no_shrink {
        let class = v.class.clone();
        let mut n = 0;
        let before = case_ops.len();
        case_ops = repro::shrink(case_ops, 400, |cand| {
            n += 1;
            let d = wd.path().join(format!("shrink-{n}"));
            let Ok(mut s) = factory.open(&d, &opts) else {
                return false;
            };
            let r = run_ops(s.as_mut(), cand);
            let _ = s.close();
            let _ = std::fs::remove_dir_all(&d);
            r.violation.is_some_and(|x| x.class == class)
        });
        println!("shrunk {before} ops to {} in {n} runs", case_ops.len());
    }
    let case = Case {
        check: CheckKind::Run,
        seed: a.seed,
        profile: prof.name.into(),
        store: a.common.store.clone(),
        options: opts,
        expect: v.class.clone(),
        fault: None,
        kill_after_op: None,
        comments: vec![v.to_string()],
        ops: case_ops,
        writers: Vec::new(),
    };
    let want = a
        .repro_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("crashcheck-artifacts/run-seed{}.repro", a.seed)));
    let path = write_new(&want, &case.to_text())?;
    println!(
        "repro: {}\nreplay: crashcheck replay {}",
        path.display(),
        path.display()
    );
    Ok(1)
}

fn print_crash_summary(r: &CrashReport) {
    println!(
        "{} cycles in {:.1} s ({:.1} cycles/s), fault {}, seed {}",
        r.cycles, r.duration_s, r.cycles_per_s, r.fault, r.seed
    );
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
    for n in crashcheck::report::hazard_notes(r) {
        println!("hazard (not a violation): {}", n.replace('`', ""));
    }
    let aux = crashcheck::report::aux_rows(r);
    if !aux.is_empty() {
        println!("checkpoints, backups and plain copies:");
        for row in aux {
            println!(
                "  {}",
                crashcheck::report::labelled(&row, &crashcheck::report::AUX_COLUMNS)
            );
        }
    }
    let stats = crashcheck::report::stats_rows(r);
    if !stats.is_empty() {
        println!("RocksDB statistics (writer, per cycle):");
        for row in stats {
            println!(
                "  {}",
                crashcheck::report::labelled(&row, &crashcheck::report::STATS_COLUMNS)
            );
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

fn cmd_crash(a: CrashArgs) -> Res<u8> {
    let prof = profile(a.common.profile.as_deref(), "crash")?;
    let user = options(&a.common)?;
    let mut opts = user.opts.clone();
    if !(1..=crashcheck::keyspace::MAX_CFS as u8).contains(&a.cfs) {
        return fail(format!(
            "--cfs {}: expected 1 to {}",
            a.cfs,
            crashcheck::keyspace::MAX_CFS
        ));
    }
    if !(1..=crashcheck::keyspace::MAX_WRITERS).contains(&a.writers) {
        return fail(format!(
            "--writers {}: expected 1 to {}",
            a.writers,
            crashcheck::keyspace::MAX_WRITERS
        ));
    }
    if a.chain && a.writers > 1 {
        return fail("--chain works with one writer only (each writer's history starts empty)");
    }
    if a.cfs > 1 {
        opts.column_families = a.cfs;
    }
    opts.atomic_flush |= a.atomic_flush;
    opts.statistics = !a.no_stats;
    let cf_flush = a
        .cf_flush
        .as_deref()
        .map(|s| s.parse::<crashcheck::workload::FlushStyle>())
        .transpose()
        .map_err(EnvError)?;
    if !crashcheck::option_matrix::PROFILES.contains(&a.option_profile.as_str()) {
        return fail(format!(
            "unknown option profile '{}' (known: {})",
            a.option_profile,
            crashcheck::option_matrix::PROFILES.join(", ")
        ));
    }
    let faults: Vec<Fault> = if a.fault == "all" {
        // With several writers, "all" means the faults that work with them.
        Fault::ALL
            .into_iter()
            .filter(|f| f.works_with_writers(a.writers))
            .collect()
    } else {
        a.fault
            .split(',')
            .map(|f| f.trim().parse().map_err(EnvError))
            .collect::<Res<_>>()?
    };
    if let Some(f) = faults.iter().find(|f| !f.works_with_writers(a.writers)) {
        return fail(format!(
            "--fault {}: it rewrites the WAL of a single writer; with --writers {} use kill or power-loss",
            f.name(),
            a.writers
        ));
    }
    let modes = modes(&a.mode)?;
    let duration = a.duration.as_deref().map(parse_duration).transpose()?;
    let shard = match &a.shard {
        None => (0, 1),
        Some(s) => match s
            .split_once('/')
            .map(|(i, n)| (i.trim().parse::<u64>(), n.trim().parse::<u64>()))
        {
            Some((Ok(i), Ok(n))) if n > 0 && i < n => (i, n),
            _ => return fail(format!("--shard '{s}': expected I/N with 0 <= I < N")),
        },
    };
    let cycles = match (a.cycles, duration) {
        (None, None) => Some(100),
        (c, _) => c,
    };
    let factory = factory_by_name(&a.common.store).map_err(EnvError)?;
    let wd = work_dir(a.common.dir.as_deref())?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cfg = CrashConfig {
        modes,
        faults,
        cycles,
        duration,
        seed: a.seed,
        chain: a.chain,
        jobs,
        ops_per_cycle: a.ops,
        profile: prof,
        options: opts,
        option_profile: a.option_profile.clone(),
        work_dir: wd.path().to_path_buf(),
        artifacts: a.artifacts.clone(),
        timeout: parse_duration(&a.timeout)?,
        shrink: !a.no_shrink,
        store_name: a.common.store.clone(),
        stop_on_violation: a.stop_on_violation,
        shard,
        ack_kills_only: false,
        writers: a.writers,
        cf_flush,
    };
    let metrics = match &a.metrics_addr {
        Some(addr) => {
            let m = crashcheck::metrics::serve(addr).map_err(EnvError)?;
            eprintln!(
                "crashcheck: Prometheus metrics at http://{}/metrics",
                m.addr
            );
            Some(m)
        }
        None => None,
    };
    let mut r = campaign::run_campaign_with(
        cfg,
        Arc::from(factory),
        progress_printer(cycles, a.quiet),
        metrics.as_ref().map(|m| m.sink()),
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
    Ok(if r.violations.is_empty() { 0 } else { 1 })
}

fn cmd_replay(a: ReplayArgs) -> Res<u8> {
    let case = Case::load(&a.file)?;
    let factory =
        factory_by_name(&case.store).map_err(|e| EnvError(format!("{}: {e}", a.file.display())))?;
    let wd = work_dir(a.dir.as_deref())?;
    let verdict = match case.check {
        CheckKind::Run => {
            let mut store = factory
                .open(&wd.path().join("db"), &case.options)
                .map_err(|e| EnvError(format!("cannot open a database: {e}")))?;
            let out = run_ops(store.as_mut(), &case.ops);
            let _ = store.close();
            match out.violation {
                None => {
                    println!("ok: {} ops consistent with the model", out.ops_run);
                    "ok".to_string()
                }
                Some(v) => {
                    println!("VIOLATION: {v}");
                    v.class
                }
            }
        }
        CheckKind::Crash => {
            let fault: Fault = case
                .fault
                .as_deref()
                .unwrap_or("kill")
                .parse()
                .map_err(EnvError)?;
            if !case.writers.is_empty() {
                println!(
                    "note: {} concurrent writers; their interleaving is up to the threads, so a replay may not reach the saved state (rerun it a few times)",
                    case.writers.len() + 1
                );
            }
            let (r, _) = campaign::replay_crash(
                factory.as_ref(),
                &wd.path().join("db"),
                &case,
                fault,
                Duration::from_secs(60),
            )?;
            println!(
                "killed after op {} (acked writes {}, admissible prefixes [{}, {}])",
                r.writer.ops_done, r.writer.progress.acked, r.adm.lo, r.adm.hi
            );
            match r.verdict {
                Ok(Verdict::Ok { prefix }) => {
                    println!("ok: recovered state equals prefix {prefix}");
                    "ok".to_string()
                }
                Ok(Verdict::Violation {
                    class,
                    detail,
                    diff,
                }) => {
                    println!("VIOLATION {class}: {detail}");
                    for l in diff {
                        println!("  {l}");
                    }
                    class.name().to_string()
                }
                Err(msg) => {
                    println!("anomaly: {msg}");
                    "anomaly".to_string()
                }
            }
        }
    };
    // A converted fuzz artifact expects "violation" (any class).
    let same = verdict == case.expect || (case.expect == "violation" && verdict != "ok");
    if same {
        println!("verdict '{verdict}' matches the saved verdict");
    } else {
        println!(
            "verdict '{verdict}' differs from the saved verdict '{}'",
            case.expect
        );
    }
    Ok(if verdict == "ok" { 0 } else { 1 })
}

fn cmd_selftest(a: SelftestArgs) -> Res<u8> {
    let budget = parse_duration(&a.budget)?;
    let wd = work_dir(a.dir.as_deref())?;
    let only: Option<Vec<String>> = a
        .only
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let r = selftest::run(wd.path(), budget, a.seed, jobs, only.as_deref()).map_err(EnvError)?;
    println!("{}", selftest::table(&r));
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&r)?)?;
    }
    Ok(if r.passed { 0 } else { 1 })
}

fn cmd_recovery(a: RecoveryArgs) -> Res<u8> {
    use crashcheck::recovery;
    let compressions = match a.wal_compression.as_str() {
        "none" => vec![false],
        "zstd" => vec![true],
        "both" => vec![false, true],
        o => {
            return fail(format!(
                "--wal-compression: '{o}' is not none, zstd or both"
            ))
        }
    };
    let wd = work_dir(a.dir.as_deref())?;
    let cfg = recovery::MatrixConfig {
        trials: a.trials,
        seed: a.seed,
        units: (40, 40),
        only: a.only.clone(),
        compressions,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        work: wd.path().to_path_buf(),
    };
    let m = recovery::run_matrix(&cfg).map_err(EnvError)?;
    let table = recovery::markdown(&m);
    println!("{table}");
    for f in &m.findings {
        println!(
            "FINDING {}: {} (expected {}): {}\n  replay: {}",
            f.cell,
            f.outcome,
            f.expected.join("|"),
            f.detail,
            f.replay
        );
    }
    if m.setup_failures > 0 {
        println!(
            "{} trial(s) could not set up two WAL files and were skipped",
            m.setup_failures
        );
    }
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&m)?)?;
    }
    if let Some(p) = &a.markdown {
        crashcheck::report::write_file(p, &table)?;
    }
    Ok(if m.findings.is_empty() { 0 } else { 1 })
}

fn cmd_merge(a: MergeArgs) -> Res<u8> {
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

fn cmd_fuzz_repro(a: FuzzReproArgs) -> Res<u8> {
    let data = std::fs::read(&a.artifact)
        .map_err(|e| EnvError(format!("{}: {e}", a.artifact.display())))?;
    let case = crashcheck::fuzzing::to_case(&a.target, &data).map_err(EnvError)?;
    let p = write_new(&a.out, &case.to_text())?;
    println!(
        "repro: {}\nreplay: crashcheck replay {}",
        p.display(),
        p.display()
    );
    Ok(0)
}

fn cmd_fuzz_seed(a: FuzzSeedArgs) -> Res<u8> {
    use crashcheck::fuzzing::encode_ops;
    let prof = profile(Some("small-keyspace"), "small-keyspace")?;
    for t in ["ops", "crash", "wal_recovery"] {
        let dir = a.out.join(t);
        std::fs::create_dir_all(&dir).map_err(|e| EnvError(format!("{}: {e}", dir.display())))?;
        for i in 0..a.count {
            let ops = Generator::new(i + 1, prof.clone()).ops(64);
            let mut bytes = match t {
                "crash" => vec![i as u8 % 4, (i * 7) as u8, 0, i as u8],
                "wal_recovery" => vec![
                    (i * 3) as u8,
                    i as u8,
                    (i * 16) as u8,
                    (i * 5) as u8,
                    i as u8,
                    (i % 2) as u8,
                ],
                _ => Vec::new(),
            };
            if t != "wal_recovery" {
                bytes.extend(encode_ops(&ops));
            }
            let f = dir.join(format!("seed-{i:03}"));
            if !f.exists() {
                std::fs::write(&f, bytes).map_err(|e| EnvError(format!("{}: {e}", f.display())))?;
            }
        }
    }
    println!(
        "seeded {} inputs per target under {}",
        a.count,
        a.out.display()
    );
    Ok(0)
}

fn cmd_bench(a: BenchArgs) -> Res<u8> {
    let wd = work_dir(a.dir.as_deref())?;
    let out = match a.what.as_str() {
        "crash" => serde_json::to_value(
            bench::crash(wd.path(), a.seconds, a.jobs, a.ops.unwrap_or(300), a.cfs)
                .map_err(EnvError)?,
        )?,
        "run" => serde_json::to_value(
            bench::run(wd.path(), a.seconds, a.ops.unwrap_or(20_000)).map_err(EnvError)?,
        )?,
        o => return fail(format!("unknown benchmark '{o}' (crash, run)")),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(p) = &a.report {
        crashcheck::report::write_file(p, &serde_json::to_string_pretty(&out)?)?;
    }
    Ok(0)
}

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`crashcheck ... | head`),
    // as command-line tools do, instead of panicking on the write.
    // SAFETY: resetting a signal disposition at start-up, before threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Crash(a) => cmd_crash(*a),
        Cmd::Replay(a) => cmd_replay(a),
        Cmd::Selftest(a) => cmd_selftest(a),
        Cmd::RecoveryModes(a) => cmd_recovery(a),
        Cmd::Bench(a) => cmd_bench(a),
        Cmd::MergeReports(a) => cmd_merge(a),
        Cmd::FuzzRepro(a) => cmd_fuzz_repro(a),
        Cmd::FuzzSeed(a) => cmd_fuzz_seed(a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(EnvError(msg)) => {
            eprintln!("crashcheck: error: {msg}");
            ExitCode::from(2)
        }
    }
}
