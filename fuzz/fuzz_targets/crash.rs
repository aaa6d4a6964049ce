//! Ops plus a power cut on RocksDB's fault-injecting filesystem (in
//! process: freeze, drop unsynced data, reopen), checked by the power-loss
//! oracle.
#![no_main]

use std::sync::{Arc, OnceLock};

use crashcheck::fuzzing::{fuzz_factory, run_crash, CrashInput};
use crashcheck::store::fault_fs::FaultFs;
use crashcheck::store::StoreFactory;
use libfuzzer_sys::fuzz_target;

static FACTORY: OnceLock<Box<dyn StoreFactory>> = OnceLock::new();
static FS: OnceLock<Arc<FaultFs>> = OnceLock::new();

fuzz_target!(|input: CrashInput| {
    let f = FACTORY.get_or_init(fuzz_factory);
    let fs = FS.get_or_init(|| Arc::new(FaultFs::new()));
    if let Err(e) = run_crash(f.as_ref(), fs, &input) {
        panic!("crashcheck finding ({}): {e}\nconvert: crashcheck fuzz-repro crash <artifact>", f.name());
    }
});
