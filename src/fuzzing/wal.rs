//! The `wal_recovery` target: a WAL damaged as the input says, reopened
//! under each recovery mode.

use std::path::Path;

use super::input::{key, val, WalInput};
use super::scratch;
use crate::model::history::History;
use crate::model::State;
use crate::observe::Recovered;
use crate::op::{Op, WriteOp};
use crate::recovery::{classify, Outcome};
use crate::store::drive::drive;
use crate::store::{RecoveryMode, StoreFactory, StoreOptions, WalMode};

/// A database directory's files: names and contents.
type DbFiles = Vec<(std::ffi::OsString, Vec<u8>)>;

std::thread_local! {
    /// The `wal_recovery` target's undamaged databases, by (store, units,
    /// WAL compression): the same writes give the same files, so each is
    /// built once per fuzzer process and copied for every input after.
    static BUILT: std::cell::RefCell<std::collections::HashMap<(String, u8, bool), DbFiles>> =
        Default::default();
}

/// Writes a cached database's files into `path`; false when there is none.
fn restore(files: Option<&DbFiles>, path: &Path) -> bool {
    let Some(files) = files else {
        return false;
    };
    std::fs::create_dir_all(path).is_ok()
        && files
            .iter()
            .all(|(name, bytes)| std::fs::write(path.join(name), bytes).is_ok())
}

/// `wal_recovery` target: write units, damage the WAL as the input says,
/// reopen under the input's recovery mode. RocksDB must never invent a
/// value, and (one WAL only) every mode but skip-any-corrupted must keep a
/// prefix.
pub fn run_wal(factory: &dyn StoreFactory, input: &WalInput) -> Result<(), String> {
    let dir = scratch();
    let path = dir.path().join("db");
    let ops: Vec<Op> = (0..input.units)
        .map(|i| {
            Op::Write(WriteOp::Put {
                key: key(i, 1),
                value: val(i.wrapping_mul(7), i),
            })
        })
        .collect();
    let h = History::new(ops.clone(), State::new());
    let opts = StoreOptions {
        wal_mode: WalMode::Wal,
        wal_compression: input.zstd,
        write_buffer_size: 64 << 20,
        ..StoreOptions::default()
    };
    let built = (factory.name(), input.units, input.zstd);
    if !BUILT.with(|b| restore(b.borrow().get(&built), &path)) {
        let mut store = factory
            .open(&path, &opts)
            .map_err(|e| format!("open failed: {e}"))?;
        for op in &ops {
            drive(store.as_mut(), op, &mut crate::store::drive::Plain)
                .map_err(|e| format!("write failed: {e}"))?;
        }
        // A clean close with the WAL on keeps the WAL (no flush).
        store.close().map_err(|e| format!("close failed: {e}"))?;
        let files = std::fs::read_dir(&path)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| std::fs::read(e.path()).map(|b| (e.file_name(), b)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        BUILT.with(|b| b.borrow_mut().insert(built, files));
    }
    let wal = crate::wal::newest_wal(&path).ok_or("no WAL file")?;
    let mut bytes = std::fs::read(&wal).map_err(|e| e.to_string())?;
    let at = bytes.len() * usize::from(input.at) / 255;
    let end = (at + usize::from(input.len)).min(bytes.len());
    match input.pattern {
        0 => bytes.truncate(at),
        1 => bytes[at..end].iter_mut().for_each(|b| *b = 0),
        2 => bytes[at..end].iter_mut().for_each(|b| *b = 0xff),
        3 => bytes[at..end].iter_mut().for_each(|b| *b ^= 0x80),
        _ => bytes[at..end]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i as u8).wrapping_mul(37).wrapping_add(input.len)),
    }
    // Skip the known open hang (docs/findings.md finding 1) so the fuzzer
    // keeps looking for new bugs instead of rediscovering this one.
    if crate::store::engine::excuses(&crate::known_bugs::OPEN_HANG)
        && crate::wal::reaches_recyclable_header(&bytes)
    {
        return Ok(());
    }
    std::fs::write(&wal, &bytes).map_err(|e| e.to_string())?;
    let ropts = StoreOptions {
        wal_recovery_mode: input.mode,
        ..opts
    };
    let Ok(mut store) = factory.open(&path, &ropts) else {
        return Ok(()); // refusing to open is always allowed here
    };
    let rec = Recovered::read(store.as_mut(), &[], None)?;
    let _ = store.close();
    let outcome = classify(&h, &rec, h.units());
    match (outcome, input.mode) {
        (Outcome::Phantom, _) => Err("recovery invented a value".into()),
        (Outcome::Hole, m) if m != RecoveryMode::SkipAnyCorrupted => Err(format!(
            "{} recovered a state with a hole from a single damaged WAL",
            crate::recovery::mode_name(m)
        )),
        _ => Ok(()),
    }
}
