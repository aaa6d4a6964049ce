//! [`StoreOptions`] turned into RocksDB's `Options` and `WriteOptions`:
//! crashcheck's fields, the user's options string, and what crashcheck
//! must control.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, DBRecoveryMode, Options, WriteOptions};

use super::{Compression, RecoveryMode, StoreError, StoreOptions, StoreResult, WalMode};
use crate::model::{merge_values, MERGE_OPERATOR_NAME};

/// Builds the RocksDB `Options` for `o`: crashcheck's fields, then the
/// user's RocksDB options string over them (theirs win), then the settings
/// crashcheck must control (see `store::user_options` for the list).
pub fn rocksdb_options(o: &StoreOptions) -> StoreResult<Options> {
    let mut opts = Options::default();
    opts.set_write_buffer_size(o.write_buffer_size);
    opts.set_max_write_buffer_number(o.max_write_buffer_number);
    opts.set_compression_type(match o.compression {
        Compression::None => DBCompressionType::None,
        Compression::Snappy => DBCompressionType::Snappy,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    });
    if o.wal_compression {
        opts.set_wal_compression_type(DBCompressionType::Zstd);
    }
    let mut table = BlockBasedOptions::default();
    if o.bloom_bits_per_key > 0 {
        table.set_bloom_filter(f64::from(o.bloom_bits_per_key), false);
    }
    let cache = Cache::new_lru_cache(o.block_cache_size);
    table.set_block_cache(&cache);
    opts.set_block_based_table_factory(&table);
    opts.set_max_open_files(o.max_open_files);
    opts.set_wal_recovery_mode(match o.wal_recovery_mode {
        RecoveryMode::TolerateCorruptedTail => DBRecoveryMode::TolerateCorruptedTailRecords,
        RecoveryMode::AbsoluteConsistency => DBRecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime => DBRecoveryMode::PointInTime,
        RecoveryMode::SkipAnyCorrupted => DBRecoveryMode::SkipAnyCorruptedRecord,
    });
    opts.set_level_zero_file_num_compaction_trigger(o.level0_file_num_compaction_trigger);
    opts.set_target_file_size_base(o.target_file_size_base);
    opts.set_max_bytes_for_level_base(o.max_bytes_for_level_base);
    opts.set_max_background_jobs(o.max_background_jobs);
    opts.set_keep_log_file_num(2);
    if !o.rocksdb.is_empty() {
        super::compat::apply_options_string(&mut opts, &o.rocksdb)
            .map_err(|e| StoreError::Other(format!("bad RocksDB options: {e}")))?;
    }
    // What crashcheck controls, whatever the user's options say.
    // options.h DBOptions::atomic_flush: "If true, RocksDB supports flushing
    // multiple column families and committing their results atomically to
    // MANIFEST." The oracle must know it: a user's value was absorbed into
    // `o.atomic_flush` (store::user_options::absorb), `--atomic-flush` may
    // have raised it since.
    opts.set_atomic_flush(o.atomic_flush);
    if o.statistics {
        opts.enable_statistics();
    }
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_wal_dir("");
    opts.set_db_log_dir("");
    super::compat::set_avoid_flush_during_shutdown(&mut opts, o.avoid_flush_during_shutdown);
    opts.set_manual_wal_flush(o.wal_mode == WalMode::WalManualFlush);
    super::fault_fs::wire_fault_env(&mut opts, o);
    if let Some(f) = &o.fault_fs {
        f.0.install(&mut opts);
    }
    opts.set_merge_operator_associative(MERGE_OPERATOR_NAME, |_key, existing, operands| {
        let mut acc: Option<Vec<u8>> = existing.map(<[u8]>::to_vec);
        for op in operands {
            acc = Some(merge_values(acc.as_deref(), op));
        }
        acc
    });
    Ok(opts)
}

/// Write options for a durability mode.
pub fn write_options(mode: WalMode) -> WriteOptions {
    let mut w = WriteOptions::default();
    match mode {
        WalMode::WalSync => w.set_sync(true),
        WalMode::Wal | WalMode::WalManualFlush => {}
        WalMode::NoWal => w.disable_wal(true),
    }
    w
}
