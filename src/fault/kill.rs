//! `kill`: SIGKILL of the writer process. The OS page cache survives, so
//! whatever RocksDB handed to the OS is kept (options.h
//! `WriteOptions::sync`: "if it is just the process that crashes (i.e.,
//! the machine does not reboot), no writes will be lost even if
//! sync==false").

use super::{FaultKind, Loss};

/// Process kill.
pub struct Kill;

impl FaultKind for Kill {
    fn name(&self) -> &'static str {
        "kill"
    }
    fn about(&self) -> &'static str {
        "SIGKILL; the OS page cache survives"
    }
    fn loss(&self) -> Loss {
        Loss::ProcessCrash
    }
}
