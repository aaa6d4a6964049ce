//! WAL damage chosen by the input (offset, length, pattern) and a recovery
//! mode: RocksDB must never take the process down, never invent a value,
//! and keep a prefix (except skip-any-corrupted).
#![no_main]

use std::sync::OnceLock;

use crashcheck::fuzzing::{fuzz_factory, run_wal, WalInput};
use crashcheck::store::StoreFactory;
use libfuzzer_sys::fuzz_target;

static FACTORY: OnceLock<Box<dyn StoreFactory>> = OnceLock::new();

fuzz_target!(|input: WalInput| {
    let f = FACTORY.get_or_init(fuzz_factory);
    if let Err(e) = run_wal(f.as_ref(), &input) {
        panic!("crashcheck finding ({}): {e}; input {input:?}", f.name());
    }
});
