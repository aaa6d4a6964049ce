//! What a campaign reports: per-mode and per-fault counts, violations
//! and anomalies, and merging reports of shards or runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cycle::AnomalyKind;
use crate::fault::Fault;
use crate::store::WalMode;
use crate::verify::copies::CopyOutcome;
use crate::verify::ViolationClass;

/// One violation found by a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViolationReport {
    /// Class.
    pub class: ViolationClass,
    /// Mode.
    pub mode: WalMode,
    /// Fault.
    pub fault: Fault,
    /// Cycle number.
    pub cycle: u64,
    /// The cycle's seed.
    pub cycle_seed: u64,
    /// Explanation.
    pub detail: String,
    /// Artifact directory.
    pub artifact: Option<PathBuf>,
    /// Command that replays it.
    pub replay: Option<String>,
    /// Ops in the (shrunk, if shrinking ran) repro.
    pub repro_ops: usize,
}

/// A cycle that ended abnormally without being a violation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind of anomaly.
    pub kind: AnomalyKind,
    /// The known RocksDB bug it matched (`known-rocksdb-bug` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_bug: Option<String>,
    /// Mode.
    pub mode: WalMode,
    /// Fault.
    pub fault: Fault,
    /// Cycle.
    pub cycle: u64,
    /// Cycle seed.
    pub cycle_seed: u64,
    /// Details (child status).
    pub detail: String,
    /// Artifact directory (for hangs and abnormal exits).
    #[serde(default)]
    pub artifact: Option<PathBuf>,
}

/// Per-mode counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeStats {
    /// Cycles run.
    pub cycles: u64,
    /// Write units acknowledged before the kill.
    pub acked_writes: u64,
    /// Acknowledged writes that did not survive, where the mode allows it.
    pub lost_within_guarantee: u64,
    /// Writes that survived although the mode did not promise it.
    pub survived_beyond_guarantee: u64,
    /// In-flight (unacknowledged) writes that survived.
    pub in_flight_survived: u64,
    /// Cycles whose kill landed while the child was flushing, flushing the
    /// WAL, compacting or (re)opening.
    pub kills_in_background_phase: u64,
    /// Cycles whose kill landed at a step point inside a write unit (a
    /// store that carries out one unit in several steps; RocksDB's own
    /// units are single steps, and reach the WAL as one append unless a
    /// record outgrows the write buffer, so stock RocksDB shows few).
    #[serde(default)]
    pub kills_mid_unit: u64,
    /// The same by writer index (kill plans aim inside any writer's
    /// units).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kills_mid_unit_by_writer: BTreeMap<u64, u64>,
    /// Power-loss cycles whose writer journaled its directory entries
    /// (it ran on the fault filesystem), so the crash image could drop
    /// the unsynced ones (docs/durability.md D1-D2).
    #[serde(default)]
    pub dir_image_cycles: u64,
    /// Of those, cycles in which RocksDB (or the store) had at least one
    /// creation or rename no directory fsync had made durable at the kill.
    #[serde(default)]
    pub dir_unsynced_cycles: u64,
    /// Files the directory image removed (created after their directory's
    /// last fsync, D1).
    #[serde(default)]
    pub dir_entries_dropped: u64,
    /// Renames the directory image undid (D2).
    #[serde(default)]
    pub renames_undone: u64,
    /// Cycles whose database held at least one blob file at the kill, and
    /// the blob files and bytes there (integrated BlobDB).
    #[serde(default)]
    pub blob_cycles: u64,
    /// See `blob_cycles`.
    #[serde(default)]
    pub blob_files: u64,
    /// See `blob_cycles`.
    #[serde(default)]
    pub blob_bytes: u64,
    /// Cycles in which blob garbage collection relocated blobs (from the
    /// writer's statistics, so only cycles that report them).
    #[serde(default)]
    pub blob_gc_cycles: u64,
    /// Violations.
    pub violations: u64,
    /// Hangs and abnormal child exits.
    pub anomalies: u64,
    /// Cycles whose column families recovered to different prefixes where
    /// the configuration allows it (WAL off without atomic flush, or a
    /// flush of only some column families): a hazard, not a violation.
    #[serde(default)]
    pub cf_divergence: u64,
    /// Cycles (with several column families) that ran a flush of only some
    /// of them, `db.flush()` (default column family only) included.
    #[serde(default)]
    pub partial_flush_cycles: u64,
    /// I/O errors injected on the writer threads (`io-error`).
    #[serde(default)]
    pub io_errors_injected: u64,
    /// The same by type (`write`, `metadata-write`, `read`,
    /// `metadata-read`; FaultInjectionIOType), and how many were retryable.
    #[serde(default)]
    pub io_errors_by_type: BTreeMap<String, u64>,
    /// Injected I/O errors that were marked retryable.
    #[serde(default)]
    pub io_errors_retryable: u64,
    /// Cycles that ended at an op that returned an error while I/O errors
    /// were injected (the op stays in flight; see fault/io_error.rs).
    #[serde(default)]
    pub io_failed_ops: u64,
    /// Reopens (a clean close and an open) the writers ran, and of those
    /// the ones that failed while I/O errors were injected (in flight,
    /// docs/durability.md E8).
    #[serde(default)]
    pub reopens: u64,
    /// See `reopens`.
    #[serde(default)]
    pub io_failed_reopens: u64,
    /// Reads that returned an error while read errors were injected (an
    /// error is allowed; a wrong answer is a violation).
    #[serde(default)]
    pub io_failed_reads: u64,
    /// Background errors RocksDB reported to the writer's database
    /// (listener.h `OnBackgroundError`).
    #[serde(default)]
    pub background_errors: u64,
    /// `disk-full` cycles in which space came back and `DB::Resume`
    /// succeeded (the run went on, and the kill came later).
    #[serde(default)]
    pub resumes: u64,
    /// `DB::Resume` calls that failed (the cycle ended in the error state).
    #[serde(default)]
    pub resumes_failed: u64,
    /// `DB::Resume` calls during which the disk filled up again after the
    /// first recovery flush (csrc/fault_env.cc
    /// crashcheck_fault_env_refill_after_flushes).
    #[serde(default)]
    pub resumes_refilled: u64,
    /// Resumed cycles whose failed op was a write unit: in flight for
    /// good while later units were acknowledged.
    #[serde(default)]
    pub resumed_past_failed_write: u64,
    /// Cycles whose run went on after a failed op, without a resume, to
    /// the next write (io-error), and writes acknowledged there.
    #[serde(default)]
    pub continued_after_error: u64,
    /// Writes acknowledged in those cycles after the failed op.
    #[serde(default)]
    pub acked_after_error: u64,
    /// Checkpoints, backups and plain copies, and how they were judged
    /// (`aux` in reports written before the rename).
    #[serde(default, alias = "aux")]
    pub copies: CopyOutcome,
    /// RocksDB figures summed over the cycles that published them (see
    /// `rocksdb_samples`): tickers are per cycle, properties at its end.
    #[serde(default)]
    pub rocksdb: crate::store::StoreStats,
    /// Cycles that published RocksDB figures.
    #[serde(default)]
    pub rocksdb_samples: u64,
    /// LSM shape at the kill: number of non-empty levels (in the column
    /// family with the most) → cycles, over the cycles that published it.
    #[serde(default)]
    pub cycles_by_levels_populated: BTreeMap<u64, u64>,
    /// Cycles that started from a deep base database (`campaign::base`).
    #[serde(default)]
    pub base_cycles: u64,
    /// Compaction style (`level`, `universal`, `fifo`) → cycles.
    #[serde(default)]
    pub cycles_by_compaction_style: BTreeMap<String, u64>,
    /// FIFO cycles whose state matched only with FIFO's oldest units
    /// dropped (docs/durability.md F1): information, not a violation.
    #[serde(default)]
    pub fifo_dropped_cycles: u64,
    /// Ingest ops the writers ran (`ingest move|copy`).
    #[serde(default)]
    pub ingestions: u64,
    /// Cycles in which an ingest outlived earlier writes (rule I1):
    /// information, not a violation.
    #[serde(default)]
    pub ingest_outlived_cycles: u64,
    /// Chained cycles (`--chain`): cycles that started on a chain's
    /// database, empty or not.
    #[serde(default)]
    pub chained_cycles: u64,
    /// Chained cycles whose recovered state was an admitted non-prefix
    /// state (I1, E5, column families at their own prefixes) and was
    /// carried on as such.
    #[serde(default)]
    pub chain_carried_special: u64,
    /// Chained cycles after which the chain started afresh (a violation,
    /// an anomaly, or a state that could not be carried).
    #[serde(default)]
    pub chain_restarts: u64,
    /// Consistent chained cycles whose explanation did not name the state
    /// read back (a crashcheck bug: must stay 0; the chain restarts).
    #[serde(default)]
    pub chain_unexplained: u64,
    /// What the transactions did (stores with transactions).
    #[serde(default)]
    pub transactions: super::txn_stats::TxnStats,
}

impl ModeStats {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &ModeStats) {
        self.cycles += o.cycles;
        self.acked_writes += o.acked_writes;
        self.lost_within_guarantee += o.lost_within_guarantee;
        self.survived_beyond_guarantee += o.survived_beyond_guarantee;
        self.in_flight_survived += o.in_flight_survived;
        self.kills_in_background_phase += o.kills_in_background_phase;
        self.kills_mid_unit += o.kills_mid_unit;
        for (w, n) in &o.kills_mid_unit_by_writer {
            *self.kills_mid_unit_by_writer.entry(*w).or_default() += n;
        }
        self.blob_cycles += o.blob_cycles;
        self.blob_files += o.blob_files;
        self.blob_bytes += o.blob_bytes;
        self.blob_gc_cycles += o.blob_gc_cycles;
        self.dir_image_cycles += o.dir_image_cycles;
        self.dir_unsynced_cycles += o.dir_unsynced_cycles;
        self.dir_entries_dropped += o.dir_entries_dropped;
        self.renames_undone += o.renames_undone;
        self.violations += o.violations;
        self.anomalies += o.anomalies;
        self.cf_divergence += o.cf_divergence;
        self.partial_flush_cycles += o.partial_flush_cycles;
        self.io_errors_injected += o.io_errors_injected;
        for (t, n) in &o.io_errors_by_type {
            *self.io_errors_by_type.entry(t.clone()).or_default() += n;
        }
        self.io_errors_retryable += o.io_errors_retryable;
        self.io_failed_ops += o.io_failed_ops;
        self.io_failed_reads += o.io_failed_reads;
        self.reopens += o.reopens;
        self.io_failed_reopens += o.io_failed_reopens;
        self.background_errors += o.background_errors;
        self.resumes += o.resumes;
        self.resumes_failed += o.resumes_failed;
        self.resumes_refilled += o.resumes_refilled;
        self.resumed_past_failed_write += o.resumed_past_failed_write;
        self.continued_after_error += o.continued_after_error;
        self.acked_after_error += o.acked_after_error;
        self.copies.add(&o.copies);
        let (a, b) = (&mut self.rocksdb, &o.rocksdb);
        a.estimated_keys += b.estimated_keys;
        a.total_sst_bytes += b.total_sst_bytes;
        a.block_cache_hit += b.block_cache_hit;
        a.block_cache_miss += b.block_cache_miss;
        a.compaction_cpu_micros += b.compaction_cpu_micros;
        a.write_stall_micros += b.write_stall_micros;
        a.levels_populated = a.levels_populated.max(b.levels_populated);
        self.rocksdb_samples += o.rocksdb_samples;
        for (l, n) in &o.cycles_by_levels_populated {
            *self.cycles_by_levels_populated.entry(*l).or_default() += n;
        }
        self.base_cycles += o.base_cycles;
        self.fifo_dropped_cycles += o.fifo_dropped_cycles;
        self.ingestions += o.ingestions;
        self.ingest_outlived_cycles += o.ingest_outlived_cycles;
        self.chained_cycles += o.chained_cycles;
        self.chain_carried_special += o.chain_carried_special;
        self.chain_restarts += o.chain_restarts;
        self.chain_unexplained += o.chain_unexplained;
        self.transactions.add(&o.transactions);
        for (st, n) in &o.cycles_by_compaction_style {
            *self
                .cycles_by_compaction_style
                .entry(st.clone())
                .or_default() += n;
        }
    }
}

/// Result of a campaign.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CrashReport {
    /// The engine under test: `rocksdb_version`, `rust_rocksdb_version`,
    /// `librocksdb_sys_version` (and `rocksdb_patch`) at the top level.
    #[serde(flatten)]
    pub engine: crate::store::engine::Engine,
    /// Campaign seed.
    pub seed: u64,
    /// Faults (comma-separated).
    pub fault: String,
    /// Cycles run.
    pub cycles: u64,
    /// The budget the campaign ran to and where it came from
    /// ([`crate::campaign::CrashConfig::budget`]): `cycles 100 (config)`,
    /// `duration 20m (CRASHCHECK_DURATION)`. Empty in reports written
    /// before it was recorded; merged reports of different budgets list
    /// each once, separated by `; `.
    #[serde(default)]
    pub budget: String,
    /// Wall time.
    pub duration_s: f64,
    /// Throughput.
    pub cycles_per_s: f64,
    /// Chained cycles?
    pub chain: bool,
    /// The run was interrupted (SIGINT/SIGTERM) before it finished.
    #[serde(default)]
    pub interrupted: bool,
    /// Shards merged into this report (1 for a single run).
    pub shards: u64,
    /// Parallel jobs.
    pub jobs: usize,
    /// Ops per cycle.
    pub ops_per_cycle: usize,
    /// Profile name.
    pub profile: String,
    /// Option profile.
    pub option_profile: String,
    /// Store name.
    pub store: String,
    /// What the store does not support
    /// ([`crate::store::Capabilities::missing`]): the campaign generated
    /// none of these ops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_lacks: Vec<String>,
    /// Concurrent writers per cycle.
    #[serde(default)]
    pub writers: usize,
    /// Options (mode set per cycle), in `key=value;...` form.
    pub options: String,
    /// Where the user's options came from (`--options-file PATH`, `--options`).
    pub options_source: Option<String>,
    /// User settings crashcheck replaced, and why.
    pub options_overridden: Vec<crate::store::user_options::Override>,
    /// Requested faults this RocksDB cannot inject, each with the reason
    /// ([`crate::fault::Fault::unsupported_here`]); they did not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_faults: Vec<String>,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Anomalies (hangs, deaths).
    pub anomalies: Vec<Anomaly>,
    /// Per-mode statistics (all faults together).
    pub by_mode: BTreeMap<String, ModeStats>,
    /// Per fault, per mode statistics.
    pub by_fault: BTreeMap<String, BTreeMap<String, ModeStats>>,
    /// The LSM shapes the cycles reached, over all modes.
    #[serde(default)]
    pub lsm: Lsm,
    /// What the transactions did, over all modes (per mode: each
    /// [`ModeStats::transactions`]).
    #[serde(default)]
    pub transactions: super::txn_stats::TxnStats,
}

/// LSM shape over a campaign (see [`ModeStats::cycles_by_levels_populated`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lsm {
    /// Non-empty levels at the kill (in the column family with the most)
    /// → cycles.
    pub cycles_by_levels_populated: BTreeMap<u64, u64>,
    /// Cycles that started from a deep base database.
    #[serde(default)]
    pub base_cycles: u64,
    /// Compaction style → cycles.
    #[serde(default)]
    pub compaction_styles: BTreeMap<String, u64>,
    /// FIFO cycles whose state matched only with FIFO's oldest units
    /// dropped.
    #[serde(default)]
    pub fifo_dropped_cycles: u64,
    /// Ingest ops run.
    #[serde(default)]
    pub ingestions: u64,
    /// Cycles in which an ingest outlived earlier writes (rule I1).
    #[serde(default)]
    pub ingest_outlived_cycles: u64,
    /// Chained cycles (see [`ModeStats::chained_cycles`]).
    #[serde(default)]
    pub chained_cycles: u64,
    /// Chained cycles carried on through an admitted non-prefix state.
    #[serde(default)]
    pub chain_carried_special: u64,
    /// Chained cycles after which the chain started afresh.
    #[serde(default)]
    pub chain_restarts: u64,
    /// Consistent chained cycles whose explanation did not name the state
    /// read back (must be 0).
    #[serde(default)]
    pub chain_unexplained: u64,
    /// Cycles whose database held blob files at the kill (see
    /// [`ModeStats::blob_cycles`]), the files and bytes, and the cycles in
    /// which blob garbage collection ran.
    #[serde(default)]
    pub blob_cycles: u64,
    /// See `blob_cycles`.
    #[serde(default)]
    pub blob_files: u64,
    /// See `blob_cycles`.
    #[serde(default)]
    pub blob_bytes: u64,
    /// See `blob_cycles`.
    #[serde(default)]
    pub blob_gc_cycles: u64,
}

impl Lsm {
    /// One line on where the cycles started and what they exercised, for
    /// the CLI and the Markdown report (`cycles` in all).
    pub fn summary(&self, cycles: u64) -> String {
        let styles: Vec<String> = self
            .compaction_styles
            .iter()
            .map(|(st, n)| format!("{st} {n}"))
            .collect();
        format!(
            "{} of {cycles} cycles started from a deep base database; compaction styles: {}; FIFO had dropped its oldest writes in {} cycles (rule F1, not a violation); {} ingestions, outliving earlier writes in {} cycles (rule I1, not a violation)",
            self.base_cycles,
            styles.join(", "),
            self.fifo_dropped_cycles,
            self.ingestions,
            self.ingest_outlived_cycles
        ) + &format!(
            "; blob files at the kill in {} cycles ({} files, {:.1} MiB), blob garbage collection ran in {} cycles",
            self.blob_cycles,
            self.blob_files,
            self.blob_bytes as f64 / (1 << 20) as f64,
            self.blob_gc_cycles
        ) + &self.chain_summary()
    }

    /// The chain's part of [`Lsm::summary`] (empty without `--chain`).
    fn chain_summary(&self) -> String {
        if self.chained_cycles == 0 {
            return String::new();
        }
        format!(
            "; {} chained cycles, {} carried on through an admitted non-prefix state (I1, E5, column families apart), chain restarted {} times{}",
            self.chained_cycles,
            self.chain_carried_special,
            self.chain_restarts,
            match self.chain_unexplained {
                0 => String::new(),
                n => format!(", {n} states UNEXPLAINED (a crashcheck bug)"),
            }
        )
    }

    /// The shapes summed over `by_mode`.
    pub fn of(by_mode: &BTreeMap<String, ModeStats>) -> Lsm {
        let mut total = ModeStats::default();
        for m in by_mode.values() {
            total.add(m);
        }
        Lsm {
            cycles_by_levels_populated: total.cycles_by_levels_populated,
            base_cycles: total.base_cycles,
            compaction_styles: total.cycles_by_compaction_style,
            fifo_dropped_cycles: total.fifo_dropped_cycles,
            ingestions: total.ingestions,
            ingest_outlived_cycles: total.ingest_outlived_cycles,
            chained_cycles: total.chained_cycles,
            chain_carried_special: total.chain_carried_special,
            chain_restarts: total.chain_restarts,
            chain_unexplained: total.chain_unexplained,
            blob_cycles: total.blob_cycles,
            blob_files: total.blob_files,
            blob_bytes: total.blob_bytes,
            blob_gc_cycles: total.blob_gc_cycles,
        }
    }
}

impl CrashReport {
    /// Combines shard reports of one campaign (or reports of several
    /// campaigns) into one: counts add up, violations and anomalies are
    /// concatenated, wall time is the longest (shards run side by side).
    /// `parallel`: the runs were side by side (shards: wall time is the
    /// longest); otherwise one after another (wall times add up).
    pub fn merge(reports: &[CrashReport], parallel: bool) -> CrashReport {
        let mut out = reports.first().cloned().unwrap_or_default();
        for r in reports.iter().skip(1) {
            out.cycles += r.cycles;
            out.shards += r.shards;
            out.duration_s = if parallel {
                out.duration_s.max(r.duration_s)
            } else {
                out.duration_s + r.duration_s
            };
            out.writers = out.writers.max(r.writers);
            out.interrupted |= r.interrupted;
            for u in &r.unsupported_faults {
                if !out.unsupported_faults.contains(u) {
                    out.unsupported_faults.push(u.clone());
                }
            }
            out.violations.extend(r.violations.iter().cloned());
            out.anomalies.extend(r.anomalies.iter().cloned());
            out.chain |= r.chain;
            if !r.budget.is_empty() && !out.budget.split("; ").any(|b| b == r.budget) {
                if !out.budget.is_empty() {
                    out.budget.push_str("; ");
                }
                out.budget.push_str(&r.budget);
            }
            for (m, st) in &r.by_mode {
                out.by_mode.entry(m.clone()).or_default().add(st);
            }
            for (f, ms) in &r.by_fault {
                for (m, st) in ms {
                    out.by_fault
                        .entry(f.clone())
                        .or_default()
                        .entry(m.clone())
                        .or_default()
                        .add(st);
                }
            }
            for (field, other) in [
                (&mut out.fault, &r.fault),
                (&mut out.profile, &r.profile),
                (&mut out.option_profile, &r.option_profile),
                (&mut out.store, &r.store),
            ] {
                for o in other.split(',') {
                    if !field.split(',').any(|x| x == o) {
                        field.push(',');
                        field.push_str(o);
                    }
                }
            }
        }
        out.cycles_per_s = out.cycles as f64 / out.duration_s.max(1e-9);
        out.lsm = Lsm::of(&out.by_mode);
        out.transactions = super::txn_stats::TxnStats::of(&out.by_mode);
        out
    }
}
