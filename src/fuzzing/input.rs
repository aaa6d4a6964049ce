//! Structure-aware fuzz inputs: fixed-layout byte records decoded with
//! `arbitrary` one byte at a time, so every byte string decodes and sizes
//! are bounded; [`encode_ops`] is an exact inverse for the ops it can
//! express, so corpora can be seeded from the generator.

use arbitrary::{Arbitrary, Unstructured};

use crate::op::{Op, Scan, Value, WriteOp};
use crate::store::fault_fs::CrashImage;
use crate::store::{RecoveryMode, WalMode};

/// Most ops in one input.
pub const MAX_OPS: usize = 48;
const KEYS: u8 = 16;

pub(super) fn key(i: u8) -> Vec<u8> {
    crate::workload::key(u32::from(i % KEYS))
}

pub(super) fn val(seed: u8, len: u8) -> Value {
    Value::Gen {
        seed: u64::from(seed) + 1,
        len: u32::from(len % 64) * 8 + 1,
    }
}

/// One op from a 5-byte record `[kind, key, a, b, c]`.
pub(super) fn decode_op(r: [u8; 5]) -> Op {
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
    /// The input byte that decides `settle` (its low bit; the rest is
    /// reserved so the layout stays stable).
    pub seed: u8,
    /// Background flushes and compactions finish before the power cut
    /// (fast: a job failing on the dead filesystem makes RocksDB wait a
    /// second); otherwise the cut may land during them.
    pub settle: bool,
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
            settle: seed & 1 == 0,
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
