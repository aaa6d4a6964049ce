//! Coverage-guided fuzzing support: structure-aware inputs (with an
//! encoder, so corpora can be seeded from the generator), the three
//! targets' bodies, and conversion of a fuzz artifact to a repro file.
//! The `fuzz/` crate's targets are thin wrappers around [`run_ops`],
//! [`run_crash`] and [`run_wal`]; the model, oracle and verifier are the
//! library's own.
//!
//! Inputs are fixed-layout byte records decoded with `arbitrary` one byte
//! at a time, so every byte string decodes, sizes are bounded, and
//! [`encode_ops`] is an exact inverse for the ops it can express.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

mod input;

pub use input::{encode_ops, CrashInput, OpsInput, WalInput, MAX_OPS};
use input::{key, val};

use crate::check::run_ops as check_ops;
use crate::crash::Progress;
use crate::fault::{Fault, Loss};
use crate::model::history::History;
use crate::model::State;
use crate::observe::Recovered;
use crate::op::{Op, WriteOp};
use crate::oracle::{admissible, Durability};
use crate::recovery::{classify, Outcome};
use crate::repro::{Case, CheckKind, Expect};
use crate::store::drive::{drive, Answer, Go, Hooks};
use crate::store::fault_fs::FaultFs;
use crate::store::{FaultFsRef, RecoveryMode, StoreFactory, StoreOptions, StoreResult, WalMode};
use crate::verify::{verify, Verdict};

/// The store the targets check: `CRASHCHECK_FUZZ_STORE` (e.g.
/// `mutant:early-ack`, to plant a bug), else RocksDB.
pub fn fuzz_factory() -> Box<dyn StoreFactory> {
    let name = std::env::var("CRASHCHECK_FUZZ_STORE").unwrap_or_else(|_| "rocksdb".into());
    crate::mutants::factory_by_name(&name).unwrap_or_else(|_| Box::new(crate::store::RocksFactory))
}

/// A scratch directory for one input (tmpfs when available).
pub fn scratch() -> tempfile::TempDir {
    let base = Path::new("/dev/shm");
    if base.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("crashcheck-fuzz-")
            .tempdir_in(base)
        {
            return d;
        }
    }
    tempfile::Builder::new()
        .prefix("crashcheck-fuzz-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a scratch directory: {e}"))
}

/// `ops` target: run in-process against the store and the model; `Err`
/// describes a finding.
pub fn run_ops(factory: &dyn StoreFactory, input: &OpsInput) -> Result<(), String> {
    let dir = scratch();
    let mut store = factory
        .open(&dir.path().join("db"), &StoreOptions::default())
        .map_err(|e| format!("open failed: {e}"))?;
    let out = check_ops(store.as_mut(), &input.ops);
    let _ = store.close();
    match out.violation {
        None => Ok(()),
        Some(v) => Err(v.to_string()),
    }
}

/// The crash target's hooks: progress as the oracle needs it. Reopens are
/// not run (on the power-loss filesystem a clean close itself drops
/// unsynced data), nor reads at snapshots that are not live; other reads
/// run unchecked (the target checks the state after the power cut).
struct CrashHooks<'a> {
    h: &'a History,
    i: usize,
    p: Progress,
    snaps: Vec<u32>,
}

impl Hooks for CrashHooks<'_> {
    fn before(&mut self, op: &Op) -> Go {
        match op {
            Op::Reopen => return Go::Skip,
            Op::GetAt { id, .. } | Op::ScanAt { id, .. } if !self.snaps.contains(id) => {
                return Go::Skip
            }
            _ => {}
        }
        if let Some(u) = self.h.unit_of_op[self.i] {
            self.p.started = u;
        }
        Go::Run
    }

    fn after(&mut self, op: &Op, r: &StoreResult<Answer>) {
        if r.is_err() {
            return;
        }
        if let Some(u) = self.h.unit_of_op[self.i] {
            self.p.acked = u;
        }
        match op {
            // One column family: a flush of it, or of all, covers all.
            Op::Flush | Op::FlushCfs { .. } => self.p.flushed = self.p.acked,
            Op::FlushWal { sync } => {
                self.p.wal_flushed = self.p.acked;
                if *sync {
                    self.p.wal_synced = self.p.acked;
                }
            }
            Op::Snapshot { id } => self.snaps.push(*id),
            Op::Release { id } => self.snaps.retain(|s| s != id),
            _ => {}
        }
    }
}

/// Inputs a reused `ops` database serves before it is replaced by a fresh
/// one (range tombstones pile up).
const FRESH_EVERY: u64 = 1000;

/// The `ops` target across inputs. For stock RocksDB one database per
/// fuzzer process is emptied between inputs (snapshots released, one range
/// delete over every key, then checked empty) instead of created and
/// destroyed for each: the model starts empty either way, so every input
/// is checked as strongly, on a database with history. A finding on the
/// reused database is run again on a fresh one; the message says when it
/// only shows on the reused database. A mutant keeps a fresh database per
/// input: its own queues and caches could otherwise leak between inputs.
pub struct OpsTarget {
    factory: Box<dyn StoreFactory>,
    reuse: bool,
    // Dropped in order: the store closes before its directory goes.
    store: Option<Box<dyn crate::store::Store>>,
    dir: Option<tempfile::TempDir>,
    inputs: u64,
}

impl OpsTarget {
    /// The target over `factory`'s stores.
    pub fn new(factory: Box<dyn StoreFactory>) -> OpsTarget {
        OpsTarget {
            reuse: factory.name() == "rocksdb",
            factory,
            store: None,
            dir: None,
            inputs: 0,
        }
    }

    /// Runs one input; `Err` describes a finding.
    pub fn run(&mut self, input: &OpsInput) -> Result<(), String> {
        if !self.reuse {
            return run_ops(self.factory.as_ref(), input);
        }
        if self.store.is_none() || self.inputs.is_multiple_of(FRESH_EVERY) {
            self.fresh()?;
        }
        self.inputs += 1;
        let Some(store) = self.store.as_mut() else {
            return Err("no database".into());
        };
        let out = check_ops(store.as_mut(), &input.ops);
        let Some(v) = out.violation else {
            if !self.reset(&input.ops) {
                self.store = None;
            }
            return Ok(());
        };
        self.store = None;
        match run_ops(self.factory.as_ref(), input) {
            Err(e) => Err(e),
            Ok(()) => Err(format!(
                "{v} (only on a database reused from earlier inputs: a fresh database passes this input)"
            )),
        }
    }

    fn fresh(&mut self) -> Result<(), String> {
        if let Some(s) = self.store.take() {
            let _ = s.close();
        }
        let dir = scratch();
        let store = self
            .factory
            .open(&dir.path().join("db"), &StoreOptions::default())
            .map_err(|e| format!("open failed: {e}"))?;
        self.store = Some(store);
        self.dir = Some(dir);
        Ok(())
    }

    /// Empties the database for the next input; false when it did not
    /// come out empty (a fresh one is made then).
    fn reset(&mut self, ops: &[Op]) -> bool {
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        for op in ops {
            if let Op::Snapshot { id } = op {
                if store.release(*id).is_err() {
                    return false;
                }
            }
        }
        let all = Op::Write(WriteOp::DeleteRange {
            start: Vec::new(),
            end: vec![0xff; 16],
        });
        drive(store.as_mut(), &all, &mut crate::store::drive::Plain).is_ok()
            && store.scan_all().is_ok_and(|e| e.is_empty())
    }
}

/// `crash` target: run the ops on the fault filesystem, cut the power
/// after `crash_after` ops, reopen, and check the recovered state with the
/// power-loss oracle.
pub fn run_crash(
    factory: &dyn StoreFactory,
    fs: &std::sync::Arc<FaultFs>,
    input: &CrashInput,
) -> Result<(), String> {
    let dir = scratch();
    let path = dir.path().join("db");
    let opts = StoreOptions {
        wal_mode: input.mode,
        fault_fs: Some(FaultFsRef(fs.clone())),
        rocksdb: "max_bgerror_resume_count=0".into(),
        // The close after the power cut reaches no disk either way; without
        // this it tries a shutdown flush on the dead filesystem and waits.
        avoid_flush_during_shutdown: true,
        ..StoreOptions::default()
    };
    let h = History::new(input.ops.clone(), State::new());
    let mut hooks = CrashHooks {
        h: &h,
        i: 0,
        p: Progress::default(),
        snaps: Vec::new(),
    };
    {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for (i, op) in h.ops.iter().take(input.crash_after).enumerate() {
            hooks.i = i;
            drive(store.as_mut(), op, &mut hooks)
                .map_err(|e| format!("op #{i} `{op}` failed: {e}"))?;
        }
        // In half the inputs background jobs settle first: one that fails
        // on the dead filesystem makes RocksDB back off a second before the
        // close. They change no logical state, and the oracle counts only
        // the ops' own flushes, so this admits no state it would not admit
        // anyway; the other half cuts the power whatever is running.
        if input.settle {
            // Snapshots go first: releasing one may schedule a compaction,
            // which would then fail on the dead filesystem in the close.
            for id in std::mem::take(&mut hooks.snaps) {
                drive(
                    store.as_mut(),
                    &Op::Release { id },
                    &mut crate::store::drive::Plain,
                )
                .map_err(|e| format!("release {id} failed: {e}"))?;
            }
            store
                .wait_for_background()
                .map_err(|e| format!("waiting for background work failed: {e}"))?;
        }
        fs.power_off();
        // Closing on a dead filesystem fails quietly; nothing more reaches disk.
        drop(store);
    }
    fs.power_on(input.image)?;
    let plain = StoreOptions {
        fault_fs: None,
        ..opts.clone()
    };
    let mut store = factory
        .open(&path, &plain)
        .map_err(|e| format!("reopen after the power cut failed: {e}"))?;
    let rec = Recovered::read(store.as_mut(), &[])?;
    let _ = store.close();
    let adm = admissible(&Durability::of(&opts), Loss::Unsynced, &hooks.p);
    match verify(&h, &adm, &rec) {
        Verdict::Ok { .. } => Ok(()),
        Verdict::Violation { class, detail, .. } => Err(format!("{class}: {detail}")),
    }
}

/// A database directory's files: names and contents.
type DbFiles = Vec<(std::ffi::OsString, Vec<u8>)>;

std::thread_local! {
    /// The `wal_recovery` target's undamaged databases, by (store, units,
    /// WAL compression): the same writes give the same files, so each is
    /// built once per fuzzer process and copied for every input after.
    static BUILT: std::cell::RefCell<std::collections::HashMap<(String, u8, bool), DbFiles>> =
        Default::default();
}

/// Writes a cached database's files into `path`; false when there is none.
fn restore(files: Option<&DbFiles>, path: &Path) -> bool {
    let Some(files) = files else {
        return false;
    };
    std::fs::create_dir_all(path).is_ok()
        && files
            .iter()
            .all(|(name, bytes)| std::fs::write(path.join(name), bytes).is_ok())
}

/// `wal_recovery` target: write units, damage the WAL as the input says,
/// reopen under the input's recovery mode. RocksDB must never invent a
/// value, and (one WAL only) every mode but skip-any-corrupted must keep a
/// prefix.
pub fn run_wal(factory: &dyn StoreFactory, input: &WalInput) -> Result<(), String> {
    let dir = scratch();
    let path = dir.path().join("db");
    let ops: Vec<Op> = (0..input.units)
        .map(|i| {
            Op::Write(WriteOp::Put {
                key: key(i),
                value: val(i.wrapping_mul(7), i),
            })
        })
        .collect();
    let h = History::new(ops.clone(), State::new());
    let opts = StoreOptions {
        wal_mode: WalMode::Wal,
        wal_compression: input.zstd,
        write_buffer_size: 64 << 20,
        ..StoreOptions::default()
    };
    let built = (factory.name(), input.units, input.zstd);
    if !BUILT.with(|b| restore(b.borrow().get(&built), &path)) {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for op in &ops {
            drive(store.as_mut(), op, &mut crate::store::drive::Plain)
                .map_err(|e| format!("write failed: {e}"))?;
        }
        // A clean close with the WAL on keeps the WAL (no flush).
        store.close().map_err(|e| format!("close failed: {e}"))?;
        let files = std::fs::read_dir(&path)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| std::fs::read(e.path()).map(|b| (e.file_name(), b)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        BUILT.with(|b| b.borrow_mut().insert(built, files));
    }
    let wal = crate::wal::newest_wal(&path).ok_or("no WAL file")?;
    let mut bytes = std::fs::read(&wal).map_err(|e| e.to_string())?;
    let at = bytes.len() * usize::from(input.at) / 255;
    let end = (at + usize::from(input.len)).min(bytes.len());
    match input.pattern {
        0 => bytes.truncate(at),
        1 => bytes[at..end].iter_mut().for_each(|b| *b = 0),
        2 => bytes[at..end].iter_mut().for_each(|b| *b = 0xff),
        3 => bytes[at..end].iter_mut().for_each(|b| *b ^= 0x80),
        _ => bytes[at..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i as u8).wrapping_mul(37).wrapping_add(input.len)),
    }
    // Skip the known open hang (docs/findings.md finding 1) so the fuzzer
    // keeps looking for new bugs instead of rediscovering this one.
    if crate::wal::reaches_recyclable_header(&bytes) {
        return Ok(());
    }
    std::fs::write(&wal, &bytes).map_err(|e| e.to_string())?;
    let ropts = StoreOptions {
        wal_recovery_mode: input.mode,
        ..opts
    };
    let Ok(mut store) = factory.open(&path, &ropts) else {
        return Ok(()); // refusing to open is always allowed here
    };
    let rec = Recovered::read(store.as_mut(), &[])?;
    let _ = store.close();
    let outcome = classify(&h, &rec, h.units());
    match (outcome, input.mode) {
        (Outcome::Phantom, _) => Err("recovery invented a value".into()),
        (Outcome::Hole, m) if m != RecoveryMode::SkipAnyCorrupted => Err(format!(
            "{} recovered a state with a hole from a single damaged WAL",
            crate::recovery::mode_name(m)
        )),
        _ => Ok(()),
    }
}

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [&str; 3] = ["ops", "crash", "wal_recovery"];

/// Corpus seed `i` of `target`: inputs built from the generator's
/// `small-keyspace` sequences, so fuzzing starts from realistic workloads.
pub fn seed_input(target: &str, i: u64) -> Result<Vec<u8>, String> {
    let prof =
        crate::workload::Profile::by_name("small-keyspace").ok_or("no small-keyspace profile")?;
    let ops = crate::workload::Generator::new(i + 1, prof).ops(64);
    let mut bytes = match target {
        "ops" => Vec::new(),
        "crash" => vec![i as u8 % 4, (i * 7) as u8, 0, i as u8],
        "wal_recovery" => {
            return Ok(vec![
                (i * 3) as u8,
                i as u8,
                (i * 16) as u8,
                (i * 5) as u8,
                i as u8,
                (i % 2) as u8,
            ])
        }
        o => {
            return Err(format!(
                "unknown fuzz target '{o}' ({})",
                TARGETS.join(", ")
            ))
        }
    };
    bytes.extend(encode_ops(&ops));
    Ok(bytes)
}

/// Converts a fuzz artifact of `target` (`ops` or `crash`) to a repro file
/// that `crashcheck replay` runs.
pub fn to_case(target: &str, data: &[u8]) -> Result<Case, String> {
    let mut u = Unstructured::new(data);
    let base = Case {
        check: CheckKind::Run,
        seed: 0,
        profile: "fuzz".into(),
        store: std::env::var("CRASHCHECK_FUZZ_STORE").unwrap_or_else(|_| "rocksdb".into()),
        options: StoreOptions::default(),
        expect: Expect::Violation(None),
        fault: None,
        kill_after_op: None,
        kill_step: None,
        comments: vec![format!(
            "converted from a cargo-fuzz artifact of target '{target}'"
        )],
        ops: Vec::new(),
        writers: Vec::new(),
        interleaving: None,
    };
    match target {
        "ops" => {
            let i = OpsInput::arbitrary(&mut u).map_err(|e| e.to_string())?;
            Ok(Case { ops: i.ops, ..base })
        }
        "crash" => {
            let i = CrashInput::arbitrary(&mut u).map_err(|e| e.to_string())?;
            let mut comments = base.comments.clone();
            comments.push(format!(
                "crash image in the fuzzer: {:?}; the replay drops all unsynced data",
                i.image
            ));
            Ok(Case {
                check: CheckKind::Crash,
                options: StoreOptions {
                    wal_mode: i.mode,
                    ..StoreOptions::default()
                },
                fault: Some(Fault::POWER_LOSS),
                kill_after_op: Some(i.crash_after),
                kill_step: None,
                comments,
                ops: i.ops,
                ..base
            })
        }
        o => Err(format!("target '{o}' has no repro form (ops, crash)")),
    }
}

#[cfg(test)]
mod tests {
    use super::input::decode_op;
    use super::*;
    use crate::workload::{Generator, Profile};

    #[test]
    fn encoding_round_trips_through_the_decoder() {
        let ops: Vec<Op> = (0..60u8)
            .map(|i| decode_op([i % 16, i, i.wrapping_mul(3), i.wrapping_mul(5), i]))
            .filter(|o| !matches!(o, Op::Snapshot { .. } | Op::GetAt { .. } | Op::Batch(_)))
            .take(MAX_OPS)
            .collect();
        let bytes = encode_ops(&ops);
        let back = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        assert_eq!(back.ops.len(), ops.len());
        for (a, b) in back.ops.iter().zip(&ops) {
            assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn generator_sequences_seed_a_corpus() {
        let ops = Generator::new(1, Profile::by_name("small-keyspace").unwrap()).ops(100);
        let bytes = encode_ops(&ops);
        assert_eq!(bytes.len(), 5 * MAX_OPS);
        let back = OpsInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
        assert!(back.ops.len() > 30);
        assert!(to_case("ops", &bytes).unwrap().ops.len() == back.ops.len());
        assert!(to_case("nope", &bytes).is_err());
    }
}
