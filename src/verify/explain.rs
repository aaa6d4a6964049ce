//! What a consistent verdict matched: which admitted state the recovered
//! database equals, per writer.
//!
//! The oracle admits states that are not plain prefixes of a writer's
//! history: a prefix plus ingests that outlived earlier writes (rule I1,
//! [`super::ingest`]), column families at different prefixes where no
//! common prefix is promised ([`super::verify_all`]), a FIFO suffix state
//! (rule F1, [`super::fifo`]), and any of these over the history with a
//! failed write unit voided (rule E5, `History::with_unit_voided`). Code
//! that needs the recovered state (a chained campaign's next base, a
//! repro file's `base:` section, statistics) derives it from the
//! [`Explanation`] the verdict carries, never from "the prefix", so an
//! admitted non-prefix state cannot be mistaken for a prefix.

use std::fmt;

use crate::keyspace::{cf_of, owner_of};
use crate::model::history::History;
use crate::model::{fingerprint_of, Model, State};
use crate::observe::Recovered;

use super::fifo::FifoMatch;
use super::project_cf;

/// The admitted state one writer's keys equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    /// Units `1..=P` of the writer's history.
    Prefix(u64),
    /// Units `1..=prefix`, then the ingest units `ingests` (all after
    /// `prefix`, in order): ingests that outlived earlier writes (I1).
    PrefixPlusIngests {
        /// The prefix `P`.
        prefix: u64,
        /// The ingest units applied after it.
        ingests: Vec<u64>,
    },
    /// Column family `c` at prefix `per_cf[c]` (no common prefix promised).
    PerColumnFamily(Vec<u64>),
    /// FIFO compaction dropped the oldest units (F1).
    FifoSuffix(FifoMatch),
}

impl Matched {
    /// The prefix reported for this writer: the plain prefix, the prefix
    /// before the outliving ingests, the smallest column family's, or the
    /// FIFO state's admissible prefix.
    pub fn prefix(&self) -> u64 {
        match self {
            Matched::Prefix(p) => *p,
            Matched::PrefixPlusIngests { prefix, .. } => *prefix,
            Matched::PerColumnFamily(v) => v.iter().copied().min().unwrap_or(0),
            Matched::FifoSuffix(m) => m.prefix,
        }
    }

    /// The state of `h` this match names (every key of `h`, over `cfs`
    /// column families).
    pub fn state(&self, h: &History, cfs: usize) -> State {
        let cfs = cfs.max(1);
        match self {
            Matched::Prefix(p) => h.state_at(*p),
            Matched::PrefixPlusIngests { prefix, ingests } => {
                let mut m = Model::from_state(h.state_at(*prefix));
                for &u in ingests {
                    if let Some(&i) = h.op_of_unit.get(u as usize - 1) {
                        for w in h.ops[i].write_ops() {
                            m.apply(w);
                        }
                    }
                }
                m.state().clone()
            }
            Matched::PerColumnFamily(per_cf) => {
                let mut s = State::new();
                for (c, &p) in per_cf.iter().enumerate() {
                    s.extend(
                        h.state_at(p)
                            .into_iter()
                            .filter(|(k, _)| cf_of(k, cfs) == c),
                    );
                }
                s
            }
            Matched::FifoSuffix(f) => {
                let mut s = State::new();
                for (c, &cut) in f.cutoffs.iter().enumerate() {
                    let projected;
                    let hc = if cfs == 1 {
                        h
                    } else {
                        projected = project_cf(h, c, cfs);
                        &projected
                    };
                    let mut m = Model::new();
                    let p = f.prefixes.get(c).copied().unwrap_or(f.prefix);
                    for u in cut + 1..=p {
                        for w in hc.ops[hc.op_of_unit[u as usize - 1]].write_ops() {
                            m.apply(w);
                        }
                    }
                    s.extend(
                        m.state()
                            .iter()
                            .filter(|(k, _)| cf_of(k, cfs) == c)
                            .map(|(k, e)| (k.clone(), e.clone())),
                    );
                }
                s
            }
        }
    }
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::Prefix(p) => write!(f, "prefix {p}"),
            Matched::PrefixPlusIngests { prefix, ingests } => write!(
                f,
                "prefix {prefix} plus the ingest units {ingests:?} that outlived earlier writes (I1)"
            ),
            Matched::PerColumnFamily(v) => write!(f, "column families at prefixes {v:?}"),
            Matched::FifoSuffix(m) => write!(
                f,
                "prefixes {:?} per column family with FIFO's oldest units dropped up to {:?} (F1)",
                m.prefixes, m.cutoffs
            ),
        }
    }
}

/// Which admitted state a consistent database equals: one [`Matched`] per
/// writer, over the writers' histories or, when `voided_unit` is set, over
/// the first writer's history with that unit voided (E5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// Per writer.
    pub writers: Vec<Matched>,
    /// The first writer's unit that failed and is in flight for good: the
    /// match is against the history without it.
    pub voided_unit: Option<u64>,
}

impl Explanation {
    /// Plain prefixes, one per writer.
    pub fn prefixes_of(prefixes: &[u64]) -> Explanation {
        Explanation {
            writers: prefixes.iter().map(|&p| Matched::Prefix(p)).collect(),
            voided_unit: None,
        }
    }

    /// The first writer's reported prefix.
    pub fn prefix(&self) -> u64 {
        self.writers.first().map_or(0, Matched::prefix)
    }

    /// Each writer's reported prefix.
    pub fn prefixes(&self) -> Vec<u64> {
        self.writers.iter().map(Matched::prefix).collect()
    }

    /// True when every writer is at a plain prefix of its own history.
    pub fn is_plain(&self) -> bool {
        self.voided_unit.is_none() && self.writers.iter().all(|m| matches!(m, Matched::Prefix(_)))
    }

    /// True when an ingest outlived earlier writes (I1) for some writer.
    pub fn ingest_outlived(&self) -> bool {
        self.writers
            .iter()
            .any(|m| matches!(m, Matched::PrefixPlusIngests { .. }))
    }

    /// The first writer's FIFO match, if FIFO had dropped units (F1).
    pub fn fifo(&self) -> Option<&FifoMatch> {
        self.writers.iter().find_map(|m| match m {
            Matched::FifoSuffix(f) => Some(f),
            _ => None,
        })
    }

    /// The whole state this explanation names for `histories` (the cycle's
    /// histories as planned; the voided unit is applied here), over `cfs`
    /// column families: each writer's match, restricted to the keys it
    /// owns ([`crate::keyspace`]).
    pub fn state(&self, histories: &[History], cfs: usize) -> State {
        let n = histories.len();
        let mut s = State::new();
        for (t, (h, m)) in histories.iter().zip(&self.writers).enumerate() {
            let voided;
            let h = match (t, self.voided_unit) {
                (0, Some(u)) => {
                    voided = h.with_unit_voided(u);
                    &voided
                }
                _ => h,
            };
            let mine = |k: &[u8]| {
                let o = owner_of(k);
                o == t || (t == 0 && o >= n)
            };
            let own = m.state(h, cfs);
            if n <= 1 {
                return own;
            }
            s.extend(own.into_iter().filter(|(k, _)| mine(k)));
        }
        s
    }

    /// [`Explanation::state`], only when it equals what the verifier read
    /// back (`rec`, by the 128-bit fingerprint): the state a chain may
    /// carry on. `None` is a mismatch between the verdict and its own
    /// explanation, which must never happen; the caller starts afresh.
    pub fn state_of(&self, histories: &[History], cfs: usize, rec: &Recovered) -> Option<State> {
        let s = self.state(histories, cfs);
        let got = fingerprint_of(s.iter().map(|(k, e)| (k.as_slice(), e.hash)));
        let want = fingerprint_of(rec.entries.iter().map(|(k, v)| (k.as_slice(), *v)));
        (got == want && s.len() == rec.entries.len()).then_some(s)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (t, m) in self.writers.iter().enumerate() {
            if t > 0 {
                f.write_str("; ")?;
            }
            if self.writers.len() > 1 {
                write!(f, "writer {t}: ")?;
            }
            write!(f, "{m}")?;
            if let (0, Some(u)) = (t, self.voided_unit) {
                write!(f, " of the history with failed unit {u} voided (E5)")?;
            }
        }
        Ok(())
    }
}
