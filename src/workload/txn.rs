//! The generator's transactions (`txn ...`, stores with transactions):
//! their writes and end, two-phase where the store has it, reads for
//! update of other writers' keys where writers contend, and steps inside
//! (a read of its own writes, writes undone by a savepoint, a snapshot).
//! Each part is drawn only where its weight is on, so other stores'
//! sequences are unchanged.

use rand::Rng;

use super::{key, Generator};
use crate::op::{Op, Txn, TxnEnd, TxnStep, TxnStepKind, WriteOp};

impl Generator {
    /// A transaction of 1..=`max_batch` writes.
    pub(super) fn txn_op(&mut self) -> Op {
        let n = self.rng.random_range(1..=self.profile.max_batch.max(1));
        let writes: Vec<WriteOp> = (0..n).map(|_| self.write_op(true, true)).collect();
        // One transaction in eight is rolled back.
        let end = if self.rng.random_range(0..8) == 0 {
            TxnEnd::Rollback
        } else {
            TxnEnd::Commit
        };
        let share = self.profile.weights.prepare;
        let prepare = (share > 0 && self.rng.random_range(0..8) < share).then(|| {
            self.next_txn += 1;
            format!("p{}.{}", self.layout.writer, self.next_txn - 1)
        });
        let mut steps = self.locks(writes.len());
        let snapshot = self.inner_steps(&writes, &mut steps);
        // Stable: steps drawn at one place keep their order.
        steps.sort_by_key(|s| s.after);
        Op::Txn(Txn {
            writes,
            steps,
            snapshot,
            end,
            prepare,
        })
    }

    /// `lock K` steps for a transaction of `writes` writes: with several
    /// writers and a lock share, 1-2 lockable keys of other writers'
    /// partitions ([`crate::keyspace::lock_slot`]) at random places among
    /// the writes.
    fn locks(&mut self, writes: usize) -> Vec<TxnStep> {
        let share = self.profile.weights.lock;
        if self.layout.writers <= 1 || share == 0 || self.rng.random_range(0..8) >= share {
            return Vec::new();
        }
        let n = self.rng.random_range(1..=2);
        (0..n)
            .map(|_| {
                let cf = self.pick_cf();
                let mut part = self.rng.random_range(0..self.layout.writers - 1);
                if part >= self.layout.writer {
                    part += 1;
                }
                let i = self.rng.random_range(0..crate::keyspace::LOCK_KEYS as u32);
                let mut k = self.layout.prefix(cf, part, part);
                k.extend_from_slice(&key(i));
                TxnStep {
                    after: self.rng.random_range(0..=writes as u32),
                    kind: TxnStepKind::Lock(k),
                }
            })
            .collect()
    }

    /// With a steps share: one time in three a `scan` (an iterator of the
    /// transaction) somewhere among its writes, a `get` of one of its own keys somewhere among
    /// `writes` (often a key it wrote before: read-your-own-writes; never
    /// one with a merge before it in the transaction, which
    /// `Transaction::Get` may answer `MergeInProgress`), one time in two
    /// writes undone by a savepoint, and one time in four a snapshot set
    /// at begin (the returned flag).
    fn inner_steps(&mut self, writes: &[WriteOp], steps: &mut Vec<TxnStep>) -> bool {
        let share = self.profile.weights.txn_steps;
        if share == 0 || self.rng.random_range(0..8) >= share {
            return false;
        }
        let snapshot = self.rng.random_range(0..4) == 0;
        let at = self.rng.random_range(0..=writes.len());
        let k = match at {
            0 => self.pick_key(),
            _ if self.rng.random_range(0..2) == 0 => self.pick_key(),
            _ => writes[self.rng.random_range(0..at)].key().to_vec(),
        };
        let merged = writes[..at]
            .iter()
            .any(|w| matches!(w, WriteOp::Merge { key, .. } if *key == k));
        if !merged {
            steps.push(TxnStep {
                after: at as u32,
                kind: TxnStepKind::Get(k),
            });
        }
        // One time in three an iterator of the transaction, where no merge
        // comes before it (the Get rule, kept for iterators too).
        if self.rng.random_range(0..3) == 0 {
            let at = self.rng.random_range(0..=writes.len());
            let scan = self.scan();
            if !writes[..at]
                .iter()
                .any(|w| matches!(w, WriteOp::Merge { .. }))
            {
                steps.push(TxnStep {
                    after: at as u32,
                    kind: TxnStepKind::Scan(scan),
                });
            }
        }
        if self.rng.random_range(0..2) == 0 {
            let n = self.rng.random_range(1..=2);
            let undone = (0..n).map(|_| self.write_op(false, true)).collect();
            steps.push(TxnStep {
                after: self.rng.random_range(0..=writes.len() as u32),
                kind: TxnStepKind::Undone(undone),
            });
        }
        snapshot
    }
}
