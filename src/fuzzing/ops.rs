//! The `ops` target: ops run in-process against the store and the model
//! (the run check), checkpoints opened and compared, on one reused
//! database per column-family layout.

use std::path::Path;

use super::input::{CfLayout, OpsInput};
use super::scratch;
use crate::check::{run_ops_with as check_ops, Checkpoints};
use crate::op::{Op, WriteOp};
use crate::store::drive::drive;
use crate::store::{StoreFactory, StoreOptions};

/// The `ops` target's store options: the defaults, without what costs
/// system calls and threads on every open or new file but changes no
/// logical behaviour: preallocated WAL and SST space, the periodic
/// statistics dumps (a timer thread starts and stops with each open), the
/// threads that open table files in parallel at each open
/// (`max_file_opening_threads`, default 16), the table-properties reads
/// that refresh compaction statistics at each open
/// (`skip_stats_update_on_db_open`: "If true, then DB::Open() will not
/// update the statistics used to optimize compaction decision by loading
/// table properties from many files"), and the info LOG's
/// informational lines (the scratch directory and its LOG are deleted
/// after each input anyway).
fn ops_options(layout: CfLayout) -> StoreOptions {
    layout.apply(StoreOptions {
        rocksdb: "allow_fallocate=false;stats_dump_period_sec=0;stats_persist_period_sec=0;\
                  max_file_opening_threads=1;info_log_level=WARN_LEVEL;\
                  skip_stats_update_on_db_open=true"
            .into(),
        ..StoreOptions::default()
    })
}

/// Runs `ops` on `store` with the run check, its checkpoints taken under
/// `dir`; `Err` describes a finding.
fn check_in(
    factory: &dyn StoreFactory,
    store: &mut dyn crate::store::Store,
    opts: &StoreOptions,
    dir: &Path,
    ops: &[Op],
) -> Option<crate::check::RunViolation> {
    let cp = Checkpoints {
        factory,
        opts,
        dir: &dir.join("checkpoints"),
    };
    // Only the ops the store supports: a fuzz input may hold any.
    let ops = factory.capabilities().fit_ops(ops);
    check_ops(store, &ops, Some(&cp)).violation
}

/// `ops` target: run in-process against the store and the model; `Err`
/// describes a finding.
pub fn run_ops(factory: &dyn StoreFactory, input: &OpsInput) -> Result<(), String> {
    let dir = scratch();
    let opts = ops_options(input.layout);
    let mut store = factory
        .open(&dir.path().join("db"), &opts)
        .map_err(|e| format!("open failed: {e}"))?;
    let v = check_in(factory, store.as_mut(), &opts, dir.path(), &input.ops);
    let _ = store.close();
    match v {
        None => Ok(()),
        Some(v) => Err(v.to_string()),
    }
}

/// Inputs a reused `ops` database serves before it is replaced by a fresh
/// one (range tombstones pile up).
const FRESH_EVERY: u64 = 1000;

/// One reused `ops` database (of one column-family layout).
struct Slot {
    // Dropped in order: the store closes before its directory goes.
    store: Box<dyn crate::store::Store>,
    dir: tempfile::TempDir,
    inputs: u64,
}

/// The `ops` target across inputs. For stock RocksDB one database per
/// column-family layout and fuzzer process is emptied between inputs
/// (snapshots released, one range delete over every column family's keys,
/// then checked empty) instead of created and destroyed for each: the
/// model starts empty either way, so every input is checked as strongly,
/// on a database with history. A finding on the reused database is run
/// again on a fresh one; the message says when it only shows on the reused
/// database. A mutant keeps a fresh database per input: its own queues and
/// caches could otherwise leak between inputs.
pub struct OpsTarget {
    factory: Box<dyn StoreFactory>,
    reuse: bool,
    slots: std::collections::HashMap<CfLayout, Slot>,
}

impl OpsTarget {
    /// The target over `factory`'s stores.
    pub fn new(factory: Box<dyn StoreFactory>) -> OpsTarget {
        OpsTarget {
            reuse: factory.name() == "rocksdb",
            factory,
            slots: Default::default(),
        }
    }

    /// Runs one input; `Err` describes a finding.
    pub fn run(&mut self, input: &OpsInput) -> Result<(), String> {
        if !self.reuse {
            return run_ops(self.factory.as_ref(), input);
        }
        let opts = ops_options(input.layout);
        let stale = self
            .slots
            .get(&input.layout)
            .is_none_or(|s| s.inputs >= FRESH_EVERY);
        if stale {
            // The old store closes before its directory is removed.
            self.slots.remove(&input.layout);
            let dir = scratch();
            let store = self
                .factory
                .open(&dir.path().join("db"), &opts)
                .map_err(|e| format!("open failed: {e}"))?;
            self.slots.insert(
                input.layout,
                Slot {
                    store,
                    dir,
                    inputs: 0,
                },
            );
        }
        let Some(slot) = self.slots.get_mut(&input.layout) else {
            return Err("no database".into());
        };
        slot.inputs += 1;
        let v = check_in(
            self.factory.as_ref(),
            slot.store.as_mut(),
            &opts,
            slot.dir.path(),
            &input.ops,
        );
        let Some(v) = v else {
            if !reset(slot.store.as_mut(), &input.ops, input.layout.cfs) {
                self.slots.remove(&input.layout);
            }
            return Ok(());
        };
        self.slots.remove(&input.layout);
        match run_ops(self.factory.as_ref(), input) {
            Err(e) => Err(e),
            Ok(()) => Err(format!(
                "{v} (only on a database reused from earlier inputs: a fresh database passes this input)"
            )),
        }
    }
}

/// Empties a reused database for the next input; false when it did not
/// come out empty (a fresh one is made then).
fn reset(store: &mut dyn crate::store::Store, ops: &[Op], cfs: u8) -> bool {
    for op in ops {
        if let Op::Snapshot { id } = op {
            if store.release(*id).is_err() {
                return false;
            }
        }
    }
    let layout = crate::keyspace::Layout {
        cfs,
        ..Default::default()
    };
    (0..cfs.max(1)).all(|c| {
        let start = layout.prefix(c, 0, 0);
        let mut end = start.clone();
        end.extend([0xff; 16]);
        let all = Op::Write(WriteOp::DeleteRange { start, end });
        drive(store, &all, &mut crate::store::drive::Plain).is_ok()
    }) && store.scan_all().is_ok_and(|e| e.is_empty())
}
