//! Option profiles and per-cycle option randomization: most RocksDB bugs
//! and most user mistakes live in option combinations.
//!
//! What each randomized option weakens, and how the oracle treats it:
//! - `avoid_flush_during_shutdown`: a clean close no longer persists
//!   WAL-less writes; the oracle drops close as a `no-wal` durability point.
//! - `unordered_write` (with `two_write_queues`): snapshot immutability only
//!   holds without concurrent writers (options.h `unordered_write`); the
//!   crash cycle has a single writer, so reads stay checkable.
//! - `recycle_log_file_num`: RocksDB sanitizes it to 0 under
//!   tolerate-corrupted-tail and absolute-consistency recovery
//!   (db/db_impl/db_impl_open.cc SanitizeOptions, 9.1 and later; 8.10 also
//!   under point-in-time). Under point-in-time and skip-any-corrupted it
//!   stays on from 9.1 (#12403), where a recycled-WAL data loss with
//!   ingestion is known upstream and unfixed (#12918; its test
//!   `DISABLED_RecycleMultipleWalsCrash` is still disabled in 11.8.1):
//!   a finding in such a cycle is that issue first.
//! - everything else (compression, sizes, triggers, bloom, caches, fsync,
//!   bytes_per_sync, pipelined writes, compaction style, blob files and
//!   their garbage collection: [`blob_options`]) must not change what
//!   survives a crash, so the oracle is unchanged.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::store::user_options::split_options;
use crate::store::{Compression, StoreOptions};

/// Named option profiles for campaigns.
pub const PROFILES: &[&str] = &["deep", "defaults", "tiny", "randomized"];

/// Applies profile `name` to `base` for one cycle (`randomized` draws from
/// `rng`). Unknown names are an error.
pub fn apply_profile(
    name: &str,
    base: &StoreOptions,
    rng: &mut ChaCha8Rng,
) -> Result<StoreOptions, String> {
    match name {
        "defaults" => Ok(base.clone()),
        "deep" => Ok(deep(base, rng)),
        "tiny" => Ok(StoreOptions {
            write_buffer_size: 64 << 10,
            max_write_buffer_number: 2,
            level0_file_num_compaction_trigger: 2,
            target_file_size_base: 64 << 10,
            max_bytes_for_level_base: 256 << 10,
            max_open_files: 20,
            block_cache_size: 64 << 10,
            ..base.clone()
        }),
        "randomized" => Ok(randomize(base, rng)),
        o => Err(format!(
            "unknown option profile '{o}' (known: {})",
            PROFILES.join(", ")
        )),
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    xs[rng.random_range(0..xs.len())]
}

/// Compaction styles a campaign can force (`--compaction-style`).
pub const COMPACTION_STYLES: &[&str] = &["level", "universal", "fifo"];

/// RocksDB options selecting compaction style `style` (`level`,
/// `universal` or `fifo`). FIFO gets a small size limit, so that it drops
/// its oldest files within a cycle (advanced_options.h
/// `CompactionOptionsFIFO::max_table_files_size`: "once the total sum of
/// table files reaches this, we will delete the oldest table file"), and
/// no TTL (db/column_family.cc `ValidateOptions`: FIFO with a TTL needs
/// `max_open_files = -1`).
pub fn compaction_style_options(style: &str) -> Result<&'static str, String> {
    match style {
        "level" => Ok("compaction_style=kCompactionStyleLevel"),
        "universal" => Ok("compaction_style=kCompactionStyleUniversal"),
        "fifo" => Ok("compaction_style=kCompactionStyleFIFO;ttl=0;compaction_options_fifo={max_table_files_size=65536;allow_compaction=true}"),
        o => Err(format!(
            "unknown compaction style '{o}' (known: {})",
            COMPACTION_STYLES.join(", ")
        )),
    }
}

/// The default campaign's profile: an LSM geometry small enough that a
/// cycle's few hundred KiB spread over several levels, drawn per cycle.
/// None of it changes what survives a crash (sizes and triggers only), so
/// the oracle is unchanged:
/// - `write_buffer_size` 64 KiB, the least RocksDB accepts
///   (db/column_family.cc `SanitizeCfOptions` L237 clips it to 64 KiB and up);
/// - an L0 compaction trigger of 2 or 4;
/// - target file sizes of 8-32 KiB and a level base of 16-64 KiB, so data
///   below L0 needs two or more levels;
/// - `level_compaction_dynamic_level_bytes` on (RocksDB's default: the
///   tree grows from the bottom level up) or off (from L1 down).
pub fn deep(base: &StoreOptions, rng: &mut ChaCha8Rng) -> StoreOptions {
    let mut o = base.clone();
    o.write_buffer_size = 64 << 10;
    o.level0_file_num_compaction_trigger = pick(rng, &[2, 4]);
    o.target_file_size_base = pick(rng, &[8 << 10, 16 << 10, 32 << 10]);
    o.max_bytes_for_level_base = pick(rng, &[16 << 10, 32 << 10, 64 << 10]);
    let mut parts = split_options(&o.rocksdb);
    parts.push(format!(
        "level_compaction_dynamic_level_bytes={}",
        rng.random_bool(0.5)
    ));
    parts.extend(blob_options(rng));
    o.rocksdb = parts.join(";");
    o
}

/// Integrated BlobDB settings for one cycle (include/rocksdb/advanced_options.h,
/// "BlobDB"): blob files in half of the cycles, with a `min_blob_size` from
/// 64 B to 4 KiB (values at least this large go to blob files at flush;
/// smaller ones stay in the SSTs, which keeps the tree several levels deep),
/// `blob_file_size` of 64-256 KiB (so that a cycle writes several files),
/// blob compression, and garbage collection in half of those with an age
/// cutoff that lets compactions relocate blobs within a cycle
/// (`blob_garbage_collection_age_cutoff`: "the cutoff in terms of blob
/// file age for garbage collection. Blobs in the oldest N blob files will
/// be relocated when encountered during compaction, where N =
/// garbage_collection_cutoff * number_of_blob_files"). None of it changes
/// what survives a crash (docs/durability.md, blob files), so the oracle
/// is unchanged. Cycles without blob files draw nothing more. With blob
/// files, range deletions and merges, RocksDB 11.8.1 sometimes stops a
/// compaction with "No such file or directory: while stat a file for
/// size" on an SST (docs/findings.md finding 7); the cycle is reported as
/// that known bug by this evidence (`cycle::adjudicate`).
pub fn blob_options(rng: &mut ChaCha8Rng) -> Vec<String> {
    if !rng.random_bool(0.5) {
        return Vec::new();
    }
    let mut v = vec![
        "enable_blob_files=true".to_string(),
        format!("min_blob_size={}", pick(rng, &[64u32, 512, 1024, 4096])),
        format!(
            "blob_file_size={}",
            pick(rng, &[64u32 << 10, 128 << 10, 256 << 10])
        ),
        format!(
            "blob_compression_type={}",
            pick(rng, &["kNoCompression", "kLZ4Compression", "kZSTD"])
        ),
    ];
    if rng.random_bool(0.5) {
        v.push("enable_blob_garbage_collection=true".into());
        v.push(format!(
            "blob_garbage_collection_age_cutoff={}",
            pick(rng, &["0.25", "0.5", "1.0"])
        ));
    }
    v
}

/// Draws one cycle's options: crashcheck's fields and further RocksDB
/// options, appended after the user's own (so a randomized value wins for
/// that cycle; the artifacts record every cycle's options).
pub fn randomize(base: &StoreOptions, rng: &mut ChaCha8Rng) -> StoreOptions {
    let mut o = base.clone();
    o.compression = pick(
        rng,
        &[
            Compression::None,
            Compression::Lz4,
            Compression::Zstd,
            Compression::Snappy,
        ],
    );
    o.wal_compression = rng.random_bool(0.3);
    o.write_buffer_size = pick(rng, &[64 << 10, 256 << 10, 4 << 20, 64 << 20]);
    o.max_write_buffer_number = rng.random_range(2..=6);
    o.level0_file_num_compaction_trigger = pick(rng, &[2, 4, 8]);
    o.bloom_bits_per_key = pick(rng, &[0, 10]);
    o.block_cache_size = pick(rng, &[64 << 10, 8 << 20, 32 << 20]);
    o.max_open_files = pick(rng, &[20, 64, -1]);
    o.max_background_jobs = rng.random_range(1..=4);
    o.avoid_flush_during_shutdown = rng.random_bool(0.2);
    let mut extra = vec![
        format!("use_fsync={}", rng.random_bool(0.3)),
        format!("bytes_per_sync={}", pick(rng, &[0u64, 1 << 20])),
        // WriteOptions::disableWAL is rejected with recycled logs
        // (db_impl_write.cc: "disableWAL option is not supported if
        // DBOptions::recycle_log_file_num > 0").
        format!(
            "recycle_log_file_num={}",
            if base.wal_mode == crate::store::WalMode::NoWal {
                0
            } else {
                pick(rng, &[0u32, 0, 2])
            }
        ),
        compaction_style_options(pick(rng, &["level", "level", "level", "universal", "fifo"]))
            .unwrap_or_default()
            .to_string(),
    ];
    match rng.random_range(0..4) {
        0 => extra.push("enable_pipelined_write=true".into()),
        1 => extra.push("two_write_queues=true".into()),
        2 => {
            extra.push("unordered_write=true".into());
            extra.push("two_write_queues=true".into());
        }
        _ => {}
    }
    extra.extend(blob_options(rng));
    let mut parts = split_options(&o.rocksdb);
    parts.extend(extra);
    o.rocksdb = parts.join(";");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn randomization_is_seeded_and_varied() {
        let base = StoreOptions::default();
        let a = randomize(&base, &mut ChaCha8Rng::seed_from_u64(1));
        let b = randomize(&base, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        let all: std::collections::HashSet<String> = (0..50)
            .map(|s| randomize(&base, &mut ChaCha8Rng::seed_from_u64(s)).to_options_string())
            .collect();
        assert!(all.len() > 40);
        assert!(all.iter().any(|s| s.contains("unordered_write=true")));
        assert!(all.iter().any(|s| s.contains("kCompactionStyleUniversal")));
        assert!(all.iter().any(|s| s.contains("kCompactionStyleFIFO")));
        assert!(all.iter().any(|s| s.contains("enable_blob_files=true")));
        assert!(all
            .iter()
            .any(|s| s.contains("enable_blob_garbage_collection=true")));
        assert!(all.iter().any(|s| !s.contains("enable_blob_files")));
    }

    #[test]
    fn the_deep_profile_draws_blob_files_in_a_share_of_cycles() {
        let base = StoreOptions::default();
        let blob = (0..200)
            .filter(|&s| {
                deep(&base, &mut ChaCha8Rng::seed_from_u64(s))
                    .rocksdb
                    .contains("enable_blob_files=true")
            })
            .count();
        assert!((60..=140).contains(&blob), "{blob} of 200");
    }

    #[test]
    fn profiles_resolve() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for p in PROFILES {
            apply_profile(p, &StoreOptions::default(), &mut rng).unwrap();
        }
        assert!(apply_profile("nope", &StoreOptions::default(), &mut rng).is_err());
    }
}
