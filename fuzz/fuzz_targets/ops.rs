//! Arbitrary op sequences (including reopen) run in-process against the
//! store and crashcheck's model; any disagreement is a finding. One
//! database serves many inputs (see `crashcheck::fuzzing::OpsTarget`).
#![no_main]

use std::cell::RefCell;

use crashcheck::fuzzing::{fuzz_factory, OpsInput, OpsTarget};
use libfuzzer_sys::fuzz_target;

thread_local! {
    // libFuzzer runs every input on one thread.
    static TARGET: RefCell<OpsTarget> = RefCell::new(OpsTarget::new(fuzz_factory()));
}

fuzz_target!(|input: OpsInput| {
    if let Err(e) = TARGET.with(|t| t.borrow_mut().run(&input)) {
        let name = fuzz_factory().name();
        panic!("crashcheck finding ({name}): {e}\nconvert: crashcheck fuzz-repro ops <artifact>");
    }
});
