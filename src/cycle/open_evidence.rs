//! A reopen after the crash that failed: a violation, unless the evidence
//! names a known bug.
//!
//! Finding 8 ([`known_bugs::TWO_PC_REPLAYS_DAMAGED_WAL`]): under
//! `allow_2pc` (every TransactionDB) recovery never advances the minimum
//! WAL to keep, so a damaged WAL that an earlier point-in-time recovery
//! stopped at is replayed at every later open, which fails "Column family
//! inconsistency" (db_impl_open.cc L1808-1855). Its evidence is a
//! difference: the same files, copied, open as a plain `DB` (no 2PC, which
//! skips the WALs whose data is already flushed, L1235-1240). A failure the
//! plain open shares stays a violation.

use std::path::Path;
use std::time::Duration;

use super::adjudicate::{self, CycleOutcome};
use crate::crash::{CrashError, WriterStop};
use crate::known_bugs;
use crate::observe::Reopened;
use crate::store::{RocksFactory, StoreFactory, StoreOptions};

/// The verdict on a reopen of `db` (opened with `factory` and `opts`)
/// that failed with `msg`.
pub(super) fn judge(
    factory: &dyn StoreFactory,
    db: &Path,
    opts: &StoreOptions,
    timeout: Duration,
    writer: &WriterStop,
    msg: String,
) -> Result<CycleOutcome, CrashError> {
    let bug = known_bugs::TWO_PC_REPLAYS_DAMAGED_WAL;
    if !(factory.name() == "transaction-db"
        && msg.contains("Column family inconsistency")
        && crate::store::engine::excuses(&bug))
    {
        return Ok(adjudicate::open_failed(writer, msg));
    }
    if plain_db_opens(db, opts, timeout)? {
        return Ok(CycleOutcome::KnownBug {
            bug,
            detail: format!(
                "the TransactionDB reopen failed ({msg}); a plain DB opens a copy of the same files"
            ),
        });
    }
    Ok(adjudicate::open_failed(writer, msg))
}

/// Whether a copy of `db` opens (and reads) as a plain `DB`, in a verifier
/// child. The copy is crashcheck's own, beside `db`, and removed after.
fn plain_db_opens(db: &Path, opts: &StoreOptions, timeout: Duration) -> Result<bool, CrashError> {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".plain-open");
    let copy = db.with_file_name(name);
    let _ = crate::fsutil::remove_tree(&copy);
    if crate::fsutil::copy_tree(db, &copy).is_err() {
        let _ = crate::fsutil::remove_tree(&copy);
        return Ok(false);
    }
    let r = crate::observe::reopen_and_read(&RocksFactory, &copy, opts, &[], &[], timeout);
    let _ = crate::fsutil::remove_tree(&copy);
    Ok(matches!(r?, Reopened::Opened(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::ViolationClass;

    /// Only a TransactionDB's "Column family inconsistency" is looked into;
    /// anything else is the usual verdict, without opening anything.
    #[test]
    fn other_stores_and_other_failures_keep_the_usual_verdict() {
        let missing = Path::new("/nonexistent/crashcheck-db");
        let cf = "Corruption: Column family inconsistency: SST file contains data beyond the point of corruption";
        let cases: [(&dyn StoreFactory, &str); 2] = [
            (&RocksFactory, cf),
            (
                &crate::store::txn::OptimisticTransactionDbFactory::new(),
                cf,
            ),
        ];
        for (f, msg) in cases {
            let o = judge(
                f,
                missing,
                &StoreOptions::default(),
                Duration::from_secs(5),
                &WriterStop::Killed,
                msg.into(),
            )
            .unwrap();
            assert_eq!(
                o.class(),
                Some(ViolationClass::UnexpectedOpenFailure),
                "{}",
                f.name()
            );
        }
    }
}
