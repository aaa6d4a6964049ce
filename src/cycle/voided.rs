//! Histories with units voided: a unit that failed before the store
//! resumed (rule E5, admitted both ways) and the units a store refused as
//! conflicts (rule C1, which left nothing).

use crate::model::history::History;

/// The histories with the units each writer's store refused as conflicts
/// voided (docs/durability.md C1: a refused unit leaves nothing; it keeps
/// its number), or `None` when none was refused. Everything after the
/// writer (the judge, the chain's state, the repro case) uses these.
pub fn refused_histories(histories: &[History], refused: &[Vec<u64>]) -> Option<Vec<History>> {
    if refused.iter().all(Vec::is_empty) {
        return None;
    }
    Some(
        histories
            .iter()
            .zip(
                refused
                    .iter()
                    .map(Vec::as_slice)
                    .chain(std::iter::repeat(&[][..])),
            )
            .map(|(h, r)| {
                if r.is_empty() {
                    h.clone()
                } else {
                    h.with_units_voided(r)
                }
            })
            .collect(),
    )
}

/// A write unit that failed before the store resumed (disk-full) is in
/// flight for good: the histories without it, whose states are admitted
/// too (docs/durability.md E5).
pub(super) fn voided_histories(
    histories: &[History],
    unit: Option<u64>,
) -> Option<(u64, Vec<History>)> {
    let u = unit?;
    let mut v = histories.to_vec();
    if let Some(h) = v.first_mut() {
        *h = h.with_unit_voided(u);
    }
    Some((u, v))
}
