//! Two-phase commit after a crash: the transactions the open recovered
//! prepared, judged against the ops that prepared them and the state the
//! verifier read before and after it resolved them (docs/durability.md
//! P1-P4).
//!
//! The recovered state itself (`Recovered::entries`, read before any
//! prepared transaction was resolved) is judged as every state is: a
//! prepared transaction's writes are invisible until its commit
//! (transaction.h `Prepare`; pessimistic_transaction.cc:640-679 writes the
//! prepare with `disable_memtable`), so a prefix that holds its unit says
//! its commit was recovered. What is judged here is what only two-phase
//! commit adds.

use std::collections::HashMap;

use super::explain::Explanation;
use super::ViolationClass;
use crate::model::history::History;
use crate::model::{fingerprint_of, Model, State};
use crate::observe::Recovered;
use crate::op::{Op, TxnEnd};

/// What the judgement needs besides the histories and the read-back.
#[derive(Clone, Debug, Default)]
pub struct PrepareFacts {
    /// Per writer: the op the kill found inside a two-phase transaction
    /// after its prepare had returned `Ok` (its step point passed).
    pub acked_prepare: Vec<Option<usize>>,
    /// True when a prepare that returned `Ok` survives this crash by the
    /// mode's rule (P1); the loss check (P2) runs only then.
    pub durable: bool,
}

/// Where a named two-phase transaction is: writer, op index.
fn named(histories: &[History]) -> HashMap<&str, (usize, usize)> {
    let mut m = HashMap::new();
    for (t, h) in histories.iter().enumerate() {
        for (i, op) in h.ops.iter().enumerate() {
            if let Op::Txn(x) = op {
                if let Some(name) = &x.prepare {
                    m.insert(name.as_str(), (t, i));
                }
            }
        }
    }
    m
}

/// The state after the verifier resolved the recovered prepared
/// transactions: `before` with the writes of each committed one applied,
/// in their ops' order (P4). What a chain carries on.
pub fn after_state(histories: &[History], before: State, rec: &Recovered) -> State {
    let names = named(histories);
    let mut committed: Vec<(usize, usize)> = rec
        .prepared
        .iter()
        .filter(|p| p.committed)
        .filter_map(|p| names.get(p.name.as_str()).copied())
        .collect();
    committed.sort_unstable();
    let mut m = Model::from_state(before);
    for (t, i) in committed {
        if let Op::Txn(x) = &histories[t].ops[i] {
            x.writes.iter().for_each(|w| m.apply(w));
        }
    }
    m.state().clone()
}

/// [`after_state`], only when it equals what the verifier read back after
/// resolving (`None`: it does not, a violation P4 reports).
pub fn resolved_state(histories: &[History], before: State, rec: &Recovered) -> Option<State> {
    if rec.prepared.is_empty() {
        return Some(before);
    }
    let s = after_state(histories, before, rec);
    holds(&s, rec.after.as_deref().unwrap_or(&rec.entries)).then_some(s)
}

/// True when `state` holds exactly `entries` (by the 128-bit
/// fingerprint).
fn holds(state: &State, entries: &[(Vec<u8>, u128)]) -> bool {
    let got = fingerprint_of(state.iter().map(|(k, e)| (k.as_slice(), e.hash)));
    let want = fingerprint_of(entries.iter().map(|(k, v)| (k.as_slice(), *v)));
    got == want && state.len() == entries.len()
}

/// Whether the unit of op `i` of history `h` is in `own` (the keys its
/// writer owns, as recovered): `Some(true)` when only prefixes that hold
/// it match them, `Some(false)` when only prefixes without it do, `None`
/// when both or none do (then it cannot be told).
fn unit_recovered(h: &History, own: &Recovered, i: usize) -> Option<bool> {
    let u = h.unit_of_op.get(i).copied().flatten()? as usize;
    let fp = fingerprint_of(own.entries.iter().map(|(k, v)| (k.as_slice(), *v)));
    let before = h.fps.get(..u)?.contains(&fp);
    let after = h.fps.get(u..)?.contains(&fp);
    match (before, after) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

/// Judges the recovered prepared transactions of a cycle whose state was
/// explained by `expl`: `Err((class, detail))` on a violation.
pub fn judge(
    histories: &[History],
    expl: &Explanation,
    cfs: usize,
    rec: &Recovered,
    facts: &PrepareFacts,
) -> Result<(), (ViolationClass, String)> {
    let names = named(histories);
    let bad = |d: String| Err((ViolationClass::BadPrepared, d));
    for p in &rec.prepared {
        // P3: only a transaction the cycle prepared comes back prepared,
        // with its own writes (its batch rebuilt from the prepare section:
        // pessimistic_transaction_db.cc:124-187), and never also
        // committed (write_batch.cc MarkCommit replays a recovered
        // transaction and drops it).
        let Some(&(t, i)) = names.get(p.name.as_str()) else {
            return bad(format!(
                "recovery brought back a prepared transaction '{}' that no op of the cycle prepared",
                p.name
            ));
        };
        let Op::Txn(x) = &histories[t].ops[i] else {
            continue;
        };
        if p.entries != x.writes.len() as u64 {
            return bad(format!(
                "prepared transaction '{}' came back with {} writes; its op `{}` has {}",
                p.name,
                p.entries,
                histories[t].ops[i],
                x.writes.len()
            ));
        }
        let own = super::owned_by(rec, t, histories.len());
        if unit_recovered(&histories[t], &own, i) == Some(true) {
            return bad(format!(
                "transaction '{}' came back prepared although the recovered state holds its commit",
                p.name
            ));
        }
    }
    // P4: resolving them leaves the state with exactly the committed
    // ones' writes added (transaction.h `Commit`, `Rollback`).
    if !rec.prepared.is_empty() {
        let before = expl.state(histories, cfs);
        let want = after_state(histories, before, rec);
        let after = rec.after.as_deref().unwrap_or(&rec.entries);
        if !holds(&want, after) {
            let how: Vec<String> = rec
                .prepared
                .iter()
                .map(|p| {
                    let did = if p.committed {
                        "committed"
                    } else {
                        "rolled back"
                    };
                    format!("'{}' {did}", p.name)
                })
                .collect();
            return bad(format!(
                "after the verifier resolved the recovered prepared transactions ({}), the database holds {} entries, not the recovered state with the committed ones' writes ({} entries)",
                how.join(", "),
                after.len(),
                want.len()
            ));
        }
    }
    lost(histories, rec, facts)
}

/// P2: a prepare that returned `Ok` and is durable by the mode's rule
/// comes back prepared, unless its commit was recovered.
fn lost(
    histories: &[History],
    rec: &Recovered,
    facts: &PrepareFacts,
) -> Result<(), (ViolationClass, String)> {
    if !facts.durable {
        return Ok(());
    }
    for (t, at) in facts.acked_prepare.iter().enumerate() {
        let Some(i) = *at else { continue };
        let Some(h) = histories.get(t) else {
            continue;
        };
        let Some(Op::Txn(x)) = h.ops.get(i) else {
            continue;
        };
        let Some(name) = &x.prepare else { continue };
        // A rollback's transaction leaves nothing either way; only a
        // commit's can be told from the state.
        if x.end != TxnEnd::Commit || rec.prepared.iter().any(|p| &p.name == name) {
            continue;
        }
        let own = super::owned_by(rec, t, histories.len());
        if unit_recovered(h, &own, i) == Some(false) {
            return Err((
                ViolationClass::LostPrepared,
                format!(
                    "{}transaction '{name}' (op {}) was prepared (the kill came after its prepare returned Ok, durable in this mode) but came back neither prepared nor committed",
                    match histories.len() {
                        1 => String::new(),
                        _ => format!("writer {t}: "),
                    },
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PreparedTxn;

    /// Unit 1 a put, unit 2 a two-phase commit of two puts (op 1), then a
    /// two-phase rollback (op 2).
    fn hist() -> History {
        let ops: Vec<Op> = [
            "put a \"1\"",
            "txn prepare p0.1 commit put b \"2\" | put c \"3\"",
            "txn prepare p0.2 rollback put d \"4\"",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        History::new(ops, State::new())
    }

    fn rec(h: &History, p: u64, prepared: &[(&str, u64, bool)], after: Option<u64>) -> Recovered {
        let of = |p: u64| {
            h.state_at(p)
                .iter()
                .map(|(k, e)| (k.clone(), e.hash))
                .collect::<Vec<_>>()
        };
        Recovered {
            entries: of(p),
            prepared: prepared
                .iter()
                .map(|&(n, e, c)| PreparedTxn {
                    name: n.into(),
                    entries: e,
                    committed: c,
                })
                .collect(),
            after: after.map(of),
            ..Recovered::default()
        }
    }

    fn verdict(r: &Recovered, acked: Option<usize>, durable: bool) -> Option<ViolationClass> {
        let h = [hist()];
        let facts = PrepareFacts {
            acked_prepare: vec![acked],
            durable,
        };
        // The prefix the state before resolving is (as the cycle's
        // verdict explains it).
        let p = (0..=h[0].units())
            .rev()
            .find(|&p| holds(&h[0].state_at(p), &r.entries))
            .expect("a prefix");
        judge(&h, &Explanation::prefixes_of(&[p]), 1, r, &facts)
            .err()
            .map(|e| e.0)
    }

    #[test]
    fn a_recovered_prepared_transaction_resolves_to_its_writes() {
        let h = hist();
        // Prepared, then committed by the verifier: prefix 1, then 2.
        let r = rec(&h, 1, &[("p0.1", 2, true)], Some(2));
        assert_eq!(verdict(&r, Some(1), true), None);
        // Rolled back: the state stays.
        let r = rec(&h, 1, &[("p0.1", 2, false)], Some(1));
        assert_eq!(verdict(&r, Some(1), true), None);
        // The chain carries the state after resolving.
        let s = resolved_state(
            std::slice::from_ref(&h),
            h.state_at(1),
            &rec(&h, 1, &[("p0.1", 2, true)], Some(2)),
        );
        assert_eq!(s, Some(h.state_at(2)));
    }

    #[test]
    fn a_transaction_back_wrong_is_bad_prepared() {
        let h = hist();
        // (state before as a prefix, recovered (name, entries, committed),
        // state after as a prefix): each one bad-prepared.
        type Case<'a> = (&'a str, u64, (&'a str, u64, bool), u64);
        let cases: [Case; 5] = [
            ("a name no op prepared", 1, ("p9.9", 2, false), 1),
            ("part of its writes", 1, ("p0.1", 1, false), 1),
            ("committed and prepared at once", 2, ("p0.1", 2, false), 2),
            (
                "committed by the verifier, its writes absent",
                1,
                ("p0.1", 2, true),
                1,
            ),
            (
                "rolled back by the verifier, its writes there",
                1,
                ("p0.1", 2, false),
                2,
            ),
        ];
        for (what, before, p, after) in cases {
            let r = rec(&h, before, &[p], Some(after));
            assert_eq!(
                verdict(&r, None, true),
                Some(ViolationClass::BadPrepared),
                "{what}"
            );
        }
    }

    #[test]
    fn a_durable_prepare_that_vanished_is_lost() {
        let h = hist();
        let nothing = rec(&h, 1, &[], None);
        assert_eq!(
            verdict(&nothing, Some(1), true),
            Some(ViolationClass::LostPrepared)
        );
        // Not durable in the mode, or the kill came before the prepare
        // returned: admitted.
        assert_eq!(verdict(&nothing, Some(1), false), None);
        assert_eq!(verdict(&nothing, None, true), None);
        // Its commit recovered: admitted.
        assert_eq!(verdict(&rec(&h, 2, &[], None), Some(1), true), None);
        // A rollback's transaction leaves nothing either way.
        assert_eq!(verdict(&rec(&h, 2, &[], None), Some(2), true), None);
    }
}
