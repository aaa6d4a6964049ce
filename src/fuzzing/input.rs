//! Structure-aware fuzz inputs: fixed-layout byte records decoded with
//! `arbitrary` one byte at a time, so every byte string decodes and sizes
//! are bounded; [`encode_ops`] is an exact inverse for the ops it can
//! express, so corpora can be seeded from the generator.

use arbitrary::{Arbitrary, Unstructured};

use crate::op::{Op, Scan, TxnStep, TxnStepKind, Value, WriteOp};
use crate::store::fault_fs::CrashImage;
use crate::store::{RecoveryMode, StoreOptions, WalMode};

/// Most ops in one input.
pub const MAX_OPS: usize = 48;
const KEYS: u8 = 16;

/// Key `i` of an input with `cfs` column families: index `i % 16`, in
/// column family `(i / 16) % cfs` (no prefix with one column family).
pub(super) fn key(i: u8, cfs: u8) -> Vec<u8> {
    cf_key((i / KEYS) % cfs.max(1), u32::from(i % KEYS), cfs)
}

/// Key index `idx` (a range bound may pass 15) in column family `cf`.
fn cf_key(cf: u8, idx: u32, cfs: u8) -> Vec<u8> {
    let mut k = crate::keyspace::Layout {
        cfs,
        ..Default::default()
    }
    .prefix(cf, 0, 0);
    k.extend(crate::workload::key(idx));
    k
}

/// The column family key byte `i` maps to.
fn cf(i: u8, cfs: u8) -> u8 {
    (i / KEYS) % cfs.max(1)
}

pub(super) fn val(seed: u8, len: u8) -> Value {
    Value::Gen {
        seed: u64::from(seed) + 1,
        len: u32::from(len % 64) * 8 + 1,
    }
}

/// A batch record with the transaction bits: the batch's writes as a
/// transaction, rolled back when bit 6 of `c` is set, two-phase when bit
/// 7 is (named `f`; [`decode_ops`] makes each name unique by the op's
/// place, so a recovered prepared transaction names one op). Bits 6 and 7
/// of `b` (the value length uses bits 0-5) add steps: a `get` of the
/// first write's key and a `scan` from it, right after that write (a put:
/// no merge comes before them); a put of that key undone by a savepoint
/// before the last write.
fn decode_txn(r: [u8; 5], cfs: u8) -> Op {
    let [kind, k, a, b, c] = r;
    let writes = match decode_op([kind, k, a, b, c & !0xb0], cfs) {
        Op::Batch(w) => w,
        other => other.write_ops().to_vec(),
    };
    let end = if c & 0x40 == 0 {
        crate::op::TxnEnd::Commit
    } else {
        crate::op::TxnEnd::Rollback
    };
    let mut steps = Vec::new();
    let first = writes.first().map(|w| w.key().to_vec());
    if let (true, Some(k)) = (b & 0x40 != 0, &first) {
        let scan = Scan {
            lo: Some(k.clone()),
            hi: None,
            reverse: false,
            limit: 4,
        };
        for kind in [TxnStepKind::Get(k.clone()), TxnStepKind::Scan(scan)] {
            steps.push(TxnStep { after: 1, kind });
        }
    }
    if let (true, Some(k)) = (b & 0x80 != 0, first) {
        let put = WriteOp::Put {
            key: k,
            value: val(a ^ 0x55, b),
        };
        steps.push(TxnStep {
            after: writes.len().saturating_sub(1) as u32,
            kind: TxnStepKind::Undone(vec![put]),
        });
    }
    Op::Txn(crate::op::Txn {
        writes,
        end,
        prepare: (c & 0x80 != 0).then(|| "f".to_string()),
        steps,
        snapshot: false,
    })
}

/// One op from a 5-byte record `[kind, key, a, b, c]` in an input with
/// `cfs` column families. Key bytes pick the column family with their
/// high bits; a batch's keys step one column family each (a cross-CF
/// batch when there are several).
pub(super) fn decode_op(r: [u8; 5], cfs: u8) -> Op {
    let [kind, k, a, b, c] = r;
    let key = |i: u8| key(i, cfs);
    match kind % 16 {
        0..=3 => Op::Write(WriteOp::Put {
            key: key(k),
            value: val(a, b),
        }),
        4 => Op::Write(WriteOp::Delete { key: key(k) }),
        5 => Op::Write(WriteOp::DeleteRange {
            start: key(k),
            end: cf_key(cf(k, cfs), u32::from(k % KEYS + a % 8 + 1), cfs),
        }),
        6 => Op::Write(WriteOp::Merge {
            key: key(k),
            operand: val(a, b % 2),
        }),
        // One batch record in four (one column family only) is an ingest
        // of its three keys instead, moved or copied.
        7 if c & 6 == 6 && cfs <= 1 => {
            let mut puts: Vec<WriteOp> =
                [k, k.wrapping_add(KEYS + 1), k.wrapping_add(2 * KEYS + 2)]
                    .into_iter()
                    .map(|i| WriteOp::Put {
                        key: key(i),
                        value: val(a.wrapping_add(i), b),
                    })
                    .collect();
            puts.sort_by(|x, y| x.key().cmp(y.key()));
            puts.dedup_by(|x, y| x.key() == y.key());
            Op::Ingest {
                mode: if c & 8 == 8 {
                    crate::op::IngestMode::Move
                } else {
                    crate::op::IngestMode::Copy
                },
                puts,
            }
        }
        // A batch record with bits 4 and 5 of `c` set is a transaction of the
        // same writes, rolled back when bit 6 is set too (a store without
        // transactions gets the commit as a batch and no rollback:
        // `Capabilities::fit_ops`).
        7 if c & 0x30 == 0x30 => decode_txn([kind, k, a, b, c], cfs),
        7 => Op::Batch(vec![
            WriteOp::Put {
                key: key(k),
                value: val(a, b),
            },
            if c & 1 == 0 {
                WriteOp::Delete {
                    key: key(k.wrapping_add(KEYS + 1)),
                }
            } else {
                WriteOp::Merge {
                    key: key(k.wrapping_add(KEYS + 1)),
                    operand: val(a, 1),
                }
            },
            WriteOp::Put {
                key: key(k.wrapping_add(2 * KEYS + 2)),
                value: val(c, b),
            },
        ]),
        8 => Op::Get { key: key(k) },
        9 => Op::Scan(Scan {
            lo: Some(key(k)),
            // With several column families half the scans end in the next
            // one, so they cross a column family boundary.
            hi: Some(cf_key(
                (cf(k, cfs) + (a >> 4) % 2).min(cfs.max(1) - 1),
                u32::from(k % KEYS + a % 16 + 1),
                cfs,
            )),
            reverse: b & 1 == 1,
            limit: u32::from(c % 8) + 1,
        }),
        10 => match a % 4 {
            0 | 1 => Op::Flush,
            2 => Op::FlushCfs { cfs: None },
            _ => {
                let mut l = vec![b % cfs.max(1)];
                if c & 1 == 1 {
                    l.push((b % cfs.max(1) + 1) % cfs.max(1));
                }
                l.sort_unstable();
                l.dedup();
                Op::FlushCfs { cfs: Some(l) }
            }
        },
        11 if c % 8 == 0 => Op::Checkpoint { id: 1 },
        11 => Op::FlushWal { sync: a & 1 == 1 },
        12 => Op::Snapshot {
            id: u32::from(a % 2) + 1,
        },
        13 => Op::GetAt {
            id: u32::from(a % 2) + 1,
            key: key(k),
        },
        // A reopen costs about as much as all the input's other ops
        // together (about 2 ms): one record in 64 is one.
        14 if a % 4 == 0 => Op::Reopen,
        14 => Op::MultiGet {
            keys: (0..=b % 3)
                .map(|j| key(k.wrapping_add(j.wrapping_mul(KEYS + 3))))
                .collect(),
        },
        // A whole-range compaction flushes and compacts every column
        // family (0.4-0.8 ms): one compaction in four is one; the others
        // cover a few keys of one column family.
        _ if a % 4 == 0 => Op::Compact { lo: None, hi: None },
        // One in 32 moves everything to a level (change_level): a whole-range
        // refit costs as much as a whole-range compaction.
        _ if a % 32 == 1 => Op::CompactTo { level: 1 + b % 5 },
        _ => Op::Compact {
            lo: Some(key(k)),
            hi: Some(cf_key(cf(k, cfs), u32::from(k % KEYS + b % 8 + 1), cfs)),
        },
    }
}

/// The key byte of `k`: its index in the low four bits, its column
/// family in the high ones (the inverse of [`key`]).
fn key_index(k: &[u8]) -> u8 {
    let (cf, rest) = match k {
        [b'c', d @ b'0'..=b'7', b'/', rest @ ..] => (d - b'0', rest),
        _ => (0, k),
    };
    let idx = std::str::from_utf8(rest)
        .ok()
        .and_then(|s| s.trim_start_matches('k').parse::<u32>().ok())
        .map_or(0, |i| i.min(255) as u8);
    cf.wrapping_mul(KEYS).wrapping_add(idx % KEYS)
}

/// How far past `start`'s index `end` lies (a range's length).
fn span(start: &[u8], end: &[u8]) -> u8 {
    let idx = |k: &[u8]| {
        let s = k
            .iter()
            .rposition(|&b| b == b'k')
            .map_or(k, |p| &k[p + 1..]);
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    idx(end)
        .saturating_sub(idx(start) % u32::from(KEYS))
        .min(255) as u8
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
            Op::Write(WriteOp::DeleteRange { start, end }) => [
                5,
                key_index(start),
                span(start, end).saturating_sub(1) % 8,
                0,
                0,
            ],
            Op::Write(WriteOp::Merge { key, operand }) => {
                let (a, b) = val_bytes(operand);
                [6, key_index(key), a, b, 0]
            }
            Op::Txn(t) => {
                let k = t.writes.first().map_or(0, |w| key_index(w.key()));
                let end = if t.end == crate::op::TxnEnd::Rollback {
                    0x40
                } else {
                    0
                };
                let two_phase = if t.prepare.is_some() { 0x80 } else { 0 };
                let has = |f: fn(&TxnStepKind) -> bool| t.steps.iter().any(|s| f(&s.kind));
                let reads = if has(|s| matches!(s, TxnStepKind::Get(_))) {
                    0x40
                } else {
                    0
                };
                let undone = if has(|s| matches!(s, TxnStepKind::Undone(_))) {
                    0x80
                } else {
                    0
                };
                [7, k, 1, 2 | reads | undone, 0x30 | end | two_phase]
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
            Op::Ingest { mode, puts } => [
                7,
                puts.first().map_or(0, |p| key_index(p.key())),
                1,
                2,
                6 | if *mode == crate::op::IngestMode::Move {
                    8
                } else {
                    0
                },
            ],
            Op::Get { key } | Op::GetAt { key, .. } => [8, key_index(key), 0, 0, 0],
            Op::MultiGet { keys } => [
                14,
                keys.first().map_or(0, |k| key_index(k)),
                1,
                (keys.len().clamp(1, 3) - 1) as u8,
                0,
            ],
            Op::Scan(s) | Op::ScanAt { scan: s, .. } => [
                9,
                s.lo.as_deref().map_or(0, key_index),
                3,
                u8::from(s.reverse),
                (s.limit % 8) as u8,
            ],
            Op::Flush => [10, 0, 0, 0, 0],
            Op::FlushCfs { cfs: None } => [10, 0, 2, 0, 0],
            Op::FlushCfs { cfs: Some(l) } => [
                10,
                0,
                3,
                l.first().copied().unwrap_or(0),
                u8::from(l.len() > 1),
            ],
            Op::Checkpoint { .. } | Op::Backup { .. } | Op::CopyDir { .. } => [11, 0, 0, 0, 0],
            Op::FlushWal { sync } => [11, 0, u8::from(*sync), 0, 1],
            Op::Snapshot { .. } | Op::Release { .. } => [12, 0, 0, 0, 0],
            Op::Reopen => [14, 0, 0, 0, 0],
            Op::Compact { lo: None, .. } | Op::Compact { hi: None, .. } => [15, 0, 0, 0, 0],
            Op::CompactTo { level } => [15, 0, 1, level.saturating_sub(1), 0],
            Op::Compact {
                lo: Some(lo),
                hi: Some(hi),
            } => [15, key_index(lo), 2, span(lo, hi).saturating_sub(1) % 8, 0],
        };
        out.extend_from_slice(&rec);
    }
    out
}

/// Most reopens, most checkpoints, most ingests and most refitting
/// compactions (`compact-to`) in one input. Each costs about as much as
/// the input's other ops together (a database open 2-5 ms, an SST file
/// written and ingested, a whole-range compaction), and coverage-guided
/// fuzzing rewards inputs full of them; the ones past the cap are read as
/// the record's other op (a multi-get, a WAL flush, a batch, a bounded
/// compaction).
const MAX_OPENS: usize = 1;

pub(super) fn decode_ops(u: &mut Unstructured<'_>, cfs: u8) -> arbitrary::Result<Vec<Op>> {
    let mut ops = Vec::new();
    let mut live_snaps = Vec::new();
    let (mut reopens, mut checkpoints, mut ingests, mut refits) = (0, 0, 0, 0);
    while ops.len() < MAX_OPS && u.len() >= 5 {
        let mut r = [0u8; 5];
        for b in &mut r {
            *b = u8::arbitrary(u)?;
        }
        let mut op = decode_op(r, cfs);
        match op {
            Op::Reopen if reopens == MAX_OPENS => op = decode_op([r[0], r[1], 1, r[3], r[4]], cfs),
            Op::Reopen => reopens += 1,
            Op::Checkpoint { .. } if checkpoints == MAX_OPENS => {
                op = decode_op([r[0], r[1], r[2], r[3], 1], cfs)
            }
            Op::Checkpoint { .. } => checkpoints += 1,
            Op::Ingest { .. } if ingests == MAX_OPENS => {
                op = decode_op([r[0], r[1], r[2], r[3], r[4] & !6], cfs)
            }
            Op::Ingest { .. } => ingests += 1,
            Op::CompactTo { .. } if refits == MAX_OPENS => {
                op = decode_op([r[0], r[1], 2, r[3], r[4]], cfs)
            }
            Op::CompactTo { .. } => refits += 1,
            Op::Txn(ref mut t) => {
                if let Some(name) = &mut t.prepare {
                    *name = format!("f{}", ops.len());
                }
            }
            _ => {}
        }
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

/// An input's column families: one (half the inputs), or three, with or
/// without `atomic_flush`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CfLayout {
    /// Column families (1 or 3).
    pub cfs: u8,
    /// RocksDB's `atomic_flush`.
    pub atomic_flush: bool,
}

impl CfLayout {
    /// The layout two input bits choose.
    pub fn from_bits(b: u8) -> CfLayout {
        let (cfs, atomic_flush) = match b % 4 {
            0 | 1 => (1, false),
            2 => (3, false),
            _ => (3, true),
        };
        CfLayout { cfs, atomic_flush }
    }

    /// The bits that choose this layout.
    pub fn bits(self) -> u8 {
        match (self.cfs, self.atomic_flush) {
            (1, _) => 0,
            (_, false) => 2,
            (_, true) => 3,
        }
    }

    /// `base` with this layout's column families and `atomic_flush`.
    pub fn apply(self, base: StoreOptions) -> StoreOptions {
        StoreOptions {
            column_families: self.cfs,
            atomic_flush: self.atomic_flush,
            ..base
        }
    }
}

/// Input of the `ops` target: `[layout]` then ops.
#[derive(Clone, Debug, PartialEq)]
pub struct OpsInput {
    /// Column families.
    pub layout: CfLayout,
    /// The ops.
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for OpsInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let layout = CfLayout::from_bits(u8::arbitrary(u)?);
        Ok(OpsInput {
            layout,
            ops: decode_ops(u, layout.cfs)?,
        })
    }
}

/// Input of the `crash` target: `[mode, crash point, image, seed]` then
/// ops; the seed byte's bits 1-2 choose the column families.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashInput {
    /// Durability mode.
    pub mode: WalMode,
    /// The power goes off after this many ops.
    pub crash_after: usize,
    /// What survives.
    pub image: CrashImage,
    /// The input byte that decides `settle` (its low bit) and `layout`
    /// (bits 1-2; the rest is reserved so the layout stays stable).
    pub seed: u8,
    /// Column families.
    pub layout: CfLayout,
    /// Background flushes and compactions finish before the power cut;
    /// otherwise the cut may land during them.
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
        let layout = CfLayout::from_bits(seed >> 1);
        let ops: Vec<Op> = decode_ops(u, layout.cfs)?
            .into_iter()
            .filter(|o| !matches!(o, Op::Reopen))
            .collect();
        let crash_after = usize::from(point) % (ops.len() + 1);
        Ok(CrashInput {
            mode,
            crash_after,
            image,
            seed,
            layout,
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
