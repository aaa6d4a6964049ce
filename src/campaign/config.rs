//! A campaign's settings, and the one place that checks them: the CLI,
//! `selftest` and the test harness all call [`CrashConfig::validate`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crash::CrashError;
use crate::cycle::PlanInputs;
use crate::fault::Fault;
use crate::keyspace::{MAX_CFS, MAX_WRITERS};
use crate::store::{StoreOptions, WalMode};
use crate::workload::Profile;

/// Settings that cannot run, with the reason (a usage error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings of a crash campaign.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    /// Durability modes, cycled through.
    pub modes: Vec<WalMode>,
    /// Faults injected, cycled through together with the modes.
    pub faults: Vec<Fault>,
    /// Stop after this many cycles (if set).
    pub cycles: Option<u64>,
    /// Stop after this long (if set).
    pub duration: Option<Duration>,
    /// Where `cycles` / `duration` came from, for the report's
    /// [`CrashReport::budget`](crate::campaign::CrashReport::budget):
    /// `config` ([`CrashConfig::new`]), a CLI flag, or an environment
    /// variable ([`crate::harness::apply_env`]).
    pub budget_source: String,
    /// Campaign seed; each cycle derives its own.
    pub seed: u64,
    /// Carry the recovered DB into the next cycle.
    pub chain: bool,
    /// RocksDB options applied to every cycle after the option profile
    /// (e.g. a forced compaction style).
    pub forced_options: String,
    /// Start single-writer, unchained cycles from a deep base database
    /// (see `campaign::base`) instead of an empty one.
    pub deep_base: bool,
    /// Parallel cycle streams.
    pub jobs: usize,
    /// Ops per cycle.
    pub ops_per_cycle: usize,
    /// Workload profile.
    pub profile: Profile,
    /// Options (the mode is set per cycle).
    pub options: StoreOptions,
    /// Option profile applied per cycle (see `store::option_profiles`): `defaults`,
    /// `tiny` or `randomized`.
    pub option_profile: String,
    /// Where databases are created (a directory crashcheck made).
    pub work_dir: PathBuf,
    /// Where failure artifacts go.
    pub artifacts: PathBuf,
    /// A child still running after this long is a hang.
    pub timeout: Duration,
    /// Shrink the first violation to a minimal sequence.
    pub shrink: bool,
    /// Store name for repro files and reports (`rocksdb`,
    /// `mutant:<name>`, or a user's store); empty: the factory's own
    /// ([`crate::store::StoreFactory::name`]).
    pub store_name: String,
    /// How a failure's artifact says to replay it: a command with `{}`
    /// where the repro file goes. `None`: `crashcheck replay {}`, which
    /// knows only the built-in stores; a user's store replays through
    /// [`crate::harness::replay_file`] (or `CRASHCHECK_REPLAY`, which
    /// [`crate::harness::crash_check_in_test`] sets up here).
    pub replay_command: Option<String>,
    /// Stop at the first violation.
    pub stop_on_violation: bool,
    /// `(i, n)`: run only global cycles `c` with `c % n == i`, so `n`
    /// runners share one campaign (`(0, 1)`: all of it).
    pub shard: (u64, u64),
    /// Kill only after a random number of acknowledgements (no delay or
    /// phase kills): the benchmark's like-for-like setting.
    pub ack_kills_only: bool,
    /// One cycle in 8 that starts on an empty database opens with an
    /// ingest and a snapshot at sequence number 0
    /// ([`crate::workload::Generator::with_seqno_zero_opening`]). On for
    /// `crash --empty-start`; off by default: stock RocksDB mishandles a
    /// snapshot at sequence number 0 (docs/findings.md 6, H1).
    pub seqno_zero_opening: bool,
    /// Concurrent writer threads per cycle, each over its own key
    /// partition (1 = the classic single writer).
    pub writers: usize,
    /// Flushes the generator emits over several column families; `None`:
    /// `flush all` with atomic_flush, a mix otherwise.
    pub cf_flush: Option<crate::workload::FlushStyle>,
}

impl CrashConfig {
    /// A campaign with crashcheck's defaults, working in `work_dir`: every
    /// mode, process kills, 100 fresh cycles of 300 ops of the `crash`
    /// profile, default options, two jobs, artifacts under
    /// `work_dir/artifacts`. Callers change what they need with struct
    /// update syntax.
    pub fn new(work_dir: &Path) -> CrashConfig {
        CrashConfig {
            modes: WalMode::ALL.to_vec(),
            faults: vec![Fault::KILL],
            cycles: Some(100),
            duration: None,
            budget_source: "config".into(),
            seed: 1,
            chain: false,
            deep_base: false,
            forced_options: String::new(),
            jobs: 2,
            ops_per_cycle: 300,
            profile: Profile::by_name("crash").unwrap_or_else(|| Profile::all().remove(0)),
            options: StoreOptions::default(),
            option_profile: "defaults".into(),
            work_dir: work_dir.to_path_buf(),
            artifacts: work_dir.join("artifacts"),
            timeout: Duration::from_secs(30),
            shrink: false,
            store_name: String::new(),
            replay_command: None,
            stop_on_violation: false,
            shard: (0, 1),
            ack_kills_only: false,
            seqno_zero_opening: false,
            writers: 1,
            cf_flush: None,
        }
    }
}

impl CrashConfig {
    /// Removes the faults this RocksDB cannot inject and returns why each
    /// cannot ([`Fault::unsupported_here`]): they are reported, not run, and
    /// never crash a campaign. A campaign of only such faults is an error.
    pub fn drop_unsupported_faults(&mut self) -> Result<Vec<String>, ConfigError> {
        let unsupported: Vec<String> = self
            .faults
            .iter()
            .filter_map(|f| f.unsupported_here())
            .collect();
        self.faults.retain(|f| f.unsupported_here().is_none());
        if self.faults.is_empty() && !unsupported.is_empty() {
            return Err(ConfigError(format!(
                "no requested fault runs on this RocksDB: {}",
                unsupported.join("; ")
            )));
        }
        Ok(unsupported)
    }

    /// Checks the settings before anything runs. A campaign that would
    /// check nothing (no cycles, no time, no jobs, no ops) is refused, as
    /// are settings that do not fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.modes.is_empty() {
            return err("no durability mode to run".into());
        }
        if self.faults.is_empty() {
            return err("no fault to inject".into());
        }
        match (self.cycles, self.duration) {
            (Some(0), _) => return err("--cycles 0: a campaign of no cycles checks nothing".into()),
            (None, None) => return err("give --cycles N or --duration D".into()),
            (None, Some(d)) if d.is_zero() => {
                return err("--duration 0: a campaign of no time checks nothing".into())
            }
            _ => {}
        }
        if self.jobs == 0 {
            return err("--jobs 0: at least one job must run".into());
        }
        if self.ops_per_cycle == 0 {
            return err("--ops 0: a cycle of no ops checks nothing".into());
        }
        if !(1..=MAX_WRITERS).contains(&self.writers) {
            return err(format!(
                "--writers {}: expected 1 to {MAX_WRITERS}",
                self.writers
            ));
        }
        let cfs = self.options.column_families;
        if !(1..=MAX_CFS as u8).contains(&cfs) {
            return err(format!("--cfs {cfs}: expected 1 to {MAX_CFS}"));
        }
        if self.chain && self.writers > 1 {
            return err(
                "--chain works with one writer only (each writer's history starts empty)".into(),
            );
        }
        if let Some(f) = self
            .faults
            .iter()
            .find(|f| !f.works_with_writers(self.writers))
        {
            return err(format!(
                "--fault {}: it rewrites the WAL of a single writer; with --writers {} use kill or power-loss",
                f.name(),
                self.writers
            ));
        }
        if !crate::store::option_profiles::PROFILES.contains(&self.option_profile.as_str()) {
            return err(format!(
                "unknown option profile '{}' (known: {})",
                self.option_profile,
                crate::store::option_profiles::PROFILES.join(", ")
            ));
        }
        let (i, n) = self.shard;
        if n == 0 || i >= n {
            return err(format!("--shard {i}/{n}: expected I/N with 0 <= I < N"));
        }
        if self.timeout.is_zero() {
            return err("--timeout 0: every child would count as hung".into());
        }
        Ok(())
    }

    /// The budget and where it came from, as the report states it:
    /// `cycles 100 (config)`, `duration 20m (CRASHCHECK_DURATION)`.
    pub fn budget(&self) -> String {
        let what = match (self.cycles, self.duration) {
            (Some(n), None) => format!("cycles {n}"),
            (None, Some(d)) => format!("duration {}", format_duration(d)),
            (Some(n), Some(d)) => format!("cycles {n} or duration {}", format_duration(d)),
            (None, None) => "none".into(),
        };
        match self.budget_source.as_str() {
            "" => what,
            from => format!("{what} ({from})"),
        }
    }

    /// What the cycle planner needs of these settings.
    pub fn plan_inputs(&self) -> PlanInputs<'_> {
        PlanInputs {
            modes: &self.modes,
            faults: &self.faults,
            seed: self.seed,
            options: &self.options,
            option_profile: &self.option_profile,
            forced_options: &self.forced_options,
            writers: self.writers,
            ops_per_cycle: self.ops_per_cycle,
            profile: &self.profile,
            cf_flush: self.cf_flush,
            ack_kills_only: self.ack_kills_only,
            seqno_zero_opening: self.seqno_zero_opening,
        }
    }
}

/// Parses a duration as the CLI's `--duration` takes it: `60s`, `20m`,
/// `2h`, `500ms` or plain seconds (fractions allowed). The error names
/// the text and gives examples.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
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
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        // Too large for a Duration is an error, not a panic.
        .and_then(|v| Duration::try_from_secs_f64(v * mult).ok())
        .ok_or_else(|| ConfigError(format!("bad duration '{s}' (examples: 90s, 20m, 1h)")))
}

/// A duration as [`parse_duration`] reads it back, in the largest unit
/// that states it exactly: `2h`, `20m`, `90s`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match (secs, nanos) {
        (0, 0) => "0s".into(),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ if nanos % 1_000_000 == 0 => format!("{}ms", d.as_millis()),
        _ => format!("{}s", d.as_secs_f64()),
    }
}

/// A user's options, merged: crashcheck's fields and RocksDB's own
/// options, with what crashcheck overrode and where they came from.
#[derive(Clone, Debug)]
pub struct UserOptions {
    /// The merged options.
    pub opts: StoreOptions,
    /// Settings crashcheck replaced, and why.
    pub overrides: Vec<crate::store::user_options::Override>,
    /// Where they came from (the options file's path, or `--options`).
    pub source: Option<String>,
    /// Sections of the options file that were ignored (other column
    /// families).
    pub ignored_sections: Vec<String>,
}

/// Merges a user's options file (RocksDB's `OPTIONS-NNNNNN` format) and
/// options string (`k=v;...`: crashcheck's keys and RocksDB's), then has
/// RocksDB check the result in a forked child. Errors name the source.
pub fn user_options(file: Option<&Path>, string: Option<&str>) -> Result<UserOptions, ConfigError> {
    use crate::store::user_options::{absorb, parse_options_file, split_options};
    let mut out = UserOptions {
        opts: StoreOptions::default(),
        overrides: Vec::new(),
        source: None,
        ignored_sections: Vec::new(),
    };
    if let Some(path) = file {
        let p = path.display();
        let e = |e: String| ConfigError(format!("--options-file {p}: {e}"));
        let text = std::fs::read_to_string(path).map_err(|x| e(x.to_string()))?;
        let (raw, ignored) = parse_options_file(&text).map_err(|x| e(x.to_string()))?;
        out.overrides
            .extend(absorb(&mut out.opts, &raw).map_err(|x| e(x.to_string()))?);
        out.ignored_sections = ignored;
        out.source = Some(p.to_string());
    }
    if let Some(s) = string {
        let e = |e: String| ConfigError(format!("--options: {e}"));
        let (ours, theirs): (Vec<String>, Vec<String>) =
            split_options(s).into_iter().partition(|kv| {
                StoreOptions::KEYS.contains(&kv.split('=').next().unwrap_or("").trim())
            });
        out.opts
            .apply_options_string(&ours.join(";"))
            .map_err(|x| e(x.to_string()))?;
        out.overrides
            .extend(absorb(&mut out.opts, &theirs.join(";")).map_err(|x| e(x.to_string()))?);
        out.source.get_or_insert_with(|| "--options".into());
    }
    if !out.opts.rocksdb.is_empty() {
        let checked = rocksdb_accepts(&out.opts).map_err(|x| ConfigError(x.to_string()))?;
        if let Err(msg) = checked {
            return Err(ConfigError(format!(
                "{}: RocksDB rejects the options: {msg}",
                out.source.as_deref().unwrap_or("--options")
            )));
        }
    }
    Ok(out)
}

/// Checks in a forked child that RocksDB accepts `opts` (a user's options
/// string may name unknown keys or bad values). The message is RocksDB's.
pub fn rocksdb_accepts(opts: &StoreOptions) -> Result<Result<(), String>, CrashError> {
    let (end, data) = crate::crash::isolate_output(
        || match crate::store::rocks::rocksdb_options(opts) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().into_bytes(),
        },
        Duration::from_secs(30),
    )?;
    Ok(match end {
        crate::crash::ChildEnd::Exited { code: 0 } if data.is_empty() => Ok(()),
        crate::crash::ChildEnd::Exited { code: 0 } => {
            Err(String::from_utf8_lossy(&data).into_owned())
        }
        other => Err(format!("checking the options failed: {other:?}")),
    })
}
