//! Checkpoints, backups and plain copies taken while writes run: what the
//! writer records of each (judged after the cycle by
//! [`crate::verify::copies`]).

use serde::Serialize;

use crate::op::Op;

/// What a checkpoint, backup or copy op makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u32)]
pub enum CopyKind {
    /// `Checkpoint::create_checkpoint`.
    Checkpoint = 0,
    /// `BackupEngine::create_new_backup_flush`.
    Backup = 1,
    /// Recursive copy of the live directory.
    Copy = 2,
}

impl CopyKind {
    /// From the shared-memory code.
    pub fn from_u32(v: u32) -> CopyKind {
        match v {
            1 => CopyKind::Backup,
            2 => CopyKind::Copy,
            _ => CopyKind::Checkpoint,
        }
    }

    /// The kind an op makes (checkpoint for other ops).
    pub fn of(op: &Op) -> CopyKind {
        match op {
            Op::Backup { .. } => CopyKind::Backup,
            Op::CopyDir { .. } => CopyKind::Copy,
            _ => CopyKind::Checkpoint,
        }
    }

    /// Directory (under the cycle's copies root) the op writes to. Backups of
    /// one writer share one BackupEngine directory.
    pub fn dir_name(self, writer: usize, id: u32) -> String {
        match self {
            CopyKind::Checkpoint => format!("checkpoint-{writer}-{id}"),
            CopyKind::Backup => format!("backup-{writer}"),
            CopyKind::Copy => format!("copy-{writer}-{id}"),
        }
    }
}

/// How far a checkpoint, backup or copy got before the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyState {
    /// Started, did not return (the kill landed inside it).
    Started,
    /// Returned Ok.
    Done,
    /// Returned an error.
    Failed,
}

/// One checkpoint, backup or copy as the writer recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyRecord {
    /// What it made.
    pub kind: CopyKind,
    /// The writer that ran it.
    pub writer: usize,
    /// Its id in the op (`checkpoint 2`).
    pub id: u32,
    /// How far it got.
    pub state: CopyState,
    /// Per writer: units acknowledged when the call started.
    pub lo: Vec<u64>,
    /// Per writer: units started when the call returned (or at the kill).
    pub hi: Vec<u64>,
    /// A flush by another writer overlapped the call.
    pub flush_overlap: bool,
}
