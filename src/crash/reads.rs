//! The writer's check of its own reads against the model.

use super::io_faults::WriterIo;
use crate::model::history::History;
use crate::op::Op;
use crate::store::drive::Answer;

/// The message of a read whose answer disagrees with the model's (the
/// hashes the parent computed), unless it equals the answer the model
/// gives without a failed write (I/O-error faults: `io`), looked up only
/// on a mismatch.
pub(super) fn read_disagrees(
    check_reads: bool,
    h: &History,
    i: usize,
    op: &Op,
    answer: &Answer,
    io: Option<&WriterIo>,
) -> Option<String> {
    let want = h.reads.get(&i).filter(|_| check_reads)?;
    let got = answer.hashes(op)?;
    if &got == want || io.and_then(|io| io.read_without_failed(i)) == Some(&got) {
        return None;
    }
    let first = got
        .iter()
        .zip(want.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Some(format!(
        "`{op}` disagrees with the model at result {first} ({} results, model {}): store {}, model {}",
        got.len(),
        want.len(),
        describe_result(got.get(first)),
        describe_result(want.get(first)),
    ))
}

/// One read result for a mismatch message: the key and a short hash of
/// the value (`none` when absent), enough to tell a wrong key from a wrong
/// value without the value itself.
fn describe_result(r: Option<&(Vec<u8>, Option<u128>)>) -> String {
    match r {
        None => "no result".into(),
        Some((k, v)) => format!(
            "{} = {}",
            String::from_utf8_lossy(k),
            v.map_or("none".into(), |h| format!("#{:08x}", (h >> 96) as u32))
        ),
    }
}
