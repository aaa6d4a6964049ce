//! Arbitrary op sequences (including reopen) run in-process against the
//! store and crashcheck's model; any disagreement is a finding.
#![no_main]

use std::sync::OnceLock;

use crashcheck::fuzzing::{fuzz_factory, run_ops, OpsInput};
use crashcheck::store::StoreFactory;
use libfuzzer_sys::fuzz_target;

static FACTORY: OnceLock<Box<dyn StoreFactory>> = OnceLock::new();

fuzz_target!(|input: OpsInput| {
    let f = FACTORY.get_or_init(fuzz_factory);
    if let Err(e) = run_ops(f.as_ref(), &input) {
        panic!("crashcheck finding ({}): {e}\nconvert: crashcheck fuzz-repro ops <artifact>", f.name());
    }
});
