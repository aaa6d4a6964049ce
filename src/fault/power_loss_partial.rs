//! `power-loss-partial`: a power cut after which writeback of the newest
//! WAL's unsynced tail happened partly. The writer runs on the plain
//! filesystem (the kill loses nothing), then the newest WAL is cut at a
//! random offset after the record of unit L, the last one the oracle holds
//! synced. Only for `wal`/`wal-sync` without log recycling, where every
//! acknowledged write is one WAL record in order, so the record of unit L
//! can be found by counting back from the last one; elsewhere it is a plain
//! power loss. Every synced byte is kept, so the oracle's range is
//! unchanged.

use rand::Rng;

use super::{AfterKill, FaultKind, Loss};
use crate::store::{StoreOptions, WalMode};

/// Power cut with partial writeback of the WAL tail.
pub struct PowerLossPartial;

/// True when the partial-writeback image can be applied to a database
/// with these options (see the module docs).
pub fn applies(opts: &StoreOptions) -> bool {
    matches!(opts.wal_mode, WalMode::Wal | WalMode::WalSync)
        && crate::store::user_options::split_options(&opts.rocksdb)
            .iter()
            .all(|kv| !kv.starts_with("recycle_log_file_num=") || kv == "recycle_log_file_num=0")
}

impl FaultKind for PowerLossPartial {
    fn name(&self) -> &'static str {
        "power-loss-partial"
    }
    fn about(&self) -> &'static str {
        "power cut after which the newest WAL keeps a random part of its unsynced tail"
    }
    fn loss(&self) -> Loss {
        Loss::Unsynced
    }
    fn drops_unsynced(&self, opts: &StoreOptions, single: bool) -> bool {
        // The image needs the page cache intact: it cuts the WAL itself,
        // after the kill.
        !(single && applies(opts))
    }
    fn works_with_writers(&self, writers: usize) -> bool {
        // With several writers one WAL record may hold a whole write group.
        writers <= 1
    }
    fn after_kill(&self, db: &std::path::Path, c: &AfterKill<'_>) -> Option<String> {
        if !applies(c.opts) {
            return None;
        }
        super::edit_newest_wal(db, c.seed, |bytes, rng| {
            let recs = crate::wal::parse_wal(bytes);
            let k = recs.len() as u64;
            // Records are units (acked - k, acked]; the index found for
            // unit L is never too early.
            let keep_from = if c.durable + k <= c.acked {
                0 // unit L is in an older WAL: the whole file is unsynced
            } else {
                let i = (c.durable + k - c.acked - 1) as usize;
                recs.get(i)?.end
            };
            let end = bytes.len() as u64;
            if keep_from >= end {
                return None;
            }
            let cut = rng.random_range(keep_from..=end);
            bytes.truncate(cut as usize);
            Some(format!(
                "newest WAL cut at {cut} of {end} bytes (synced data ends by {keep_from})"
            ))
        })
    }
}
