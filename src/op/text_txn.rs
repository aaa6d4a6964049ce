//! The text form of a transaction's body: its writes with its steps
//! (`lock K`, `get K`, `savepoint ... rollback-to-savepoint`) where they
//! stand among them.

use std::fmt;

use super::text::{err, parse_bytes, parse_write, ParseError, B};
use super::{Op, Txn, TxnEnd, TxnStep, TxnStepKind, WriteOp};

/// `[prepare NAME] [snapshot] commit|rollback ITEM | ITEM ...`: a
/// transaction's name when it is two-phase, whether it sets a snapshot,
/// its end, then its writes and steps. A name is 1-64 characters
/// of letters, digits, `.`, `-` and `_` (RocksDB takes 1-512 bytes:
/// pessimistic_transaction.cc `SetName`).
pub(super) fn parse_txn(args: &[&str]) -> Result<Op, ParseError> {
    let (prepare, args) = match args {
        ["prepare", name, rest @ ..] => {
            let ok = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !ok {
                return err(format!(
                    "bad transaction name '{name}' (1-64 letters, digits, '.', '-', '_')"
                ));
            }
            (Some(name.to_string()), rest)
        }
        _ => (None, args),
    };
    let (snapshot, args) = match args {
        ["snapshot", rest @ ..] => (true, rest),
        _ => (false, args),
    };
    let end = match args.first() {
        Some(&"commit") => TxnEnd::Commit,
        Some(&"rollback") => TxnEnd::Rollback,
        _ => {
            return err(
                "expected 'txn [prepare NAME] [snapshot] commit|rollback put K V | del K | lock K | get K | savepoint ...'",
            )
        }
    };
    let (writes, steps) = parse_txn_body(&args[1..])?;
    Ok(Op::Txn(Txn {
        writes,
        steps,
        snapshot,
        end,
        prepare,
    }))
}

/// A transaction's `|`-separated items: its writes, and its steps where
/// they stand among them (`lock K`, `get K`, and writes between
/// `savepoint` and `rollback-to-savepoint`, which are undone).
fn parse_txn_body(args: &[&str]) -> Result<(Vec<WriteOp>, Vec<TxnStep>), ParseError> {
    let mut writes = Vec::new();
    let mut steps = Vec::new();
    // Writes since a `savepoint` not yet rolled back to.
    let mut undone: Option<Vec<WriteOp>> = None;
    for item in args.split(|t| *t == "|") {
        let after = writes.len() as u32;
        let step = |kind| TxnStep { after, kind };
        match (item, undone.as_mut()) {
            (["savepoint"], None) => undone = Some(Vec::new()),
            (["rollback-to-savepoint"], Some(_)) => {
                let ws = undone.take().unwrap_or_default();
                steps.push(step(TxnStepKind::Undone(ws)));
            }
            (["lock", key], None) => steps.push(step(TxnStepKind::Lock(parse_bytes(key)?))),
            (["get", key], None) => steps.push(step(TxnStepKind::Get(parse_bytes(key)?))),
            (["scan" | "rscan", ..], None) => match item.join(" ").parse::<Op>()? {
                Op::Scan(sc) => steps.push(step(TxnStepKind::Scan(sc))),
                _ => return err(format!("bad transaction scan '{}'", item.join(" "))),
            },
            (["savepoint" | "rollback-to-savepoint" | "lock" | "get" | "scan" | "rscan", ..], _) => {
                return err(format!(
                    "bad transaction step '{}' (savepoint, then writes only, then rollback-to-savepoint; lock KEY; get KEY; scan|rscan LO HI limit=N)",
                    item.join(" ")
                ))
            }
            (w, Some(ws)) => ws.push(parse_write(w)?),
            (w, None) => writes.push(parse_write(w)?),
        }
    }
    if undone.is_some() {
        return err("a savepoint without its rollback-to-savepoint");
    }
    Ok((writes, steps))
}

/// ` item | item ...`: a transaction's writes with its steps where they
/// stand among them.
pub(super) fn write_txn_body(f: &mut fmt::Formatter<'_>, t: &Txn) -> fmt::Result {
    let mut first = true;
    let mut item = |f: &mut fmt::Formatter<'_>, text: &dyn fmt::Display| {
        let s = if first { " " } else { " | " };
        first = false;
        write!(f, "{s}{text}")
    };
    let mut steps = t.steps.iter().peekable();
    for i in 0..=t.writes.len() {
        let last = i == t.writes.len();
        while let Some(s) = steps.next_if(|s| s.after as usize <= i || last) {
            match &s.kind {
                TxnStepKind::Lock(k) => item(f, &format_args!("lock {}", B(k)))?,
                TxnStepKind::Get(k) => item(f, &format_args!("get {}", B(k)))?,
                TxnStepKind::Scan(sc) => item(f, &Op::Scan(sc.clone()))?,
                TxnStepKind::Undone(ws) => {
                    item(f, &"savepoint")?;
                    for w in ws {
                        item(f, w)?;
                    }
                    item(f, &"rollback-to-savepoint")?;
                }
            }
        }
        if let Some(w) = t.writes.get(i) {
            item(f, w)?;
        }
    }
    Ok(())
}
