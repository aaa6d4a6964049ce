//! Repro files: a failing case as a readable, editable text file that
//! `crashcheck replay` runs again; and shrinking of failing sequences.
//!
//! ```text
//! # crashcheck repro v1
//! # read-mismatch at op 3 `get k000001`: ...
//! # replay: crashcheck replay case.repro
//! check: run
//! seed: 42
//! profile: default
//! store: rocksdb
//! options: wal_mode=wal;write_buffer_size=262144;...
//! expect: read-mismatch
//! ops:
//! put k000001 gen(1,12)
//! get k000001
//! ```
//!
//! `check: crash` cases also carry `fault:` and `kill:` (the kill point).

use std::fmt::Write as _;
use std::path::Path;

use crate::fault::Fault;
use crate::op::{parse_ops, Op};
use crate::store::StoreOptions;
use crate::verify::ViolationClass;

/// The comment that names the engine a repro file was written with.
const ENGINE_TAG: &str = "engine: ";

/// The verdict a case produced when it was saved (its `expect:` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Consistent with the model and the oracle (`ok`).
    Ok,
    /// A violation of this class; `None` (`violation`) for any class, as
    /// converted fuzz artifacts say.
    Violation(Option<ViolationClass>),
    /// An anomaly: a hang or an abnormal exit (`anomaly`).
    Anomaly,
}

impl Expect {
    /// True when a replay that came to `got` reproduces this verdict.
    pub fn matches(self, got: Expect) -> bool {
        self == got || (self == Expect::Violation(None) && matches!(got, Expect::Violation(_)))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ok => f.write_str("ok"),
            Expect::Violation(None) => f.write_str("violation"),
            Expect::Violation(Some(c)) => f.write_str(c.name()),
            Expect::Anomaly => f.write_str("anomaly"),
        }
    }
}

impl std::str::FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> Result<Expect, String> {
        match s {
            "ok" => Ok(Expect::Ok),
            "violation" => Ok(Expect::Violation(None)),
            "anomaly" => Ok(Expect::Anomaly),
            c => c
                .parse::<ViolationClass>()
                .map(|c| Expect::Violation(Some(c)))
                .map_err(|e| format!("{e} (or ok, violation, anomaly)")),
        }
    }
}

/// Which checker a case is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// In-process run against the model.
    Run,
    /// Fork, kill, reopen, verify.
    Crash,
}

/// A saved case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Checker.
    pub check: CheckKind,
    /// Seed the ops came from (informational once ops are stored).
    pub seed: u64,
    /// Workload profile name.
    pub profile: String,
    /// Store factory name (`rocksdb` or `mutant:<name>`).
    pub store: String,
    /// Store options.
    pub options: StoreOptions,
    /// The verdict the case produced when saved.
    pub expect: Expect,
    /// Crash cases: the fault (`kill`).
    pub fault: Option<Fault>,
    /// Crash cases: kill after this many ops completed (`kill: after-op N`),
    /// or, with [`Case::kill_step`], inside op N.
    pub kill_after_op: Option<usize>,
    /// Crash cases: the kill lands inside op `kill_after_op` (1-based) at
    /// this step point (`kill: in-op N step S`; see
    /// `store::drive::step_point`).
    pub kill_step: Option<u32>,
    /// Crash cases with [`Case::kill_step`]: the writer whose op it is
    /// (`kill: in-op N step S writer W`; 0 when absent).
    pub kill_writer: usize,
    /// Crash cases with [`Case::kill_step`]: every column family is flushed
    /// right before the kill (`kill: in-op N step S [writer W] flush`), as
    /// a background flush made the torn unit durable in the recorded run.
    pub kill_flush: bool,
    /// Crash cases with [`Case::kill_step`]: the kill was timed, not aimed
    /// at that step point, and landed after it (`kill: in-op N step S
    /// [writer W] timed [flush]`). Its place is known to within one step
    /// point, so a replay that does not reach the saved verdict at `S`
    /// tries the points on either side.
    pub kill_timed: bool,
    /// Free-form comment lines (without `# `).
    pub comments: Vec<String>,
    /// Ops that build the database the case starts from (`base:`
    /// section, see `campaign::base`): run to completion and closed
    /// cleanly before the case's own ops; empty for an empty database.
    pub base: Vec<Op>,
    /// The op sequence (of the first writer).
    pub ops: Vec<Op>,
    /// Concurrent-writer cases: the op sequences of writers 1, 2, ...
    /// (written after `writer N:` lines).
    pub writers: Vec<Vec<Op>>,
    /// Concurrent-writer cases: the writer of each op in the order the ops
    /// started (`interleaving: 0 1 1 0 ...`). A replay runs the ops one at
    /// a time in this order and ends with a kill after the last; without
    /// it the interleaving is up to the threads.
    pub interleaving: Option<Vec<u8>>,
}

/// A repro file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// I/O failure.
    #[error("cannot read {path}: {err}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// A malformed line.
    #[error("{path}:{line}: {msg}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

impl Case {
    /// The engine named in a repro file's text (`# engine: ...`), if any.
    pub fn engine_of(text: &str) -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix('#')?.trim().strip_prefix(ENGINE_TAG))
    }

    /// The file text.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# crashcheck repro v1\n");
        // Provenance: the engine that wrote the file (not kept on parse).
        let _ = writeln!(s, "# {ENGINE_TAG}{}", crate::store::engine::engine());
        for c in &self.comments {
            for line in c.lines() {
                let _ = writeln!(s, "# {line}");
            }
        }
        let check = match self.check {
            CheckKind::Run => "run",
            CheckKind::Crash => "crash",
        };
        let _ = writeln!(s, "check: {check}");
        let _ = writeln!(s, "seed: {}", self.seed);
        let _ = writeln!(s, "profile: {}", self.profile);
        let _ = writeln!(s, "store: {}", self.store);
        let _ = writeln!(s, "options: {}", self.options.to_options_string());
        if let Some(f) = &self.fault {
            let _ = writeln!(s, "fault: {f}");
        }
        match (self.kill_after_op, self.kill_step) {
            (Some(k), Some(step)) => {
                let w = match self.kill_writer {
                    0 => String::new(),
                    w => format!(" writer {w}"),
                };
                let t = if self.kill_timed { " timed" } else { "" };
                let f = if self.kill_flush { " flush" } else { "" };
                let _ = writeln!(s, "kill: in-op {k} step {step}{w}{t}{f}");
            }
            (Some(k), None) => {
                let _ = writeln!(s, "kill: after-op {k}");
            }
            _ => {}
        }
        if let Some(order) = &self.interleaving {
            let o: Vec<String> = order.iter().map(u8::to_string).collect();
            let _ = writeln!(s, "interleaving: {}", o.join(" "));
        }
        let _ = writeln!(s, "expect: {}", self.expect);
        if !self.base.is_empty() {
            s.push_str("base:\n");
            for op in &self.base {
                let _ = writeln!(s, "{op}");
            }
        }
        s.push_str("ops:\n");
        for op in &self.ops {
            let _ = writeln!(s, "{op}");
        }
        for (i, w) in self.writers.iter().enumerate() {
            let _ = writeln!(s, "writer {}:", i + 1);
            for op in w {
                let _ = writeln!(s, "{op}");
            }
        }
        s
    }

    /// Parses file text; `path` is used in error messages.
    pub fn parse(text: &str, path: &str) -> Result<Case, ReproError> {
        let perr = |line: usize, msg: String| ReproError::Parse {
            path: path.to_string(),
            line,
            msg,
        };
        let mut case = Case {
            check: CheckKind::Run,
            seed: 0,
            profile: "default".into(),
            store: "rocksdb".into(),
            options: StoreOptions::default(),
            expect: Expect::Ok,
            fault: None,
            kill_after_op: None,
            kill_step: None,
            kill_writer: 0,
            kill_flush: false,
            kill_timed: false,
            comments: Vec::new(),
            base: Vec::new(),
            ops: Vec::new(),
            writers: Vec::new(),
            interleaving: None,
        };
        let mut lines = text.lines().enumerate();
        let mut saw_magic = false;
        let mut ops_at = None;
        for (i, raw) in lines.by_ref() {
            let n = i + 1;
            let line = raw.trim();
            if line == "# crashcheck repro v1" {
                saw_magic = true;
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                if !c.trim().starts_with(ENGINE_TAG) {
                    case.comments.push(c.trim().to_string());
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if !saw_magic {
                return Err(perr(
                    n,
                    "not a crashcheck repro file (missing '# crashcheck repro v1' header)".into(),
                ));
            }
            if line == "ops:" {
                ops_at = Some(n + 1);
                break;
            }
            if line == "base:" {
                // The base's ops, up to `ops:`.
                let mut body = Vec::new();
                for (j, l) in lines.by_ref() {
                    if l.trim() == "ops:" {
                        ops_at = Some(j + 2);
                        break;
                    }
                    body.push(l);
                }
                case.base =
                    parse_ops(&body.join("\n"), n + 1).map_err(|(line, e)| perr(line, e.0))?;
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| perr(n, format!("expected 'key: value', got '{line}'")))?;
            let v = v.trim();
            match k.trim() {
                "check" => {
                    case.check = match v {
                        "run" => CheckKind::Run,
                        "crash" => CheckKind::Crash,
                        o => return Err(perr(n, format!("unknown check '{o}' (run, crash)"))),
                    }
                }
                "seed" => case.seed = v.parse().map_err(|_| perr(n, format!("bad seed '{v}'")))?,
                "profile" => case.profile = v.to_string(),
                "store" => case.store = v.to_string(),
                "options" => {
                    let mut o = StoreOptions::default();
                    o.apply_options_string(v).map_err(|e| perr(n, e.0))?;
                    case.options = o;
                }
                "expect" => case.expect = v.parse().map_err(|e| perr(n, e))?,
                "interleaving" => {
                    let order = v
                        .split_whitespace()
                        .map(|w| w.parse::<u8>())
                        .collect::<Result<Vec<u8>, _>>()
                        .map_err(|_| perr(n, format!("bad interleaving '{v}' (writer numbers)")))?;
                    case.interleaving = Some(order);
                }
                "fault" => case.fault = Some(v.parse().map_err(|e| perr(n, e))?),
                "kill" => {
                    let bad = || {
                        perr(
                            n,
                            format!(
                                "bad kill point '{v}' (after-op N, in-op N step S [writer W] [timed] [flush])"
                            ),
                        )
                    };
                    if let Some(x) = v.strip_prefix("after-op ") {
                        case.kill_after_op = Some(x.trim().parse().map_err(|_| bad())?);
                    } else if let Some(x) = v.strip_prefix("in-op ") {
                        let (x, flush) = match x.trim_end().strip_suffix(" flush") {
                            Some(x) => (x, true),
                            None => (x, false),
                        };
                        let (x, timed) = match x.trim_end().strip_suffix(" timed") {
                            Some(x) => (x, true),
                            None => (x, false),
                        };
                        case.kill_flush = flush;
                        case.kill_timed = timed;
                        let (op, rest) = x.split_once(" step ").ok_or_else(bad)?;
                        let (step, writer) = match rest.split_once(" writer ") {
                            Some((s, w)) => (s, w.trim().parse().map_err(|_| bad())?),
                            None => (rest, 0),
                        };
                        case.kill_after_op = Some(op.trim().parse().map_err(|_| bad())?);
                        case.kill_step = Some(step.trim().parse().map_err(|_| bad())?);
                        case.kill_writer = writer;
                    } else {
                        return Err(bad());
                    }
                }
                other => return Err(perr(n, format!("unknown header '{other}'"))),
            }
        }
        if !saw_magic {
            return Err(perr(
                1,
                "not a crashcheck repro file (missing '# crashcheck repro v1' header)".into(),
            ));
        }
        let first = ops_at
            .ok_or_else(|| perr(text.lines().count().max(1), "missing 'ops:' section".into()))?;
        // `writer N:` lines split the ops into the writers' sequences.
        let mut sections: Vec<(usize, Vec<&str>)> = vec![(first, Vec::new())];
        for (i, l) in lines {
            let t = l.trim();
            if let Some(n) = t.strip_prefix("writer ").and_then(|x| x.strip_suffix(':')) {
                if n.trim().parse::<usize>().ok() != Some(sections.len()) {
                    return Err(perr(
                        i + 1,
                        format!("expected 'writer {}:', got '{t}'", sections.len()),
                    ));
                }
                sections.push((i + 2, Vec::new()));
                continue;
            }
            if let Some(last) = sections.last_mut() {
                last.1.push(l);
            }
        }
        for (k, (at, body)) in sections.into_iter().enumerate() {
            let ops = parse_ops(&body.join("\n"), at).map_err(|(line, e)| perr(line, e.0))?;
            if k == 0 {
                case.ops = ops;
            } else {
                case.writers.push(ops);
            }
        }
        if let Some(order) = &case.interleaving {
            if case.writers.len() + 1 > crate::keyspace::MAX_WRITERS {
                return Err(perr(
                    1,
                    format!(
                        "{} writers (at most {})",
                        case.writers.len() + 1,
                        crate::keyspace::MAX_WRITERS
                    ),
                ));
            }
            if let Some(w) = order.iter().find(|w| usize::from(**w) > case.writers.len()) {
                return Err(perr(
                    1,
                    format!("the interleaving names writer {w}, which the case does not have"),
                ));
            }
            let counts = |w: usize| order.iter().filter(|x| usize::from(**x) == w).count();
            let lens = std::iter::once(case.ops.len()).chain(case.writers.iter().map(Vec::len));
            if let Some((w, len)) = lens.enumerate().find(|&(w, len)| counts(w) != len) {
                return Err(perr(
                    1,
                    format!(
                        "the interleaving names writer {w} {} times, but it has {len} ops",
                        counts(w)
                    ),
                ));
            }
        }
        if case.check == CheckKind::Crash && case.kill_after_op.is_none() {
            return Err(perr(
                1,
                "crash case without a 'kill: after-op N' (or 'in-op N step S') line".into(),
            ));
        }
        Ok(case)
    }

    /// Reads and parses a repro file.
    pub fn load(path: &Path) -> Result<Case, ReproError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ReproError::Io {
            path: p.clone(),
            err,
        })?;
        Case::parse(&text, &p)
    }
}

/// Shrinks `ops` while `fails` keeps returning true: drops the tail, then
/// chunks of halving size, then single ops (delta debugging, ddmin-style).
/// `fails` must be deterministic for a useful result. `budget` caps the
/// number of `fails` calls.
pub fn shrink<T: Clone>(ops: Vec<T>, budget: usize, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut cur = ops;
    let mut calls = 0;
    let mut chunk = cur.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        let mut progressed = false;
        while i < cur.len() {
            if calls >= budget {
                return cur;
            }
            let end = (i + chunk).min(cur.len());
            let mut cand = cur[..i].to_vec();
            cand.extend_from_slice(&cur[end..]);
            calls += 1;
            if !cand.is_empty() && fails(&cand) {
                cur = cand;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !progressed {
            return cur;
        }
        if !progressed {
            chunk = (chunk / 2).max(1);
        }
    }
}

#[cfg(test)]
mod tests;
