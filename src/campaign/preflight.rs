//! Checks before the first cycle: a check the store cannot take is refused
//! with one line, never run as cycles that would be reported as
//! violations, or, worse, as passes that tested nothing.

use crate::crash::{isolate, ChildEnd, CrashError};
use crate::store::fault_fs::fault_env_files_opened;
use crate::store::{StoreFactory, StoreOptions};

use super::CrashConfig;

/// Refuses the campaign when the store lacks a capability it needs
/// ([`crate::store::Capabilities::refusal`]) or when a fault that works
/// through crashcheck's fault filesystem would not reach the store's
/// RocksDB ([`fault_env_reaches`]).
pub(super) fn preflight(cfg: &CrashConfig, factory: &dyn StoreFactory) -> Result<(), CrashError> {
    let caps = factory.capabilities();
    if let Some(why) = caps.refusal(
        &cfg.store_name,
        cfg.writers,
        cfg.options.column_families.max(1),
    ) {
        return Err(CrashError::Refused(why));
    }
    fault_env_reaches(cfg, factory)
}

/// Power loss and injected I/O errors act through the fault filesystem the
/// writer's RocksDB runs on ([`crate::store::fault_fs::wire_fault_env`]).
/// A wrapper that opens its own RocksDB without it would make such a
/// fault a plain kill while the report says it was tested. A child opens
/// the store once with such a fault's options in a scratch directory and
/// counts the files the fault filesystem saw; none means refusal. A store
/// that fails to open here is not refused: its cycles report that.
fn fault_env_reaches(cfg: &CrashConfig, factory: &dyn StoreFactory) -> Result<(), CrashError> {
    let single = cfg.writers <= 1;
    let Some(fault) = cfg
        .faults
        .iter()
        .find(|f| f.drops_unsynced(&cfg.options, single) || f.writer_io_errors().is_some())
    else {
        return Ok(());
    };
    let opts = StoreOptions {
        lose_unsynced_data: fault.drops_unsynced(&cfg.options, single),
        io_fault_env: fault.writer_io_errors().is_some(),
        ..cfg.options.clone()
    };
    std::fs::create_dir_all(&cfg.work_dir)
        .map_err(|e| CrashError::Sys("create the work directory", e))?;
    let scratch = tempfile::Builder::new()
        .prefix("crashcheck-preflight-")
        .tempdir_in(&cfg.work_dir)
        .map_err(|e| CrashError::Sys("create a scratch directory", e))?;
    let db = scratch.path().join("db");
    let child = || match factory.open(&db, &opts) {
        Ok(_store) if fault_env_files_opened() > 0 => 0,
        Ok(_store) => 1,
        Err(_) => 2,
    };
    match isolate(child, cfg.timeout)? {
        ChildEnd::Exited { code: 1 } => Err(CrashError::Refused(format!(
            "store '{}' opens its RocksDB without crashcheck's fault filesystem, so --fault {fault} would be a plain kill: \
             build its options with crashcheck::store::rocks::rocksdb_options, or call \
             crashcheck::store::fault_fs::wire_fault_env(&mut options, store_options) in StoreFactory::open (docs/your-store.md)",
            cfg.store_name
        ))),
        _ => Ok(()),
    }
}
