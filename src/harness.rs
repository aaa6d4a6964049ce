//! Running crash checks from an application's own `cargo test`.
//!
//! A test process is unsafe to fork from: other tests (threads of the same
//! process) may have used RocksDB, and a child forked after that hangs in
//! `flush`. [`crash_check_in_test`] therefore re-executes the test binary
//! with only the calling test selected; in that fresh process, which has
//! not touched RocksDB, the campaign runs and its report comes back as
//! JSON through a file.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::campaign::{run_campaign, CrashConfig, CrashReport};
use crate::store::rocks::rocksdb_used;
use crate::store::StoreFactory;

/// Environment variable that marks the re-executed test process and names
/// the file its report goes to.
pub const ISOLATED_REPORT_ENV: &str = "CRASHCHECK_ISOLATED_REPORT";

/// Runs a crash campaign for a test named `test_name` (its full path as
/// libtest prints it, e.g. `crash_tests::my_store_survives_kills`).
///
/// Call it at the start of its own `#[test]` function, before that test
/// touches RocksDB: the function runs twice, once in the test process
/// (which re-executes the binary and waits) and once in the fresh process
/// (which runs the campaign). Both return the same report.
pub fn crash_check_in_test(
    test_name: &str,
    cfg: CrashConfig,
    factory: Arc<dyn StoreFactory>,
) -> Result<CrashReport, String> {
    if let Some(path) = std::env::var_os(ISOLATED_REPORT_ENV) {
        if rocksdb_used() {
            return Err("the isolated test process used RocksDB before the crash check; call crash_check_in_test first in its test".into());
        }
        let r = run_campaign(cfg, factory, None).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        std::fs::write(PathBuf::from(path), json).map_err(|e| e.to_string())?;
        return Ok(r);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let out =
        tempfile::NamedTempFile::new().map_err(|e| format!("cannot create a report file: {e}"))?;
    let child = Command::new(exe)
        .args([test_name, "--exact", "--test-threads=1", "--quiet"])
        .env(ISOLATED_REPORT_ENV, out.path())
        .output()
        .map_err(|e| format!("cannot re-execute the test binary: {e}"))?;
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    if text.is_empty() {
        return Err(format!(
            "the isolated run of test '{test_name}' produced no report (status {}); is the name the test's full path?\n{}{}",
            child.status,
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        ));
    }
    serde_json::from_str(&text).map_err(|e| format!("bad report from the isolated run: {e}"))
}
