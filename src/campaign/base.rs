//! Deep base databases: a tree several levels deep, built once by a load
//! phase (`workload::load`) and cloned for each cycle, so that cycles
//! start where LSM bugs live (deletes shadowing lower levels, merges over
//! levels, multi-level compactions) without paying for the load each time.
//!
//! A base is built in a forked child by the store under test (or, for a
//! store that cannot carry out the load's ops, the stock RocksDB adapter),
//! with the cycle's options but the WAL on and a flushing clean close,
//! then checked against the model. A base that does not hold the load's
//! state is a violation with no crash involved ([`BuildError::Mismatch`]:
//! a RocksDB bug, or the store's): the campaign reports it with the load
//! as a replayable run case (`campaign::base_finding`), and that option
//! set's cycles start empty. A clone hard-links the SST and blob
//! files, which RocksDB never changes once written, and copies everything
//! else (MANIFEST, CURRENT, OPTIONS, logs), which it appends to or
//! replaces. The model starts each cycle from the load's final state.
//!
//! Bases apply to single-writer, unchained cycles whose compaction style
//! can open a multi-level tree (not FIFO, which keeps one level), and are
//! kept per compaction style, level sizing and column families.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crash::{isolate, ChildEnd};
use crate::keyspace::Layout;
use crate::model::history::History;
use crate::model::{fingerprint_of, value_hash, State};
use crate::op::Op;
use crate::store::drive::{drive, Plain};
use crate::store::user_options::{compaction_style, option_value};
use crate::store::{Capabilities, RocksFactory, StoreFactory, StoreOptions, WalMode};
use crate::workload::load::load_ops;
use crate::workload::Profile;

/// A built base: its directory, the ops that built it and the state they
/// leave.
#[derive(Clone, Debug)]
pub struct Base {
    /// The base database (never opened again after the build).
    pub dir: PathBuf,
    /// The load ops (a repro file's `base:` section).
    pub ops: Vec<Op>,
    /// The state after them.
    pub state: State,
}

/// The options that decide whether a cycle can start from a base, and
/// which one: compaction style, dynamic level sizing and level count (the
/// last value given wins, as in RocksDB's option strings), and column
/// families. `None` for FIFO compaction.
pub fn base_key(opts: &StoreOptions) -> Option<String> {
    let style = compaction_style(&opts.rocksdb);
    if style == "fifo" {
        return None;
    }
    let mut s = format!("cfs={};style={style}", opts.column_families.max(1));
    for k in ["level_compaction_dynamic_level_bytes", "num_levels"] {
        if let Some(v) = option_value(&opts.rocksdb, k) {
            s.push_str(&format!(";{k}={v}"));
        }
    }
    Some(s)
}

/// Why a base could not be used.
#[derive(Debug)]
pub enum BuildError {
    /// The build failed (the database did not open, an op or the clean
    /// close failed, the builder died): an environment error.
    Failed(String),
    /// The load did not do what its ops promise, with no crash involved
    /// (a load op or the full scan failed, or the database does not hold
    /// the state the ops give): a violation.
    Mismatch(Box<Mismatch>),
}

/// A base whose load went wrong.
#[derive(Debug)]
pub struct Mismatch {
    /// What went wrong, as the run check of the load names it
    /// (`store-error` for a failed op or scan, `final-state-mismatch` for
    /// a wrong state).
    pub class: crate::verify::ViolationClass,
    /// The store that built it.
    pub store: String,
    /// The options it was built with (the WAL on).
    pub opts: StoreOptions,
    /// The load ops.
    pub ops: Vec<Op>,
    /// The base directory as the builder left it (removed by
    /// [`Bases::remove_all`]).
    pub dir: PathBuf,
}

/// True when a store with `caps` can carry out the load's ops (and be
/// checked by a full scan): then the base is built by the store under
/// test, so that its own way of writing is what the cycles start from.
pub fn builds_with(caps: &Capabilities, cfs: u8) -> bool {
    caps.deletes
        && caps.merges
        && caps.range_deletes
        && caps.flush
        && caps.compact
        && caps.scans
        && (cfs <= 1 || caps.column_families)
}

/// Builds a base at `dir` (which must not exist) from `ops` with the
/// options of a cycle, `opts`, by `factory` in a forked child.
pub fn build(
    dir: &Path,
    factory: &dyn StoreFactory,
    opts: &StoreOptions,
    ops: Vec<Op>,
    timeout: Duration,
) -> Result<Base, BuildError> {
    let h = History::new(ops, State::new());
    let state = h.state_at(h.units());
    let want = h.fps[h.units() as usize];
    let bopts = StoreOptions {
        wal_mode: WalMode::Wal,
        avoid_flush_during_shutdown: false,
        lose_unsynced_data: false,
        io_fault_env: false,
        step_env: false,
        fault_fs: None,
        statistics: false,
        ..opts.clone()
    };
    let child = || -> i32 {
        let Ok(mut store) = factory.open(dir, &bopts) else {
            return 10;
        };
        for op in &h.ops {
            if drive(store.as_mut(), op, &mut Plain).is_err() {
                return 11;
            }
        }
        let Ok(all) = store.scan_all() else {
            return 12;
        };
        let got = fingerprint_of(all.iter().map(|(k, v)| (k.as_slice(), value_hash(v))));
        if got != want {
            return 13;
        }
        match store.close() {
            Ok(()) => 0,
            Err(_) => 14,
        }
    };
    let end = isolate(child, timeout).map_err(|e| BuildError::Failed(e.to_string()))?;
    let why = match end {
        ChildEnd::Exited { code: 0 } => {
            return Ok(Base {
                dir: dir.to_path_buf(),
                ops: h.ops,
                state,
            })
        }
        ChildEnd::Exited { code: c @ 11..=13 } => {
            return Err(BuildError::Mismatch(Box::new(Mismatch {
                class: match c {
                    13 => crate::verify::ViolationClass::FinalStateMismatch,
                    _ => crate::verify::ViolationClass::StoreError,
                },
                store: factory.name(),
                opts: bopts,
                ops: h.ops,
                dir: dir.to_path_buf(),
            })))
        }
        ChildEnd::Exited { code: 10 } => "the database did not open",
        ChildEnd::Exited { code: 14 } => "the clean close failed",
        _ => "the builder died",
    };
    Err(BuildError::Failed(format!(
        "building the base database {}: {why}",
        dir.display()
    )))
}

/// The load ops of a campaign seeded `seed` for `profile` with `cfs`
/// column families (one writer).
pub fn ops_for(seed: u64, profile: &Profile, cfs: u8) -> Vec<Op> {
    let layout = Layout {
        cfs: cfs.max(1),
        writer: 0,
        writers: 1,
    };
    load_ops(seed, profile, layout)
}

/// Clones base directory `src` into `dst` (which must not exist):
/// immutable table files are hard-linked, everything else copied.
pub fn clone_into(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        let name = e.file_name();
        let name = name.to_string_lossy();
        let immutable = name.ends_with(".sst") || name.ends_with(".blob");
        if e.file_type()?.is_dir() {
            clone_into(&e.path(), &to)?;
        } else if !(immutable && std::fs::hard_link(e.path(), &to).is_ok()) {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// The bases of one campaign job, built on first use.
#[derive(Default)]
pub struct Bases {
    built: BTreeMap<String, std::sync::Arc<Base>>,
    /// Option sets whose base did not hold its load's state: their cycles
    /// start empty (the mismatch was reported once), and the directory
    /// stays until [`Bases::remove_all`].
    broken: BTreeMap<String, PathBuf>,
}

impl Bases {
    /// The base for a cycle with options `opts`, built by `factory` (see
    /// [`builds_with`]) under `root` on first use; `Ok(None)` when no base
    /// applies to these options, or its build met a mismatch before.
    pub fn get(
        &mut self,
        root: &Path,
        factory: &dyn StoreFactory,
        (seed, profile): (u64, &Profile),
        opts: &StoreOptions,
        timeout: Duration,
    ) -> Result<Option<std::sync::Arc<Base>>, BuildError> {
        let Some(key) = base_key(opts) else {
            return Ok(None);
        };
        if self.broken.contains_key(&key) {
            return Ok(None);
        }
        if !self.built.contains_key(&key) {
            let dir = root.join(format!("base-{}", self.built.len() + self.broken.len()));
            let _ = crate::fsutil::remove_tree(&dir);
            let ops = ops_for(seed, profile, opts.column_families);
            let base = if builds_with(&factory.capabilities(), opts.column_families) {
                build(&dir, factory, opts, ops, timeout)
            } else {
                build(&dir, &RocksFactory, opts, ops, timeout)
            };
            match base {
                Ok(b) => {
                    self.built.insert(key.clone(), std::sync::Arc::new(b));
                }
                Err(BuildError::Mismatch(m)) => {
                    self.broken.insert(key, dir);
                    return Err(BuildError::Mismatch(m));
                }
                Err(e) => return Err(e),
            }
        }
        // Shared, not copied: a cycle needs the ops only for its artifact.
        Ok(self.built.get(&key).cloned())
    }

    /// Removes every base directory.
    pub fn remove_all(&mut self) {
        for b in self.built.values() {
            let _ = crate::fsutil::remove_tree(&b.dir);
        }
        for d in self.broken.values() {
            let _ = crate::fsutil::remove_tree(d);
        }
        self.built.clear();
        self.broken.clear();
    }
}
