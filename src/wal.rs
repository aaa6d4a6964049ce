//! The WAL file format (db/log_format.h): framing of physical records in
//! 32 KiB blocks. Used by the crash images of the power-loss faults, the
//! recovery-mode matrix and the `wal_recovery` fuzz target.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// WAL block size and header sizes (db/log_format.h: kBlockSize,
/// kHeaderSize, kRecyclableHeaderSize).
pub const BLOCK: u64 = 32768;
/// Header of a legacy WAL record (checksum, length, type).
pub const HEADER: u64 = 7;
/// Header of a recyclable WAL record (adds the log number).
pub const RECYCLABLE_HEADER: u64 = 11;

/// A logical WAL record holding data (one write unit): byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalRecord {
    /// Offset of its first fragment's header.
    pub start: u64,
    /// End of its last fragment.
    pub end: u64,
}

/// Parses the physical framing of a WAL file (db/log_format.h RecordType)
/// into its data records; metadata records (compression type, timestamp
/// sizes, predecessor info) are skipped. Stops at zero padding or a
/// truncated fragment.
pub fn parse_wal(b: &[u8]) -> Vec<WalRecord> {
    let mut out = Vec::new();
    let mut off = 0u64;
    let mut first = None;
    let len = b.len() as u64;
    while off < len {
        let left_in_block = BLOCK - off % BLOCK;
        if left_in_block < HEADER {
            off += left_in_block; // block trailer
            continue;
        }
        if off + HEADER > len {
            break;
        }
        let o = off as usize;
        let frag_len = u64::from(u16::from_le_bytes([b[o + 4], b[o + 5]]));
        let ty = b[o + 6];
        if ty == 0 && frag_len == 0 {
            break; // preallocated zeros
        }
        let h = if matches!(ty, 5..=8 | 11 | 131) {
            RECYCLABLE_HEADER
        } else {
            HEADER
        };
        let end = off + h + frag_len;
        if end > len {
            break;
        }
        match ty {
            1 | 5 => out.push(WalRecord { start: off, end }),
            2 | 6 => first = Some(off),
            4 | 8 => {
                if let Some(s) = first.take() {
                    out.push(WalRecord { start: s, end });
                }
            }
            _ => {}
        }
        off = end;
    }
    out
}

/// The WAL files of a database directory, oldest first.
pub fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// The newest WAL file of a database directory.
pub fn newest_wal(dir: &Path) -> Option<PathBuf> {
    wal_files(dir).pop()
}

/// True when a WAL image puts a physical record header of a recyclable
/// type (5-8, 11, 131) where the log reader will parse it: the trigger of
/// [`crate::known_bugs::OPEN_HANG`] (`DB::Open` loops forever on it in a
/// log that is not recycled). Generous on purpose: every header on the
/// record chain and at every block start is checked.
pub fn reaches_recyclable_header(b: &[u8]) -> bool {
    const BLOCK: usize = self::BLOCK as usize;
    let recyclable = |t: u8| matches!(t, 5..=8 | 11 | 131);
    let mut starts: Vec<usize> = (0..b.len()).step_by(BLOCK).collect();
    let mut off = 0usize;
    while off + 7 <= b.len() {
        if BLOCK - off % BLOCK < 7 {
            off += BLOCK - off % BLOCK;
            continue;
        }
        starts.push(off);
        let len = usize::from(u16::from_le_bytes([b[off + 4], b[off + 5]]));
        let hdr = if recyclable(b[off + 6]) { 11 } else { 7 };
        off += hdr + len;
    }
    starts
        .into_iter()
        .any(|o| o + 7 <= b.len() && recyclable(b[o + 6]))
}

/// Appends `len` random non-zero bytes (a torn tail) to a WAL image and
/// returns how many. The bytes are redrawn while they would trigger the
/// known `DB::Open` hang ([`crate::known_bugs::OPEN_HANG`]), so runs keep
/// finding new things instead of that one; with
/// `CRASHCHECK_REPRODUCE_KNOWN_BUGS=1`, or on a RocksDB without the bug,
/// the first draw is kept.
pub fn append_garbage(
    bytes: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    len: std::ops::RangeInclusive<usize>,
) -> usize {
    let reproduce = !crate::store::engine::excuses(&crate::known_bugs::OPEN_HANG);
    let base = bytes.len();
    let mut n = 0;
    for _ in 0..64 {
        bytes.truncate(base);
        n = rng.random_range(len.clone());
        bytes.extend((0..n).map(|_| rng.random_range(1..=255u8)));
        if reproduce || !reaches_recyclable_header(bytes) {
            break;
        }
    }
    n
}
