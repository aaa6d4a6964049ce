//! The load phase: an op sequence that builds a tree several levels deep,
//! which crash cycles start from (`campaign::base`).
//!
//! A default cycle writes a few hundred KiB: left alone, its data rarely
//! gets below the first level or two. The load writes every key of the
//! profile's key space (in every column family), flushes often, compacts
//! everything down, and then overwrites, deletes, range-deletes and merges
//! a share of those keys in waves, each followed by a flush. With a small
//! LSM geometry (`store::option_profiles::deep`) the result has data in
//! L0 and in two or more levels below it, and keys whose newest version
//! (or tombstone) sits above older ones in lower levels: where deletes must
//! keep shadowing, merges span levels, and compactions run across levels.

use crate::keyspace::Layout;
use crate::op::{Op, Value, WriteOp};
use crate::workload::{key, Profile};

/// Keys per batch in the load.
const BATCH: usize = 25;

/// Value length of the `i`-th load write: 256..=1023 bytes.
fn len_of(i: u64) -> u32 {
    256 + (i.wrapping_mul(0x9E37_79B9) % 768) as u32
}

/// The load ops for `profile`'s key space laid out as `layout` (one
/// writer), seeded by `seed`. The same arguments give the same ops.
pub fn load_ops(seed: u64, profile: &Profile, layout: Layout) -> Vec<Op> {
    // Value seeds of their own (top bit set), so no load value coincides
    // with a value a cycle writes.
    let mut next = (1u64 << 63) | ((seed & 0xFFFF_FFFF) << 24);
    let mut value = |len: Option<u32>| {
        next += 1;
        Value::Gen {
            seed: next,
            len: len.unwrap_or_else(|| len_of(next)),
        }
    };
    let cfs = layout.cfs.max(1);
    let keys: Vec<Vec<u8>> = (0..cfs)
        .flat_map(|cf| {
            (0..profile.keys).map(move |i| {
                let mut k = layout.prefix(cf, layout.writer, layout.writer);
                k.extend_from_slice(&key(i));
                k
            })
        })
        .collect();
    let mut ops = Vec::new();
    // Wave 0: every key, a flush every four batches, then everything down.
    for (n, chunk) in keys.chunks(BATCH).enumerate() {
        let batch = chunk
            .iter()
            .map(|k| WriteOp::Put {
                key: k.clone(),
                value: value(None),
            })
            .collect();
        ops.push(Op::Batch(batch));
        if n % 4 == 3 {
            ops.push(Op::FlushCfs { cfs: None });
        }
    }
    ops.push(Op::FlushCfs { cfs: None });
    ops.push(Op::Compact { lo: None, hi: None });
    // Waves 1-3: overwrite, delete, merge and range-delete a share of the
    // keys (a different share each wave), each wave flushed, so newer
    // versions and tombstones land above the older ones.
    for wave in 1..=3u64 {
        let mut batch = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let i = i as u64 + wave * 7 + (seed % 5);
            let w = match i % 11 {
                0 | 5 => WriteOp::Put {
                    key: k.clone(),
                    value: value(None),
                },
                3 => WriteOp::Delete { key: k.clone() },
                7 => WriteOp::Merge {
                    key: k.clone(),
                    operand: value(Some(16)),
                },
                _ => continue,
            };
            batch.push(w);
            if batch.len() == BATCH {
                ops.push(Op::Batch(std::mem::take(&mut batch)));
            }
        }
        if !batch.is_empty() {
            ops.push(Op::Batch(batch));
        }
        // A short range delete per wave (five keys of the first column
        // family, at a different place each wave).
        let start = (wave as usize * 97 + seed as usize % 50) % keys.len().max(1);
        if let (Some(a), Some(b)) = (keys.get(start), keys.get(start + 5)) {
            ops.push(Op::Write(WriteOp::DeleteRange {
                start: a.clone(),
                end: b.clone(),
            }));
        }
        ops.push(Op::FlushCfs { cfs: None });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::History;
    use crate::model::State;

    #[test]
    fn the_load_is_seeded_covers_every_key_and_leaves_shadowed_versions() {
        let p = Profile::by_name("crash").unwrap();
        let l = Layout::default();
        let a = load_ops(1, &p, l);
        assert_eq!(a, load_ops(1, &p, l));
        assert_ne!(a, load_ops(2, &p, l));
        let h = History::new(a.clone(), State::new());
        let end = h.state_at(h.units());
        // Most keys live, some deleted: tombstones above older values.
        assert!(end.len() > p.keys as usize / 2, "{}", end.len());
        assert!(end.len() < p.keys as usize);
        // Flushes between waves, and one compaction of everything.
        assert!(
            a.iter()
                .filter(|o| matches!(o, Op::FlushCfs { .. }))
                .count()
                >= 4
        );
        assert_eq!(
            a.iter().filter(|o| matches!(o, Op::Compact { .. })).count(),
            1
        );
    }
}
