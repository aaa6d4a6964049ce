//! Writers that contend (stores with [`crate::store::Capabilities::conflicts`],
//! several writers): what the writer child records so that conflicts are
//! outcomes and a commit that should have conflicted is a violation
//! (docs/durability.md C1-C3).
//!
//! Every writer owns its keys; a transaction contends by reading another
//! writer's lockable key for update (`lock K`, [`crate::keyspace::lock_slot`]).
//! All writer threads share one logical clock in the log page:
//! - a writer brackets each write unit that writes its lockable keys with
//!   a start and an end tick, and publishes them per key (the last that
//!   ended, the last acknowledged);
//! - a transaction ticks right after each read for update returned
//!   ([`crate::store::drive::lock_point`]); it then waits up to
//!   [`WAIT_CAP`] for the key's owner to end a write to it, so that
//!   writers really meet (not in replays, whose ops run one at a time);
//! - right before its commit ([`crate::store::drive::commit_point`]) it
//!   looks at the owners' last acknowledged writes: one that started
//!   after the read and was acknowledged before the commit started is a
//!   certain conflict. A pessimistic transaction held the key's lock over
//!   that whole time, and an optimistic one finds the key written after
//!   its read: either way the commit must not succeed (`lost-update`).
//!
//! A unit the store refused ([`StoreError::Conflict`]) is recorded, and
//! from then on the writer's reads are checked against its history with
//! that unit voided: a refused unit must leave nothing.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::log::{LogPage, SharedLog, MAX_REFUSED};
use crate::keyspace::lock_slot;
use crate::model::history::History;
use crate::op::Op;
use crate::store::drive::Answer;
use crate::store::{StoreError, StoreResult};

/// How long a transaction waits, after a read for update, for the key's
/// owner to end a write to it.
pub(super) const WAIT_CAP: Duration = Duration::from_millis(2);

/// A read for update of the running op: `(owner, slot, tick after it,
/// key)`.
type Held = (usize, usize, u64, Vec<u8>);

std::thread_local! {
    /// The log page of this writer child (null: contention not recorded).
    static PAGE: Cell<*const LogPage> = const { Cell::new(std::ptr::null()) };
    /// Wait for owners after a read for update.
    static WAIT: Cell<bool> = const { Cell::new(false) };
    /// Reads for update of the running op.
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    /// A certain conflict seen at the running op's commit point.
    static CERTAIN: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The running write unit's own lockable slots and its start tick.
    static WRITING: RefCell<(u64, Vec<usize>)> = const { RefCell::new((0, Vec::new())) };
}

fn page() -> Option<&'static LogPage> {
    let p = PAGE.with(Cell::get);
    // SAFETY: set by `install` to the shared mapping, which outlives the
    // writer child's threads (the child leaves with _exit).
    (!p.is_null()).then(|| unsafe { &*p })
}

fn tick(p: &LogPage) -> u64 {
    p.tick.fetch_add(1, Ordering::SeqCst) + 1
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> 32, v & 0xffff_ffff)
}

/// Records contention on this writer thread, through `shared`; `wait`:
/// after a read for update, wait for the key's owner (not in replays).
pub(super) fn install(shared: &SharedLog, wait: bool) {
    PAGE.with(|p| p.set(shared.get() as *const LogPage));
    WAIT.with(|w| w.set(wait));
    crate::store::drive::set_txn_hooks(Some(on_lock), Some(on_commit));
}

fn on_lock(key: &[u8]) {
    let (Some(p), Some((owner, slot))) = (page(), lock_slot(key)) else {
        return;
    };
    let read = tick(p);
    HELD.with(|h| h.borrow_mut().push((owner, slot, read, key.to_vec())));
    if !WAIT.with(Cell::get) {
        return;
    }
    let t0 = Instant::now();
    while unpack(p.slot_ended[owner][slot].load(Ordering::SeqCst)).0 <= read
        && t0.elapsed() < WAIT_CAP
    {
        std::thread::yield_now();
    }
}

fn on_commit() {
    let Some(p) = page() else {
        return;
    };
    let found = HELD.with(|h| {
        h.borrow().iter().find_map(|(owner, slot, read, key)| {
            let (start, end) = unpack(p.slot_acked[*owner][*slot].load(Ordering::SeqCst));
            (start > *read).then(|| {
                let mut k = String::new();
                let _ = crate::op::fmt_bytes(&mut k, key);
                format!(
                    "writer {owner} wrote {} (a unit started at tick {start}, acknowledged at tick {end}) after this transaction read it for update (tick {read}) and before its commit",
                    k
                )
            })
        })
    });
    if let Some(f) = found {
        let at = tick(p);
        CERTAIN.with(|c| *c.borrow_mut() = Some(format!("{f} (tick {at})")));
    }
}

/// Before op `op` of this writer (index `writer`): forgets the last op's
/// reads and, for a write unit that writes this writer's lockable keys,
/// takes its start tick.
pub(super) fn before_op(writer: usize, op: &Op) {
    let Some(p) = page() else {
        return;
    };
    HELD.with(|h| h.borrow_mut().clear());
    CERTAIN.with(|c| c.borrow_mut().take());
    let slots: Vec<usize> = match op {
        Op::Write(_) | Op::Batch(_) | Op::Txn(_) if op.is_write() => op
            .write_ops()
            .iter()
            .filter_map(|w| lock_slot(w.key()))
            .filter(|&(o, _)| o == writer)
            .map(|(_, s)| s)
            .collect(),
        _ => Vec::new(),
    };
    let start = if slots.is_empty() { 0 } else { tick(p) };
    WRITING.with(|w| *w.borrow_mut() = (start, slots));
}

/// One writer thread's side of contention: the units its store refused
/// and its history without them.
#[derive(Default)]
pub(super) struct Contender {
    refused: Vec<u64>,
    voided: Option<History>,
}

/// Why contention stops a writer.
pub(super) enum Stop {
    /// A commit succeeded that must have conflicted (docs/durability.md
    /// C2).
    LostUpdate(String),
    /// More refused units than the log holds.
    Overflow,
}

impl Contender {
    /// Records contention on this thread when `on` (several writers on a
    /// store whose writers contend), through `shared`; `wait`: see
    /// [`install`].
    pub(super) fn new(on: bool, shared: &SharedLog, wait: bool) -> Contender {
        if on {
            install(shared, wait);
        }
        Contender::default()
    }

    /// The history this writer's reads are checked against: `h` without
    /// its refused units.
    pub(super) fn history<'a>(&'a self, h: &'a History) -> &'a History {
        self.voided.as_ref().unwrap_or(h)
    }

    /// After op `i` (`op`) of `writer`: a refused op becomes an outcome
    /// (`result` is then [`Answer::Skipped`]: nothing more to check); a
    /// lost update or an overflow stops the writer.
    pub(super) fn settle(
        &mut self,
        at: (usize, usize, &Op),
        h: &History,
        result: &mut StoreResult<Answer>,
    ) -> Option<Stop> {
        match after_op(at, h, result, &mut self.refused) {
            Contended::No => None,
            Contended::Refused(v) => {
                if let Some(v) = v {
                    self.voided = Some(*v);
                }
                *result = Ok(Answer::Skipped);
                None
            }
            Contended::LostUpdate(msg) => Some(Stop::LostUpdate(msg)),
            Contended::Overflow => Some(Stop::Overflow),
        }
    }
}

/// What contention made of an op's result.
pub(super) enum Contended {
    /// Nothing: go on as usual.
    No,
    /// The store refused the op as a conflict: recorded; the writer's
    /// reads are checked against `voided` from now on (a write unit's
    /// history without it), or as before (`None`: not a write unit).
    Refused(Option<Box<History>>),
    /// A commit succeeded that must have conflicted (docs/durability.md
    /// C2): the writer stops with this message.
    LostUpdate(String),
    /// More refused units than the log holds.
    Overflow,
}

/// After op `i` (`op`) of `writer` returned `result`: publishes the end of
/// a write to lockable keys, and tells a refusal or a lost update.
/// `refused`: this writer's refused units so far (updated).
pub(super) fn after_op(
    (writer, i, op): (usize, usize, &Op),
    h: &History,
    result: &StoreResult<Answer>,
    refused: &mut Vec<u64>,
) -> Contended {
    let Some(p) = page() else {
        return Contended::No;
    };
    let (start, slots) = WRITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    if !slots.is_empty() {
        let end = tick(p);
        let v = (start << 32) | (end & 0xffff_ffff);
        for s in slots {
            p.slot_ended[writer][s].store(v, Ordering::SeqCst);
            if result.is_ok() {
                p.slot_acked[writer][s].store(v, Ordering::SeqCst);
            }
        }
    }
    let certain = CERTAIN.with(|c| c.borrow_mut().take());
    match result {
        Ok(_) => match certain {
            Some(msg) if matches!(op, Op::Txn(_)) => Contended::LostUpdate(msg),
            _ => Contended::No,
        },
        Err(StoreError::Conflict(_)) => {
            p.conflicts.fetch_add(1, Ordering::SeqCst);
            let Some(unit) = h.unit_of_op.get(i).copied().flatten() else {
                return Contended::Refused(None);
            };
            let n = p.refused_n[writer].load(Ordering::SeqCst) as usize;
            if n >= MAX_REFUSED {
                return Contended::Overflow;
            }
            p.refused[writer][n].store(unit as u32, Ordering::SeqCst);
            p.refused_n[writer].store(n as u32 + 1, Ordering::SeqCst);
            refused.push(unit);
            Contended::Refused(Some(Box::new(h.with_units_voided(refused))))
        }
        Err(_) => Contended::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::drive::{commit_point, lock_point};

    fn op(line: &str) -> Op {
        line.parse().expect("an op")
    }

    /// Writer `w` runs `line` to the result `ok` on a thread of its own.
    fn owner_writes(shared: &SharedLog, w: usize, line: &str, ok: bool) {
        std::thread::scope(|s| {
            s.spawn(|| {
                install(shared, false);
                let o = op(line);
                let h = History::new(vec![o.clone()], Default::default());
                before_op(w, &o);
                let r: StoreResult<Answer> = if ok {
                    Ok(Answer::Done)
                } else {
                    Err(StoreError::Conflict("timed out".into()))
                };
                let _ = after_op((w, 0, &o), &h, &r, &mut Vec::new());
            });
        });
    }

    /// Writer 0's transaction: reads `w01.k000003` for update, lets
    /// `between` run, commits with `Ok`.
    fn commit_after(shared: &SharedLog, between: impl FnOnce()) -> Contended {
        install(shared, false);
        let t = op("txn commit lock w01.k000003 | put w00.k000001 a");
        let h = History::new(vec![t.clone()], Default::default());
        before_op(0, &t);
        lock_point(b"w01.k000003");
        between();
        commit_point();
        after_op((0, 0, &t), &h, &Ok(Answer::Done), &mut Vec::new())
    }

    #[test]
    fn a_write_acknowledged_between_read_and_commit_must_conflict() {
        let shared = SharedLog::new().unwrap();
        let c = commit_after(&shared, || {
            owner_writes(&shared, 1, "put w01.k000003 b", true)
        });
        assert!(matches!(c, Contended::LostUpdate(ref m) if m.contains("w01.k000003")));
    }

    #[test]
    fn writes_before_the_read_refused_or_to_other_keys_do_not() {
        let shared = SharedLog::new().unwrap();
        owner_writes(&shared, 1, "put w01.k000003 b", true);
        assert!(
            matches!(commit_after(&shared, || {}), Contended::No),
            "before the read"
        );
        for (line, ok) in [
            ("put w01.k000003 b", false),
            ("put w01.k000004 b", true),
            ("put w01.k000013 b", true),
        ] {
            let c = commit_after(&shared, || owner_writes(&shared, 1, line, ok));
            assert!(matches!(c, Contended::No), "{line} {ok}");
        }
    }

    #[test]
    fn a_refused_unit_is_recorded_and_voided() {
        let shared = SharedLog::new().unwrap();
        install(&shared, false);
        let ops = vec![op("put w00.k000001 a"), op("txn commit put w00.k000001 b")];
        let h = History::new(ops.clone(), Default::default());
        let mut refused = Vec::new();
        before_op(0, &ops[1]);
        let r = Err(StoreError::Conflict("busy".into()));
        let Contended::Refused(Some(v)) = after_op((0, 1, &ops[1]), &h, &r, &mut refused) else {
            panic!("not refused")
        };
        assert_eq!(refused, vec![2]);
        assert_eq!(shared.refused_of(0), vec![2]);
        assert_eq!(shared.conflicts(), 1);
        // Unit 2 keeps its number and leaves nothing.
        assert_eq!(v.units(), 2);
        assert_eq!(v.fps[2], v.fps[1]);
        assert_ne!(h.fps[2], h.fps[1]);
    }
}
