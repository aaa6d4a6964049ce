//! Observing a recovered database: a verifier child reopens it, scans it
//! and reads sampled keys, and sends back what it saw ([`Recovered`]) as
//! value hashes through a pipe. The parent never opens RocksDB.

use std::path::Path;
use std::time::Duration;

use crate::crash::{isolate_output, ChildEnd, CrashError};
use crate::store::{StoreFactory, StoreOptions};

/// What a recovered database holds: every entry as `(key, value hash)` in
/// key order, and point reads of sampled keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Full scan.
    pub entries: Vec<(Vec<u8>, u128)>,
    /// Point reads: `(key, value hash or absent)`.
    pub point_reads: Vec<(Vec<u8>, Option<u128>)>,
}

impl Recovered {
    /// Reads a store: every entry (values as hashes) and point reads of
    /// `sample` (memtable, SST and bloom paths). Every entry comes from a
    /// full scan, or, with `universe` (a store without scans,
    /// [`crate::store::Capabilities::scans`]), from point reads of those
    /// keys: the keys the cycle wrote, so a key outside them that the
    /// store invented stays unseen.
    pub fn read(
        store: &mut dyn crate::store::Store,
        sample: &[Vec<u8>],
        universe: Option<&[Vec<u8>]>,
    ) -> Result<Recovered, String> {
        let all = match universe {
            None => store
                .scan_all()
                .map_err(|e| format!("scan after recovery failed: {e}"))?,
            Some(keys) => point_read_all(store, keys)?,
        };
        let entries = all
            .into_iter()
            .map(|(k, v)| {
                let h = crate::model::value_hash(&v);
                (k, h)
            })
            .collect();
        let mut point_reads = Vec::with_capacity(sample.len());
        for k in sample {
            let v = store
                .get(k, None)
                .map_err(|e| format!("get after recovery failed: {e}"))?;
            point_reads.push((k.clone(), v.as_deref().map(crate::model::value_hash)));
        }
        Ok(Recovered {
            entries,
            point_reads,
        })
    }
}

/// The keys a verifier reads one by one when `factory`'s store has no
/// scans ([`crate::store::Capabilities::scans`]): every key in the base or
/// written by any of `histories`, the only keys a recovered state can
/// hold that the model knows of. Empty for a store with scans.
pub fn point_read_keys(
    factory: &dyn StoreFactory,
    histories: &[crate::model::history::History],
) -> Vec<Vec<u8>> {
    if factory.capabilities().scans {
        return Vec::new();
    }
    let keys: std::collections::BTreeSet<&Vec<u8>> =
        histories.iter().flat_map(|h| h.timelines.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// Key-value pairs in key order.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The live entries among `keys`, in key order, read one by one.
fn point_read_all(
    store: &mut dyn crate::store::Store,
    keys: &[Vec<u8>],
) -> Result<Entries, String> {
    let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out = Vec::new();
    for k in sorted {
        if let Some(v) = store
            .get(k, None)
            .map_err(|e| format!("get after recovery failed: {e}"))?
        {
            out.push((k.clone(), v));
        }
    }
    Ok(out)
}

/// What the verifier child reports.
#[derive(Clone, Debug)]
pub enum Reopened {
    /// The database opened; its contents.
    Opened(Recovered),
    /// Open (or the scan) failed with this message.
    Failed(String),
    /// The verifier child did not finish or died: how it ended.
    Died(ChildEnd),
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode(r: &Result<Recovered, String>) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Err(msg) => {
            out.push(1);
            put_bytes(&mut out, msg.as_bytes());
        }
        Ok(rec) => {
            out.push(0);
            out.extend_from_slice(&(rec.entries.len() as u32).to_le_bytes());
            for (k, h) in &rec.entries {
                put_bytes(&mut out, k);
                out.extend_from_slice(&h.to_le_bytes());
            }
            out.extend_from_slice(&(rec.point_reads.len() as u32).to_le_bytes());
            for (k, h) in &rec.point_reads {
                put_bytes(&mut out, k);
                match h {
                    None => out.push(0),
                    Some(h) => {
                        out.push(1);
                        out.extend_from_slice(&h.to_le_bytes());
                    }
                }
            }
        }
    }
    out
}

struct Cursor<'a>(&'a [u8]);
impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
}

fn decode(b: &[u8]) -> Option<Result<Recovered, String>> {
    let mut c = Cursor(b);
    match c.take(1)?[0] {
        1 => Some(Err(String::from_utf8_lossy(&c.bytes()?).into_owned())),
        0 => {
            let mut rec = Recovered::default();
            for _ in 0..c.u32()? {
                let k = c.bytes()?;
                rec.entries.push((k, c.u128()?));
            }
            for _ in 0..c.u32()? {
                let k = c.bytes()?;
                let v = match c.take(1)?[0] {
                    0 => None,
                    _ => Some(c.u128()?),
                };
                rec.point_reads.push((k, v));
            }
            Some(Ok(rec))
        }
        _ => None,
    }
}

fn verify_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    sample: &[Vec<u8>],
    universe: &[Vec<u8>],
) -> Result<Recovered, String> {
    let mut store = factory.open(path, opts).map_err(|e| e.to_string())?;
    let keys = (!factory.capabilities().scans).then_some(universe);
    let rec = Recovered::read(store.as_mut(), sample, keys)?;
    store.close().map_err(|e| e.to_string())?;
    Ok(rec)
}

/// Forks a verifier child that opens the database at `path`, scans it
/// (or, for a store without scans, reads every key of `universe`), reads
/// `sample` point-wise and sends back what it saw.
pub fn reopen_and_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    sample: &[Vec<u8>],
    universe: &[Vec<u8>],
    timeout: Duration,
) -> Result<Reopened, CrashError> {
    let (end, data) = isolate_output(
        || encode(&verify_read(factory, path, opts, sample, universe)),
        timeout,
    )?;
    Ok(match (end, decode(&data)) {
        (ChildEnd::Exited { code: 0 }, Some(Ok(rec))) => Reopened::Opened(rec),
        (ChildEnd::Exited { code: 0 }, Some(Err(msg))) => Reopened::Failed(msg),
        (end, _) => Reopened::Died(end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let rec = Recovered {
            entries: vec![(b"a".to_vec(), 1), (b"bb".to_vec(), u128::MAX)],
            point_reads: vec![(b"a".to_vec(), Some(1)), (b"zz".to_vec(), None)],
        };
        assert_eq!(decode(&encode(&Ok(rec.clone()))), Some(Ok(rec)));
        assert_eq!(
            decode(&encode(&Err("boom".into()))),
            Some(Err("boom".into()))
        );
        assert_eq!(decode(&[0, 5, 0]), None, "truncated data is rejected");
    }
}
