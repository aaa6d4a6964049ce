//! Applications' own files beside the database, through crashcheck's
//! fault filesystem (csrc/side_files.cc).
//!
//! A store that keeps large values in files of its own (with a pointer in
//! RocksDB) or exports snapshots next to the database makes those files
//! through a [`SideFs`] made from the options it was opened with. In a
//! power-loss cycle they then run on the same FaultInjectionTestFS as the
//! store's RocksDB: unsynced appends are lost by the power cut, and so are
//! the directory entries of files created or renamed after their
//! directory's last [`SideFs::sync_dir`] (docs/durability.md D1-D2).
//! Elsewhere (process kills, the verifier, the run check) it is the plain
//! filesystem, with `fsync` for the syncs.
//!
//! Keep such files in the database directory given to
//! [`StoreFactory::open`](super::StoreFactory::open) or in a directory
//! under it: the power cut's directory image covers that tree only, and
//! crashcheck removes it with the database.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Error, ErrorKind, Result, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[repr(C)]
struct RawFile {
    _private: [u8; 0],
}

type Sink = extern "C" fn(*mut libc::c_void, *const libc::c_char, libc::size_t);

extern "C" {
    fn crashcheck_side_create(
        path: *const libc::c_char,
        out: *mut *mut RawFile,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_append(
        h: *mut RawFile,
        data: *const libc::c_char,
        len: libc::size_t,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_sync(
        h: *mut RawFile,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_close(
        h: *mut RawFile,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_rename(
        from: *const libc::c_char,
        to: *const libc::c_char,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_delete(
        path: *const libc::c_char,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_sync_dir(
        dir: *const libc::c_char,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
    fn crashcheck_side_read(
        path: *const libc::c_char,
        sink: Sink,
        ctx: *mut libc::c_void,
        msg: *mut libc::c_char,
        cap: libc::size_t,
    ) -> libc::c_int;
}

/// Files closed with unsynced data, by path: what the OS page cache would
/// still serve to reads until the power cut. RocksDB's test filesystem
/// drops a file's unsynced appends at `Close` (fault_injection_fs.cc
/// TestFSWritableFile::CloseImpl: "close is not a syncing mechanism"), so
/// the process keeps them here; they die with it.
static PAGE_CACHE: Mutex<Option<HashMap<PathBuf, Vec<u8>>>> = Mutex::new(None);

fn cache<T>(f: impl FnOnce(&mut HashMap<PathBuf, Vec<u8>>) -> T) -> T {
    let mut g = PAGE_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn c_path(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "path has a NUL byte"))
}

/// Runs a shim call with a message buffer; a non-zero code becomes an
/// `io::Error` with the shim's status text.
fn call(f: impl FnOnce(*mut libc::c_char, libc::size_t) -> libc::c_int) -> Result<()> {
    let mut msg = [0 as libc::c_char; 256];
    if f(msg.as_mut_ptr(), msg.len()) == 0 {
        return Ok(());
    }
    // SAFETY: NUL-terminated by the shim (or all zero).
    let text = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) };
    let text = text.to_string_lossy();
    let kind = if text.contains("NotFound") || text.contains("No such file") {
        ErrorKind::NotFound
    } else {
        ErrorKind::Other
    };
    Err(Error::new(kind, text.into_owned()))
}

/// A store's files beside its database: on the fault filesystem in the
/// cycles that have one, on the plain filesystem otherwise.
#[derive(Clone, Copy, Debug)]
pub struct SideFs {
    fault: bool,
    loses_unsynced: bool,
}

impl SideFs {
    /// The side-file filesystem for a store opened with `o`. Make it after
    /// [`wire_fault_env`](super::fault_fs::wire_fault_env) (or
    /// crashcheck's own RocksDB adapter) has put the store's RocksDB on
    /// the fault filesystem: it uses that one.
    pub fn new(o: &super::StoreOptions) -> SideFs {
        SideFs {
            fault: o.uses_fault_env(),
            loses_unsynced: o.lose_unsynced_data,
        }
    }

    /// Creates (or truncates) a file for writing.
    pub fn create(&self, path: &Path) -> Result<SideFile> {
        if !self.fault {
            let f = std::fs::File::create(path)?;
            return Ok(SideFile {
                path: path.to_path_buf(),
                inner: Inner::Plain(f),
                written: Vec::new(),
                unsynced: false,
                fs: *self,
            });
        }
        let c = c_path(path)?;
        let mut raw: *mut RawFile = std::ptr::null_mut();
        // SAFETY: valid C string and out pointer; the shim allocates `raw`.
        call(|m, n| unsafe { crashcheck_side_create(c.as_ptr(), &mut raw, m, n) })?;
        cache(|c| c.remove(path));
        Ok(SideFile {
            path: path.to_path_buf(),
            inner: Inner::Fault(raw),
            written: Vec::new(),
            unsynced: false,
            fs: *self,
        })
    }

    /// Creates `dir` and its missing parents, and makes each new entry
    /// durable (fsync of its parent): a helper for the store's layout,
    /// not under test.
    pub fn create_dir_all(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
            std::fs::create_dir(dir)?;
            return self.sync_dir(parent);
        }
        std::fs::create_dir(dir)
    }

    /// Renames `from` to `to` (replacing `to`).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        if !self.fault {
            return std::fs::rename(from, to);
        }
        let (a, b) = (c_path(from)?, c_path(to)?);
        // SAFETY: valid C strings.
        call(|m, n| unsafe { crashcheck_side_rename(a.as_ptr(), b.as_ptr(), m, n) })?;
        cache(|c| c.remove(from).map(|d| c.insert(to.to_path_buf(), d)));
        Ok(())
    }

    /// Deletes a file.
    pub fn delete(&self, path: &Path) -> Result<()> {
        if !self.fault {
            return std::fs::remove_file(path);
        }
        let c = c_path(path)?;
        // SAFETY: valid C string.
        call(|m, n| unsafe { crashcheck_side_delete(c.as_ptr(), m, n) })?;
        cache(|c| c.remove(path));
        Ok(())
    }

    /// fsync of directory `dir`: makes the entries created, renamed and
    /// deleted in it so far survive a power cut.
    pub fn sync_dir(&self, dir: &Path) -> Result<()> {
        if !self.fault {
            return std::fs::File::open(dir)?.sync_all();
        }
        let c = c_path(dir)?;
        // SAFETY: valid C string.
        call(|m, n| unsafe { crashcheck_side_sync_dir(c.as_ptr(), m, n) })
    }

    /// The whole content of a file, as this process would read it (data
    /// not yet synced included).
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        if !self.fault {
            return std::fs::read(path);
        }
        if let Some(d) = cache(|c| c.get(path).cloned()) {
            return Ok(d);
        }
        extern "C" fn sink(ctx: *mut libc::c_void, data: *const libc::c_char, len: libc::size_t) {
            // SAFETY: `ctx` is the Vec below; `data` has `len` bytes.
            unsafe {
                let out = &mut *(ctx as *mut Vec<u8>);
                out.extend_from_slice(std::slice::from_raw_parts(data as *const u8, len));
            }
        }
        let c = c_path(path)?;
        let mut out: Vec<u8> = Vec::new();
        let ctx = &mut out as *mut Vec<u8> as *mut libc::c_void;
        // SAFETY: valid C string; `sink` writes into `out` during the call.
        call(|m, n| unsafe { crashcheck_side_read(c.as_ptr(), sink, ctx, m, n) })?;
        Ok(out)
    }
}

enum Inner {
    Plain(std::fs::File),
    Fault(*mut RawFile),
}

/// A file being written through a [`SideFs`]. Close it with
/// [`SideFile::close`]; dropping it closes it too, ignoring errors.
pub struct SideFile {
    path: PathBuf,
    inner: Inner,
    /// Everything appended (kept only on a filesystem that drops unsynced
    /// data at close; see `PAGE_CACHE`).
    written: Vec<u8>,
    unsynced: bool,
    fs: SideFs,
}

impl SideFile {
    /// Appends `data`.
    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.inner {
            Inner::Plain(f) => f.write_all(data)?,
            // SAFETY: live handle; `data` is valid for the call.
            Inner::Fault(h) => call(|m, n| unsafe {
                crashcheck_side_append(*h, data.as_ptr() as *const libc::c_char, data.len(), m, n)
            })?,
        }
        if self.fs.loses_unsynced {
            self.written.extend_from_slice(data);
        }
        self.unsynced = true;
        Ok(())
    }

    /// fsync of the file's data (not of its directory entry: that takes
    /// [`SideFs::sync_dir`] on its directory).
    pub fn sync(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Plain(f) => f.sync_all()?,
            // SAFETY: live handle.
            Inner::Fault(h) => call(|m, n| unsafe { crashcheck_side_sync(*h, m, n) })?,
        }
        self.unsynced = false;
        Ok(())
    }

    /// Closes the file.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.inner, Inner::Fault(std::ptr::null_mut())) {
            Inner::Plain(f) => drop(f),
            Inner::Fault(h) if h.is_null() => return Ok(()),
            Inner::Fault(h) => {
                if self.unsynced && self.fs.loses_unsynced {
                    let data = std::mem::take(&mut self.written);
                    cache(|c| c.insert(self.path.clone(), data));
                }
                // SAFETY: live handle, freed by the shim.
                return call(|m, n| unsafe { crashcheck_side_close(h, m, n) });
            }
        }
        Ok(())
    }
}

impl Drop for SideFile {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

// SAFETY: the handle is used by one thread at a time (`&mut self`), and
// the C++ file object is not tied to a thread.
unsafe impl Send for SideFile {}
