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

use crate::check::run_ops as check_ops;
use crate::history::History;
use crate::model::State;
use crate::op::{Op, Scan, Value, WriteOp};
use crate::oracle::{admissible, Fault, Progress};
use crate::recovery::{classify, Outcome};
use crate::repro::{Case, CheckKind};
use crate::store::fault_fs::{CrashImage, FaultFs};
use crate::store::{
    factory_by_name, FaultFsRef, RecoveryMode, StoreFactory, StoreOptions, WalMode,
};
use crate::verify::{verify, Recovered, Verdict};

/// Most ops in one input.
pub const MAX_OPS: usize = 48;
const KEYS: u8 = 16;

fn key(i: u8) -> Vec<u8> {
    crate::workload::key(u32::from(i % KEYS))
}

fn val(seed: u8, len: u8) -> Value {
    Value::Gen {
        seed: u64::from(seed) + 1,
        len: u32::from(len % 64) * 8 + 1,
    }
}

/// One op from a 5-byte record `[kind, key, a, b, c]`.
fn decode_op(r: [u8; 5]) -> Op {
    let [kind, k, a, b, c] = r;
    match kind % 16 {
        0..=3 => Op::Write(WriteOp::Put {
            key: key(k),
            value: val(a, b),
        }),
        4 => Op::Write(WriteOp::Delete { key: key(k) }),
        5 => Op::Write(WriteOp::DeleteRange {
            start: key(k),
            end: crate::workload::key(u32::from(k % KEYS + a % 8 + 1)),
        }),
        6 => Op::Write(WriteOp::Merge {
            key: key(k),
            operand: val(a, b % 2),
        }),
        7 => Op::Batch(vec![
            WriteOp::Put {
                key: key(k),
                value: val(a, b),
            },
            if c & 1 == 0 {
                WriteOp::Delete {
                    key: key(k.wrapping_add(1)),
                }
            } else {
                WriteOp::Merge {
                    key: key(k.wrapping_add(1)),
                    operand: val(a, 1),
                }
            },
            WriteOp::Put {
                key: key(k.wrapping_add(2)),
                value: val(c, b),
            },
        ]),
        8 => Op::Get { key: key(k) },
        9 => Op::Scan(Scan {
            lo: Some(key(k)),
            hi: Some(crate::workload::key(u32::from(k % KEYS + a % 16 + 1))),
            reverse: b & 1 == 1,
            limit: u32::from(c % 8) + 1,
        }),
        10 => Op::Flush,
        11 => Op::FlushWal { sync: a & 1 == 1 },
        12 => Op::Snapshot {
            id: u32::from(a % 2) + 1,
        },
        13 => Op::GetAt {
            id: u32::from(a % 2) + 1,
            key: key(k),
        },
        14 => Op::Reopen,
        _ => Op::Compact { lo: None, hi: None },
    }
}

fn key_index(k: &[u8]) -> u8 {
    std::str::from_utf8(k)
        .ok()
        .and_then(|s| s.trim_start_matches('k').parse::<u32>().ok())
        .map_or(0, |i| i.min(255) as u8)
}

fn val_bytes(v: &Value) -> (u8, u8) {
    match v {
        Value::Gen { seed, len } => (
            (seed.wrapping_sub(1) % 256) as u8,
            ((len.saturating_sub(1)) / 8 % 64) as u8,
        ),
        Value::Lit(b) => (b.len() as u8, (b.len() / 8 % 64) as u8),
    }
}

/// Encodes ops as input records (lossy for ops the decoder cannot express:
/// they map to the nearest form). Used to seed corpora from the generator.
pub fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops.iter().take(MAX_OPS) {
        let rec: [u8; 5] = match op {
            Op::Write(WriteOp::Put { key, value }) => {
                let (a, b) = val_bytes(value);
                [0, key_index(key), a, b, 0]
            }
            Op::Write(WriteOp::Delete { key }) => [4, key_index(key), 0, 0, 0],
            Op::Write(WriteOp::DeleteRange { start, end }) => {
                let (s, e) = (key_index(start), key_index(end));
                [
                    5,
                    s % KEYS,
                    e.saturating_sub(s % KEYS).saturating_sub(1) % 8,
                    0,
                    0,
                ]
            }
            Op::Write(WriteOp::Merge { key, operand }) => {
                let (a, _) = val_bytes(operand);
                [6, key_index(key), a, 0, 0]
            }
            Op::Batch(ws) => {
                let k = ws.first().map_or(0, |w| match w {
                    WriteOp::Put { key, .. }
                    | WriteOp::Delete { key }
                    | WriteOp::Merge { key, .. } => key_index(key),
                    WriteOp::DeleteRange { start, .. } => key_index(start),
                });
                [7, k, 1, 2, 0]
            }
            Op::Get { key } | Op::GetAt { key, .. } => [8, key_index(key), 0, 0, 0],
            Op::MultiGet { keys } => [8, keys.first().map_or(0, |k| key_index(k)), 0, 0, 0],
            Op::Scan(s) | Op::ScanAt { scan: s, .. } => [
                9,
                s.lo.as_deref().map_or(0, key_index),
                3,
                u8::from(s.reverse),
                (s.limit % 8) as u8,
            ],
            Op::Flush
            | Op::FlushCfs { .. }
            | Op::Checkpoint { .. }
            | Op::Backup { .. }
            | Op::CopyDir { .. } => [10, 0, 0, 0, 0],
            Op::FlushWal { sync } => [11, 0, u8::from(*sync), 0, 0],
            Op::Snapshot { .. } | Op::Release { .. } => [12, 0, 0, 0, 0],
            Op::Reopen => [14, 0, 0, 0, 0],
            Op::Compact { .. } => [15, 0, 0, 0, 0],
        };
        out.extend_from_slice(&rec);
    }
    out
}

fn decode_ops(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Op>> {
    let mut ops = Vec::new();
    let mut live_snaps = Vec::new();
    while ops.len() < MAX_OPS && u.len() >= 5 {
        let mut r = [0u8; 5];
        for b in &mut r {
            *b = u8::arbitrary(u)?;
        }
        let op = decode_op(r);
        // Keep snapshot reads meaningful: read only live snapshots.
        match &op {
            Op::Snapshot { id } => {
                if live_snaps.contains(id) {
                    continue;
                }
                live_snaps.push(*id);
            }
            Op::GetAt { id, .. } if !live_snaps.contains(id) => continue,
            Op::Reopen => live_snaps.clear(),
            _ => {}
        }
        ops.push(op);
    }
    Ok(ops)
}

/// Input of the `ops` target.
#[derive(Clone, Debug, PartialEq)]
pub struct OpsInput {
    /// The ops.
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for OpsInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(OpsInput {
            ops: decode_ops(u)?,
        })
    }
}

/// Input of the `crash` target: `[mode, crash point, image, seed]` then ops.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashInput {
    /// Durability mode.
    pub mode: WalMode,
    /// The power goes off after this many ops.
    pub crash_after: usize,
    /// What survives.
    pub image: CrashImage,
    /// Reserved input byte (kept so the layout stays stable).
    pub seed: u8,
    /// The ops (no reopen: a clean close is no sync on this filesystem).
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for CrashInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mode = WalMode::ALL[usize::from(u8::arbitrary(u)?) % 4];
        let point = u8::arbitrary(u)?;
        let image = match u8::arbitrary(u)? % 4 {
            0..=2 => CrashImage::DropUnsynced,
            _ => CrashImage::DropUnsyncedAndNewFiles,
        };
        let seed = u8::arbitrary(u)?;
        let ops: Vec<Op> = decode_ops(u)?
            .into_iter()
            .filter(|o| !matches!(o, Op::Reopen))
            .collect();
        let crash_after = usize::from(point) % (ops.len() + 1);
        Ok(CrashInput {
            mode,
            crash_after,
            image,
            seed,
            ops,
        })
    }
}

/// Input of the `wal_recovery` target.
#[derive(Clone, Debug, PartialEq)]
pub struct WalInput {
    /// Write units before the damage (1..=32).
    pub units: u8,
    /// Recovery mode on reopen.
    pub mode: RecoveryMode,
    /// Damage offset, as a fraction of the WAL (0..=255 / 255).
    pub at: u8,
    /// Bytes damaged.
    pub len: u8,
    /// 0 truncate, 1 zeros, 2 0xff, 3 bit flips, 4 random bytes.
    pub pattern: u8,
    /// Compress the WAL.
    pub zstd: bool,
}

impl<'a> Arbitrary<'a> for WalInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(WalInput {
            units: u8::arbitrary(u)? % 32 + 1,
            mode: crate::recovery::MODES[usize::from(u8::arbitrary(u)?) % 4],
            at: u8::arbitrary(u)?,
            len: u8::arbitrary(u)?,
            pattern: u8::arbitrary(u)? % 5,
            zstd: bool::arbitrary(u)?,
        })
    }
}

/// The store the targets check: `CRASHCHECK_FUZZ_STORE` (e.g.
/// `mutant:early-ack`, to plant a bug), else RocksDB.
pub fn fuzz_factory() -> Box<dyn StoreFactory> {
    let name = std::env::var("CRASHCHECK_FUZZ_STORE").unwrap_or_else(|_| "rocksdb".into());
    factory_by_name(&name).unwrap_or_else(|_| Box::new(crate::store::RocksFactory))
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
        ..StoreOptions::default()
    };
    let h = History::new(input.ops.clone(), State::new());
    let mut p = Progress::default();
    {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for (i, op) in h.ops.iter().take(input.crash_after).enumerate() {
            let unit = h.unit_of_op[i];
            if let Some(u) = unit {
                p.started = u;
            }
            let r = match op {
                Op::Write(_) | Op::Batch(_) => {
                    store.write(op.write_ops(), matches!(op, Op::Batch(_)))
                }
                Op::Flush => store.flush(),
                Op::FlushWal { sync } => store.flush_wal(*sync),
                Op::Compact { lo, hi } => store.compact(lo.as_deref(), hi.as_deref()),
                Op::Snapshot { id } => store.snapshot(*id),
                Op::Release { id } => store.release(*id),
                Op::Get { key } | Op::GetAt { key, .. } => store.get(key, None).map(|_| ()),
                _ => Ok(()),
            };
            r.map_err(|e| format!("op #{i} `{op}` failed: {e}"))?;
            if let Some(u) = unit {
                p.acked = u;
            }
            match op {
                Op::Flush => p.flushed = p.acked,
                Op::FlushWal { sync } => {
                    p.wal_flushed = p.acked;
                    if *sync {
                        p.wal_synced = p.acked;
                    }
                }
                _ => {}
            }
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
    let adm = admissible(input.mode, Fault::PowerLoss, &opts, &p);
    match verify(&h, &adm, &rec) {
        Verdict::Ok { .. } => Ok(()),
        Verdict::Violation { class, detail, .. } => Err(format!("{class}: {detail}")),
    }
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
    {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for op in &ops {
            store
                .write(op.write_ops(), false)
                .map_err(|e| format!("write failed: {e}"))?;
        }
        // A clean close with the WAL on keeps the WAL (no flush).
        store.close().map_err(|e| format!("close failed: {e}"))?;
    }
    let wal = std::fs::read_dir(&path)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .ok_or("no WAL file")?;
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
    if hits_known_open_hang(&bytes) {
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

/// Known RocksDB 11.8.1 bug (docs/findings.md #1): a physical record
/// header with a recyclable type (5-8, 11, 131) in a log that is not
/// recycled makes `DB::Open` loop forever (log_reader.cc:575-580 returns
/// kBadRecord without consuming the buffer). Inputs that put such a header
/// where the reader will parse it are skipped, so the fuzzer keeps looking
/// for new bugs instead of rediscovering this one. Generous on purpose:
/// every header on the record chain and at every block start is checked.
pub fn hits_known_open_hang(b: &[u8]) -> bool {
    const BLOCK: usize = 32768;
    let recyclable = |t: u8| matches!(t, 5..=8 | 11 | 131);
    let mut starts: Vec<usize> = (0..b.len()).step_by(BLOCK).collect();
    let mut off = 0usize;
    while off + 7 <= b.len() {
        if BLOCK - off % BLOCK < 7 {
            off += BLOCK - off % BLOCK;
            continue;
        }
        starts.push(off);
        let len = usize::from(u16::from_le_bytes([b[off + 4], b[off + 5]]));
        let hdr = if recyclable(b[off + 6]) { 11 } else { 7 };
        off += hdr + len;
    }
    starts
        .into_iter()
        .any(|o| o + 7 <= b.len() && recyclable(b[o + 6]))
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
        expect: "violation".into(),
        fault: None,
        kill_after_op: None,
        comments: vec![format!(
            "converted from a cargo-fuzz artifact of target '{target}'"
        )],
        ops: Vec::new(),
        writers: Vec::new(),
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
                fault: Some("power-loss".into()),
                kill_after_op: Some(i.crash_after),
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
