//! WAL recovery modes: damage a WAL after a workload and check that each
//! `WALRecoveryMode` does what RocksDB documents (see
//! `docs/recovery-modes.md` for the expectations and their sources).
//!
//! A trial builds a database with two live WAL files (a writer child is
//! killed, a second one reopens with `avoid_flush_during_recovery` so the
//! first WAL is kept, writes more and is killed), damages one WAL in one
//! way, and reopens a copy under each recovery mode in a verifier child.
//! The outcome is classified against the history of the writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

mod expect;

pub use expect::{classify, expected, mode_name, Damage, Expectation, Outcome, Target, MODES};

use crate::crash::{isolate, ChildEnd};
use crate::fsutil::copy_tree;
use crate::model::history::History;
use crate::model::State;
use crate::observe::{reopen_and_read, Reopened};
use crate::op::{Op, Value, WriteOp};
use crate::store::drive::{drive, Plain};
use crate::store::{RecoveryMode, RocksFactory, RocksStore, StoreOptions, WalMode};
use crate::wal::{append_garbage, parse_wal, wal_files, WalRecord, HEADER};

/// One cell of the matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// Recovery mode.
    pub mode: String,
    /// Damage kind.
    pub damage: String,
    /// Damaged WAL.
    pub target: String,
    /// WAL compression (`none` or `zstd`).
    pub wal_compression: String,
    /// Outcome counts.
    pub counts: BTreeMap<String, u64>,
    /// Outcomes the documentation admits.
    pub expected: Vec<String>,
    /// Why.
    pub source: String,
    /// Admitted, but a silent data-loss hazard.
    pub hazard: Option<String>,
    /// Trials whose outcome contradicts the expectation.
    pub contradictions: u64,
}

/// A contradiction with a command that replays it.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Mode, damage, target, compression.
    pub cell: String,
    /// Outcome seen.
    pub outcome: String,
    /// Expected outcomes.
    pub expected: Vec<String>,
    /// Detail (error message or prefix).
    pub detail: String,
    /// Command replaying this trial.
    pub replay: String,
}

/// The matrix result.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    /// Seed.
    pub seed: u64,
    /// Trials per cell.
    pub trials: u32,
    /// Every cell.
    pub cells: Vec<Cell>,
    /// Contradictions.
    pub findings: Vec<Finding>,
    /// Trials whose set-up did not produce two WAL files as planned.
    pub setup_failures: u64,
}

fn units(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let put = |rng: &mut ChaCha8Rng, j: u64| WriteOp::Put {
                key: crate::workload::key(rng.random_range(0..5000)),
                value: Value::Gen {
                    seed: seed.wrapping_mul(1_000_003) + i as u64 * 16 + j,
                    len: rng.random_range(8..600),
                },
            };
            if rng.random_bool(0.3) {
                Op::Batch(
                    (0..rng.random_range(2..5))
                        .map(|j| put(&mut rng, j))
                        .collect(),
                )
            } else {
                Op::Write(put(&mut rng, 0))
            }
        })
        .collect()
}

fn base_opts(compress: bool) -> StoreOptions {
    StoreOptions {
        wal_mode: WalMode::Wal,
        write_buffer_size: 64 << 20,
        wal_compression: compress,
        ..StoreOptions::default()
    }
}

/// Builds the two-WAL database: `a` units in the older WAL, `b` in the newest.
fn build(dir: &Path, ops: &[Op], a: usize, compress: bool) -> Result<(), String> {
    for (phase, range) in [(0, 0..a), (1, a..ops.len())] {
        let opts = base_opts(compress);
        let end = isolate(
            || {
                let Ok(mut ro) = crate::store::rocks::rocksdb_options(&opts) else {
                    return 2;
                };
                if phase == 1 {
                    // Keep the first WAL alive (options.h
                    // avoid_flush_during_recovery: "existing WAL logs will
                    // be kept").
                    crate::store::compat::set_avoid_flush_during_recovery(&mut ro, true);
                    ro.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
                }
                let Ok(mut st) = RocksStore::open_with(dir, &opts, ro) else {
                    return 3;
                };
                for op in &ops[range.clone()] {
                    if drive(&mut st, op, &mut Plain).is_err() {
                        return 4;
                    }
                }
                // Die without a clean close: everything stays in the WAL.
                // SAFETY: plain syscall.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                5
            },
            Duration::from_secs(60),
        )
        .map_err(|e| e.to_string())?;
        if end != ChildEnd::Killed {
            return Err(format!("builder child ended {end:?}"));
        }
    }
    Ok(())
}

/// Applies `d` to `file`; returns the index of the first damaged record
/// (`records.len()` when the damage lies after the last record).
fn damage(file: &Path, d: Damage, rng: &mut ChaCha8Rng) -> Result<usize, String> {
    let io = |e: std::io::Error| format!("{}: {e}", file.display());
    let mut bytes = std::fs::read(file).map_err(io)?;
    let recs = parse_wal(&bytes);
    let (Some(last), n) = (recs.last().copied(), recs.len()) else {
        return Err(format!("{}: no records", file.display()));
    };
    let flip = |bytes: &mut Vec<u8>, r: WalRecord, rng: &mut ChaCha8Rng| {
        let lo = r.start + HEADER;
        let span = (r.end - lo).max(1);
        for _ in 0..(span / 10).max(1) {
            let at = (lo + rng.random_range(0..span)) as usize;
            if at < bytes.len() {
                bytes[at] ^= 0x80;
            }
        }
    };
    let idx = match d {
        Damage::TruncMidRecord => {
            let cut = rng.random_range(last.start + 1..last.end);
            bytes.truncate(cut as usize);
            n - 1
        }
        Damage::TruncAtBoundary => {
            bytes.truncate(last.start as usize);
            n - 1
        }
        Damage::ZeroTail => {
            bytes.extend(std::iter::repeat_n(0u8, rng.random_range(4096..20000)));
            n
        }
        Damage::GarbageTail => {
            append_garbage(&mut bytes, rng, 64..=1023);
            n
        }
        Damage::BitflipLast => {
            flip(&mut bytes, last, rng);
            n - 1
        }
        Damage::BitflipMid => {
            let m = n / 2;
            flip(&mut bytes, recs[m], rng);
            m
        }
        Damage::MissingFile => {
            std::fs::remove_file(file).map_err(io)?;
            return Ok(0);
        }
    };
    std::fs::write(file, bytes).map_err(io)?;
    Ok(idx)
}

/// Settings of a matrix run.
#[derive(Clone, Debug)]
pub struct MatrixConfig {
    /// Trials per cell.
    pub trials: u32,
    /// Seed.
    pub seed: u64,
    /// Write units in the older / newest WAL.
    pub units: (usize, usize),
    /// Restrict to cells named `mode:damage@target` (any part may be `*`).
    pub only: Option<String>,
    /// WAL compression settings to run.
    pub compressions: Vec<bool>,
    /// Parallel trials.
    pub jobs: usize,
    /// Work directory.
    pub work: PathBuf,
}

fn selected(only: &Option<String>, m: RecoveryMode, d: Damage, t: Target) -> bool {
    let Some(o) = only else { return true };
    o.split(',').any(|pat| {
        let (mp, rest) = pat.split_once(':').unwrap_or((pat, "*@*"));
        let (dp, tp) = rest.split_once('@').unwrap_or((rest, "*"));
        (mp == "*" || mp == mode_name(m))
            && (dp == "*" || dp == d.name())
            && (tp == "*" || tp == t.name())
    })
}

/// Checks an `--only` filter before any work: it must select at least one
/// cell, so a typo is an error, not an empty matrix that passes.
pub fn check_only(only: &Option<String>) -> Result<(), String> {
    let any = [Target::Newest, Target::Older].iter().any(|&t| {
        Damage::ALL
            .iter()
            .any(|&d| MODES.iter().any(|&m| selected(only, m, d, t)))
    });
    if any {
        return Ok(());
    }
    let names = |v: Vec<&str>| v.join("|");
    Err(format!(
        "--only {}: matches no cell (cells are MODE:DAMAGE@WAL, each part may be *: MODE {}, DAMAGE {}, WAL newest|older)",
        only.as_deref().unwrap_or(""),
        names(MODES.iter().map(|&m| mode_name(m)).collect()),
        names(Damage::ALL.iter().map(|d| d.name()).collect()),
    ))
}

type Key = (String, String, String, String);
/// Per cell: outcome counts and contradictions.
type Cells = BTreeMap<Key, (BTreeMap<String, u64>, u64)>;

/// Runs the matrix. The calling process must not have used RocksDB.
pub fn run_matrix(cfg: &MatrixConfig) -> Result<Matrix, String> {
    check_only(&cfg.only)?;
    crate::crash::assert_fork_safe().map_err(|e| e.to_string())?;
    let cells: Arc<Mutex<Cells>> = Arc::default();
    let findings: Arc<Mutex<Vec<Finding>>> = Arc::default();
    let setup_failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for &c in &cfg.compressions {
        for trial in 0..cfg.trials {
            tasks.push((c, trial));
        }
    }
    let tasks = Arc::new(Mutex::new(tasks));
    let mut hs = Vec::new();
    for job in 0..cfg.jobs.max(1) {
        let (tasks, cells, findings, setup_failures) = (
            tasks.clone(),
            cells.clone(),
            findings.clone(),
            setup_failures.clone(),
        );
        let cfg = cfg.clone();
        hs.push(std::thread::spawn(move || -> Result<(), String> {
            loop {
                let Some((compress, trial)) = tasks.lock().map_err(|_| "poisoned")?.pop() else {
                    return Ok(());
                };
                let tseed = cfg.seed.wrapping_add(u64::from(trial));
                let r = one_trial(&cfg, job, compress, tseed, &cells, &findings);
                if r.is_err() {
                    setup_failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    for h in hs {
        h.join().map_err(|_| "matrix worker panicked")??;
    }
    let cells_map = cells.lock().map_err(|_| "poisoned")?.clone();
    let mut out = Vec::new();
    for ((mode, damage, target, comp), (counts, contradictions)) in cells_map {
        let m = MODES
            .into_iter()
            .find(|x| mode_name(*x) == mode)
            .unwrap_or(RecoveryMode::PointInTime);
        let d = Damage::ALL
            .into_iter()
            .find(|x| x.name() == damage)
            .unwrap_or(Damage::ZeroTail);
        let t = if target == "older" {
            Target::Older
        } else {
            Target::Newest
        };
        let ex = expected(m, d, t);
        out.push(Cell {
            mode,
            damage,
            target,
            wal_compression: comp,
            counts,
            expected: ex.outcomes.iter().map(|o| o.name().to_string()).collect(),
            source: ex.source.to_string(),
            hazard: ex.hazard.map(str::to_string),
            contradictions,
        });
    }
    let findings = findings.lock().map_err(|_| "poisoned")?.clone();
    Ok(Matrix {
        seed: cfg.seed,
        trials: cfg.trials,
        cells: out,
        findings,
        setup_failures: setup_failures.load(std::sync::atomic::Ordering::SeqCst),
    })
}

fn one_trial(
    cfg: &MatrixConfig,
    job: usize,
    compress: bool,
    tseed: u64,
    cells: &Mutex<Cells>,
    findings: &Mutex<Vec<Finding>>,
) -> Result<(), String> {
    let (a, b) = cfg.units;
    let ops = units(tseed, a + b);
    let h = History::new(ops.clone(), State::new());
    let pristine = cfg.work.join(format!("rm-{job}-pristine"));
    let _ = std::fs::remove_dir_all(&pristine);
    let cleanup = |p: &Path| {
        let _ = std::fs::remove_dir_all(p);
    };
    build(&pristine, &ops, a, compress)?;
    let wals = wal_files(&pristine);
    let counts: Vec<usize> = wals
        .iter()
        .map(|w| std::fs::read(w).map(|b| parse_wal(&b).len()).unwrap_or(0))
        .collect();
    if wals.len() != 2 || counts != [a, b] {
        cleanup(&pristine);
        return Err(format!(
            "set-up gave WALs {wals:?} with records {counts:?}, wanted [{a}, {b}]"
        ));
    }
    let comp = if compress { "zstd" } else { "none" };
    for t in [Target::Newest, Target::Older] {
        for d in Damage::ALL {
            if !MODES.iter().any(|m| selected(&cfg.only, *m, d, t)) {
                continue;
            }
            let damaged = cfg.work.join(format!("rm-{job}-damaged"));
            cleanup(&damaged);
            copy_tree(&pristine, &damaged).map_err(|e| e.to_string())?;
            let file = wal_files(&damaged)[if t == Target::Newest { 1 } else { 0 }].clone();
            let mut rng = ChaCha8Rng::seed_from_u64(tseed ^ (d as u64) << 8 ^ (t as u64) << 16);
            let idx = damage(&file, d, &mut rng)?;
            let k = (if t == Target::Newest { a } else { 0 } + idx) as u64;
            for m in MODES {
                if !selected(&cfg.only, m, d, t) {
                    continue;
                }
                let dir = cfg.work.join(format!("rm-{job}-open"));
                cleanup(&dir);
                copy_tree(&damaged, &dir).map_err(|e| e.to_string())?;
                let opts = StoreOptions {
                    wal_recovery_mode: m,
                    ..base_opts(compress)
                };
                let r = reopen_and_read(
                    &RocksFactory,
                    &dir,
                    &opts,
                    &[],
                    &[],
                    Duration::from_secs(20),
                )
                .map_err(|e| e.to_string())?;
                cleanup(&dir);
                let (outcome, detail) = match r {
                    Reopened::Opened(rec) => {
                        let o = classify(&h, &rec, k);
                        (
                            o,
                            format!("{} entries; {k} units before the damage", rec.entries.len()),
                        )
                    }
                    Reopened::Failed(msg) => (Outcome::Fail, msg),
                    Reopened::Died(end) => (Outcome::Crash, format!("{end:?}")),
                };
                let exp = expected(m, d, t).outcomes;
                let bad = !exp.contains(&outcome);
                let key = (
                    mode_name(m).to_string(),
                    d.name().to_string(),
                    t.name().to_string(),
                    comp.to_string(),
                );
                {
                    let mut c = cells.lock().map_err(|_| "poisoned")?;
                    let e = c.entry(key).or_default();
                    *e.0.entry(outcome.name().to_string()).or_default() += 1;
                    e.1 += u64::from(bad);
                }
                if bad {
                    findings.lock().map_err(|_| "poisoned")?.push(Finding {
                        cell: format!("{}:{}@{} wal_compression={comp}", mode_name(m), d.name(), t.name()),
                        outcome: outcome.name().into(),
                        expected: exp.iter().map(|o| o.name().to_string()).collect(),
                        detail,
                        replay: format!(
                            "crashcheck recovery-modes --trials 1 --seed {tseed} --only {}:{}@{} --wal-compression {comp}",
                            mode_name(m),
                            d.name(),
                            t.name()
                        ),
                    });
                }
            }
            cleanup(&damaged);
        }
    }
    cleanup(&pristine);
    Ok(())
}

/// The matrix as a Markdown table: rows damage@target (× compression),
/// columns modes, cells "outcome n/N".
pub fn markdown(m: &Matrix) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| damage @ WAL | wal compression | {} |",
        MODES.map(mode_name).join(" | ")
    );
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(MODES.len()));
    let mut rows: BTreeMap<(String, String, String), BTreeMap<String, String>> = BTreeMap::new();
    for c in &m.cells {
        let total: u64 = c.counts.values().sum();
        let txt = c
            .counts
            .iter()
            .map(|(o, n)| format!("{o} {n}/{total}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mark = if c.contradictions > 0 {
            " **contradiction**"
        } else if c.hazard.is_some() {
            " (hazard: hole)"
        } else {
            ""
        };
        rows.entry((
            c.damage.clone(),
            c.target.clone(),
            c.wal_compression.clone(),
        ))
        .or_default()
        .insert(c.mode.clone(), format!("{txt}{mark}"));
    }
    for ((d, t, comp), cols) in rows {
        let cells: Vec<String> = MODES
            .map(mode_name)
            .iter()
            .map(|mn| cols.get(*mn).cloned().unwrap_or_else(|| "-".into()))
            .collect();
        let _ = writeln!(s, "| {d} @ {t} | {comp} | {} |", cells.join(" | "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        v.push(ty);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_full_and_fragmented_records_and_skips_metadata() {
        let mut b = frag(9, &[1]); // compression type record
        b.extend(frag(1, b"hello"));
        let s2 = b.len() as u64;
        b.extend(frag(2, b"ab"));
        b.extend(frag(3, b"cd"));
        b.extend(frag(4, b"ef"));
        let end = b.len() as u64;
        b.extend(std::iter::repeat_n(0u8, 40)); // zero padding
        let recs = parse_wal(&b);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1], WalRecord { start: s2, end });
        // a truncated last fragment is not a record
        b.truncate(end as usize - 1);
        assert_eq!(parse_wal(&b).len(), 1);
    }

    #[test]
    fn an_only_filter_that_selects_nothing_is_refused() {
        assert!(check_only(&None).is_ok());
        assert!(check_only(&Some("point-in-time:*@*".into())).is_ok());
        for bad in ["bogus", "point-in-time:bogus@*", "*:*@nowhere"] {
            let e = check_only(&Some(bad.into())).unwrap_err();
            assert!(e.contains("matches no cell") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_filter_matches_parts() {
        let only = Some("point-in-time:zero-tail@*,*:missing-file@older".to_string());
        assert!(selected(
            &only,
            RecoveryMode::PointInTime,
            Damage::ZeroTail,
            Target::Newest
        ));
        assert!(selected(
            &only,
            RecoveryMode::SkipAnyCorrupted,
            Damage::MissingFile,
            Target::Older
        ));
        assert!(!selected(
            &only,
            RecoveryMode::SkipAnyCorrupted,
            Damage::MissingFile,
            Target::Newest
        ));
    }
}
