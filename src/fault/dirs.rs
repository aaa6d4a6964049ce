//! Directory entries at a power cut (docs/durability.md D1-D5): the part
//! of the crash image that the writer's own memory cannot give.
//!
//! The writer child runs on the fault filesystem, which keeps unsynced
//! file data in process memory, so the kill loses it. Directory entries
//! are another matter: files were created and renamed for real, so every
//! entry would survive the kill. The child therefore journals what its
//! fault Env did to directories (csrc/dir_journal.cc); after the kill,
//! [`apply`] undoes, in the database tree, every creation and rename that
//! no successful fsync of its directory made durable, newest first.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The directory that holds a cycle's journal and the files its renames
/// replaced: `<db>.dirs`, beside the database (same filesystem, for the
/// hard links).
pub fn journal_root(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".dirs");
    PathBuf::from(s)
}

/// The journal file inside [`journal_root`].
pub fn journal_file(root: &Path) -> PathBuf {
    root.join("journal")
}

/// What the directory image did in one cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirImage {
    /// Creations and renames in the database tree that no directory fsync
    /// had made durable at the kill.
    pub unsynced: u64,
    /// Files removed because their creation was not durable (D1).
    pub dropped: u64,
    /// Renames undone (D2).
    pub renames_undone: u64,
    /// Of the files removed, WAL files (`*.log`): the evidence of finding
    /// 10 ([`crate::known_bugs::TWO_WRITE_QUEUES_WAL_DIR_SYNC`]).
    #[serde(default)]
    pub wals_dropped: u64,
}

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Created(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        kept: Option<PathBuf>,
        unknown: bool,
    },
    Synced(PathBuf),
}

/// Parses the journal (see csrc/dir_journal.cc); a torn last record is
/// ignored: the event it would name stays as the kill left it.
fn parse(bytes: &[u8]) -> Vec<Event> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let mut at = 0usize;
    'records: while at < bytes.len() {
        let tag = bytes[at];
        let mut p = at + 1;
        let mut fields: Vec<&[u8]> = Vec::with_capacity(3);
        for _ in 0..3 {
            let Some(len) = bytes.get(p..p + 4) else {
                break 'records;
            };
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let Some(f) = bytes.get(p + 4..p + 4 + n) else {
                break 'records;
            };
            fields.push(f);
            p += 4 + n;
        }
        at = p;
        let path = |b: &[u8]| normal(Path::new(std::ffi::OsStr::from_bytes(b)));
        out.push(match tag {
            b'N' => Event::Created(path(fields[0])),
            b'S' => Event::Synced(path(fields[0])),
            b'R' => Event::Renamed {
                from: path(fields[0]),
                to: path(fields[1]),
                kept: (!fields[2].is_empty() && fields[2] != b"!").then(|| path(fields[2])),
                unknown: fields[2] == b"!",
            },
            _ => break,
        });
    }
    out
}

/// `p` without `.` components and trailing or doubled slashes, so that a
/// directory names compare as paths.
fn normal(p: &Path) -> PathBuf {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// An event not yet durable: the directories whose fsync it still awaits.
struct Pending {
    event: Event,
    awaits: BTreeSet<PathBuf>,
}

/// The creations and renames still awaiting a directory fsync at the end
/// of the journal, oldest first.
fn pending(events: Vec<Event>) -> Vec<Pending> {
    let mut open: Vec<Pending> = Vec::new();
    for e in events {
        let awaits: BTreeSet<PathBuf> = match &e {
            Event::Created(p) => [parent(p)].into(),
            // A rename changes the entries of both directories (rename(2)).
            Event::Renamed { from, to, .. } => [parent(from), parent(to)].into(),
            Event::Synced(d) => {
                for p in &mut open {
                    p.awaits.remove(d);
                }
                open.retain(|p| !p.awaits.is_empty());
                continue;
            }
        };
        open.push(Pending { event: e, awaits });
    }
    open
}

/// Undoes, in the trees under `roots`, every creation and rename the
/// journal in `root` shows was not durable at the kill, newest first. An
/// event outside `roots` (a checkpoint or backup directory, D5) is left
/// as the kill left it. Errors are the filesystem's.
pub fn apply(root: &Path, roots: &[&Path]) -> std::io::Result<DirImage> {
    let bytes = match std::fs::read(journal_file(root)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirImage::default()),
        Err(e) => return Err(e),
    };
    let roots: Vec<PathBuf> = roots.iter().map(|r| normal(r)).collect();
    let inside = |d: &Path| roots.iter().any(|r| d.starts_with(r));
    let mut img = DirImage::default();
    for p in pending(parse(&bytes)).into_iter().rev() {
        if !p.awaits.iter().all(|d| inside(d)) {
            continue;
        }
        img.unsynced += 1;
        match p.event {
            Event::Created(path) => {
                if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                    std::fs::remove_file(&path)?;
                    img.dropped += 1;
                    img.wals_dropped += u64::from(path.extension().is_some_and(|x| x == "log"));
                }
            }
            // The file a rename replaced could not be kept: the rename is
            // left in place (admitting more, never less).
            Event::Renamed { unknown: true, .. } => {}
            // Journaled before it ran: if it never did (`from` is still
            // there), only the kept copy of `to` goes back, unchanged.
            Event::Renamed { from, to, kept, .. } => {
                let done = std::fs::symlink_metadata(&from).is_err();
                if done && std::fs::symlink_metadata(&to).is_ok() {
                    std::fs::rename(&to, &from)?;
                    img.renames_undone += 1;
                }
                if let Some(k) = kept.filter(|k| k.exists()) {
                    std::fs::rename(k, &to)?;
                }
            }
            Event::Synced(_) => {}
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tag: u8, fields: [&str; 3]) -> Vec<u8> {
        let mut v = vec![tag];
        for f in fields {
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f.as_bytes());
        }
        v
    }

    /// A database directory and its journal root in a fresh temp dir.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("db");
        let root = journal_root(&db);
        std::fs::create_dir_all(&db).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        (t, db, root)
    }

    /// RocksDB's `CURRENT` swap as the journal's writer leaves it before
    /// the rename: the old `CURRENT`, kept by a hard link, and the new one
    /// under its temporary name.
    fn current_swap(db: &Path, root: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (tmp, cur, kept) = (
            db.join("000009.dbtmp"),
            db.join("CURRENT"),
            root.join("keep-0"),
        );
        std::fs::write(&cur, b"MANIFEST-000005\n").unwrap();
        std::fs::hard_link(&cur, &kept).unwrap();
        std::fs::write(&tmp, b"MANIFEST-000009\n").unwrap();
        (tmp, cur, kept)
    }

    #[test]
    fn unsynced_creations_go_and_synced_ones_stay() {
        let (_t, db, root) = layout();
        let (a, b) = (db.join("000004.log"), db.join("000007.sst"));
        let c = db.join("000008.log");
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        std::fs::write(&c, b"c").unwrap();
        let d = db.to_str().unwrap();
        let mut j = rec(b'N', [a.to_str().unwrap(), "", ""]);
        j.extend(rec(b'S', [&format!("{d}/"), "", ""]));
        j.extend(rec(b'N', [b.to_str().unwrap(), "", ""]));
        j.extend(rec(b'N', [c.to_str().unwrap(), "", ""]));
        j.extend_from_slice(b"N\x05\x00"); // torn record: ignored
        std::fs::write(journal_file(&root), j).unwrap();
        let img = apply(&root, &[&db]).unwrap();
        assert_eq!(
            img,
            DirImage {
                unsynced: 2,
                dropped: 2,
                renames_undone: 0,
                wals_dropped: 1,
            }
        );
        assert!(a.exists() && !b.exists() && !c.exists());
    }

    #[test]
    fn an_unsynced_rename_is_undone_with_the_old_target_back() {
        let (t, db, root) = layout();
        let (tmp, cur, kept) = current_swap(&db, &root);
        // The journal of: create tmp, write it, keep CURRENT, rename.
        std::fs::rename(&tmp, &cur).unwrap();
        let mut j = rec(b'N', [tmp.to_str().unwrap(), "", ""]);
        j.extend(rec(
            b'R',
            [
                tmp.to_str().unwrap(),
                cur.to_str().unwrap(),
                kept.to_str().unwrap(),
            ],
        ));
        std::fs::write(journal_file(&root), &j).unwrap();
        // Outside the tracked tree nothing happens.
        let other = t.path().join("elsewhere");
        assert_eq!(apply(&root, &[&other]).unwrap(), DirImage::default());
        let img = apply(&root, &[&db]).unwrap();
        assert_eq!(
            img,
            DirImage {
                unsynced: 2,
                dropped: 1,
                renames_undone: 1,
                wals_dropped: 0,
            }
        );
        assert_eq!(std::fs::read(&cur).unwrap(), b"MANIFEST-000005\n");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_rename_journaled_but_never_done_leaves_both_files() {
        let (_t, db, root) = layout();
        let (tmp, cur, kept) = current_swap(&db, &root);
        // Synced before the rename, which the kill then pre-empted.
        let d = db.to_str().unwrap();
        let mut j = rec(b'N', [tmp.to_str().unwrap(), "", ""]);
        j.extend(rec(b'S', [d, "", ""]));
        j.extend(rec(
            b'R',
            [
                tmp.to_str().unwrap(),
                cur.to_str().unwrap(),
                kept.to_str().unwrap(),
            ],
        ));
        std::fs::write(journal_file(&root), &j).unwrap();
        let img = apply(&root, &[&db]).unwrap();
        assert_eq!(
            img,
            DirImage {
                unsynced: 1,
                dropped: 0,
                renames_undone: 0,
                wals_dropped: 0,
            }
        );
        assert_eq!(std::fs::read(&cur).unwrap(), b"MANIFEST-000005\n");
        assert_eq!(std::fs::read(&tmp).unwrap(), b"MANIFEST-000009\n");
    }

    #[test]
    fn a_rename_waits_for_both_directories() {
        let e = |p: &str| PathBuf::from(p);
        let events = vec![
            Event::Renamed {
                from: e("/d/a/x"),
                to: e("/d/b/x"),
                kept: None,
                unknown: false,
            },
            Event::Synced(e("/d/b")),
        ];
        let left = pending(events.clone());
        assert_eq!(left.len(), 1);
        let mut all = events;
        all.push(Event::Synced(e("/d/a")));
        assert!(pending(all).is_empty());
    }
}
