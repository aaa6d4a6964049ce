//! The command line's arguments and help texts (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub(crate) const ABOUT: &str = "Persistence-consistency checker for RocksDB.

crashcheck runs seeded random operation sequences against real RocksDB and
an in-memory reference model. `run` checks every read in-process. `crash`
forks a child that writes, kills it with SIGKILL at a random moment, reopens
the database and checks that it holds exactly the state after some prefix of
the writes, with every WriteBatch whole and every write the durability mode
promised to keep (see docs/durability.md).

Exit status: 0 consistent, 1 violation found, 2 usage or environment error.";

pub(crate) const EXAMPLES: &str = "Examples:
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

/// `crashcheck --version`: crashcheck's version and the engine under test
/// (every result belongs to one RocksDB).
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{} on {}",
            env!("CARGO_PKG_VERSION"),
            crashcheck::store::engine::engine()
        )
    })
}

#[derive(Parser)]
#[command(name = "crashcheck", version = version(), about = ABOUT, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
    /// One table of crash campaigns and selftests run against several
    /// RocksDB versions (scripts/versions.sh, scripts/matrix.sh): a row per
    /// engine, never summed across engines. Exit 1 when any engine shows a
    /// violation or a failed selftest.
    Matrix(MatrixArgs),
}

#[derive(Args)]
pub(crate) struct FuzzReproArgs {
    /// The fuzz target the artifact came from: ops or crash.
    pub(crate) target: String,
    /// The artifact (e.g. fuzz/artifacts/ops/crash-...).
    pub(crate) artifact: PathBuf,
    /// Where to write the repro file.
    #[arg(long, short, default_value = "crashcheck-artifacts/fuzz.repro")]
    pub(crate) out: PathBuf,
}

#[derive(Args)]
pub(crate) struct FuzzSeedArgs {
    /// Corpus root (one directory per target is created below it).
    #[arg(long, default_value = "fuzz/corpus")]
    pub(crate) out: PathBuf,
    /// Seeds per target.
    #[arg(long, default_value_t = 16)]
    pub(crate) count: u64,
}

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// JSON reports written by `crash --report`.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) out: ReportPaths,
    /// SVG chart of cycles and writes lost per mode.
    #[arg(long)]
    pub(crate) svg: Option<PathBuf>,
    /// The runs were one after another (e.g. the nightly's campaigns), not
    /// side by side (shards): wall times add up.
    #[arg(long)]
    pub(crate) sequential: bool,
}

#[derive(Args)]
pub(crate) struct MatrixArgs {
    /// JSON reports written by `crash --report` and `selftest --report`,
    /// from any engines.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
    /// Markdown table.
    #[arg(long)]
    pub(crate) markdown: Option<PathBuf>,
    /// JSON matrix.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct RecoveryArgs {
    /// Trials per cell (mode x damage x WAL x compression).
    #[arg(long, default_value_t = 5)]
    pub(crate) trials: u32,
    /// Seed (trial i uses seed + i).
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    pub(crate) seed: u64,
    /// JSON report path.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// Markdown table path.
    #[arg(long)]
    pub(crate) markdown: Option<PathBuf>,
    /// Only cells matching MODE:DAMAGE@WAL (each part may be *), comma-separated.
    #[arg(long)]
    pub(crate) only: Option<String>,
    /// WAL compression: none, zstd or both.
    #[arg(long, default_value = "both")]
    pub(crate) wal_compression: String,
    /// Parallel trials (default: number of cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// Directory in which crashcheck creates its working directory
    /// (never touches anything else there). Default: system temp dir.
    #[arg(long, env = "CRASHCHECK_DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Workload profile: default, write-heavy, read-heavy, batch-heavy,
    /// large-values, small-keyspace, kv, crash (default of `crash`),
    /// checkpoint (crash plus checkpoints, backups and plain copies), txn
    /// (crash with transactions, committed or rolled back, in place of
    /// most batches: for --store transaction-db or
    /// optimistic-transaction-db; other stores never draw them).
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Options as `key=value;...`: crashcheck's own keys (see README, e.g.
    /// "write_buffer_size=65536;compression=zstd") and any RocksDB option in
    /// RocksDB's options-string form (e.g. "use_fsync=true;bytes_per_sync=1048576").
    #[arg(long)]
    pub(crate) options: Option<String>,
    /// A RocksDB OPTIONS file (e.g. OPTIONS-000007 from your production
    /// database directory): run with those options. crashcheck overrides
    /// only what it must (and says so).
    #[arg(long)]
    pub(crate) options_file: Option<PathBuf>,
    /// Store under test: `rocksdb`; `transaction-db` or
    /// `optimistic-transaction-db` (each write unit one pessimistic or
    /// optimistic transaction; no range deletes, and transaction-db has no
    /// compaction, ingestion or backups); or `mutant:<name>` (see `selftest`).
    #[arg(long, default_value = "rocksdb")]
    pub(crate) store: String,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Seed of the op sequence.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Number of ops.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) ops: usize,
    /// Durability mode (wal-sync, wal, wal-manual-flush, no-wal).
    #[arg(long, default_value = "wal")]
    pub(crate) mode: String,
    /// Use this database directory (must not exist, or be empty); it is
    /// kept afterwards. Default: a fresh directory inside --dir.
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
    /// Where to write the repro file on a violation.
    #[arg(long)]
    pub(crate) repro_out: Option<PathBuf>,
    /// Do not shrink a failing sequence.
    #[arg(long)]
    pub(crate) no_shrink: bool,
    /// Start from an empty database. By default the run first loads a tree
    /// several levels deep (every key written, compacted down, then
    /// overwritten, deleted and merged in flushed waves; the same load as
    /// `crash` cycles start from) and, without options of your own, uses
    /// the deep option profile (a small LSM geometry), so that its reads
    /// cross levels, tombstones above older values and compactions.
    #[arg(long)]
    pub(crate) empty_start: bool,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Args)]
pub(crate) struct CrashArgs {
    /// Durability mode(s): wal-sync, wal, wal-manual-flush, no-wal, or all
    /// (comma-separated list allowed).
    #[arg(long, default_value = "all")]
    pub(crate) mode: String,
    /// Fault(s) to inject (see `--help`).
    #[arg(long, long_help = fault_help(), default_value = "kill")]
    pub(crate) fault: String,
    /// Number of crash cycles.
    #[arg(long, conflicts_with = "duration")]
    pub(crate) cycles: Option<u64>,
    /// Run for this long instead (e.g. 60s, 20m, 1h).
    #[arg(long)]
    pub(crate) duration: Option<String>,
    /// Campaign seed.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Carry each recovered database into the next cycle (deep LSM trees).
    #[arg(long)]
    pub(crate) chain: bool,
    /// Start every cycle from an empty database. By default a single-writer
    /// campaign starts each cycle from a clone of a base database several
    /// levels deep, built once by a load phase (every key written,
    /// compacted down, then overwritten, deleted and merged in flushed
    /// waves), whose state the model knows; repro files carry it as a
    /// `base:` section. With an empty start, one cycle in 8 opens with an
    /// ingest and a snapshot at sequence number 0, an edge stock RocksDB
    /// gets wrong (docs/findings.md finding 6, reported as a known bug).
    #[arg(long)]
    pub(crate) empty_start: bool,
    /// Parallel cycle streams (default: number of cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Ops per cycle.
    #[arg(long, default_value_t = 300)]
    pub(crate) ops: usize,
    #[command(flatten)]
    pub(crate) out: ReportPaths,
    /// Directory for failure artifacts.
    #[arg(long, default_value = "crashcheck-artifacts")]
    pub(crate) artifacts: PathBuf,
    /// A child running longer than this is reported as a hang (a cycle
    /// normally takes tens of milliseconds).
    #[arg(long, default_value = "20s")]
    pub(crate) timeout: String,
    /// Do not shrink the first violation.
    #[arg(long)]
    pub(crate) no_shrink: bool,
    /// Stop at the first violation.
    #[arg(long)]
    pub(crate) stop_on_violation: bool,
    /// Run shard I of N, counting from 0 (`0/4` to `3/4` for four
    /// runners): this runner takes every N-th cycle of the campaign,
    /// starting at cycle I, so N CI runners share it; merge with
    /// `merge-reports`.
    #[arg(long)]
    pub(crate) shard: Option<String>,
    /// Option profile per cycle: deep (a small LSM geometry drawn per
    /// cycle, so data spreads over several levels: 64 KiB memtables, L0
    /// trigger 2 or 4, 8-32 KiB files, 16-64 KiB level base, dynamic level
    /// sizing on or off), defaults (the options as given), tiny (tiny
    /// memtables and caches: flushes and compactions all the time) or
    /// randomized (compression, sizes, bloom, caches, fsync,
    /// pipelined/unordered writes, compaction style... drawn per cycle and
    /// recorded in artifacts). deep and randomized also put large values
    /// in blob files (integrated BlobDB) in half of the cycles, with blob
    /// garbage collection in half of those. Default: deep, or defaults
    /// when you give --options / --options-file (your options as they
    /// are).
    #[arg(long)]
    pub(crate) option_profile: Option<String>,
    /// Force a compaction style for every cycle: level (RocksDB's
    /// default), universal, or fifo (a 64 KiB size limit, so that FIFO
    /// deletes its oldest files within a cycle; judged by FIFO's own rule,
    /// docs/durability.md F1). Applied after the option profile.
    #[arg(long)]
    pub(crate) compaction_style: Option<String>,
    /// Column families (1-8). Keys route to them by a `c<N>/` prefix;
    /// WriteBatches span them. Without the WAL and without
    /// --atomic-flush each column family may recover to its own prefix:
    /// counted as a hazard (cf-divergence), not a violation.
    #[arg(long, default_value_t = 1)]
    pub(crate) cfs: u8,
    /// Turn on RocksDB's atomic_flush: flushes of several column families
    /// commit as one unit, so a WAL-less database keeps one common prefix.
    #[arg(long)]
    pub(crate) atomic_flush: bool,
    /// Which flush the workload uses with several column families: all
    /// (`flush all`), mixed (all, single column families and `flush`) or
    /// default (`flush`: db.flush(), the default column family only).
    /// Default: all with --atomic-flush, mixed without.
    #[arg(long)]
    pub(crate) cf_flush: Option<String>,
    /// Concurrent writer threads per cycle (1-16), each over its own key
    /// partition, plus batches that cross into other partitions; each
    /// writer must recover to a prefix of its own writes. Faults: kill and
    /// power-loss.
    #[arg(long, default_value_t = 1)]
    pub(crate) writers: usize,
    /// Do not collect RocksDB statistics for the report (slightly faster).
    #[arg(long)]
    pub(crate) no_stats: bool,
    /// Serve Prometheus metrics (cycles, violations, cycles/s, RocksDB
    /// figures) at http://ADDR/metrics while the campaign runs, e.g.
    /// 127.0.0.1:9464.
    #[arg(long)]
    pub(crate) metrics_addr: Option<String>,
    /// No progress output.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Where a campaign's reports go.
#[derive(Args)]
pub(crate) struct ReportPaths {
    /// JSON report path.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// JUnit XML report path.
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Markdown summary path.
    #[arg(long)]
    pub(crate) markdown: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// A repro file written by `run` or `crash`.
    pub(crate) file: PathBuf,
    /// Directory in which the replay creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct SelftestArgs {
    /// Total time budget (e.g. 120s), shared by the mutants.
    #[arg(long, default_value = "120s")]
    pub(crate) budget: String,
    /// JSON report path.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// Only these mutants (comma-separated).
    #[arg(long)]
    pub(crate) only: Option<String>,
    /// Campaign seed.
    #[arg(long, env = "CRASHCHECK_SEED", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Parallel streams per crash check.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// What to measure: `crash` (cycles/s against a bare fork-kill-reopen
    /// loop: fresh, chained and deep databases, and a pair on a
    /// TransactionDB) or `run` (checked ops/s against raw RocksDB ops/s).
    pub(crate) what: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Parallel streams (crash).
    #[arg(long, default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Ops per cycle (crash) or in total (run).
    #[arg(long)]
    pub(crate) ops: Option<usize>,
    /// Column families (crash): keys spread over them on both sides.
    #[arg(long, default_value_t = 1)]
    pub(crate) cfs: u8,
    /// Directory in which crashcheck creates its working directory.
    #[arg(long, env = "CRASHCHECK_DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// JSON output path.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
}

/// `--fault`'s help, from the fault registry (a new fault shows up here
/// without an edit).
fn fault_help() -> String {
    let mut s = String::from("Fault(s) to inject, comma-separated, or all:");
    for f in crashcheck::fault::Fault::all() {
        s.push_str(&format!("\n  {}: {}", f.name(), f.about()));
    }
    s
}
