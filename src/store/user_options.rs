//! Users' own RocksDB options: an OPTIONS file from a production database
//! directory, or RocksDB's `key=value;...` options string. crashcheck runs
//! with them as given, except for the few settings it needs, which it
//! overrides and reports (see [`Override`]).

use serde::{Deserialize, Serialize};

use super::{OptionsError, RecoveryMode, StoreOptions};

/// A user setting crashcheck replaced, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Option name.
    pub key: String,
    /// The user's value.
    pub theirs: String,
    /// What crashcheck uses.
    pub ours: String,
    /// Why.
    pub why: String,
}

/// Keys crashcheck must control, with what it uses and why.
const FORCED: &[(&str, &str, &str)] = &[
    (
        "create_if_missing",
        "true",
        "crashcheck creates a fresh database per cycle",
    ),
    (
        "error_if_exists",
        "false",
        "chained cycles reopen the same database",
    ),
    (
        "wal_dir",
        "(the database directory)",
        "crashcheck never writes outside its own directories",
    ),
    (
        "db_log_dir",
        "(the database directory)",
        "crashcheck never writes outside its own directories",
    ),
    (
        "db_paths",
        "(the database directory)",
        "crashcheck never writes outside its own directories",
    ),
    (
        "cf_paths",
        "(the database directory)",
        "crashcheck never writes outside its own directories",
    ),
    (
        "manual_wal_flush",
        "(set by the durability mode)",
        "the durability mode under test decides it",
    ),
    (
        "merge_operator",
        "crashcheck.append.v1",
        "the op language's merges need crashcheck's deterministic operator",
    ),
    (
        "env",
        "(default, or the power-loss filesystem)",
        "the fault under test decides it",
    ),
];

/// The value of RocksDB option `key` in an options string (the last one
/// given wins, as when RocksDB applies the string).
pub fn option_value(s: &str, key: &str) -> Option<String> {
    split_options(s).into_iter().rev().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The compaction style of an options string: `level` (RocksDB's
/// default), `universal` or `fifo`.
pub fn compaction_style(s: &str) -> &'static str {
    match option_value(s, "compaction_style").as_deref() {
        Some(v) if v.contains("Universal") => "universal",
        Some(v) if v.contains("FIFO") => "fifo",
        _ => "level",
    }
}

/// True when the options string turns WAL recycling on
/// (`recycle_log_file_num` above 0).
pub fn recycles_wal(s: &str) -> bool {
    option_value(s, "recycle_log_file_num")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// Splits `a=1;b={x=1;y=2};c=3` at top-level `;` (braces nest).
pub fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Turns a RocksDB OPTIONS file (INI: `[DBOptions]`, `[CFOptions "default"]`,
/// `[TableOptions/BlockBasedTable "default"]`) into an options string for the
/// default column family. Other column families are ignored (and listed in
/// the second return value).
pub fn parse_options_file(text: &str) -> Result<(String, Vec<String>), OptionsError> {
    let mut section = String::new();
    let mut parts: Vec<String> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut ignored = Vec::new();
    let mut saw_db = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            if !line.ends_with(']') {
                return Err(OptionsError(format!(
                    "line {}: bad section header '{line}'",
                    i + 1
                )));
            }
            section = line[1..line.len() - 1].to_string();
            if section == "DBOptions" {
                saw_db = true;
            }
            if section.starts_with("CFOptions") && section != "CFOptions \"default\"" {
                ignored.push(section.clone());
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(OptionsError(format!(
                "line {}: expected key=value, got '{line}'",
                i + 1
            )));
        };
        let (k, v) = (k.trim(), v.trim());
        match section.as_str() {
            "DBOptions" | "CFOptions \"default\"" => parts.push(format!("{k}={v}")),
            "TableOptions/BlockBasedTable \"default\"" => table.push(format!("{k}={v}")),
            "Version" => {}
            "" => {
                return Err(OptionsError(format!(
                    "line {}: option outside a section",
                    i + 1
                )))
            }
            _ => {}
        }
    }
    if !saw_db {
        return Err(OptionsError(
            "not a RocksDB OPTIONS file (no [DBOptions] section)".into(),
        ));
    }
    if !table.is_empty() {
        parts.push(format!("block_based_table_factory={{{}}}", table.join(";")));
    }
    Ok((parts.join(";"), ignored))
}

fn recovery_mode(v: &str) -> Option<RecoveryMode> {
    Some(match v {
        "kTolerateCorruptedTailRecords" | "0" => RecoveryMode::TolerateCorruptedTail,
        "kAbsoluteConsistency" | "1" => RecoveryMode::AbsoluteConsistency,
        "kPointInTimeRecovery" | "2" => RecoveryMode::PointInTime,
        "kSkipAnyCorruptedRecords" | "3" => RecoveryMode::SkipAnyCorrupted,
        _ => return None,
    })
}

/// Takes a RocksDB options string into `opts`: settings the oracle must
/// know (`avoid_flush_during_shutdown`, `wal_recovery_mode`) are mirrored
/// into its fields, settings crashcheck controls are dropped and reported,
/// the rest is kept verbatim in `opts.rocksdb` (applied over crashcheck's
/// defaults, so the user's values win).
pub fn absorb(opts: &mut StoreOptions, raw: &str) -> Result<Vec<Override>, OptionsError> {
    let mut kept: Vec<String> = split_options(&opts.rocksdb);
    let mut overrides = Vec::new();
    for part in split_options(raw) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(OptionsError(format!("option '{part}' is not key=value")));
        };
        let (k, v) = (k.trim(), v.trim());
        if let Some((_, ours, why)) = FORCED.iter().find(|f| f.0 == k) {
            let trivial = v.is_empty() || v == "nullptr" || v == *ours;
            if !trivial {
                overrides.push(Override {
                    key: k.into(),
                    theirs: v.into(),
                    ours: (*ours).into(),
                    why: (*why).into(),
                });
            }
            continue;
        }
        match k {
            "avoid_flush_during_shutdown" => {
                opts.avoid_flush_during_shutdown = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(OptionsError(format!("bad value '{v}' for option '{k}'"))),
                }
            }
            // The oracle's cross-CF rule depends on it (oracle::cross_cf_promise).
            "atomic_flush" => {
                opts.atomic_flush = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(OptionsError(format!("bad value '{v}' for option '{k}'"))),
                }
            }
            "wal_recovery_mode" => {
                opts.wal_recovery_mode = recovery_mode(v)
                    .ok_or_else(|| OptionsError(format!("bad value '{v}' for option '{k}'")))?
            }
            _ => {}
        }
        kept.retain(|p| p.split_once('=').map(|x| x.0.trim()) != Some(k));
        kept.push(format!("{k}={v}"));
    }
    opts.rocksdb = kept.join(";");
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nested_values() {
        assert_eq!(
            split_options("a=1; b={x=1;y={z=2}} ;c=3;"),
            vec!["a=1", "b={x=1;y={z=2}}", "c=3"]
        );
    }

    #[test]
    fn options_file_becomes_an_options_string() {
        let text = "[Version]\n  rocksdb_version=11.8.1\n[DBOptions]\n  max_open_files=100\n  atomic_flush=true\n  wal_dir=/prod/wal\n  avoid_flush_during_shutdown=true\n[CFOptions \"default\"]\n  write_buffer_size=1048576\n  merge_operator=nullptr\n[TableOptions/BlockBasedTable \"default\"]\n  block_size=8192\n[CFOptions \"hot\"]\n  write_buffer_size=1\n";
        let (raw, ignored) = parse_options_file(text).unwrap();
        assert_eq!(ignored, vec!["CFOptions \"hot\""]);
        let mut o = StoreOptions::default();
        let ov = absorb(&mut o, &raw).unwrap();
        assert!(o.avoid_flush_during_shutdown);
        assert!(
            o.atomic_flush,
            "the oracle must know the user's atomic_flush"
        );
        assert!(o.rocksdb.contains("max_open_files=100"));
        assert!(o
            .rocksdb
            .contains("block_based_table_factory={block_size=8192}"));
        assert!(!o.rocksdb.contains("wal_dir"), "{}", o.rocksdb);
        assert!(ov
            .iter()
            .any(|x| x.key == "wal_dir" && x.theirs == "/prod/wal"));
        assert!(
            !ov.iter().any(|x| x.key == "merge_operator"),
            "nullptr is no conflict"
        );
    }

    #[test]
    fn bad_files_are_rejected_with_a_reason() {
        assert!(parse_options_file("hello")
            .unwrap_err()
            .0
            .contains("line 1"));
        assert!(parse_options_file("[CFOptions \"default\"]\n a=1\n")
            .unwrap_err()
            .0
            .contains("DBOptions"));
        assert!(parse_options_file("[DBOptions\n")
            .unwrap_err()
            .0
            .contains("section"));
    }
}
