//! Observing a recovered database: a verifier child reopens it, scans it
//! and reads sampled keys, and sends back what it saw ([`Recovered`]) as
//! value hashes through a pipe. The parent never opens RocksDB.

use std::path::Path;
use std::time::Duration;

use crate::crash::{isolate_output, ChildEnd, CrashError};
use crate::store::{PreparedTxn, StoreFactory, StoreOptions};

/// What a recovered database holds: every entry as `(key, value hash)` in
/// key order, and point reads of sampled keys; with two-phase commit, the
/// transactions the open recovered prepared, how the verifier resolved
/// them and the entries after that.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Full scan.
    pub entries: Vec<(Vec<u8>, u128)>,
    /// Point reads: `(key, value hash or absent)`.
    pub point_reads: Vec<(Vec<u8>, Option<u128>)>,
    /// Transactions recovered in the prepared state, each committed or
    /// rolled back after `entries` was read (`Store::resolve_prepared`).
    pub prepared: Vec<PreparedTxn>,
    /// Every entry after they were resolved (`None` when there were none).
    pub after: Option<Vec<(Vec<u8>, u128)>>,
}

/// Whether the verifier commits (true) or rolls back the recovered
/// prepared transaction `name`: drawn from the cycle's seed, so a replay
/// resolves it the same way.
pub fn commit_recovered(seed: u64, name: &str) -> bool {
    xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), seed) & 1 == 1
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
            prepared: Vec::new(),
            after: None,
        })
    }

    /// Resolves the transactions the open recovered prepared (committed
    /// where `commit_seed` draws so, rolled back otherwise, all rolled
    /// back without a seed) and reads every entry again.
    fn resolve(
        &mut self,
        store: &mut dyn crate::store::Store,
        universe: Option<&[Vec<u8>]>,
        commit_seed: Option<u64>,
    ) -> Result<(), String> {
        let mut decide = |name: &str| commit_seed.is_some_and(|s| commit_recovered(s, name));
        self.prepared = store
            .resolve_prepared(&mut decide)
            .map_err(|e| e.to_string())?;
        if !self.prepared.is_empty() {
            let again = Recovered::read(store, &[], universe)?;
            self.after = Some(again.entries);
        }
        Ok(())
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

fn put_entries(out: &mut Vec<u8>, entries: &[(Vec<u8>, u128)]) {
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (k, h) in entries {
        put_bytes(out, k);
        out.extend_from_slice(&h.to_le_bytes());
    }
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
            put_entries(&mut out, &rec.entries);
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
            out.extend_from_slice(&(rec.prepared.len() as u32).to_le_bytes());
            for p in &rec.prepared {
                put_bytes(&mut out, p.name.as_bytes());
                out.extend_from_slice(&p.entries.to_le_bytes());
                out.push(u8::from(p.committed));
            }
            match &rec.after {
                None => out.push(0),
                Some(after) => {
                    out.push(1);
                    put_entries(&mut out, after);
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
    fn entries(&mut self) -> Option<Vec<(Vec<u8>, u128)>> {
        (0..self.u32()?)
            .map(|_| Some((self.bytes()?, self.u128()?)))
            .collect()
    }
    fn prepared(&mut self) -> Option<PreparedTxn> {
        let name = String::from_utf8(self.bytes()?).ok()?;
        let entries = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let committed = self.take(1)?[0] == 1;
        Some(PreparedTxn {
            name,
            entries,
            committed,
        })
    }
}

fn decode(b: &[u8]) -> Option<Result<Recovered, String>> {
    let mut c = Cursor(b);
    match c.take(1)?[0] {
        1 => Some(Err(String::from_utf8_lossy(&c.bytes()?).into_owned())),
        0 => {
            let mut rec = Recovered {
                entries: c.entries()?,
                ..Recovered::default()
            };
            for _ in 0..c.u32()? {
                let k = c.bytes()?;
                let v = match c.take(1)?[0] {
                    0 => None,
                    _ => Some(c.u128()?),
                };
                rec.point_reads.push((k, v));
            }
            for _ in 0..c.u32()? {
                rec.prepared.push(c.prepared()?);
            }
            rec.after = match c.take(1)?[0] {
                0 => None,
                _ => Some(c.entries()?),
            };
            Some(Ok(rec))
        }
        _ => None,
    }
}

fn verify_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    reads: &Reads<'_>,
) -> Result<Recovered, String> {
    let mut store = factory.open(path, opts).map_err(|e| e.to_string())?;
    let keys = (!factory.capabilities().scans).then_some(reads.universe);
    let mut rec = Recovered::read(store.as_mut(), reads.sample, keys)?;
    rec.resolve(store.as_mut(), keys, reads.commit_seed)?;
    store.close().map_err(|e| e.to_string())?;
    Ok(rec)
}

/// What a verifier reads besides the full state.
#[derive(Clone, Copy, Debug)]
pub struct Reads<'a> {
    /// Keys read point-wise too.
    pub sample: &'a [Vec<u8>],
    /// For a store without scans, the keys read one by one in place of a
    /// scan ([`point_read_keys`]).
    pub universe: &'a [Vec<u8>],
    /// Recovered prepared transactions are committed or rolled back as
    /// [`commit_recovered`] draws from this seed; `None`: all rolled back.
    pub commit_seed: Option<u64>,
}

/// Forks a verifier child that opens the database at `path`, scans it
/// (or, for a store without scans, reads every key of `universe`), reads
/// `sample` point-wise, resolves the transactions recovered prepared (all
/// rolled back) and sends back what it saw.
pub fn reopen_and_read(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    sample: &[Vec<u8>],
    universe: &[Vec<u8>],
    timeout: Duration,
) -> Result<Reopened, CrashError> {
    let reads = Reads {
        sample,
        universe,
        commit_seed: None,
    };
    reopen_and_resolve(factory, path, opts, &reads, timeout)
}

/// [`reopen_and_read`], with the recovered prepared transactions resolved
/// as `reads` says.
pub fn reopen_and_resolve(
    factory: &dyn StoreFactory,
    path: &Path,
    opts: &StoreOptions,
    reads: &Reads<'_>,
    timeout: Duration,
) -> Result<Reopened, CrashError> {
    let (end, data) = isolate_output(|| encode(&verify_read(factory, path, opts, reads)), timeout)?;
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
        let mut rec = Recovered {
            entries: vec![(b"a".to_vec(), 1), (b"bb".to_vec(), u128::MAX)],
            point_reads: vec![(b"a".to_vec(), Some(1)), (b"zz".to_vec(), None)],
            ..Recovered::default()
        };
        assert_eq!(decode(&encode(&Ok(rec.clone()))), Some(Ok(rec.clone())));
        rec.prepared = vec![PreparedTxn {
            name: "p0.3".into(),
            entries: 2,
            committed: true,
        }];
        rec.after = Some(vec![(b"c".to_vec(), 7)]);
        assert_eq!(decode(&encode(&Ok(rec.clone()))), Some(Ok(rec)));
        assert_eq!(
            decode(&encode(&Err("boom".into()))),
            Some(Err("boom".into()))
        );
        assert_eq!(decode(&[0, 5, 0]), None, "truncated data is rejected");
    }
}
