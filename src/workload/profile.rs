//! Workload profiles: named op weights and key-space shapes, and the
//! flush style used over several column families.

/// Which flush a generator emits when the database has several column
/// families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushStyle {
    /// `flush all`: every column family (atomically with atomic_flush):
    /// what a careful application does.
    #[default]
    All,
    /// A mix of `flush all`, single column families and `flush` (default
    /// column family only).
    Mixed,
    /// Only `flush`: `db.flush()`, which covers the default column family
    /// only (the classic mistake).
    Default,
}

impl std::str::FromStr for FlushStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(FlushStyle::All),
            "mixed" => Ok(FlushStyle::Mixed),
            "default" => Ok(FlushStyle::Default),
            o => Err(format!("unknown flush style '{o}' (all, mixed, default)")),
        }
    }
}

/// Relative weights of each op kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Single put.
    pub put: u32,
    /// Single delete (mostly of live keys).
    pub delete: u32,
    /// Range delete over a short span of keys.
    pub delete_range: u32,
    /// Single merge.
    pub merge: u32,
    /// WriteBatch of 2..=`max_batch` mutations.
    pub batch: u32,
    /// Point read.
    pub get: u32,
    /// Multi-key read.
    pub multi_get: u32,
    /// Forward or reverse bounded scan.
    pub scan: u32,
    /// Snapshot take / read-at / release.
    pub snapshot: u32,
    /// Memtable flush.
    pub flush: u32,
    /// `FlushWAL(sync)` with sync chosen at random.
    pub flush_wal: u32,
    /// Manual compaction.
    pub compact: u32,
    /// Clean close and reopen.
    pub reopen: u32,
    /// `checkpoint N` (taken while other writers run).
    pub checkpoint: u32,
    /// `backup N`.
    pub backup: u32,
    /// `copy N`: a plain recursive copy of the live directory.
    pub copy: u32,
    /// `ingest move|copy ...`: an SST file of 2-16 puts, bulk-loaded.
    pub ingest: u32,
    /// `txn commit|rollback ...`: a transaction of 1..=`max_batch` writes
    /// (stores with transactions only).
    pub txn: u32,
    /// Of every 8 transactions, how many are two-phase (`txn prepare NAME
    /// ...`; stores with two-phase commit only, and only where the WAL is
    /// on).
    pub prepare: u32,
    /// Of every 8 transactions, how many read other writers' keys for
    /// update (`lock K`; stores with [`crate::store::Capabilities::conflicts`],
    /// and only with several writers).
    pub lock: u32,
    /// Of every 8 transactions, how many have steps inside: a read of its
    /// own writes, writes undone by a savepoint, a snapshot (stores with
    /// [`crate::store::Capabilities::txn_steps`]).
    pub txn_steps: u32,
}

/// A named workload shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Name used on the command line and in repro files.
    pub name: &'static str,
    /// Op weights.
    pub weights: Weights,
    /// Number of distinct keys.
    pub keys: u32,
    /// Fraction (in percent) of keys that are hot.
    pub hot_pct: u32,
    /// Percent of key choices that go to the hot set.
    pub hot_hits_pct: u32,
    /// Largest batch.
    pub max_batch: u32,
    /// Value sizes: percent small (1..=64 B), medium (65 B..=4 KiB); the
    /// rest are large (4..=48 KiB).
    pub small_pct: u32,
    /// See `small_pct`.
    pub medium_pct: u32,
}

const BASE: Weights = Weights {
    put: 40,
    delete: 10,
    delete_range: 3,
    merge: 8,
    batch: 10,
    get: 10,
    multi_get: 3,
    scan: 5,
    snapshot: 4,
    flush: 1,
    flush_wal: 2,
    compact: 1,
    reopen: 1,
    checkpoint: 0,
    backup: 0,
    copy: 0,
    ingest: 1,
    txn: 0,
    prepare: 0,
    lock: 0,
    txn_steps: 0,
};

/// Weights of the `crash` profile: write-heavy, with flushes, WAL flushes
/// and batches often enough that kills land inside them.
const CRASH_WEIGHTS: Weights = Weights {
    put: 80,
    delete: 16,
    delete_range: 4,
    merge: 16,
    batch: 30,
    get: 6,
    multi_get: 2,
    scan: 2,
    snapshot: 2,
    flush: 2,
    flush_wal: 6,
    compact: 1,
    reopen: 1,
    checkpoint: 0,
    backup: 0,
    copy: 0,
    ingest: 2,
    txn: 0,
    prepare: 0,
    lock: 0,
    txn_steps: 0,
};

impl Profile {
    /// Every built-in profile.
    pub fn all() -> Vec<Profile> {
        let d = Profile {
            name: "default",
            weights: BASE,
            keys: 1000,
            hot_pct: 10,
            hot_hits_pct: 80,
            max_batch: 8,
            small_pct: 70,
            medium_pct: 25,
        };
        vec![
            d.clone(),
            Profile {
                name: "write-heavy",
                weights: Weights {
                    get: 2,
                    multi_get: 1,
                    scan: 1,
                    snapshot: 1,
                    ..BASE
                },
                ..d.clone()
            },
            Profile {
                name: "read-heavy",
                weights: Weights {
                    put: 15,
                    delete: 4,
                    batch: 4,
                    get: 40,
                    multi_get: 10,
                    scan: 15,
                    snapshot: 8,
                    ..BASE
                },
                ..d.clone()
            },
            Profile {
                name: "batch-heavy",
                weights: Weights {
                    put: 15,
                    batch: 40,
                    ..BASE
                },
                max_batch: 16,
                ..d.clone()
            },
            Profile {
                name: "large-values",
                small_pct: 20,
                medium_pct: 40,
                keys: 300,
                ..d.clone()
            },
            Profile {
                name: "small-keyspace",
                keys: 32,
                hot_pct: 25,
                ..d.clone()
            },
            Profile {
                name: "kv",
                weights: Weights {
                    put: 40,
                    delete: 10,
                    delete_range: 0,
                    merge: 0,
                    batch: 15,
                    get: 10,
                    multi_get: 3,
                    scan: 5,
                    snapshot: 0,
                    flush: 1,
                    flush_wal: 0,
                    compact: 0,
                    reopen: 1,
                    checkpoint: 0,
                    backup: 0,
                    copy: 0,
                    ingest: 0,
                    txn: 0,
                    prepare: 0,
                    lock: 0,
                    txn_steps: 0,
                },
                ..d.clone()
            },
            Profile {
                name: "crash",
                weights: CRASH_WEIGHTS,
                keys: 400,
                small_pct: 80,
                medium_pct: 18,
                ..d.clone()
            },
            // The crash profile with transactions in place of most batches
            // (stores with transactions: `--store transaction-db`,
            // `optimistic-transaction-db`).
            Profile {
                name: "txn",
                weights: Weights {
                    batch: 8,
                    txn: 30,
                    ..CRASH_WEIGHTS
                },
                keys: 400,
                small_pct: 80,
                medium_pct: 18,
                ..d.clone()
            },
            Profile {
                name: "checkpoint",
                weights: Weights {
                    checkpoint: 2,
                    backup: 1,
                    copy: 2,
                    reopen: 0,
                    ..CRASH_WEIGHTS
                },
                keys: 400,
                small_pct: 80,
                medium_pct: 18,
                ..d
            },
        ]
    }

    /// Looks a profile up by name.
    pub fn by_name(name: &str) -> Option<Profile> {
        Profile::all().into_iter().find(|p| p.name == name)
    }

    /// Names of all profiles, for help texts and errors.
    pub fn names() -> Vec<&'static str> {
        Profile::all().iter().map(|p| p.name).collect()
    }
}
