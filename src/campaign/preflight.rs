//! Checks before the first cycle: a check the store cannot take is refused
//! with one line, never run as cycles that would be reported as
//! violations, or, worse, as passes that tested nothing.

use crate::crash::{isolate, ChildEnd, CrashError};
use crate::store::fault_fs::fault_env_files_opened;
use crate::store::{StoreError, StoreFactory, StoreOptions};

use super::CrashConfig;

/// Refuses the campaign when the store lacks a capability it needs
/// ([`crate::store::Capabilities::refusal`]), answers no scan though it
/// declares scans, or runs its RocksDB off the fault filesystem a fault
/// needs ([`probe_store`]).
pub(super) fn preflight(cfg: &CrashConfig, factory: &dyn StoreFactory) -> Result<(), CrashError> {
    let caps = factory.capabilities();
    if let Some(why) = caps.refusal(
        &cfg.store_name,
        cfg.writers,
        cfg.options.column_families.max(1),
    ) {
        return Err(CrashError::Refused(why));
    }
    probe_store(cfg, factory)
}

/// One child opens the store in a scratch directory, as the first cycle
/// will, and checks what later cycles rely on:
/// - a store that declares scans answers one (the verifier reads every
///   recovered database with a full scan; an `Unsupported` there would be
///   reported as a failed open of every cycle);
/// - power loss and injected I/O errors act through the fault filesystem
///   the writer's RocksDB runs on
///   ([`crate::store::fault_fs::wire_fault_env`]). A wrapper that opens its
///   own RocksDB without it would make such a fault a plain kill while the
///   report says it was tested: the child counts the files the fault
///   filesystem saw, and none means refusal.
///
/// A store that fails to open here is not refused: its cycles report that.
fn probe_store(cfg: &CrashConfig, factory: &dyn StoreFactory) -> Result<(), CrashError> {
    let single = cfg.writers <= 1;
    let fault = cfg
        .faults
        .iter()
        .find(|f| f.drops_unsynced(&cfg.options, single) || f.writer_io_errors().is_some());
    let opts = StoreOptions {
        lose_unsynced_data: fault.is_some_and(|f| f.drops_unsynced(&cfg.options, single)),
        io_fault_env: fault.is_some_and(|f| f.writer_io_errors().is_some()),
        ..cfg.options.clone()
    };
    std::fs::create_dir_all(&cfg.work_dir)
        .map_err(|e| CrashError::Sys("create the work directory", e))?;
    let scratch = tempfile::Builder::new()
        .prefix("crashcheck-preflight-")
        .tempdir_in(&cfg.work_dir)
        .map_err(|e| CrashError::Sys("create a scratch directory", e))?;
    let db = scratch.path().join("db");
    let scans = factory.capabilities().scans;
    let child = || {
        let Ok(mut store) = factory.open(&db, &opts) else {
            return 0;
        };
        if scans && matches!(store.scan_all(), Err(StoreError::Unsupported(_))) {
            return 3;
        }
        if fault.is_some() && fault_env_files_opened() == 0 {
            return 1;
        }
        0
    };
    let store = &cfg.store_name;
    match (isolate(child, cfg.timeout)?, fault) {
        (ChildEnd::Exited { code: 3 }, _) => Err(CrashError::Refused(format!(
            "store '{store}' does not support scans, yet its StoreFactory::capabilities declare them: declare Capabilities {{ scans: false, .. }} (crashcheck then reads it key by key), or implement Store::scan (docs/your-store.md)"
        ))),
        (ChildEnd::Exited { code: 1 }, Some(fault)) => Err(CrashError::Refused(format!(
            "store '{store}' opens its RocksDB without crashcheck's fault filesystem, so --fault {fault} would be a plain kill: \
             build its options with crashcheck::store::rocks::rocksdb_options, or call \
             crashcheck::store::fault_fs::wire_fault_env(&mut options, store_options) in StoreFactory::open (docs/your-store.md)"
        ))),
        _ => Ok(()),
    }
}
