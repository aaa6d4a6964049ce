//! What the transactions of a campaign did (stores with transactions:
//! `transaction-db`, `optimistic-transaction-db`), per durability mode and
//! in all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::ModeStats;

/// Transaction counts. Transactions are begun, written, then committed or
/// rolled back (`txn commit|rollback ...`), two-phase ones prepared first
/// (`txn prepare NAME ...`, `transaction-db` where the WAL is on);
/// with several writers, transactions read other writers' keys for update
/// and some are refused (conflicts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnStats {
    /// Transactions whose commit returned OK (each one write unit).
    #[serde(default)]
    pub committed: u64,
    /// Transactions rolled back (they must leave nothing).
    #[serde(default)]
    pub rolled_back: u64,
    /// Ops the store refused as conflicts (a lock timeout or deadlock, an
    /// optimistic commit's `Busy` or `TryAgain`): expected outcomes, not
    /// violations; each left nothing (docs/durability.md C1).
    #[serde(default)]
    pub conflicts: u64,
    /// Two-phase commit: transactions the writers ran through prepare to
    /// their commit or rollback, and those a kill found right after their
    /// prepare returned OK.
    #[serde(default)]
    pub prepared: u64,
    /// Prepared transactions the verifier found after a crash
    /// (`TransactionDB::prepared_transactions`).
    #[serde(default)]
    pub recovered_prepared: u64,
    /// Of those, the ones the verifier committed.
    #[serde(default)]
    pub recovered_prepared_committed: u64,
    /// Of those, the ones the verifier rolled back.
    #[serde(default)]
    pub recovered_prepared_rolled_back: u64,
    /// `get` steps inside completed transactions, each answer checked
    /// against the model (read-your-own-writes, T8).
    #[serde(default)]
    pub reads_inside: u64,
    /// Savepoints rolled back inside completed transactions (their
    /// writes must be no part of the commit, T7).
    #[serde(default)]
    pub savepoints_undone: u64,
    /// Cycles whose first reopen was killed before the verifier's
    /// (`transaction-db`: during its recovery, or right after it opened
    /// with the recovered prepared transactions unresolved; P5).
    #[serde(default)]
    pub reopen_kills: u64,
    /// Of those, the ones killed during the recovery.
    #[serde(default)]
    pub reopen_kills_mid_open: u64,
}

impl TxnStats {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &TxnStats) {
        self.committed += o.committed;
        self.rolled_back += o.rolled_back;
        self.conflicts += o.conflicts;
        self.prepared += o.prepared;
        self.recovered_prepared += o.recovered_prepared;
        self.recovered_prepared_committed += o.recovered_prepared_committed;
        self.recovered_prepared_rolled_back += o.recovered_prepared_rolled_back;
        self.reads_inside += o.reads_inside;
        self.savepoints_undone += o.savepoints_undone;
        self.reopen_kills += o.reopen_kills;
        self.reopen_kills_mid_open += o.reopen_kills_mid_open;
    }

    /// True when no transaction ran.
    pub fn is_empty(&self) -> bool {
        *self == TxnStats::default()
    }

    /// The sum over `by_mode`.
    pub fn of(by_mode: &BTreeMap<String, ModeStats>) -> TxnStats {
        let mut t = TxnStats::default();
        for m in by_mode.values() {
            t.add(&m.transactions);
        }
        t
    }

    /// One line for the CLI and the Markdown report: the totals, then
    /// committed / rolled back per mode; `None` when no transaction ran.
    pub fn summary(by_mode: &BTreeMap<String, ModeStats>) -> Option<String> {
        let t = TxnStats::of(by_mode);
        if t.is_empty() {
            return None;
        }
        let per_mode: Vec<String> = by_mode
            .iter()
            .filter(|(_, m)| !m.transactions.is_empty())
            .map(|(mode, m)| {
                format!(
                    "{mode} {}/{}",
                    m.transactions.committed, m.transactions.rolled_back
                )
            })
            .collect();
        // Conflicts and two-phase commit are only named once they can
        // happen: a 0 would read as "checked, none seen".
        let mut later = String::new();
        if t.conflicts > 0 {
            later = format!(", {} conflicts", t.conflicts);
        }
        if t.prepared + t.recovered_prepared > 0 {
            later += &format!(
                ", {} two-phase ({} found prepared after a crash: {} then committed, {} rolled back)",
                t.prepared,
                t.recovered_prepared,
                t.recovered_prepared_committed,
                t.recovered_prepared_rolled_back
            );
        }
        let mut kills = match t.reopen_kills {
            0 => String::new(),
            n => format!(
                ", {n} first reopens killed ({} during recovery)",
                t.reopen_kills_mid_open
            ),
        };
        if t.reads_inside + t.savepoints_undone > 0 {
            kills = format!(
                ", {} reads of their own writes, {} savepoints rolled back{kills}",
                t.reads_inside, t.savepoints_undone
            );
        }
        Some(format!(
            "{} committed, {} rolled back{later}{kills}; committed/rolled back by mode: {}",
            t.committed,
            t.rolled_back,
            per_mode.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_mode_and_say_nothing_without_transactions() {
        let mut by_mode = BTreeMap::new();
        assert_eq!(TxnStats::summary(&by_mode), None);
        let mut a = ModeStats::default();
        a.transactions.committed = 5;
        a.transactions.rolled_back = 1;
        let mut b = ModeStats::default();
        b.transactions.committed = 2;
        by_mode.insert("wal".to_string(), a);
        by_mode.insert("no-wal".to_string(), b);
        by_mode.insert("wal-sync".to_string(), ModeStats::default());
        let t = TxnStats::of(&by_mode);
        assert_eq!((t.committed, t.rolled_back), (7, 1));
        let line = TxnStats::summary(&by_mode).unwrap();
        assert!(line.starts_with("7 committed, 1 rolled back;"), "{line}");
        assert!(line.ends_with("no-wal 2/0, wal 5/1"), "{line}");
        let mut c = ModeStats::default();
        c.transactions.conflicts = 3;
        by_mode.insert("wal-sync".to_string(), c);
        let line = TxnStats::summary(&by_mode).unwrap();
        assert!(line.contains(", 3 conflicts;"), "{line}");
        assert!(
            !line.contains("two-phase"),
            "named only once it happened: {line}"
        );
        let mut d = ModeStats::default();
        d.transactions.prepared = 4;
        d.transactions.recovered_prepared = 2;
        d.transactions.recovered_prepared_committed = 1;
        d.transactions.recovered_prepared_rolled_back = 1;
        by_mode.insert("wal-sync".to_string(), d);
        let line = TxnStats::summary(&by_mode).unwrap();
        assert!(
            line.contains(
                ", 4 two-phase (2 found prepared after a crash: 1 then committed, 1 rolled back)"
            ),
            "{line}"
        );
    }
}
