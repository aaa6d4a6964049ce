//! What each WAL recovery mode may do with each kind of WAL damage, with
//! the RocksDB source each expectation relies on, and how a recovered
//! state is classified against the history.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::history::History;
use crate::observe::Recovered;
use crate::store::RecoveryMode;

/// A kind of WAL damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Damage {
    /// Truncated inside the last record.
    TruncMidRecord,
    /// Truncated exactly at the start of the last record.
    TruncAtBoundary,
    /// A run of zero bytes after the last record (preallocation).
    ZeroTail,
    /// Random bytes after the last record.
    GarbageTail,
    /// Bits flipped in the last record.
    BitflipLast,
    /// Bits flipped in a record in the middle of the file.
    BitflipMid,
    /// The whole WAL file deleted.
    MissingFile,
}

impl Damage {
    /// Every damage kind.
    pub const ALL: [Damage; 7] = [
        Damage::TruncMidRecord,
        Damage::TruncAtBoundary,
        Damage::ZeroTail,
        Damage::GarbageTail,
        Damage::BitflipLast,
        Damage::BitflipMid,
        Damage::MissingFile,
    ];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Damage::TruncMidRecord => "trunc-mid-record",
            Damage::TruncAtBoundary => "trunc-at-boundary",
            Damage::ZeroTail => "zero-tail",
            Damage::GarbageTail => "garbage-tail",
            Damage::BitflipLast => "bitflip-last",
            Damage::BitflipMid => "bitflip-mid",
            Damage::MissingFile => "missing-file",
        }
    }
}

/// Which WAL is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The WAL being written when the process died.
    Newest,
    /// The WAL kept from the previous run.
    Older,
}

impl Target {
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Newest => "newest",
            Target::Older => "older",
        }
    }
}

/// What a reopen under one recovery mode gave. `K` is the number of
/// write units whose records lie wholly before the damaged record; `n` the
/// number of units written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Open failed.
    Fail,
    /// Opened with every unit (the damage destroyed nothing).
    Complete,
    /// Opened with exactly the units before the damage (prefix `K`).
    PrefixToDamage,
    /// Opened with a shorter prefix (`P < K`).
    PrefixShort,
    /// Opened with a prefix past the damaged record (`K < P < n`): the
    /// damaged record was replayed anyway.
    PrefixPastDamage,
    /// Opened with units after the damage while damaged ones are missing:
    /// not a prefix (a hole), but no invented value. (A hole whose lost
    /// writes were all overwritten later reads as `Complete`: cells that
    /// admit a hole admit that too.)
    Hole,
    /// Opened with a value never written: always a contradiction.
    Phantom,
    /// The verifier child died or hung.
    Crash,
}

impl Outcome {
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Fail => "fail",
            Outcome::Complete => "complete",
            Outcome::PrefixToDamage => "prefix-to-damage",
            Outcome::PrefixShort => "prefix-short",
            Outcome::PrefixPastDamage => "prefix-past-damage",
            Outcome::Hole => "hole",
            Outcome::Phantom => "phantom",
            Outcome::Crash => "crash",
        }
    }
}

/// Report name of a recovery mode.
pub fn mode_name(m: RecoveryMode) -> &'static str {
    match m {
        RecoveryMode::TolerateCorruptedTail => "tolerate-corrupted-tail",
        RecoveryMode::AbsoluteConsistency => "absolute-consistency",
        RecoveryMode::PointInTime => "point-in-time",
        RecoveryMode::SkipAnyCorrupted => "skip-any-corrupted",
    }
}

/// The four recovery modes.
pub const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipAnyCorrupted,
];

/// Classifies a recovered state against the history: `k` is the number of
/// units whose records lie wholly before the damage.
pub fn classify(h: &History, rec: &Recovered, k: u64) -> Outcome {
    let got: BTreeMap<&[u8], u128> = rec
        .entries
        .iter()
        .map(|(a, b)| (a.as_slice(), *b))
        .collect();
    // any value that was never written to its key?
    for (key, v) in &got {
        let ok = h
            .timelines
            .get(*key)
            .is_some_and(|tl| tl.iter().any(|(_, x)| *x == Some(*v)));
        if !ok {
            return Outcome::Phantom;
        }
    }
    let n = h.units();
    let matches = |p: u64| {
        h.timelines
            .iter()
            .all(|(key, _)| got.get(key.as_slice()).copied() == h.value_at(key, p))
    };
    match (0..=n).rev().find(|&p| matches(p)) {
        Some(p) if p == n => Outcome::Complete,
        Some(p) if p == k => Outcome::PrefixToDamage,
        Some(p) if p < k => Outcome::PrefixShort,
        Some(_) => Outcome::PrefixPastDamage,
        None => Outcome::Hole,
    }
}

/// What the documentation and code admit for one cell.
#[derive(Clone, Copy, Debug)]
pub struct Expectation {
    /// Admitted outcomes.
    pub outcomes: &'static [Outcome],
    /// The source (RocksDB 11.8.1 file:line and words).
    pub source: &'static str,
    /// Set when the admitted outcome silently loses data (a hole): not a
    /// contradiction of the documentation, but a hazard users must know.
    pub hazard: Option<&'static str>,
}

const HOLE_AT_BOUNDARY: &str = "an older WAL cut at a record boundary (or deleted) is undetectable without track_and_verify_wals_in_manifest: the newer WAL is replayed and the recovered state has a hole (db_wal_test.cc:2460-2463 \"we have no way to know there was a corruption when truncation happened on record boundaries\"; db_impl_open.cc:801-804 only CheckWals when tracking is on)";

/// Expected outcomes per recovery mode, damage and target, each with the
/// RocksDB source it relies on (docs/recovery-modes.md has the details).
pub fn expected(mode: RecoveryMode, d: Damage, t: Target) -> Expectation {
    use Outcome::*;
    use RecoveryMode::*;
    let e = |outcomes: &'static [Outcome], source: &'static str| Expectation {
        outcomes,
        source,
        hazard: None,
    };
    let hazard =
        |outcomes: &'static [Outcome], source: &'static str, h: &'static str| Expectation {
            outcomes,
            source,
            hazard: Some(h),
        };
    match (mode, d, t) {
        (AbsoluteConsistency, Damage::TruncMidRecord, _) => e(
            &[Fail],
            "log_reader.cc:238-262 a truncated record is reported for absolute consistency; options.h kAbsoluteConsistency \"We don't expect to find any corruption in the WAL\"",
        ),
        (TolerateCorruptedTail, Damage::TruncMidRecord, Target::Older) => hazard(
            &[Hole, Complete],
            "options.h kTolerateCorruptedTailRecords: \"tolerate the last record in any log to be incomplete\"; replay then continues with the next WAL",
            "a torn last record of an older WAL is dropped and the newer WAL replayed: a hole",
        ),
        (SkipAnyCorrupted, Damage::TruncMidRecord, Target::Older) => e(
            &[Hole, Complete],
            "options.h kSkipAnyCorruptedRecords: \"ignore any corruption in the WAL and try to salvage as much data as possible\"",
        ),
        (PointInTime, Damage::TruncMidRecord, Target::Older) => e(
            &[PrefixToDamage],
            "db_impl_open.cc:1749-1761 point-in-time stops replay at the torn record and drops later WALs (options.h \"We stop the WAL playback on discovering WAL inconsistency\")",
        ),
        (_, Damage::TruncMidRecord, Target::Newest) => e(
            &[PrefixToDamage],
            "log_reader.cc:250-262 an incomplete last record at EOF is dropped (\"just ignore the entire logical record\")",
        ),
        (_, Damage::TruncAtBoundary, Target::Newest) => e(
            &[PrefixToDamage],
            "a cut at a record boundary leaves a valid, shorter WAL",
        ),
        (_, Damage::TruncAtBoundary | Damage::MissingFile, Target::Older) => {
            hazard(&[Hole, Complete], HOLE_AT_BOUNDARY, HOLE_AT_BOUNDARY)
        }
        (_, Damage::MissingFile, Target::Newest) => e(
            &[PrefixToDamage],
            "db_impl_open.cc:771-793 the WALs replayed are the directory listing; losing the newest loses only the tail",
        ),
        (AbsoluteConsistency, Damage::ZeroTail, _) => e(
            &[Complete, Fail],
            "log_reader.cc:611-619 zero padding is skipped; 1-6 zero bytes at the end of a block read as a truncated header (533-541), which absolute consistency reports",
        ),
        (_, Damage::ZeroTail, _) => e(
            &[Complete],
            "log_reader.cc:611-619 \"Skip zero length record without reporting any drops\"; options.h: \"Zeroed bytes from preallocation are also tolerated\"",
        ),
        (TolerateCorruptedTail, Damage::GarbageTail, _) => e(
            &[Complete, Fail],
            "log_reader.cc:306-318 a bad length at EOF is a truncated tail (tolerated); a checksum mismatch or bad length before EOF is reported (321-337)",
        ),
        (AbsoluteConsistency, Damage::GarbageTail, _) => e(
            &[Fail],
            "log_reader.cc:306-337 garbage reads as a bad record length or checksum mismatch, reported for absolute consistency",
        ),
        (PointInTime | SkipAnyCorrupted, Damage::GarbageTail, _) => e(
            &[Complete],
            "garbage after the last record loses no sequence number; db_impl_open.cc:1613-1627 replay continues when the next sequence is consecutive",
        ),
        (TolerateCorruptedTail | AbsoluteConsistency, Damage::BitflipLast | Damage::BitflipMid, _) => e(
            &[Fail],
            "options.h kTolerateCorruptedTailRecords: \"in case a corruption is detected during recovery, this mode will refuse to open the DB\"; db_impl_open.cc:1762-1767",
        ),
        (PointInTime, Damage::BitflipLast | Damage::BitflipMid, _) => e(
            &[PrefixToDamage, PrefixShort],
            "db_impl_open.cc:1749-1761 point-in-time stops at the corrupt record: a prefix, never a hole (db_wal_test.cc:2464-2481)",
        ),
        (SkipAnyCorrupted, Damage::BitflipLast | Damage::BitflipMid, _) => e(
            &[PrefixToDamage, PrefixShort, Hole, Complete],
            "db_impl_open.cc:1734-1737 skip mode ignores the corrupt record (and the rest of its 32 KiB block) and goes on; no invented value",
        ),
    }
}
