//! crashcheck: a persistence-consistency test and fuzz suite for RocksDB.
//!
//! Seeded random op sequences run against a store and an in-memory
//! reference model ([`check`]); forked children are killed with SIGKILL at
//! random points and the reopened database is checked against the model and
//! the durability oracle ([`crash`], [`oracle`], [`verify`], [`campaign`]).
//!
//! Layout, one concept per module: [`op`] (the op language and its text
//! form), [`workload`] (seeded generator and profiles), [`model`] (reference
//! state and fingerprint), [`history`] (per-prefix fingerprints and key
//! timelines of a planned sequence), [`store`] (the `Store` trait and the
//! RocksDB adapter), [`oracle`] (what each mode and fault admits),
//! [`crash`] (fork, kill, shared progress log), [`verify`] (prefix matching
//! and violation classes), [`campaign`] and [`report`], [`repro`]
//! (repro files and shrinking), [`keyspace`] (column family and writer of
//! a key), [`checkpoint`] (checkpoints, backups and copies taken during a cycle),
//! [`metrics`] (Prometheus endpoint).

pub mod bench;
pub mod campaign;
pub mod check;
pub mod checkpoint;
pub mod crash;
pub mod fuzzing;
pub mod harness;
pub mod history;
pub mod keyspace;
pub mod metrics;
pub mod model;
pub mod mutants;
pub mod op;
pub mod option_matrix;
pub mod oracle;
pub mod recovery;
pub mod report;
pub mod repro;
pub mod selftest;
pub mod store;
pub mod verify;
pub mod workload;
