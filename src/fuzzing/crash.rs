//! The `crash` target: ops on the power-loss filesystem, the power cut
//! in-process after some of them, and the recovered state judged by the
//! same oracle and verifier as a campaign's power-loss cycle.

use std::path::{Path, PathBuf};

use super::input::CrashInput;
use super::scratch;
use crate::crash::Progress;
use crate::fault::Loss;
use crate::model::history::History;
use crate::model::State;
use crate::observe::Recovered;
use crate::op::Op;
use crate::oracle::{admissible_in, cross_cf_promise, Durability};
use crate::store::drive::{drive, Answer, Go, Hooks};
use crate::store::fault_fs::FaultFs;
use crate::store::{FaultFsRef, StoreFactory, StoreOptions, StoreResult};
use crate::verify::{verify_all, Verdict};

/// The crash target's hooks: progress as the oracle needs it. Reopens are
/// not run (on the power-loss filesystem a clean close itself drops
/// unsynced data), nor reads at snapshots that are not live; other reads
/// run unchecked (the target checks the state after the power cut).
/// Checkpoints are taken (on the same power-loss filesystem) but not
/// judged, as in a power-loss campaign cycle.
struct CrashHooks<'a> {
    h: &'a History,
    i: usize,
    p: Progress,
    snaps: Vec<u32>,
    cfs: usize,
    copies: &'a Path,
    copies_made: u32,
    fs: &'a FaultFs,
}

impl Hooks for CrashHooks<'_> {
    fn before(&mut self, op: &Op) -> Go {
        match op {
            Op::Reopen => return Go::Skip,
            Op::GetAt { id, .. } | Op::ScanAt { id, .. } if !self.snaps.contains(id) => {
                return Go::Skip
            }
            _ => {}
        }
        if let Some(u) = self.h.unit_of_op[self.i] {
            self.p.started = u;
        }
        Go::Run
    }

    fn copy_dir(&mut self, op: &Op) -> Option<PathBuf> {
        if !matches!(op, Op::Checkpoint { .. }) {
            return None;
        }
        self.copies_made += 1;
        Some(self.copies.join(format!("checkpoint-{}", self.copies_made)))
    }

    fn after(&mut self, op: &Op, r: &StoreResult<Answer>) {
        if let Op::Checkpoint { .. } = op {
            let tmp = format!("checkpoint-{}.tmp", self.copies_made);
            self.fs.forget_dir(&self.copies.join(tmp));
        }
        if r.is_err() {
            return;
        }
        if let Some(u) = self.h.unit_of_op[self.i] {
            self.p.acked = u;
        }
        match op {
            Op::Flush | Op::FlushCfs { .. } => self.p.record_flush(op, self.cfs, self.p.acked),
            Op::FlushWal { sync } => {
                self.p.wal_flushed = self.p.acked;
                if *sync {
                    self.p.wal_synced = self.p.acked;
                }
            }
            Op::Snapshot { id } => self.snaps.push(*id),
            Op::Release { id } => self.snaps.retain(|s| s != id),
            _ => {}
        }
    }
}

/// `crash` target: run the ops on the fault filesystem, cut the power
/// after `crash_after` ops, reopen, and check the recovered state with the
/// power-loss oracle.
pub fn run_crash(
    factory: &dyn StoreFactory,
    fs: &std::sync::Arc<FaultFs>,
    input: &CrashInput,
) -> Result<(), String> {
    let dir = scratch();
    let path = dir.path().join("db");
    let opts = input.layout.apply(StoreOptions {
        wal_mode: input.mode,
        fault_fs: Some(FaultFsRef(fs.clone())),
        rocksdb: "max_bgerror_resume_count=0".into(),
        // The close after the power cut reaches no disk either way; without
        // this it tries a shutdown flush on the dead filesystem and waits.
        avoid_flush_during_shutdown: true,
        ..StoreOptions::default()
    });
    let mut ops = factory.capabilities().fit_ops(&input.ops);
    if input.mode == crate::store::WalMode::NoWal {
        // A prepare logs nothing without the WAL (the generator draws
        // none there: docs/transactions-research.md T13).
        for op in &mut ops {
            if let Op::Txn(t) = op {
                t.prepare = None;
            }
        }
    }
    let h = History::new(ops, State::new());
    let mut hooks = CrashHooks {
        h: &h,
        i: 0,
        p: Progress::default(),
        snaps: Vec::new(),
        cfs: usize::from(input.layout.cfs),
        copies: dir.path(),
        copies_made: 0,
        fs,
    };
    {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for (i, op) in h.ops.iter().take(input.crash_after).enumerate() {
            hooks.i = i;
            drive(store.as_mut(), op, &mut hooks)
                .map_err(|e| format!("op #{i} `{op}` failed: {e}"))?;
        }
        // In half the inputs background jobs settle first, so the cut finds
        // the tree as they left it; the other half cuts the power whatever
        // is running (the dead filesystem answers ShutdownInProgress, so
        // RocksDB winds those jobs down without its one-second back-off;
        // csrc/fault_env.cc). Background jobs change no logical state, and
        // the oracle counts only the ops' own flushes, so settling admits
        // no state it would not admit anyway.
        if input.settle {
            // Snapshots go first: releasing one may schedule a compaction.
            for id in std::mem::take(&mut hooks.snaps) {
                drive(
                    store.as_mut(),
                    &Op::Release { id },
                    &mut crate::store::drive::Plain,
                )
                .map_err(|e| format!("release {id} failed: {e}"))?;
            }
            store
                .wait_for_background()
                .map_err(|e| format!("waiting for background work failed: {e}"))?;
        }
        fs.power_off();
        // Closing on a dead filesystem fails quietly; nothing more reaches disk.
        drop(store);
    }
    fs.power_on(input.image)?;
    let plain = StoreOptions {
        fault_fs: None,
        ..opts.clone()
    };
    let mut store = factory
        .open(&path, &plain)
        .map_err(|e| format!("reopen after the power cut failed: {e}"))?;
    let rec = Recovered::read(store.as_mut(), &[], None)?;
    let _ = store.close();
    // As a campaign cycle judges it: per column family where the options
    // do not promise one cut across them (oracle::cross_cf_promise).
    let d = Durability::of(&opts);
    let promise = cross_cf_promise(&d, &hooks.p);
    let adm = |_: usize, cf: Option<usize>| admissible_in(&d, Loss::Unsynced, &hooks.p, cf);
    let cv = verify_all(
        std::slice::from_ref(&h),
        &adm,
        &rec,
        usize::from(input.layout.cfs),
        promise,
    );
    match cv.verdict {
        Verdict::Ok { .. } => Ok(()),
        // An acknowledged ingest may outlive earlier writes (rule I1).
        Verdict::Violation { .. }
            if crate::verify::ingest::ingest_match(&h, &adm(0, None), hooks.p.acked, &rec)
                .is_some() =>
        {
            Ok(())
        }
        Verdict::Violation { class, detail, .. } => Err(format!("{class}: {detail}")),
    }
}
