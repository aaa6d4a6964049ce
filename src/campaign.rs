//! Crash campaigns: many crash cycles over durability modes, fresh or
//! chained, in parallel jobs, with per-mode statistics and artifacts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::crash::{self, ChildEnd, KillPlan, Phase, Reopened, SharedLog, WriterRun};
use crate::history::History;
use crate::model::State;
use crate::op::Op;
use crate::oracle::{admissible, Admissible, Fault};
use crate::repro::{self, Case, CheckKind};
use crate::store::{StoreFactory, StoreOptions, WalMode};
use crate::verify::{verify_all, Recovered, Verdict, ViolationClass};
use crate::workload::{Generator, Profile};

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
    /// Campaign seed; each cycle derives its own.
    pub seed: u64,
    /// Carry the recovered DB into the next cycle.
    pub chain: bool,
    /// Parallel cycle streams.
    pub jobs: usize,
    /// Ops per cycle.
    pub ops_per_cycle: usize,
    /// Workload profile.
    pub profile: Profile,
    /// Options (the mode is set per cycle).
    pub options: StoreOptions,
    /// Option profile applied per cycle (see `option_matrix`): `defaults`,
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
    /// Store name for repro files (`rocksdb` or `mutant:<name>`).
    pub store_name: String,
    /// Stop at the first violation.
    pub stop_on_violation: bool,
    /// `(i, n)`: run only global cycles `c` with `c % n == i`, so `n`
    /// runners share one campaign (`(0, 1)`: all of it).
    pub shard: (u64, u64),
    /// Kill only after a random number of acknowledgements (no delay or
    /// phase kills): the benchmark's like-for-like setting.
    pub ack_kills_only: bool,
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
            faults: vec![Fault::Kill],
            cycles: Some(100),
            duration: None,
            seed: 1,
            chain: false,
            jobs: 2,
            ops_per_cycle: 300,
            profile: Profile::by_name("crash").unwrap_or_else(|| Profile::all().remove(0)),
            options: StoreOptions::default(),
            option_profile: "defaults".into(),
            work_dir: work_dir.to_path_buf(),
            artifacts: work_dir.join("artifacts"),
            timeout: Duration::from_secs(30),
            shrink: false,
            store_name: "rocksdb".into(),
            stop_on_violation: false,
            shard: (0, 1),
            ack_kills_only: false,
            writers: 1,
            cf_flush: None,
        }
    }
}

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
    /// `hang`, `writer-died`, `verifier-died`, `writer-open-failed`.
    pub kind: String,
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

fn anomaly_kind(a: &str) -> &'static str {
    if a.starts_with("hang") || a.contains("Hung") {
        "hang"
    } else if a.starts_with("configuration rejected") {
        "configuration-rejected"
    } else if a.starts_with("known RocksDB bug") {
        "known-rocksdb-bug"
    } else if a.starts_with("open refused") {
        "open-refused"
    } else {
        "abnormal-exit"
    }
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
    /// Checkpoints, backups and plain copies, and how they were judged.
    #[serde(default)]
    pub aux: crate::checkpoint::AuxOutcome,
    /// RocksDB figures summed over the cycles that published them (see
    /// `rocksdb_samples`): tickers are per cycle, properties at its end.
    #[serde(default)]
    pub rocksdb: crate::store::StoreStats,
    /// Cycles that published RocksDB figures.
    #[serde(default)]
    pub rocksdb_samples: u64,
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
        self.violations += o.violations;
        self.anomalies += o.anomalies;
        self.cf_divergence += o.cf_divergence;
        self.partial_flush_cycles += o.partial_flush_cycles;
        self.aux.add(&o.aux);
        let (a, b) = (&mut self.rocksdb, &o.rocksdb);
        a.estimated_keys += b.estimated_keys;
        a.total_sst_bytes += b.total_sst_bytes;
        a.block_cache_hit += b.block_cache_hit;
        a.block_cache_miss += b.block_cache_miss;
        a.compaction_cpu_micros += b.compaction_cpu_micros;
        a.write_stall_micros += b.write_stall_micros;
        self.rocksdb_samples += o.rocksdb_samples;
    }
}

/// Result of a campaign.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CrashReport {
    /// Campaign seed.
    pub seed: u64,
    /// Faults (comma-separated).
    pub fault: String,
    /// Cycles run.
    pub cycles: u64,
    /// Wall time.
    pub duration_s: f64,
    /// Throughput.
    pub cycles_per_s: f64,
    /// Chained cycles?
    pub chain: bool,
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
    /// Concurrent writers per cycle.
    #[serde(default)]
    pub writers: usize,
    /// Options (mode set per cycle), in `key=value;...` form.
    pub options: String,
    /// Where the user's options came from (`--options-file PATH`, `--options`).
    pub options_source: Option<String>,
    /// User settings crashcheck replaced, and why.
    pub options_overridden: Vec<crate::store::user_options::Override>,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Anomalies (hangs, deaths).
    pub anomalies: Vec<Anomaly>,
    /// Per-mode statistics (all faults together).
    pub by_mode: BTreeMap<String, ModeStats>,
    /// Per fault, per mode statistics.
    pub by_fault: BTreeMap<String, BTreeMap<String, ModeStats>>,
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
            out.violations.extend(r.violations.iter().cloned());
            out.anomalies.extend(r.anomalies.iter().cloned());
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
        out
    }
}

/// Deterministic per-cycle seed.
pub fn cycle_seed(seed: u64, cycle: u64) -> u64 {
    let mut x = seed ^ cycle.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// True when a clean close may itself lose acknowledged writes, so a
/// reopen inside a cycle would be a crash the in-child read checks cannot
/// model; such cycles contain no reopen.
/// - Power loss: on the fault filesystem a close drops unsynced data at
///   once (close is no sync: fault_injection_fs.cc `CloseImpl`).
/// - WAL disabled with `avoid_flush_during_shutdown`: the close skips the
///   memtable flush (options.h `avoid_flush_during_shutdown`: "The flush
///   can be skip to speedup DB close. Unpersisted data WILL BE LOST.").
pub fn reopen_loses_data(fault: Fault, opts: &StoreOptions) -> bool {
    fault.is_power_loss() || (opts.wal_mode == WalMode::NoWal && opts.avoid_flush_during_shutdown)
}

/// Chooses where a cycle's kill lands.
/// `ack_only` restricts kills to "after a random number of
/// acknowledgements" (the benchmark compares that with a bare loop).
pub fn choose_kill(rng: &mut ChaCha8Rng, h: &History, ack_only: bool) -> KillPlan {
    let count = |f: &dyn Fn(&Op) -> bool| h.ops.iter().filter(|o| f(o)).count() as u32;
    let roll = if ack_only {
        99
    } else {
        rng.random_range(0..100)
    };
    let phase = |rng: &mut ChaCha8Rng, phase, n: u32, max_us| {
        if n == 0 {
            None
        } else {
            Some(KillPlan::DuringPhase {
                phase,
                nth: rng.random_range(1..=n),
                micros: rng.random_range(0..max_us),
            })
        }
    };
    let plan = match roll {
        0..=9 => phase(
            rng,
            Phase::Flushing,
            count(&|o| matches!(o, Op::Flush | Op::FlushCfs { .. })),
            3000,
        ),
        10..=19 => phase(
            rng,
            Phase::FlushingWal,
            count(&|o| matches!(o, Op::FlushWal { .. })),
            300,
        ),
        20..=24 => phase(rng, Phase::Opening, 1, 15_000),
        25..=29 => phase(
            rng,
            Phase::Reopening,
            count(&|o| matches!(o, Op::Reopen)),
            15_000,
        ),
        30..=34 => phase(
            rng,
            Phase::Compacting,
            count(&|o| matches!(o, Op::Compact { .. })),
            5000,
        ),
        35..=54 => phase(
            rng,
            Phase::WritingBatch,
            count(&|o| matches!(o, Op::Batch(_))),
            25,
        ),
        55..=64 => Some(KillPlan::AfterDelay {
            micros: rng.random_range(0..30_000),
        }),
        // Inside a checkpoint, backup or copy (none in most profiles: then
        // this falls through to an acknowledgement count, as before).
        65..=79 => phase(
            rng,
            Phase::Maintaining,
            count(&|o| {
                matches!(
                    o,
                    Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. }
                )
            }),
            20_000,
        ),
        _ => None,
    };
    plan.unwrap_or_else(|| {
        // After a random number of acknowledgements.
        let units = h.units();
        if units == 0 {
            return KillPlan::AfterOp { n: h.ops.len() };
        }
        let k = rng.random_range(0..=units);
        let n = if k == 0 {
            0
        } else {
            h.op_of_unit[k as usize - 1] + 1
        };
        KillPlan::AfterOp { n }
    })
}

/// Keys read point-wise after recovery: recently written, random, absent.
pub fn sample_keys(rng: &mut ChaCha8Rng, h: &History) -> Vec<Vec<u8>> {
    let keys: Vec<&Vec<u8>> = h.timelines.keys().collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for &oi in h.op_of_unit.iter().rev().take(24) {
        for w in h.ops[oi].write_ops() {
            if let crate::op::WriteOp::Put { key, .. } | crate::op::WriteOp::Merge { key, .. } = w {
                out.push(key.clone());
            }
        }
    }
    for _ in 0..24 {
        if keys.is_empty() {
            break;
        }
        out.push(keys[rng.random_range(0..keys.len())].clone());
    }
    out.push(b"k999999x".to_vec());
    out.push(b"a-never-written".to_vec());
    out.sort();
    out.dedup();
    out
}

/// Everything about one finished cycle.
#[derive(Clone, Debug)]
pub struct CycleResult {
    /// The writer's run.
    pub writer: WriterRun,
    /// Admissible range (of the first writer).
    pub adm: Admissible,
    /// Verdict (or anomaly text when there is none).
    pub verdict: Result<Verdict, String>,
    /// Per writer: the recovered prefix, when the verdict is Ok.
    pub prefixes: Vec<u64>,
    /// Column families recovered to different prefixes where the
    /// configuration allows it (a hazard, not a violation).
    pub divergence: Option<String>,
    /// How the checkpoints, backups and copies of the cycle were judged.
    pub aux: crate::checkpoint::AuxOutcome,
    /// What the verifier read back (when it opened).
    pub recovered: Option<Recovered>,
    /// The crash image applied to the WAL, if any.
    pub image: Option<String>,
}

/// The directory a cycle on `db` keeps its checkpoints, backups and
/// copies in (created and removed by [`run_cycle`]).
pub fn aux_root(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".aux");
    PathBuf::from(s)
}

/// Runs one crash cycle on `db` (which may hold the chain's base state):
/// one writer per history in `lanes` (usually one).
#[allow(clippy::too_many_arguments)]
pub fn run_cycle(
    shared: &SharedLog,
    factory: &dyn StoreFactory,
    db: &Path,
    opts: &StoreOptions,
    fault: Fault,
    lanes: &[History],
    plan: KillPlan,
    sample: &[Vec<u8>],
    timeout: Duration,
    keep_image: Option<&Path>,
) -> Result<CycleResult, crash::CrashError> {
    let single = lanes.len() <= 1;
    let wopts = StoreOptions {
        // The partial-writeback image needs the page cache intact: it cuts
        // the WAL itself, after the kill.
        lose_unsynced_data: fault.is_power_loss()
            && !(fault == Fault::PowerLossPartial && single && partial_writeback_applies(opts)),
        ..opts.clone()
    };
    let opts = &StoreOptions {
        lose_unsynced_data: false,
        ..opts.clone()
    };
    let aux = aux_root(db);
    let uses_aux = lanes.iter().any(|h| {
        h.ops.iter().any(|o| {
            matches!(
                o,
                Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. }
            )
        })
    });
    struct RemoveOnDrop(PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let mut _aux_guard = None;
    if uses_aux {
        // Ours alone (a previous cycle on this path made it): start empty,
        // and remove it whatever happens below.
        let _ = std::fs::remove_dir_all(&aux);
        std::fs::create_dir_all(&aux).map_err(|e| crash::CrashError::Sys("create aux dir", e))?;
        _aux_guard = Some(RemoveOnDrop(aux.clone()));
    }
    let writer = crash::run_writer(shared, factory, db, &wopts, lanes, plan, timeout, &aux)?;
    let adm = admissible(opts.wal_mode, fault, opts, &writer.progress);
    // WAL crash images index WAL records by the single writer's units;
    // with several writers a record may hold a whole write group.
    let image = match lanes.first() {
        Some(h) if single => apply_wal_image(db, fault, opts, &writer.progress, adm.lo, h),
        _ => None,
    };
    if let Some(img) = keep_image {
        let _ = link_tree(db, img);
    }
    let empty = |writer, verdict, recovered| CycleResult {
        writer,
        adm: adm.clone(),
        verdict,
        prefixes: Vec::new(),
        divergence: None,
        aux: Default::default(),
        recovered,
        image: image.clone(),
    };
    if writer.end == ChildEnd::Hung {
        return Ok(empty(
            writer,
            Err("hang: the writer did not finish within the timeout".into()),
            None,
        ));
    }
    let lane = |t: usize| writer.lanes.get(t).copied().unwrap_or_default();
    let adm_of = |t: usize, cf: Option<usize>| {
        crate::oracle::admissible_in(opts.wal_mode, fault, opts, &lane(t), cf)
    };
    let promise = crate::oracle::cross_cf_promise(opts.wal_mode, opts, &writer.progress);
    let cfs = opts.column_families.max(1) as usize;
    let aux_outcome = if uses_aux {
        crate::checkpoint::judge(factory, opts, fault, lanes, &writer, &aux, promise, timeout)?
    } else {
        Default::default()
    };
    let reopened = crash::reopen_and_read(factory, db, opts, sample, timeout)?;
    let mut prefixes = Vec::new();
    let mut divergence = None;
    let (verdict, recovered) = match reopened {
        Reopened::Opened(rec) => {
            let v = match (&writer.end, &writer.failure) {
                (ChildEnd::Exited { code: 92 }, Some((i, msg))) => Verdict::Violation {
                    class: ViolationClass::ReadMismatch,
                    detail: format!("writer read at op #{i}: {msg}"),
                    diff: Vec::new(),
                },
                (ChildEnd::Exited { code: 91 }, Some((i, msg)))
                    if msg.starts_with("Invalid argument") =>
                {
                    return Ok(empty(
                        writer.clone(),
                        Err(format!("configuration rejected by RocksDB at op #{i}: {msg}")),
                        Some(rec),
                    ));
                }
                (ChildEnd::Exited { code: 91 }, Some((i, msg))) => Verdict::Violation {
                    class: ViolationClass::StoreError,
                    detail: format!("op #{i} failed: {msg}"),
                    diff: Vec::new(),
                },
                _ => {
                    let cv = verify_all(lanes, &adm_of, &rec, cfs, promise);
                    prefixes = cv.prefixes;
                    divergence = cv.divergence;
                    match (cv.verdict, aux_outcome.violation.clone()) {
                        (Verdict::Ok { .. }, Some((class, detail))) => Verdict::Violation {
                            class,
                            detail,
                            diff: Vec::new(),
                        },
                        (Verdict::Ok { .. }, None) if aux_outcome.known_bug.is_some() => {
                            let d = aux_outcome.known_bug.clone().unwrap_or_default();
                            return Ok(CycleResult {
                                verdict: Err(format!(
                                    "known RocksDB bug (docs/findings.md, checkpoint/backup under atomic_flush without the WAL): {d}"
                                )),
                                prefixes,
                                divergence,
                                aux: aux_outcome,
                                recovered: Some(rec),
                                ..empty(writer, Err(String::new()), None)
                            });
                        }
                        (Verdict::Violation { class, detail, .. }, _)
                            if crate::checkpoint::known_flush_bug(opts, lanes.len(), class) =>
                        {
                            // Would the state pass if flushes that overlapped
                            // another had persisted nothing? Then it is
                            // finding 4, not something new.
                            let solo = |t: usize, cf: Option<usize>| {
                                let p = lane(t).without_overlapping_flushes();
                                crate::oracle::admissible_in(opts.wal_mode, fault, opts, &p, cf)
                            };
                            let again = verify_all(lanes, &solo, &rec, cfs, promise);
                            if matches!(again.verdict, Verdict::Ok { .. }) {
                                return Ok(CycleResult {
                                    verdict: Err(format!(
                                        "known RocksDB bug (docs/findings.md finding 4: an atomic flush that overlapped another returned before persisting what was acknowledged before it): {class}: {detail}"
                                    )),
                                    prefixes: again.prefixes,
                                    divergence: again.divergence,
                                    aux: aux_outcome,
                                    recovered: Some(rec),
                                    ..empty(writer, Err(String::new()), None)
                                });
                            }
                            Verdict::Violation {
                                class,
                                detail,
                                diff: Vec::new(),
                            }
                        }
                        (v, _) => v,
                    }
                }
            };
            (Ok(v), Some(rec))
        }
        // absolute-consistency refuses any torn WAL tail (options.h
        // kAbsoluteConsistency: "We don't expect to find any corruption in
        // the WAL"); a crash may leave one, so a refusal is admitted.
        Reopened::Failed(msg)
            if opts.wal_recovery_mode == crate::store::RecoveryMode::AbsoluteConsistency
                && msg.contains("Corruption") =>
        {
            (
                Err(format!(
                    "open refused under absolute-consistency (admitted: a crash may tear the WAL tail): {msg}"
                )),
                None,
            )
        }
        Reopened::Failed(msg) => (
            Ok(Verdict::Violation {
                class: ViolationClass::UnexpectedOpenFailure,
                detail: format!("reopen after the crash failed: {msg}"),
                diff: Vec::new(),
            }),
            None,
        ),
        Reopened::Died(end) => (
            Err(format!("verifier child ended abnormally: {end:?}")),
            None,
        ),
    };
    Ok(CycleResult {
        writer,
        adm,
        verdict,
        prefixes,
        divergence,
        aux: aux_outcome,
        recovered,
        image,
    })
}

/// True when the partial-writeback image can be applied (see
/// [`apply_wal_image`]); otherwise that fault is a plain power loss.
pub fn partial_writeback_applies(opts: &StoreOptions) -> bool {
    matches!(opts.wal_mode, WalMode::Wal | WalMode::WalSync)
        && crate::store::user_options::split_options(&opts.rocksdb)
            .iter()
            .all(|kv| !kv.starts_with("recycle_log_file_num=") || kv == "recycle_log_file_num=0")
}

/// The newest WAL file of a database directory.
fn newest_wal(db: &Path) -> Option<PathBuf> {
    std::fs::read_dir(db)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
}

/// Applies the crash image of a power-loss variant to the newest WAL, after
/// the kill and before recovery. Returns what it did (`None`: nothing; the
/// image does not apply to this configuration and the cycle is a plain
/// power loss). Every image keeps all synced data, so the oracle's range
/// is unchanged:
/// - partial writeback: the WAL (written through the page cache, the kill
///   lost nothing) is cut at a random offset after the record of unit L,
///   the last one synced. Only for `wal`/`wal-sync` without log recycling,
///   where every acknowledged write is a WAL record in order, so the record
///   of unit L can be found by counting back from the last one.
/// - zeros / garbage: bytes appended after the synced WAL contents, as a
///   preallocated or torn tail reads. Only under point-in-time or
///   skip-any-corrupted recovery, which must stop at such a tail (see
///   docs/recovery-modes.md; the other modes may refuse to open).
pub fn apply_wal_image(
    db: &Path,
    fault: Fault,
    opts: &StoreOptions,
    p: &crate::oracle::Progress,
    lo: u64,
    h: &History,
) -> Option<String> {
    use crate::store::RecoveryMode;
    let tolerant = matches!(
        opts.wal_recovery_mode,
        RecoveryMode::PointInTime | RecoveryMode::SkipAnyCorrupted
    );
    // Decide before touching the disk: this runs on every cycle.
    let applies = match fault {
        Fault::PowerLossPartial => partial_writeback_applies(opts),
        Fault::PowerLossZeros | Fault::PowerLossGarbage => tolerant,
        Fault::Kill | Fault::PowerLoss => false,
    };
    if !applies {
        return None;
    }
    let wal = newest_wal(db)?;
    let mut bytes = std::fs::read(&wal).ok()?;
    let seed = h.fps.last().copied().unwrap_or(0) as u64 ^ p.acked;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let what = match fault {
        Fault::PowerLossPartial => {
            let recs = crate::recovery::parse_wal(&bytes);
            let k = recs.len() as u64;
            // Records are units (last - k, last]; with last = acked the
            // index found for unit L is never too early.
            let keep_from = if lo + k <= p.acked {
                0 // unit L is in an older WAL: the whole file is unsynced
            } else {
                let i = (lo + k - p.acked - 1) as usize;
                recs.get(i)?.end
            };
            let end = bytes.len() as u64;
            if keep_from >= end {
                return None;
            }
            let cut = rng.random_range(keep_from..=end);
            bytes.truncate(cut as usize);
            format!("newest WAL cut at {cut} of {end} bytes (synced data ends by {keep_from})")
        }
        Fault::PowerLossZeros => {
            let n = rng.random_range(1..=8192);
            bytes.extend(std::iter::repeat_n(0u8, n));
            format!("{n} zero bytes appended to the newest WAL")
        }
        Fault::PowerLossGarbage => {
            let n = crate::recovery::append_garbage(&mut bytes, &mut rng, 1..=4096);
            format!("{n} garbage bytes appended to the newest WAL")
        }
        _ => return None,
    };
    std::fs::write(&wal, bytes).ok()?;
    Some(what)
}

/// Hard-links every file of `src` into a new directory `dst` (a copy where
/// linking fails), so the DB as the child left it can be kept.
pub fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &to)?;
        } else if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// Copies a directory tree (artifacts get real copies, not links).
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

struct Shared {
    cfg: CrashConfig,
    next: AtomicU64,
    stop: AtomicBool,
    started: Instant,
    report: Mutex<CrashReport>,
    done: AtomicU64,
    violations: AtomicU64,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Shared {
    fn take_cycle(&self) -> Option<u64> {
        if self.stop.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(d) = self.cfg.duration {
            if self.started.elapsed() >= d {
                return None;
            }
        }
        let k = self.next.fetch_add(1, Ordering::SeqCst);
        // Shard i of n runs global cycles i, i + n, i + 2n, ...
        let (i, n) = self.cfg.shard;
        let c = k * n.max(1) + i;
        match self.cfg.cycles {
            Some(n) if c >= n => None,
            _ => Some(c),
        }
    }
}

/// Progress callback: `(cycles done, violations)`.
pub type ProgressFn = dyn Fn(u64, u64) + Send + Sync;

struct Chain {
    dir: PathBuf,
    base: State,
}

/// Runs a crash campaign. The calling process must never have used
/// RocksDB (checked).
pub fn run_campaign(
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
    progress: Option<Arc<ProgressFn>>,
) -> Result<CrashReport, crash::CrashError> {
    run_campaign_with(cfg, factory, progress, None)
}

/// [`run_campaign`], also recording every cycle in `metrics` (the
/// Prometheus endpoint).
pub fn run_campaign_with(
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
    progress: Option<Arc<ProgressFn>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) -> Result<CrashReport, crash::CrashError> {
    if let Some(f) = cfg
        .faults
        .iter()
        .find(|f| !f.works_with_writers(cfg.writers))
    {
        return Err(crash::CrashError::Sys(
            "config",
            std::io::Error::other(format!(
                "fault {} edits the WAL of a single writer; with {} writers use kill or power-loss",
                f.name(),
                cfg.writers
            )),
        ));
    }
    crash::assert_fork_safe()?;
    let report = CrashReport {
        seed: cfg.seed,
        fault: cfg
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(","),
        chain: cfg.chain,
        shards: 1,
        jobs: cfg.jobs,
        ops_per_cycle: cfg.ops_per_cycle,
        profile: cfg.profile.name.into(),
        option_profile: cfg.option_profile.clone(),
        store: cfg.store_name.clone(),
        writers: cfg.writers.max(1),
        options: cfg.options.to_options_string(),
        by_mode: cfg
            .modes
            .iter()
            .map(|m| (m.name().to_string(), ModeStats::default()))
            .collect(),
        by_fault: cfg
            .faults
            .iter()
            .map(|f| {
                let modes = cfg
                    .modes
                    .iter()
                    .map(|m| (m.name().to_string(), ModeStats::default()))
                    .collect();
                (f.name().to_string(), modes)
            })
            .collect(),
        ..CrashReport::default()
    };
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        started: Instant::now(),
        report: Mutex::new(report),
        done: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        metrics,
        cfg,
    });
    let mut handles = Vec::new();
    let mut first_err = None;
    for job in 0..shared.cfg.jobs.max(1) {
        let sh = shared.clone();
        let f = factory.clone();
        let p = progress.clone();
        handles.push(std::thread::spawn(move || {
            worker(job, &sh, f.as_ref(), p.as_deref())
        }));
    }
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(_) => {
                first_err = first_err.or(Some(crash::CrashError::Sys(
                    "worker",
                    std::io::Error::other("a campaign worker panicked"),
                )))
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let mut r = shared
        .report
        .lock()
        .map_err(|_| crash::CrashError::Sys("report", std::io::Error::other("poisoned")))?
        .clone();
    r.duration_s = shared.started.elapsed().as_secs_f64();
    r.cycles_per_s = r.cycles as f64 / r.duration_s.max(1e-9);
    r.violations.sort_by_key(|v| v.cycle);
    Ok(r)
}

fn worker(
    job: usize,
    sh: &Shared,
    factory: &dyn StoreFactory,
    progress: Option<&ProgressFn>,
) -> Result<(), crash::CrashError> {
    let cfg = &sh.cfg;
    let log = SharedLog::new()?;
    let mut chains: BTreeMap<WalMode, Chain> = BTreeMap::new();
    let io = |what: &'static str| move |e: std::io::Error| crash::CrashError::Sys(what, e);
    while let Some(cycle) = sh.take_cycle() {
        let combo = (cycle as usize) % (cfg.modes.len() * cfg.faults.len());
        let mode = cfg.modes[combo % cfg.modes.len()];
        let fault = cfg.faults[combo / cfg.modes.len()];
        let seed = cycle_seed(cfg.seed, cycle);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let base = StoreOptions {
            wal_mode: mode,
            ..cfg.options.clone()
        };
        let opts = crate::option_matrix::apply_profile(&cfg.option_profile, &base, &mut rng)
            .map_err(|e| crash::CrashError::Sys("options", std::io::Error::other(e)))?;
        let writers = cfg.writers.clamp(1, crate::keyspace::MAX_WRITERS);
        let flush_style = cfg.cf_flush.unwrap_or(if opts.atomic_flush {
            crate::workload::FlushStyle::All
        } else {
            crate::workload::FlushStyle::Mixed
        });
        let per_writer = if writers > 1 {
            (cfg.ops_per_cycle / writers).max(60)
        } else {
            cfg.ops_per_cycle
        };
        let mut lane_ops: Vec<Vec<Op>> = (0..writers)
            .map(|w| {
                let s = if w == 0 {
                    seed
                } else {
                    cycle_seed(seed, w as u64)
                };
                let mut g = Generator::new(s, cfg.profile.clone());
                if reopen_loses_data(fault, &opts) {
                    g = g.without_reopen();
                }
                let layout = crate::keyspace::Layout {
                    cfs: opts.column_families.max(1),
                    writer: w as u8,
                    writers: writers as u8,
                };
                g.with_layout(layout, flush_style).ops(per_writer)
            })
            .collect();
        let ops = lane_ops.remove(0);
        let (dir, base) = if cfg.chain && writers == 1 {
            let c = match chains.remove(&mode) {
                Some(c) => c,
                None => Chain {
                    dir: cfg.work_dir.join(format!("chain-{job}-{}", mode.name())),
                    base: State::new(),
                },
            };
            (c.dir, c.base)
        } else {
            (cfg.work_dir.join(format!("db-{job}")), State::new())
        };
        let mut lanes = vec![History::new(ops, base)];
        lanes.extend(lane_ops.into_iter().map(|o| History::new(o, State::new())));
        let h = &lanes[0];
        let plan = choose_kill(&mut rng, h, cfg.ack_kills_only);
        let mut sample = sample_keys(&mut rng, h);
        for other in &lanes[1..] {
            sample.extend(sample_keys(&mut rng, other));
        }
        sample.sort();
        sample.dedup();
        let image = cfg.work_dir.join(format!("image-{job}"));
        let _ = std::fs::remove_dir_all(&image);
        let res = run_cycle(
            &log,
            factory,
            &dir,
            &opts,
            fault,
            &lanes,
            plan,
            &sample,
            cfg.timeout,
            Some(&image),
        )?;
        let extra_writers: Vec<Vec<Op>> = lanes[1..].iter().map(|l| l.ops.clone()).collect();
        let mut next_base = None;
        let mut violation = None;
        let mut anomaly = None;
        let p = &res.writer.progress;
        let mut stats = ModeStats {
            cycles: 1,
            acked_writes: res.writer.lanes.iter().map(|l| l.acked).sum(),
            cf_divergence: res.divergence.is_some() as u64,
            partial_flush_cycles: (opts.column_families > 1 && p.partial_flush) as u64,
            aux: res.aux.clone(),
            rocksdb: res.writer.stats.unwrap_or_default(),
            rocksdb_samples: res.writer.stats.is_some() as u64,
            kills_in_background_phase: matches!(
                res.writer.phase,
                Phase::Flushing
                    | Phase::FlushingWal
                    | Phase::Compacting
                    | Phase::Opening
                    | Phase::Reopening
            ) as u64,
            ..ModeStats::default()
        };
        match &res.verdict {
            Ok(Verdict::Ok { prefix }) => {
                for (t, lp) in res.writer.lanes.iter().enumerate() {
                    let prefix = res.prefixes.get(t).copied().unwrap_or(*prefix);
                    let lo = admissible(mode, fault, &opts, lp).lo;
                    stats.lost_within_guarantee += lp.acked.saturating_sub(prefix);
                    stats.survived_beyond_guarantee += prefix.min(lp.acked).saturating_sub(lo);
                    stats.in_flight_survived += (prefix > lp.acked) as u64;
                }
                // A diverged state is no prefix to build the next cycle on.
                if cfg.chain && writers == 1 && res.divergence.is_none() {
                    next_base = Some(lanes[0].state_at(*prefix));
                }
            }
            Ok(Verdict::Violation {
                class,
                detail,
                diff,
            }) => {
                stats.violations = 1;
                violation = Some((*class, detail.clone(), diff.clone()));
            }
            Err(msg) => {
                stats.anomalies = 1;
                anomaly = Some(msg.clone());
            }
        }
        if let ChildEnd::Signaled { signal } = res.writer.end {
            stats.anomalies = 1;
            anomaly = Some(format!("writer died of signal {signal}"));
        }
        if let (ChildEnd::Exited { code: 90 }, Some((_, msg))) =
            (&res.writer.end, &res.writer.failure)
        {
            stats.anomalies = 1;
            anomaly = Some(format!("writer could not open the database: {msg}"));
        }
        // Hangs and abnormal exits leave an artifact too: they may be
        // RocksDB bugs worth a replay (a configuration RocksDB rejected is not).
        let mut anomaly_artifact = None;
        if let Some(a) = &anomaly {
            if matches!(anomaly_kind(a), "hang" | "abnormal-exit") {
                let art = cfg.artifacts.join(format!(
                    "cycle-{cycle}-{}-{}-{}",
                    mode.name(),
                    fault.name(),
                    anomaly_kind(a)
                ));
                let case = Case {
                    check: CheckKind::Crash,
                    seed,
                    profile: cfg.profile.name.into(),
                    store: cfg.store_name.clone(),
                    options: opts.clone(),
                    expect: "anomaly".into(),
                    fault: Some(fault.name().into()),
                    kill_after_op: Some(res.writer.ops_done),
                    comments: vec![a.clone()],
                    ops: h.ops.clone(),
                    writers: extra_writers.clone(),
                };
                if write_artifact(&art, &case, None, &image, &res, &[], a, plan).is_ok() {
                    anomaly_artifact = Some(art);
                }
            }
        }
        let mut vreport = None;
        if let Some((class, detail, diff)) = violation {
            sh.violations.fetch_add(1, Ordering::SeqCst);
            let art = cfg.artifacts.join(format!(
                "cycle-{cycle}-{}-{}-{}",
                mode.name(),
                fault.name(),
                class.name()
            ));
            let case = Case {
                check: CheckKind::Crash,
                seed,
                profile: cfg.profile.name.into(),
                store: cfg.store_name.clone(),
                options: opts.clone(),
                expect: class.name().into(),
                fault: Some(fault.name().into()),
                // A writer that stopped on its own (a failed read or write)
                // stopped inside op `ops_done`: replay through that op.
                kill_after_op: Some(match res.writer.end {
                    ChildEnd::Exited { .. } => res.writer.ops_done + 1,
                    _ => res.writer.ops_done,
                }),
                comments: vec![format!("{class}: {detail}")],
                ops: h.ops.clone(),
                writers: extra_writers.clone(),
            };
            let shrunk = if cfg.shrink
                && sh.violations.load(Ordering::SeqCst) <= 1
                && h.base.is_empty()
                && writers == 1
            {
                shrink_crash(
                    factory,
                    &cfg.work_dir.join(format!("shrink-{job}")),
                    &case,
                    fault,
                    cfg.timeout,
                )
            } else {
                None
            };
            let written = write_artifact(
                &art,
                &case,
                shrunk.as_ref(),
                &image,
                &res,
                &diff,
                &detail,
                plan,
            );
            let (artifact, replay) = match written {
                Ok(cmd) => (Some(art), Some(cmd)),
                Err(_) => (None, None),
            };
            vreport = Some(ViolationReport {
                class,
                mode,
                fault,
                cycle,
                cycle_seed: seed,
                detail,
                artifact,
                replay,
                repro_ops: shrunk.as_ref().map_or(case.ops.len(), |c| c.ops.len()),
            });
            if cfg.stop_on_violation {
                sh.stop.store(true, Ordering::SeqCst);
            }
        }
        let _ = std::fs::remove_dir_all(&image);
        match next_base {
            Some(base) if cfg.chain => {
                chains.insert(mode, Chain { dir, base });
            }
            _ => {
                std::fs::remove_dir_all(&dir)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(io("remove db"))?;
            }
        }
        {
            let mut r = sh
                .report
                .lock()
                .map_err(|_| crash::CrashError::Sys("report", std::io::Error::other("poisoned")))?;
            r.cycles += 1;
            if let Some(m) = &sh.metrics {
                m.record(mode.name(), fault.name(), &stats);
            }
            r.by_mode
                .entry(mode.name().to_string())
                .or_default()
                .add(&stats);
            r.by_fault
                .entry(fault.name().to_string())
                .or_default()
                .entry(mode.name().to_string())
                .or_default()
                .add(&stats);
            if let Some(v) = vreport {
                r.violations.push(v);
            }
            if let Some(a) = anomaly {
                r.anomalies.push(Anomaly {
                    kind: anomaly_kind(&a).into(),
                    mode,
                    fault,
                    cycle,
                    cycle_seed: seed,
                    detail: a,
                    artifact: anomaly_artifact.clone(),
                });
            }
        }
        let done = sh.done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(p) = progress {
            p(done, sh.violations.load(Ordering::SeqCst));
        }
    }
    for (_, c) in chains {
        let _ = std::fs::remove_dir_all(&c.dir);
    }
    Ok(())
}

/// Replays a crash case once (fresh database at `dir`): the verdict.
pub fn replay_crash(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Result<(CycleResult, History), crash::CrashError> {
    let log = SharedLog::new()?;
    let mut lanes = vec![History::new(case.ops.clone(), State::new())];
    lanes.extend(
        case.writers
            .iter()
            .map(|o| History::new(o.clone(), State::new())),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let sample = sample_keys(&mut rng, &lanes[0]);
    let _ = std::fs::remove_dir_all(dir);
    let plan = KillPlan::AfterOp {
        n: case.kill_after_op.unwrap_or(case.ops.len()),
    };
    let r = run_cycle(
        &log,
        factory,
        dir,
        &case.options,
        fault,
        &lanes,
        plan,
        &sample,
        timeout,
        None,
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(aux_root(dir));
    Ok((r?, lanes.swap_remove(0)))
}

fn verdict_class(r: &CycleResult) -> Option<ViolationClass> {
    match &r.verdict {
        Ok(Verdict::Violation { class, .. }) => Some(*class),
        _ => None,
    }
}

/// Shrinks a violating crash case: ops are dropped while the replay (kill
/// after the same op, renumbered) still shows a violation of the same
/// class. `None` when the case does not reproduce deterministically.
pub fn shrink_crash(
    factory: &dyn StoreFactory,
    dir: &Path,
    case: &Case,
    fault: Fault,
    timeout: Duration,
) -> Option<Case> {
    let want = case.expect.clone();
    let still_fails = |c: &Case| -> bool {
        match replay_crash(factory, dir, c, fault, timeout) {
            Ok((r, _)) => verdict_class(&r).is_some_and(|cl| cl.name() == want),
            Err(_) => false,
        }
    };
    // Ops after the kill point never ran: cut them first.
    let kill = case
        .kill_after_op
        .unwrap_or(case.ops.len())
        .min(case.ops.len());
    let mut base = case.clone();
    base.ops.truncate(kill);
    base.kill_after_op = Some(kill);
    if !still_fails(&base) {
        return None;
    }
    // Tag ops with their position so the kill point follows them.
    let tagged: Vec<Op> = base.ops.clone();
    let min = repro::shrink(tagged, 300, |cand| {
        let c = Case {
            kill_after_op: Some(cand.len()),
            ops: cand.to_vec(),
            ..base.clone()
        };
        still_fails(&c)
    });
    Some(Case {
        kill_after_op: Some(min.len()),
        ops: min,
        comments: {
            let mut c = case.comments.clone();
            c.push(format!("shrunk from {} ops", case.ops.len()));
            c
        },
        ..base
    })
}

#[allow(clippy::too_many_arguments)]
fn write_artifact(
    dir: &Path,
    case: &Case,
    shrunk: Option<&Case>,
    image: &Path,
    res: &CycleResult,
    diff: &[String],
    detail: &str,
    plan: KillPlan,
) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("case.repro"), case.to_text())?;
    let mut cmd = format!("crashcheck replay {}", dir.join("case.repro").display());
    if let Some(s) = shrunk {
        std::fs::write(dir.join("shrunk.repro"), s.to_text())?;
        cmd = format!("crashcheck replay {}", dir.join("shrunk.repro").display());
    }
    if image.exists() {
        copy_tree(image, &dir.join("db"))?;
    }
    std::fs::write(
        dir.join("options.txt"),
        case.options.to_options_string().replace(';', "\n") + "\n",
    )?;
    std::fs::write(
        dir.join("kill.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "plan": plan,
            "ops_done": res.writer.ops_done,
            "phase": res.writer.phase,
            "child_end": res.writer.end,
            "progress": res.writer.progress,
            "admissible": res.adm,
            "crash_image": res.image,
            "writers": res.writer.lanes,
            "checkpoints_backups_copies": res.writer.aux,
        }))
        .unwrap_or_default(),
    )?;
    let mut d = format!("{detail}\n\n");
    for l in diff {
        d.push_str(l);
        d.push('\n');
    }
    std::fs::write(dir.join("diff.txt"), d)?;
    std::fs::write(
        dir.join("README.txt"),
        format!(
            "crashcheck violation artifact\n\n{detail}\n\nfiles:\n  case.repro    the op sequence, options, seed and kill point\n  shrunk.repro  a minimal sequence that still fails (if shrinking succeeded)\n  db/           the database as the killed child left it\n  kill.json     kill plan, progress and admissible prefixes\n  diff.txt      recovered state vs nearest admissible prefix\n\nreplay:\n  {cmd}\n"
        ),
    )?;
    Ok(cmd)
}
