//! The states a recovered database may hold beyond a plain prefix of
//! every writer's units: FIFO compaction's suffixes (rule F1) and ingests
//! that outlived earlier writes (rule I1), each writer's keys judged on
//! their own.

use crate::model::history::History;
use crate::observe::Recovered;
use crate::op::Op;
use crate::oracle::Admissible;
use crate::verify::{Matched, Verdict};

/// Each writer's match of its own keys in `rec` (`matched(t, history,
/// its keys)`); `None` when some writer's keys do not match.
fn per_writer(
    histories: &[History],
    rec: &Recovered,
    matched: impl Fn(usize, &History, &Recovered) -> Option<Matched>,
) -> Option<Vec<Matched>> {
    let n = histories.len();
    histories
        .iter()
        .enumerate()
        .map(|(t, h)| matched(t, h, &crate::verify::owned_by(rec, t, n)))
        .collect()
}

/// Rule F1: each writer's keys are a FIFO suffix state of an admissible
/// prefix (FIFO drops a prefix of every writer's units: files are ordered
/// by sequence number); where the column families may recover to
/// different prefixes (`apart`), each column family's of its own. `None`
/// when some writer's are not.
pub(super) fn fifo_states(
    histories: &[History],
    adm_of: &dyn Fn(usize, Option<usize>) -> Admissible,
    apart: bool,
    rec: &Recovered,
    cfs: usize,
) -> Option<Vec<Matched>> {
    use crate::verify::fifo::{fifo_match, fifo_match_apart};
    per_writer(histories, rec, |t, h, own| {
        let m = match apart && cfs > 1 {
            true => fifo_match_apart(h, &|c| adm_of(t, Some(c)), own, cfs),
            false => fifo_match(h, &adm_of(t, None), own, cfs),
        };
        m.map(Matched::FifoSuffix)
    })
}

/// Rule I1: each writer's keys are a prefix, or a prefix plus the ingests
/// after it. `None` when no history ingests, or some writer's keys are
/// neither.
pub(super) fn ingest_states(
    histories: &[History],
    adm_of: &dyn Fn(usize, Option<usize>) -> Admissible,
    progress: &dyn Fn(usize) -> crate::crash::Progress,
    rec: &Recovered,
) -> Option<Vec<Matched>> {
    let ingests = |h: &History| h.ops.iter().any(|o| matches!(o, Op::Ingest { .. }));
    if !histories.iter().any(ingests) {
        return None;
    }
    per_writer(histories, rec, |t, h, own| {
        let adm = adm_of(t, None);
        match crate::verify::verify(h, &adm, own) {
            Verdict::Ok { prefix } => Some(Matched::Prefix(prefix)),
            _ => crate::verify::ingest::ingest_match(h, &adm, progress(t).acked, own),
        }
    })
}
