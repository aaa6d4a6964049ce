//! crashcheck: a persistence-consistency test and fuzz suite for RocksDB.
//!
//! Seeded random op sequences run against a store and an in-memory
//! reference model; forked children are killed with SIGKILL at random
//! points and the reopened database is checked against the model and the
//! durability oracle. `docs/architecture.md` is the map. The modules, in
//! pipeline order (each refers only to modules before it; `tests/layering.rs`
//! checks it):
//!
//! - the language: [`keyspace`], [`fsutil`], [`known_bugs`], [`op`] (ops
//!   and their text form), [`model`] (reference state, fingerprints,
//!   per-prefix history), [`workload`] (the seeded generator);
//! - the system: [`store`] (the `Store` trait, the RocksDB adapter, and
//!   [`store::drive`], the one place that maps an op to store calls),
//!   [`wal`] (the WAL file format), [`fault`] (one file per fault);
//! - a crash cycle: [`crash`] (fork, kill, the writer child), [`observe`]
//!   (the verifier child), [`oracle`] (what survives), [`verify`] (prefix
//!   matching, violation classes, checkpoints and backups), [`cycle`]
//!   (plan, run, adjudicate);
//! - the checks built on them: [`repro`] (repro files and shrinking),
//!   [`check`] (the in-process run check), [`mutants`] (broken stores),
//!   [`recovery`] (the WAL recovery-mode matrix), [`fuzzing`] (the fuzz
//!   targets' bodies), [`campaign`] (many cycles, artifacts, replay),
//!   [`report`] and [`metrics`], [`selftest`], [`matrix`] (results per
//!   RocksDB version), [`bench`](mod@bench), [`harness`] (crash checks from `cargo
//!   test`).
#![warn(missing_docs)]

pub mod bench;
pub mod bench_txn;
pub mod campaign;
pub mod check;
pub mod crash;
pub mod cycle;
pub mod fault;
pub mod fsutil;
pub mod fuzzing;
pub mod harness;
pub mod keyspace;
pub mod known_bugs;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod mutants;
pub mod observe;
pub mod op;
pub mod oracle;
pub mod recovery;
pub mod report;
pub mod repro;
pub mod selftest;
pub mod store;
pub mod verify;
pub mod wal;
pub mod workload;
