//! The operation language and its one-line text form.
//!
//! Every op a workload can run has a readable line that parses back to the
//! identical op, so a failing sequence is a file a person can read and edit.
//!
//! ```text
//! put k000012 gen(7,128)          # value: 128 deterministic bytes from seed 7
//! put k000013 "hello\x00world"    # literal value
//! del k000012
//! delrange k000010 k000020        # [start, end)
//! merge k000014 gen(9,16)
//! batch put k1 gen(1,8) | del k2 | merge k3 "x"
//! get k000012
//! multiget k1 k2 k3
//! scan k000010 k000100 limit=20   # forward, bounds [lo, hi); '-' = unbounded
//! rscan - k000100 limit=5         # reverse
//! snap 1                          # take snapshot 1
//! getat 1 k000012                 # read at snapshot 1
//! scanat 1 - - limit=10
//! release 1
//! flush                           # default column family only (db.flush())
//! flush all                       # every column family (one atomic unit with atomic_flush)
//! flush cfs=1,3                   # some column families
//! checkpoint 1                    # Checkpoint::create_checkpoint into checkpoint dir 1
//! backup 1                        # BackupEngine::create_new_backup_flush (backup id 1)
//! copy 1                          # plain recursive copy of the live directory
//! flushwal sync | flushwal nosync
//! compact - -
//! reopen                          # clean close and reopen (releases snapshots)
//! ```

mod text;
mod text_txn;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

pub use text::{fmt_bytes, parse_bytes, parse_ops, ParseError};

/// How many generated values [`Value::shared`] remembers per thread: more
/// than a batch holds, so the model finds every value the store just wrote.
const RECENT_VALUES: usize = 32;

/// Generated values by `(seed, len)`, newest last.
type Recent = VecDeque<(u64, u32, Arc<[u8]>)>;

thread_local! {
    /// The last generated values handed out by [`Value::shared`].
    static RECENT: RefCell<Recent> = const { RefCell::new(VecDeque::new()) };
}

/// A value: either literal bytes or a deterministic generated value.
///
/// Generated values keep repro files short while values span bytes to tens
/// of KiB; `gen(seed,len)` always expands to the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// Literal bytes, written quoted when not a bare token.
    Lit(Vec<u8>),
    /// `len` bytes derived from `seed` (see [`Value::bytes`]).
    Gen {
        /// Seed of the bytes.
        seed: u64,
        /// Length in bytes.
        len: u32,
    },
}

impl Value {
    /// The value's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Lit(b) => b.clone(),
            Value::Gen { seed, len } => gen_bytes(*seed, *len as usize),
        }
    }

    /// The value's bytes without a fresh allocation: a literal's own bytes,
    /// or a generated value written into `scratch` (whose capacity is
    /// reused from call to call).
    pub fn bytes_in<'a>(&'a self, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        match self {
            Value::Lit(b) => b,
            Value::Gen { seed, len } => {
                scratch.clear();
                scratch.resize(*len as usize, 0);
                gen_into(*seed, scratch);
                scratch
            }
        }
    }

    /// The value's bytes in a shared allocation. A generated value asked
    /// for again while it is among the last `RECENT_VALUES` asked for on
    /// this thread is not generated again: the run check's store writes a
    /// value, then its model applies the very same bytes.
    pub fn shared(&self) -> Arc<[u8]> {
        let (seed, len) = match self {
            Value::Lit(b) => return Arc::from(&b[..]),
            Value::Gen { seed, len } => (*seed, *len),
        };
        RECENT.with(|r| {
            let mut r = r.borrow_mut();
            if let Some((.., a)) = r.iter().rev().find(|(s, l, _)| (*s, *l) == (seed, len)) {
                return a.clone();
            }
            let mut a: Arc<[u8]> = std::iter::repeat_n(0, len as usize).collect();
            gen_into(seed, Arc::get_mut(&mut a).expect("a new Arc is unique"));
            if r.len() == RECENT_VALUES {
                r.pop_front();
            }
            r.push_back((seed, len, a.clone()));
            a
        })
    }

    /// Length in bytes, without materialising a generated value.
    pub fn len(&self) -> usize {
        match self {
            Value::Lit(b) => b.len(),
            Value::Gen { len, .. } => *len as usize,
        }
    }

    /// True for a zero-length value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Deterministic bytes for `gen(seed,len)`: half pseudo-random, half a
/// repeated run, so compression has something to do but cannot erase it.
pub fn gen_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    gen_into(seed, &mut out);
    out
}

/// Fills `out` with the first `out.len()` bytes of `gen(seed, _)`: 8-byte
/// chunks from a splitmix64 stream, even chunks the word's little-endian
/// bytes, odd chunks its low byte repeated; the last chunk cut short.
pub fn gen_into(seed: u64, out: &mut [u8]) {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // Whole pairs of chunks as fixed-size stores, then the tail.
    let mut pairs = out.chunks_exact_mut(16);
    for pair in &mut pairs {
        pair[..8].copy_from_slice(&next().to_le_bytes());
        pair[8..].copy_from_slice(&[next() as u8; 8]);
    }
    let tail = pairs.into_remainder();
    let (even, odd) = tail.split_at_mut(tail.len().min(8));
    if !even.is_empty() {
        even.copy_from_slice(&next().to_le_bytes()[..even.len()]);
    }
    if !odd.is_empty() {
        odd.fill(next() as u8);
    }
}

/// One mutation inside a write unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// Key.
        key: Vec<u8>,
        /// New value.
        value: Value,
    },
    /// Remove `key`.
    Delete {
        /// Key.
        key: Vec<u8>,
    },
    /// Remove every key in `[start, end)`.
    DeleteRange {
        /// First key removed.
        start: Vec<u8>,
        /// First key kept after the range.
        end: Vec<u8>,
    },
    /// Apply the crashcheck append operator (see [`crate::model::merge_values`]).
    Merge {
        /// Key.
        key: Vec<u8>,
        /// Operand appended to the value.
        operand: Value,
    },
}

impl WriteOp {
    /// The key the mutation is routed by (a range's start key).
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } | WriteOp::Merge { key, .. } => key,
            WriteOp::DeleteRange { start, .. } => start,
        }
    }
}

/// Bounds and direction of a range read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Inclusive lower bound; `None` = unbounded.
    pub lo: Option<Vec<u8>>,
    /// Exclusive upper bound; `None` = unbounded.
    pub hi: Option<Vec<u8>>,
    /// Iterate from the upper end down.
    pub reverse: bool,
    /// Maximum number of entries returned.
    pub limit: u32,
}

/// One step of a workload.
/// One step of a generated sequence: a write unit, a read, or a call that
/// changes what is durable (flush, `FlushWAL`, compaction, reopen, copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A single write: one write unit.
    Write(WriteOp),
    /// A WriteBatch: one atomic write unit.
    Batch(Vec<WriteOp>),
    /// Point read.
    Get {
        /// Key.
        key: Vec<u8>,
    },
    /// Several point reads at once.
    MultiGet {
        /// Keys, in the order of the answers.
        keys: Vec<Vec<u8>>,
    },
    /// Range read at the latest state.
    Scan(Scan),
    /// Take snapshot `id` of the current state.
    Snapshot {
        /// Snapshot number within the sequence.
        id: u32,
    },
    /// Point read at snapshot `id`.
    GetAt {
        /// Snapshot number.
        id: u32,
        /// Key.
        key: Vec<u8>,
    },
    /// Range read at snapshot `id`.
    ScanAt {
        /// Snapshot number.
        id: u32,
        /// Bounds, direction and limit.
        scan: Scan,
    },
    /// Release snapshot `id`.
    Release {
        /// Snapshot number.
        id: u32,
    },
    /// Flush the default column family's memtables to SST files and wait
    /// for it (what `db.flush()` does, whatever other column families hold).
    Flush,
    /// Flush column families `cfs` (`None` = all) and wait.
    FlushCfs {
        /// Column family indexes, or `None` for all of them.
        cfs: Option<Vec<u8>>,
    },
    /// Take checkpoint `id` of the live database.
    Checkpoint {
        /// Checkpoint number within the cycle.
        id: u32,
    },
    /// Take backup `id` with a BackupEngine.
    Backup {
        /// Backup number within the cycle (1-based, as BackupEngine counts).
        id: u32,
    },
    /// Copy the live database directory recursively, as `cp -r` would.
    CopyDir {
        /// Copy number within the cycle.
        id: u32,
    },
    /// `DB::FlushWAL(sync)`.
    FlushWal {
        /// Also fsync the WAL.
        sync: bool,
    },
    /// Manual compaction over `[lo, hi]`.
    Compact {
        /// Lower bound (`None`: unbounded).
        lo: Option<Vec<u8>>,
        /// Upper bound (`None`: unbounded).
        hi: Option<Vec<u8>>,
    },
    /// Manual compaction of everything, its output moved to `level`
    /// (`CompactRangeOptions::change_level`, `target_level`). RocksDB may
    /// decline the move (options.h: files move to "the minimum level
    /// capable of holding the data or given level"; db_impl_compaction_flush.cc
    /// `ReFitLevel` refuses when levels in between hold files); the
    /// compaction runs either way, and nothing a read returns changes.
    CompactTo {
        /// Target level.
        level: u8,
    },
    /// Clean close and reopen; releases every snapshot.
    Reopen,
    /// Bulk load: the puts (sorted, distinct keys, one column family) are
    /// written to an SST file with `SstFileWriter` and ingested with
    /// `IngestExternalFile` (moved or copied): one write unit.
    Ingest {
        /// Move (hard-link, then unlink) or copy the file into the database.
        mode: IngestMode,
        /// The puts, in key order.
        puts: Vec<WriteOp>,
    },
    /// A transaction (stores with [`crate::store::Capabilities::transactions`]):
    /// begin, its writes in order, then commit or rollback. A commit is one
    /// write unit, like a WriteBatch (transaction.h `Commit`: the writes
    /// become visible and durable together); a rollback writes nothing.
    Txn(Txn),
}

/// A transaction's writes and how it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The writes made inside the transaction, in order.
    pub writes: Vec<WriteOp>,
    /// What the transaction does between its writes besides writing, each
    /// where it stands among them (`lock K`, `get K`, `savepoint ...
    /// rollback-to-savepoint`), in order.
    pub steps: Vec<TxnStep>,
    /// `Transaction::SetSnapshot` at begin (`txn ... snapshot ...`): its
    /// conflict checks and reads for update validate against the state at
    /// begin (transaction.h `SetSnapshot`).
    pub snapshot: bool,
    /// Commit or rollback.
    pub end: TxnEnd,
    /// Two-phase commit (`txn prepare NAME commit|rollback ...`): the
    /// transaction is named, prepared (its writes logged in the WAL,
    /// invisible), then committed or rolled back (transaction.h
    /// `SetName`, `Prepare`; stores with
    /// [`crate::store::Capabilities::two_phase_commit`]). `None`: one
    /// phase.
    pub prepare: Option<String>,
}

/// A step of a transaction that is not one of its writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnStep {
    /// How many of the transaction's writes come before it.
    pub after: u32,
    /// What it does.
    pub kind: TxnStepKind,
}

/// What a [`TxnStep`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStepKind {
    /// `lock K`: `GetForUpdate` of a key another writer owns: the
    /// transaction contends with its owner (transaction.h `GetForUpdate`:
    /// a pessimistic transaction locks the key; an optimistic one has its
    /// commit fail if the key was written after the read).
    Lock(Vec<u8>),
    /// `get K`: `Transaction::Get`, which sees the transaction's own
    /// writes so far over the database (read-your-own-writes).
    Get(Vec<u8>),
    /// `scan LO HI limit=N` (or `rscan`): an iterator of the transaction
    /// (`Transaction::GetIterator`), which sees its own writes so far
    /// over the database.
    Scan(Scan),
    /// `savepoint | W | ... | rollback-to-savepoint`: `SetSavePoint`,
    /// these writes, then `RollbackToSavePoint`, which undoes them
    /// (transaction.h): they are never part of the commit.
    Undone(Vec<WriteOp>),
}

impl Txn {
    /// Its reads (`get` and `scan` steps), in order: one answer each from
    /// [`crate::store::Store::transaction_steps`].
    pub fn reads(&self) -> impl Iterator<Item = &TxnStepKind> {
        self.steps
            .iter()
            .map(|s| &s.kind)
            .filter(|k| matches!(k, TxnStepKind::Get(_) | TxnStepKind::Scan(_)))
    }

    /// True when it runs as one plain transaction (its writes, then the
    /// end): no steps and no snapshot.
    pub fn is_plain(&self) -> bool {
        self.steps.is_empty() && !self.snapshot
    }
}

/// How a transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnEnd {
    /// `Transaction::Commit`: all writes, atomically.
    Commit,
    /// `Transaction::Rollback`: none of them.
    Rollback,
}

/// How an ingested file gets into the database
/// (`IngestExternalFileOptions::move_files`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestMode {
    /// `move_files = true`: hard-linked, the input unlinked.
    Move,
    /// `move_files = false`: copied (and synced).
    Copy,
}

impl Op {
    /// True when the op is a write unit (single write or batch).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Write(_)
                | Op::Batch(_)
                | Op::Ingest { .. }
                | Op::Txn(Txn {
                    end: TxnEnd::Commit,
                    ..
                })
        )
    }

    /// True when the op only reads (point, multi-key or range reads, at
    /// the latest state or a snapshot).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::Get { .. }
                | Op::GetAt { .. }
                | Op::MultiGet { .. }
                | Op::Scan(_)
                | Op::ScanAt { .. }
        )
    }

    /// The mutations of a write unit, in order; empty for other ops.
    pub fn write_ops(&self) -> &[WriteOp] {
        match self {
            Op::Write(w) => std::slice::from_ref(w),
            Op::Batch(ws) | Op::Ingest { puts: ws, .. } => ws,
            Op::Txn(Txn {
                writes,
                end: TxnEnd::Commit,
                ..
            }) => writes,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gen_bytes` as it was first written, byte by byte: generated values
    /// are stored in databases and repro files, so they must never change.
    fn reference_gen(seed: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
        while out.len() < len {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let word = z.to_le_bytes();
            if (out.len() / 8) % 2 == 0 {
                out.extend_from_slice(&word);
            } else {
                out.extend_from_slice(&[word[0]; 8]);
            }
        }
        out.truncate(len);
        out
    }

    #[test]
    fn generated_bytes_never_change() {
        let mut scratch = vec![7u8; 3];
        for seed in [0, 1, 5, 1_000_001, u64::MAX] {
            for len in (0..70).chain([1023, 4096, 4097, 48 * 1024]) {
                let want = reference_gen(seed, len);
                assert_eq!(gen_bytes(seed, len), want, "seed {seed} len {len}");
                let v = Value::Gen {
                    seed,
                    len: len as u32,
                };
                assert_eq!(v.bytes(), want);
                assert_eq!(v.bytes_in(&mut scratch), &want[..]);
                assert_eq!(&v.shared()[..], &want[..]);
                assert_eq!(&v.shared()[..], &want[..], "remembered");
            }
        }
        // Pinned, so that a change to the reference is caught too.
        assert_eq!(
            gen_bytes(7, 20),
            [
                0x01, 0x85, 0xf8, 0x93, 0x36, 0x9c, 0x77, 0xec, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d,
                0x9d, 0x9d, 0x0a, 0xd3, 0x2b, 0x09
            ]
        );
        let lit = Value::Lit(b"abc".to_vec());
        assert_eq!(lit.bytes_in(&mut scratch), b"abc");
        assert_eq!(&lit.shared()[..], b"abc");
    }
}
