//! The fault seam: what happens to the writer process and its disk.
//!
//! Each fault is one file here that owns everything about it: its name,
//! the loss class the oracle sees ([`Loss`]), the environment the writer
//! child runs in (the unsynced-data-loss filesystem or not), what it does
//! to the disk after the kill (a crash image), and which settings it
//! works with. Nothing outside this folder matches on a particular fault.
//!
//! Adding a fault: a new file with a unit struct implementing
//! [`FaultKind`], and one line in the `registry!` below.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::store::{RecoveryMode, StoreOptions};

pub mod dirs;

/// What a fault takes away, as the durability oracle sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// The process dies; the OS page cache survives, so everything handed
    /// to the OS (a `write`, without `fsync`) is kept.
    ProcessCrash,
    /// The machine loses power: everything not made durable by a sync may
    /// be lost (and crash images may tear what was not synced).
    Unsynced,
}

/// Injected I/O errors on the writer threads (see
/// [`crate::store::fault_fs::arm_thread_io_errors`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoErrors {
    /// One eligible call in this many fails.
    pub one_in: u32,
    /// Which calls are eligible.
    pub kinds: crate::store::fault_fs::IoErrorKinds,
    /// The disk fills up (ENOSPC on every thread) before one op of the
    /// first writer, drawn per cycle.
    pub disk_full: bool,
    /// Half of the writer threads (drawn per thread from the seed) get
    /// retryable errors, the others non-retryable ones.
    pub some_retryable: bool,
    /// With `disk_full`: in half of the single-writer cycles the space
    /// comes back and the store resumes. The cycle clears it for a store
    /// without [`crate::store::Capabilities::resume`].
    pub may_resume: bool,
}

impl IoErrors {
    /// One in `one_in` of the calls of `kinds` fails; the disk stays.
    pub fn thread_local(one_in: u32, kinds: crate::store::fault_fs::IoErrorKinds) -> IoErrors {
        IoErrors {
            one_in,
            kinds,
            disk_full: false,
            some_retryable: false,
            may_resume: false,
        }
    }

    /// No per-thread errors; the disk fills up.
    pub fn disk_full() -> IoErrors {
        IoErrors {
            one_in: 0,
            kinds: crate::store::fault_fs::IoErrorKinds::default(),
            disk_full: true,
            some_retryable: false,
            may_resume: true,
        }
    }
}

/// What a fault's after-kill step may know about the cycle.
#[derive(Clone, Copy, Debug)]
pub struct AfterKill<'a> {
    /// The options the database ran with.
    pub opts: &'a StoreOptions,
    /// Write units acknowledged before the kill (single writer).
    pub acked: u64,
    /// The last unit the oracle holds durable (its `L`): crash images
    /// never touch data up to it.
    pub durable: u64,
    /// Seed for the image's random choices (fixed per cycle).
    pub seed: u64,
}

/// One fault. Implementations are unit structs listed in `registry!` (in this module).
pub trait FaultKind: Send + Sync + 'static {
    /// CLI and report name.
    fn name(&self) -> &'static str;
    /// One line for `--help` and docs.
    fn about(&self) -> &'static str;
    /// What the oracle must assume was lost.
    fn loss(&self) -> Loss;
    /// True when the writer child runs on the filesystem that keeps
    /// unsynced appends in process memory (so the kill drops them).
    /// `single`: the cycle has one writer.
    fn drops_unsynced(&self, _opts: &StoreOptions, _single: bool) -> bool {
        self.loss() == Loss::Unsynced
    }
    /// False when the fault cannot run with `writers` concurrent writers.
    fn works_with_writers(&self, _writers: usize) -> bool {
        true
    }
    /// Edits the database directory after the kill, before recovery (a
    /// crash image); returns what it did, or `None` when it did nothing.
    /// Called for single-writer cycles only.
    fn after_kill(&self, _db: &Path, _ctx: &AfterKill<'_>) -> Option<String> {
        None
    }
    /// I/O errors on the writer threads: one in `one_in` of each writer
    /// thread's I/O calls of the given kinds fails (`None`: no injected
    /// errors).
    fn writer_io_errors(&self) -> Option<IoErrors> {
        None
    }
}

/// A fault: a copyable handle on a registered [`FaultKind`], compared,
/// hashed, parsed and serialized by name.
#[derive(Clone, Copy)]
pub struct Fault(&'static dyn FaultKind);

/// Declares the fault modules and [`Fault::all`]'s list, one line each.
macro_rules! registry {
    ($($file:ident :: $kind:ident),* $(,)?) => {
        $(mod $file;)*
        const ALL: &[Fault] = &[$(Fault(&$file::$kind)),*];
    };
}

registry! {
    kill::Kill,
    power_loss::PowerLoss,
    power_loss_partial::PowerLossPartial,
    power_loss_zeros::PowerLossZeros,
    power_loss_garbage::PowerLossGarbage,
    io_error::IoError,
    io_error_kill::IoErrorKill,
    read_error::ReadError,
    disk_full::DiskFull,
}

impl Fault {
    /// SIGKILL: the process dies, the page cache survives.
    pub const KILL: Fault = Fault(&kill::Kill);
    /// SIGKILL on the unsynced-data-loss filesystem: a power cut.
    pub const POWER_LOSS: Fault = Fault(&power_loss::PowerLoss);
    /// EIO on the writer's own I/O, then a power cut.
    pub const IO_ERROR: Fault = Fault(&io_error::IoError);
    /// Failed and damaged reads on the writer threads, then a power cut.
    pub const READ_ERROR: Fault = Fault(&read_error::ReadError);
    /// The disk fills up; then a power cut, or space comes back and the
    /// store resumes.
    pub const DISK_FULL: Fault = Fault(&disk_full::DiskFull);

    /// Every registered fault, in report order.
    pub fn all() -> &'static [Fault] {
        ALL
    }

    /// CLI and report name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// One line for help texts.
    pub fn about(self) -> &'static str {
        self.0.about()
    }

    /// The loss class the oracle sees.
    pub fn loss(self) -> Loss {
        self.0.loss()
    }

    /// True for faults that may lose unsynced data.
    pub fn is_power_loss(self) -> bool {
        self.loss() == Loss::Unsynced
    }

    /// See [`FaultKind::drops_unsynced`].
    pub fn drops_unsynced(self, opts: &StoreOptions, single: bool) -> bool {
        self.0.drops_unsynced(opts, single)
    }

    /// See [`FaultKind::works_with_writers`].
    pub fn works_with_writers(self, writers: usize) -> bool {
        self.0.works_with_writers(writers)
    }

    /// See [`FaultKind::writer_io_errors`].
    pub fn writer_io_errors(self) -> Option<IoErrors> {
        self.0.writer_io_errors()
    }

    /// Why this fault cannot run on the RocksDB this build links, or
    /// `None` when it can. Per-thread I/O errors need a
    /// FaultInjectionTestFS from 9.9 on (csrc/fault_env.cc); campaigns
    /// report such a fault as unsupported instead of running it.
    pub fn unsupported_here(self) -> Option<String> {
        let e = self.writer_io_errors()?;
        (e.one_in > 0 && !crate::store::fault_fs::thread_io_errors_supported()).then(|| {
            format!(
                "{self}: needs per-thread I/O error injection, which the FaultInjectionTestFS of RocksDB {} lacks (9.9 and later have it)",
                crate::store::engine::engine().rocksdb_version
            )
        })
    }

    /// See [`FaultKind::after_kill`].
    pub fn after_kill(self, db: &Path, ctx: &AfterKill<'_>) -> Option<String> {
        self.0.after_kill(db, ctx)
    }
}

impl PartialEq for Fault {
    fn eq(&self, o: &Fault) -> bool {
        self.name() == o.name()
    }
}

impl Eq for Fault {}

impl std::hash::Hash for Fault {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name().hash(h);
    }
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALL.iter().copied().find(|f| f.name() == s).ok_or_else(|| {
            format!(
                "unknown fault '{s}' ({}, all)",
                ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

impl serde::Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// True under the WAL recovery modes that must stop at a torn or zeroed
/// WAL tail (point-in-time, skip-any-corrupted; see
/// docs/recovery-modes.md): the other modes may refuse to open, so the
/// tail images apply only under these.
fn tolerates_torn_tail(opts: &StoreOptions) -> bool {
    matches!(
        opts.wal_recovery_mode,
        RecoveryMode::PointInTime | RecoveryMode::SkipAnyCorrupted
    )
}

/// Appends a tail to the newest WAL under the recovery modes that must
/// stop at a torn tail (see [`tolerates_torn_tail`]); `append` adds the
/// bytes and says what it did.
fn append_wal_tail(
    db: &Path,
    c: &AfterKill<'_>,
    append: impl FnOnce(&mut Vec<u8>, &mut ChaCha8Rng) -> String,
) -> Option<String> {
    if !tolerates_torn_tail(c.opts) {
        return None;
    }
    edit_newest_wal(db, c.seed, |bytes, rng| Some(append(bytes, rng)))
}

/// Rewrites the newest WAL of `db` with `edit` (given its bytes and an
/// RNG seeded from `seed`); `None` when there is no WAL or `edit` declines.
fn edit_newest_wal(
    db: &Path,
    seed: u64,
    edit: impl FnOnce(&mut Vec<u8>, &mut ChaCha8Rng) -> Option<String>,
) -> Option<String> {
    let wal = crate::wal::newest_wal(db)?;
    let mut bytes = std::fs::read(&wal).ok()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let what = edit(&mut bytes, &mut rng)?;
    std::fs::write(&wal, bytes).ok()?;
    Some(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_per_thread_error_faults_depend_on_the_engine() {
        let e = crate::store::engine::engine();
        let v = crate::known_bugs::parse_version(&e.rocksdb_version).expect("x.y.z");
        let threads = crate::store::fault_fs::thread_io_errors_supported();
        // The shim's answer follows the linked RocksDB (9.9 and later).
        assert_eq!(threads, v >= (9, 9, 0), "{e}");
        for f in Fault::all() {
            let needs = f.writer_io_errors().is_some_and(|x| x.one_in > 0);
            let why = f.unsupported_here();
            assert_eq!(why.is_some(), needs && !threads, "{f}: {why:?}");
            if let Some(w) = why {
                assert!(
                    w.contains(&e.rocksdb_version) && w.starts_with(f.name()),
                    "{w}"
                );
            }
        }
    }
}
