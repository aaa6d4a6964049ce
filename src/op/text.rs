//! The one-line text form of ops: `Display` writes it, `FromStr` parses
//! it back to the identical op (see the module docs of [`crate::op`]).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::text_txn::{parse_txn, write_txn_body};
use super::{IngestMode, Op, Scan, TxnEnd, Value, WriteOp};

fn is_bare_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'+' | b'=')
}

/// Writes bytes as a bare token when safe, else as a quoted escaped string.
pub fn fmt_bytes(f: &mut impl fmt::Write, b: &[u8]) -> fmt::Result {
    let bare = !b.is_empty()
        && b.iter().all(|&c| is_bare_byte(c))
        && b != b"-"
        && !b.starts_with(b"gen(")
        && !b.starts_with(b"limit=");
    if bare {
        // all bytes are ASCII
        return f.write_str(std::str::from_utf8(b).unwrap_or_default());
    }
    f.write_char('"')?;
    for &c in b {
        match c {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            0x20..=0x7e => f.write_char(c as char)?,
            _ => write!(f, "\\x{c:02x}")?,
        }
    }
    f.write_char('"')
}

pub(super) struct B<'a>(pub(super) &'a [u8]);
impl fmt::Display for B<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_bytes(f, self.0)
    }
}

struct Bound<'a>(&'a Option<Vec<u8>>);
impl fmt::Display for Bound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(b) => fmt_bytes(f, b),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Lit(b) => fmt_bytes(f, b),
            Value::Gen { seed, len } => write!(f, "gen({seed},{len})"),
        }
    }
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteOp::Put { key, value } => write!(f, "put {} {}", B(key), value),
            WriteOp::Delete { key } => write!(f, "del {}", B(key)),
            WriteOp::DeleteRange { start, end } => {
                write!(f, "delrange {} {}", B(start), B(end))
            }
            WriteOp::Merge { key, operand } => write!(f, "merge {} {}", B(key), operand),
        }
    }
}

impl fmt::Display for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} limit={}",
            Bound(&self.lo),
            Bound(&self.hi),
            self.limit
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write(w) => write!(f, "{w}"),
            Op::Ingest { mode, puts } => {
                f.write_str(match mode {
                    IngestMode::Move => "ingest move",
                    IngestMode::Copy => "ingest copy",
                })?;
                write_list(f, puts)
            }
            Op::Batch(ws) => {
                f.write_str("batch")?;
                write_list(f, ws)
            }
            Op::Txn(t) => {
                f.write_str("txn")?;
                if let Some(name) = &t.prepare {
                    write!(f, " prepare {name}")?;
                }
                if t.snapshot {
                    f.write_str(" snapshot")?;
                }
                f.write_str(match t.end {
                    TxnEnd::Commit => " commit",
                    TxnEnd::Rollback => " rollback",
                })?;
                write_txn_body(f, t)
            }
            Op::Get { key } => write!(f, "get {}", B(key)),
            Op::MultiGet { keys } => {
                f.write_str("multiget")?;
                for k in keys {
                    write!(f, " {}", B(k))?;
                }
                Ok(())
            }
            Op::Scan(s) => write!(f, "{} {s}", if s.reverse { "rscan" } else { "scan" }),
            Op::Snapshot { id } => write!(f, "snap {id}"),
            Op::GetAt { id, key } => write!(f, "getat {id} {}", B(key)),
            Op::ScanAt { id, scan } => write!(
                f,
                "{} {id} {scan}",
                if scan.reverse { "rscanat" } else { "scanat" }
            ),
            Op::Release { id } => write!(f, "release {id}"),
            Op::Flush => f.write_str("flush"),
            Op::FlushCfs { cfs: None } => f.write_str("flush all"),
            Op::FlushCfs { cfs: Some(l) } => {
                let l: Vec<String> = l.iter().map(u8::to_string).collect();
                write!(f, "flush cfs={}", l.join(","))
            }
            Op::Checkpoint { id } => write!(f, "checkpoint {id}"),
            Op::Backup { id } => write!(f, "backup {id}"),
            Op::CopyDir { id } => write!(f, "copy {id}"),
            Op::FlushWal { sync } => {
                write!(f, "flushwal {}", if *sync { "sync" } else { "nosync" })
            }
            Op::Compact { lo, hi } => write!(f, "compact {} {}", Bound(lo), Bound(hi)),
            Op::CompactTo { level } => write!(f, "compact-to {level}"),
            Op::Reopen => f.write_str("reopen"),
        }
    }
}

/// Why a line of op text did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParseError(pub String);

pub(super) fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// Splits a line into tokens: bare words, quoted strings (kept with their
/// quotes) and `|` separators. A `#` outside quotes starts a comment.
fn tokenize(line: &str) -> Result<Vec<String>, ParseError> {
    let mut toks = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '|' {
            toks.push("|".to_string());
            chars.next();
        } else if c == '"' {
            let mut t = String::from('"');
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                t.push(c);
                if c == '\\' {
                    match chars.next() {
                        Some((_, e)) => t.push(e),
                        None => break,
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return err("unterminated quoted string");
            }
            toks.push(t);
        } else {
            let mut t = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() || c == '|' || c == '#' {
                    break;
                }
                t.push(c);
                chars.next();
            }
            toks.push(t);
        }
    }
    Ok(toks)
}

/// Parses a bytes token (bare or quoted).
pub fn parse_bytes(tok: &str) -> Result<Vec<u8>, ParseError> {
    if let Some(inner) = tok.strip_prefix('"') {
        let inner = match inner.strip_suffix('"') {
            Some(i) => i,
            None => return err(format!("bad quoted string {tok}")),
        };
        let mut out = Vec::new();
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'\\' {
                match bytes.get(i + 1) {
                    Some(b'\\') => {
                        out.push(b'\\');
                        i += 2;
                    }
                    Some(b'"') => {
                        out.push(b'"');
                        i += 2;
                    }
                    Some(b'x') => {
                        let hex = inner.get(i + 2..i + 4).unwrap_or("");
                        match u8::from_str_radix(hex, 16) {
                            Ok(v) if hex.len() == 2 => out.push(v),
                            _ => return err(format!("bad escape in {tok}")),
                        }
                        i += 4;
                    }
                    _ => return err(format!("bad escape in {tok}")),
                }
            } else {
                out.push(c);
                i += 1;
            }
        }
        Ok(out)
    } else if tok.is_empty() || !tok.bytes().all(is_bare_byte) {
        err(format!("bad key or value token '{tok}'"))
    } else {
        Ok(tok.as_bytes().to_vec())
    }
}

fn parse_value(tok: &str) -> Result<Value, ParseError> {
    if let Some(rest) = tok.strip_prefix("gen(") {
        let inner = rest
            .strip_suffix(')')
            .ok_or_else(|| ParseError(format!("bad generated value '{tok}'")))?;
        let (s, l) = inner
            .split_once(',')
            .ok_or_else(|| ParseError(format!("bad generated value '{tok}'")))?;
        let seed = s
            .trim()
            .parse()
            .map_err(|_| ParseError(format!("bad seed in '{tok}'")))?;
        let len = l
            .trim()
            .parse()
            .map_err(|_| ParseError(format!("bad length in '{tok}'")))?;
        Ok(Value::Gen { seed, len })
    } else {
        Ok(Value::Lit(parse_bytes(tok)?))
    }
}

fn parse_bound(tok: &str) -> Result<Option<Vec<u8>>, ParseError> {
    if tok == "-" {
        Ok(None)
    } else {
        parse_bytes(tok).map(Some)
    }
}

fn parse_u32(tok: &str, what: &str) -> Result<u32, ParseError> {
    tok.parse()
        .map_err(|_| ParseError(format!("bad {what} '{tok}'")))
}

fn expect_args(toks: &[&str], n: usize, usage: &str) -> Result<(), ParseError> {
    if toks.len() != n {
        return err(format!("expected: {usage}"));
    }
    Ok(())
}

/// Writes separated by `|` (a batch's or a transaction's).
fn parse_writes(args: &[&str]) -> Result<Vec<WriteOp>, ParseError> {
    if args.is_empty() {
        // `batch` alone: an empty unit (a refused one, voided in a repro).
        return Ok(Vec::new());
    }
    args.split(|t| *t == "|").map(parse_write).collect()
}

/// ` w1 | w2 | ...`: the writes of a batch, an ingest or a transaction.
fn write_list(f: &mut fmt::Formatter<'_>, ws: &[WriteOp]) -> fmt::Result {
    for (i, w) in ws.iter().enumerate() {
        if i > 0 {
            f.write_str(" |")?;
        }
        write!(f, " {w}")?;
    }
    Ok(())
}

pub(super) fn parse_write(toks: &[&str]) -> Result<WriteOp, ParseError> {
    match toks.first().copied() {
        Some("put") => {
            expect_args(toks, 3, "put KEY VALUE")?;
            Ok(WriteOp::Put {
                key: parse_bytes(toks[1])?,
                value: parse_value(toks[2])?,
            })
        }
        Some("del") => {
            expect_args(toks, 2, "del KEY")?;
            Ok(WriteOp::Delete {
                key: parse_bytes(toks[1])?,
            })
        }
        Some("delrange") => {
            expect_args(toks, 3, "delrange START END")?;
            Ok(WriteOp::DeleteRange {
                start: parse_bytes(toks[1])?,
                end: parse_bytes(toks[2])?,
            })
        }
        Some("merge") => {
            expect_args(toks, 3, "merge KEY OPERAND")?;
            Ok(WriteOp::Merge {
                key: parse_bytes(toks[1])?,
                operand: parse_value(toks[2])?,
            })
        }
        Some(other) => err(format!("unknown write '{other}'")),
        None => err("empty write in batch"),
    }
}

fn parse_scan(toks: &[&str], reverse: bool, usage: &str) -> Result<Scan, ParseError> {
    expect_args(toks, 3, usage)?;
    let limit = toks[2]
        .strip_prefix("limit=")
        .ok_or_else(|| ParseError(format!("expected: {usage}")))?;
    Ok(Scan {
        lo: parse_bound(toks[0])?,
        hi: parse_bound(toks[1])?,
        reverse,
        limit: parse_u32(limit, "limit")?,
    })
}

impl FromStr for Op {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Op, ParseError> {
        let owned = tokenize(line)?;
        let toks: Vec<&str> = owned.iter().map(String::as_str).collect();
        let Some(&head) = toks.first() else {
            return err("empty line");
        };
        let args = &toks[1..];
        match head {
            "put" | "del" | "delrange" | "merge" => Ok(Op::Write(parse_write(&toks)?)),
            "ingest" => {
                let mode = match args.first() {
                    Some(&"move") => IngestMode::Move,
                    Some(&"copy") => IngestMode::Copy,
                    _ => return err("expected 'ingest move|copy put K V | put K V ...'"),
                };
                let mut puts = Vec::new();
                for part in args[1..].split(|t| *t == "|") {
                    match parse_write(part)? {
                        w @ WriteOp::Put { .. } => puts.push(w),
                        _ => return err("an ingest holds puts only"),
                    }
                }
                Ok(Op::Ingest { mode, puts })
            }
            "batch" => Ok(Op::Batch(parse_writes(args)?)),
            "txn" => parse_txn(args),
            "get" => {
                expect_args(&toks, 2, "get KEY")?;
                Ok(Op::Get {
                    key: parse_bytes(args[0])?,
                })
            }
            "multiget" => Ok(Op::MultiGet {
                keys: args
                    .iter()
                    .map(|t| parse_bytes(t))
                    .collect::<Result<_, _>>()?,
            }),
            "scan" | "rscan" => Ok(Op::Scan(parse_scan(
                args,
                head == "rscan",
                "scan LO|- HI|- limit=N",
            )?)),
            "snap" | "release" => {
                expect_args(&toks, 2, "snap ID | release ID")?;
                let id = parse_u32(args[0], "snapshot id")?;
                Ok(if head == "snap" {
                    Op::Snapshot { id }
                } else {
                    Op::Release { id }
                })
            }
            "getat" => {
                expect_args(&toks, 3, "getat ID KEY")?;
                Ok(Op::GetAt {
                    id: parse_u32(args[0], "snapshot id")?,
                    key: parse_bytes(args[1])?,
                })
            }
            "scanat" | "rscanat" => {
                let usage = "scanat ID LO|- HI|- limit=N";
                if args.is_empty() {
                    return err(format!("expected: {usage}"));
                }
                Ok(Op::ScanAt {
                    id: parse_u32(args[0], "snapshot id")?,
                    scan: parse_scan(&args[1..], head == "rscanat", usage)?,
                })
            }
            "flush" if toks.len() == 1 => Ok(Op::Flush),
            "flush" => {
                expect_args(&toks, 2, "flush | flush all | flush cfs=N,M")?;
                if args[0] == "all" {
                    return Ok(Op::FlushCfs { cfs: None });
                }
                let list = args[0].strip_prefix("cfs=").ok_or_else(|| {
                    ParseError("expected: flush | flush all | flush cfs=N,M".into())
                })?;
                let cfs = list
                    .split(',')
                    .map(|c| match c.parse::<u8>() {
                        Ok(n) if (n as usize) < crate::keyspace::MAX_CFS => Ok(n),
                        _ => err(format!(
                            "bad column family '{c}' (0..{})",
                            crate::keyspace::MAX_CFS - 1
                        )),
                    })
                    .collect::<Result<Vec<u8>, ParseError>>()?;
                Ok(Op::FlushCfs { cfs: Some(cfs) })
            }
            "checkpoint" | "backup" | "copy" => {
                expect_args(&toks, 2, &format!("{head} ID"))?;
                let id = parse_u32(args[0], "id")?;
                Ok(match head {
                    "checkpoint" => Op::Checkpoint { id },
                    "backup" => Op::Backup { id },
                    _ => Op::CopyDir { id },
                })
            }
            "flushwal" => {
                expect_args(&toks, 2, "flushwal sync|nosync")?;
                match args[0] {
                    "sync" => Ok(Op::FlushWal { sync: true }),
                    "nosync" => Ok(Op::FlushWal { sync: false }),
                    o => err(format!("expected sync or nosync, got '{o}'")),
                }
            }
            "compact" => {
                expect_args(&toks, 3, "compact LO|- HI|-")?;
                Ok(Op::Compact {
                    lo: parse_bound(args[0])?,
                    hi: parse_bound(args[1])?,
                })
            }
            "compact-to" => {
                expect_args(&toks, 2, "compact-to LEVEL")?;
                match args[0].parse::<u8>() {
                    Ok(level) if level < 7 => Ok(Op::CompactTo { level }),
                    _ => err(format!("expected a level 0-6, got '{}'", args[0])),
                }
            }
            "reopen" => {
                expect_args(&toks, 1, "reopen")?;
                Ok(Op::Reopen)
            }
            other => err(format!("unknown op '{other}'")),
        }
    }
}

/// Parses one op per non-blank, non-comment line; errors name the line
/// number (1-based, offset by `first_line - 1`).
pub fn parse_ops(text: &str, first_line: usize) -> Result<Vec<Op>, (usize, ParseError)> {
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        ops.push(t.parse().map_err(|e| (first_line + i, e))?);
    }
    Ok(ops)
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
