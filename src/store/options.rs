//! Store options: the durability mode and the RocksDB tuning crashcheck
//! varies, with a `key=value;...` text form (RocksDB's options-string style)
//! used in repro files and on the command line.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How writes reach durable storage. Each mode has its own rows in the
/// durability oracle (see `docs/durability.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WalMode {
    /// WAL on, `WriteOptions::sync = true` on every write.
    WalSync,
    /// WAL on, no sync: the WAL record reaches the OS before the ack.
    Wal,
    /// WAL on with `manual_wal_flush`: records stay in RocksDB's buffer
    /// until `FlushWAL`.
    WalManualFlush,
    /// `WriteOptions::disableWAL = true`: only flushes persist data.
    NoWal,
}

impl WalMode {
    /// Every mode, in report order.
    pub const ALL: [WalMode; 4] = [
        WalMode::WalSync,
        WalMode::Wal,
        WalMode::WalManualFlush,
        WalMode::NoWal,
    ];

    /// The CLI / report name.
    pub fn name(self) -> &'static str {
        match self {
            WalMode::WalSync => "wal-sync",
            WalMode::Wal => "wal",
            WalMode::WalManualFlush => "wal-manual-flush",
            WalMode::NoWal => "no-wal",
        }
    }
}

impl fmt::Display for WalMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WalMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown WAL mode '{s}' (wal-sync, wal, wal-manual-flush, no-wal)")
            })
    }
}

/// SST block compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// RocksDB's `WALRecoveryMode` (`include/rocksdb/options.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryMode {
    /// kTolerateCorruptedTailRecords.
    TolerateCorruptedTail,
    /// kAbsoluteConsistency.
    AbsoluteConsistency,
    /// kPointInTimeRecovery (RocksDB's default).
    PointInTime,
    /// kSkipAnyCorruptedRecords.
    SkipAnyCorrupted,
}

/// Options of a store under test. Defaults are small so that flushes and
/// compactions happen within a few thousand ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreOptions {
    /// Durability mode.
    pub wal_mode: WalMode,
    /// Memtable size in bytes (`write_buffer_size`).
    pub write_buffer_size: usize,
    /// `max_write_buffer_number`.
    pub max_write_buffer_number: i32,
    /// SST compression.
    pub compression: Compression,
    /// Compress the WAL with zstd (`wal_compression`).
    pub wal_compression: bool,
    /// Bloom filter bits per key; 0 disables the filter.
    pub bloom_bits_per_key: u32,
    /// Block cache capacity in bytes.
    pub block_cache_size: usize,
    /// `max_open_files` (-1: unlimited).
    pub max_open_files: i32,
    /// `wal_recovery_mode`.
    pub wal_recovery_mode: RecoveryMode,
    /// `level0_file_num_compaction_trigger`.
    pub level0_file_num_compaction_trigger: i32,
    /// `target_file_size_base`.
    pub target_file_size_base: u64,
    /// `max_bytes_for_level_base`.
    pub max_bytes_for_level_base: u64,
    /// `max_background_jobs`.
    pub max_background_jobs: i32,
    /// `avoid_flush_during_shutdown`: when set, a clean close no longer
    /// persists WAL-less writes, and the oracle knows it.
    pub avoid_flush_during_shutdown: bool,
    /// Column families (1 = only `default`); keys route to them by their
    /// `c<D>/` prefix (see [`crate::keyspace`]).
    pub column_families: u8,
    /// `DBOptions::atomic_flush`: flush all column families as one unit.
    pub atomic_flush: bool,
    /// Collect RocksDB statistics (tickers) for the report.
    pub statistics: bool,
    /// Further RocksDB options in RocksDB's options-string form
    /// (`key=value;...`, e.g. a user's production OPTIONS file), applied
    /// over the fields above. See `store::user_options`.
    pub rocksdb: String,
    /// Run RocksDB on the fault-injecting filesystem that keeps unsynced
    /// appends in process memory, so that a kill loses them (a power cut).
    /// Set by the crash cycle for the writer under `--fault power-loss`;
    /// not part of the text form.
    #[serde(skip)]
    pub lose_unsynced_data: bool,
    /// Run RocksDB on the fault-injecting filesystem even without
    /// unsynced-data loss (appends reach the files at once): for injected
    /// I/O errors under a process kill. Not part of the text form.
    #[serde(skip)]
    pub io_fault_env: bool,
    /// Run RocksDB on the fault-injecting filesystem (writing through
    /// unless `lose_unsynced_data`), with WAL appends as step points
    /// ([`crate::store::drive::wal_append_point`]): for kills inside a
    /// write unit, and their replays. Not part of the text form.
    #[serde(skip)]
    pub step_env: bool,
    /// An in-process fault filesystem to run on (fuzz targets); not part
    /// of the text form.
    #[serde(skip)]
    pub fault_fs: Option<FaultFsRef>,
}

/// A shared [`super::fault_fs::FaultFs`] inside options (compares by
/// identity).
#[derive(Clone)]
pub struct FaultFsRef(pub std::sync::Arc<super::fault_fs::FaultFs>);

impl PartialEq for FaultFsRef {
    fn eq(&self, o: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &o.0)
    }
}

impl fmt::Debug for FaultFsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultFs")
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_mode: WalMode::Wal,
            write_buffer_size: 256 << 10,
            max_write_buffer_number: 3,
            compression: Compression::Lz4,
            wal_compression: false,
            bloom_bits_per_key: 10,
            block_cache_size: 8 << 20,
            max_open_files: 64,
            wal_recovery_mode: RecoveryMode::PointInTime,
            level0_file_num_compaction_trigger: 4,
            target_file_size_base: 512 << 10,
            max_bytes_for_level_base: 2 << 20,
            max_background_jobs: 2,
            avoid_flush_during_shutdown: false,
            column_families: 1,
            atomic_flush: false,
            statistics: false,
            rocksdb: String::new(),
            lose_unsynced_data: false,
            io_fault_env: false,
            step_env: false,
            fault_fs: None,
        }
    }
}

/// An options string or file did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct OptionsError(pub String);

impl StoreOptions {
    /// True when a store opened with these options runs on crashcheck's
    /// fault filesystem ([`super::fault_fs::wire_fault_env`]).
    pub fn uses_fault_env(&self) -> bool {
        self.lose_unsynced_data || self.io_fault_env || self.step_env
    }

    /// The options as `key=value;...`, keys in a fixed order.
    pub fn to_options_string(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut parts = Vec::new();
        if let serde_json::Value::Object(map) = v {
            for k in Self::KEYS {
                if let Some(val) = map.get(*k) {
                    let s = match val {
                        serde_json::Value::String(s) if *k == "rocksdb" => {
                            if s.is_empty() {
                                continue;
                            }
                            format!("{{{s}}}")
                        }
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    parts.push(format!("{k}={s}"));
                }
            }
        }
        parts.join(";")
    }

    /// Every key of the text form.
    pub const KEYS: &'static [&'static str] = &[
        "wal_mode",
        "write_buffer_size",
        "max_write_buffer_number",
        "compression",
        "wal_compression",
        "bloom_bits_per_key",
        "block_cache_size",
        "max_open_files",
        "wal_recovery_mode",
        "level0_file_num_compaction_trigger",
        "target_file_size_base",
        "max_bytes_for_level_base",
        "max_background_jobs",
        "avoid_flush_during_shutdown",
        "column_families",
        "atomic_flush",
        "statistics",
        "rocksdb",
    ];

    /// Applies `key=value;...` on top of `self`; an unknown key or a bad
    /// value is an error naming it.
    pub fn apply_options_string(&mut self, s: &str) -> Result<(), OptionsError> {
        let mut map = match serde_json::to_value(&*self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(OptionsError("internal: options do not serialize".into())),
        };
        for part in super::user_options::split_options(s) {
            let part = part.as_str();
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| OptionsError(format!("option '{part}' is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            let Some(old) = map.get(k) else {
                return Err(OptionsError(format!(
                    "unknown option '{k}' (known: {})",
                    Self::KEYS.join(", ")
                )));
            };
            let new = match old {
                serde_json::Value::String(_) if k == "rocksdb" => serde_json::Value::String(
                    v.strip_prefix('{')
                        .and_then(|x| x.strip_suffix('}'))
                        .unwrap_or(v)
                        .to_string(),
                ),
                serde_json::Value::String(_) => serde_json::Value::String(v.to_string()),
                _ => serde_json::from_str(v)
                    .map_err(|_| OptionsError(format!("bad value '{v}' for option '{k}'")))?,
            };
            map.insert(k.to_string(), new);
            let parsed: Result<StoreOptions, _> =
                serde_json::from_value(serde_json::Value::Object(map.clone()));
            if parsed.is_err() {
                return Err(OptionsError(format!("bad value '{v}' for option '{k}'")));
            }
        }
        *self = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| OptionsError(format!("bad options: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_string_round_trips() {
        let mut o = StoreOptions {
            wal_mode: WalMode::NoWal,
            compression: Compression::Zstd,
            bloom_bits_per_key: 0,
            ..StoreOptions::default()
        };
        o.wal_recovery_mode = RecoveryMode::SkipAnyCorrupted;
        o.rocksdb =
            "use_fsync=true;block_based_table_factory={block_size=8192;no_block_cache=false}"
                .into();
        let s = o.to_options_string();
        let mut back = StoreOptions::default();
        back.apply_options_string(&s).unwrap();
        assert_eq!(back, o, "{s}");
    }

    #[test]
    fn bad_options_name_the_culprit() {
        let mut o = StoreOptions::default();
        let e = o
            .apply_options_string("write_buffer_size=12;bogus=1")
            .unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
        let e = o.apply_options_string("wal_mode=sometimes").unwrap_err();
        assert!(e.0.contains("wal_mode"), "{e}");
        let e = o.apply_options_string("max_open_files=lots").unwrap_err();
        assert!(e.0.contains("max_open_files"), "{e}");
    }
}
