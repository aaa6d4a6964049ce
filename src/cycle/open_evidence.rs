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
//!
//! A plain `DB` refuses a WAL that holds a two-phase prepare section
//! (`NotSupported`: "WAL contains prepared transactions", write_batch.cc
//! L3035-3039), which every `transaction-db` cycle with two-phase
//! transactions has. Then the evidence is the data itself: a copy, opened
//! as the TransactionDB it is under kSkipAnyCorruptedRecords (which skips
//! the damaged record instead of stopping at it, so the inconsistency check
//! of L1808-1855 does not run), must hold a state the cycle's oracle
//! admits. The open failure then refused a database whose data is intact,
//! which is the bug; a state the oracle does not admit stays a violation.

use std::path::Path;
use std::time::Duration;

use super::adjudicate::{self, CycleOutcome};
use crate::crash::{CrashError, WriterStop};
use crate::known_bugs;
use crate::observe::{Recovered, Reopened};
use crate::store::{RecoveryMode, RocksFactory, StoreFactory, StoreOptions};

/// What a plain `DB` says when the WAL holds a prepare section.
const PREPARED_IN_WAL: &str = "WAL contains prepared transactions";

/// The verdict on a reopen of `db` (opened with `factory` and `opts`)
/// that failed with `msg`; `writer`: how the writer stopped, and whether
/// it was killed while it opened the database; `admitted` says whether a
/// state read back is one the cycle's oracle admits.
pub(super) fn judge(
    factory: &dyn StoreFactory,
    (db, opts): (&Path, &StoreOptions),
    timeout: Duration,
    writer: (&WriterStop, bool),
    msg: String,
    admitted: &dyn Fn(&Recovered) -> bool,
) -> Result<CycleOutcome, CrashError> {
    let bug = known_bugs::TWO_PC_REPLAYS_DAMAGED_WAL;
    if !(factory.name() == "transaction-db"
        && msg.contains("Column family inconsistency")
        && crate::store::engine::excuses(&bug))
    {
        return Ok(adjudicate::open_failed(writer, msg));
    }
    let evidence = match open_copy(&RocksFactory, db, opts, timeout)? {
        Some(Reopened::Opened(_)) => Some("a plain DB opens a copy of the same files".to_string()),
        Some(Reopened::Failed(m)) if m.contains(PREPARED_IN_WAL) => {
            let lenient = StoreOptions {
                wal_recovery_mode: RecoveryMode::SkipAnyCorrupted,
                ..opts.clone()
            };
            match open_copy(factory, db, &lenient, timeout)? {
                Some(Reopened::Opened(rec)) if admitted(&rec) => Some(
                    "its WAL holds prepare sections, which a plain DB refuses; a copy opened as a TransactionDB under skip-any-corrupted-records holds a state the oracle admits".to_string(),
                ),
                _ => None,
            }
        }
        _ => None,
    };
    Ok(match evidence {
        Some(e) => CycleOutcome::KnownBug {
            bug,
            detail: format!("the TransactionDB reopen failed ({msg}); {e}"),
        },
        None => adjudicate::open_failed(writer, msg),
    })
}

/// Opens (and reads) a copy of `db` with `factory` and `opts`, in a
/// verifier child; `None` when the copy could not be made. The copy is
/// crashcheck's own, beside `db`, and removed after.
fn open_copy(
    factory: &dyn StoreFactory,
    db: &Path,
    opts: &StoreOptions,
    timeout: Duration,
) -> Result<Option<Reopened>, CrashError> {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".evidence-open");
    let copy = db.with_file_name(name);
    let _ = crate::fsutil::remove_tree(&copy);
    if crate::fsutil::copy_tree(db, &copy).is_err() {
        let _ = crate::fsutil::remove_tree(&copy);
        return Ok(None);
    }
    let r = crate::observe::reopen_and_read(factory, &copy, opts, &[], &[], timeout);
    let _ = crate::fsutil::remove_tree(&copy);
    Ok(Some(r?))
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
                (missing, &StoreOptions::default()),
                Duration::from_secs(5),
                (&WriterStop::Killed, false),
                msg.into(),
                &|_| true,
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
