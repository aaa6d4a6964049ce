//! Standalone reproducer for docs/findings.md finding 5: after a full disk,
//! `DB::Resume()` can block forever in `WaitForFlushMemTables`. A flush
//! request queued while background work was stopped is never scheduled
//! (MaybeScheduleFlushOrCompaction bails out), and it keeps its column
//! family marked `queued_for_flush`. So the recovery flush of that column
//! family is never enqueued (EnqueuePendingFlush deduplicates), and the
//! stale request, scheduled by the recovery, is dropped as a non-recovery
//! flush (BackgroundFlush). Nothing flushes the memtable the recovery waits
//! for. A request can also be left queued and uncounted by a flush job that
//! started after the error (mode `orphan`): then nothing is scheduled at
//! all. See docs/upstream/finding-5-resume-hang.md.
//!
//! Stock RocksDB 11.8.1: `flushes 10` and `orphan 10` hung 10 of 10 rounds;
//! with patches/finding-5-resume-stale-flush-queue.patch, 0 of 10.
//!
//! `cargo run --example resume_hang -- [MODE] [ROUNDS] [--no-wait] [--no-nudge] [--atomic-flush]`
//! (defaults: `flushes`, 3 rounds; under 30 s on stock, where every round hangs)
//!
//! Each round opens a fresh database (one column family, writes with the
//! WAL off, 64 KiB memtables, `max_background_jobs` 2, so one flush at a
//! time) on RocksDB's FaultInjectionTestFS (crashcheck's shim,
//! csrc/fault_env.cc, whose listener vetoes automatic recovery as
//! include/rocksdb/listener.h `OnErrorRecoveryBegin` documents). It fills
//! the disk (`SetFilesystemActive(false, IOStatus::NoSpace())`), runs the
//! failing ops of MODE, waits until no flush job runs (the failed one backs
//! off for 1 s first; `--no-wait` skips this), gives the space back
//! (`SetFilesystemActive(true)`) and calls `DB::Resume()` on a helper
//! thread. A Resume that has not returned after 5 s (it returns in
//! milliseconds when it works) is reported as
//! `HANG`: its database is leaked and the next round goes on. After a
//! Resume that returns Ok, every write must be readable and no memtable
//! may hold an entry (the recovery flushed the memtables). Exits 1 if
//! any round hung or lost writes.
//!
//! The nudge (on unless `--no-nudge`): right before `Resume`, every thread
//! of the flush pool is kept busy for 300 ms by a job that only sleeps
//! (csrc/fault_env.cc `crashcheck_occupy_flush_pool`), as if another
//! database sharing the Env were flushing. Without it there is a race
//! inside `Resume`: the recovery's `SwitchMemtable` schedules the stale
//! request and then releases the DB mutex to notify listeners
//! (`NotifyOnMemTableSealed`). If the flush thread pops and drops the stale
//! request in that window, the column family is no longer queued, the
//! recovery request gets in, and `Resume` succeeds. The nudge makes the
//! flush thread lose that race every time.
//!
//! Modes:
//! - `flushes` (default, deterministic): two manual `Flush()` calls fail
//!   on the full disk. The first one's background flush sets the
//!   background error. The second one switches no memtable (it is empty)
//!   but queues a flush request for the immutable memtable left over. That
//!   request cannot be scheduled while background work is stopped.
//! - `race`: as crashcheck met it, with a single failing op. A writer puts
//!   until a background flush is running (`rocksdb.num-running-flushes` >
//!   0). Then the disk fills and one manual `Flush()` fails: its request is
//!   queued behind the running flush (one flush slot), and it is not
//!   scheduled once that flush has failed. The round hangs only if the
//!   background flush was still running when the disk filled, so this mode
//!   reports a rate.
//! - `orphan`: writes with the WAL on. While the flush pool is kept busy
//!   (as by the nudge), a `Flush` without wait schedules a flush job; then
//!   the disk fills and a put fails on its WAL append (a hard error). The
//!   flush job starts after the error, finds background work stopped and no
//!   recovery in progress, and returns without popping its request
//!   (BackgroundFlush): the request stays queued and is no longer counted
//!   in `unscheduled_flushes_`, so nothing ever schedules it. `Resume` then
//!   hangs with nothing scheduled at all, and without the race the nudge
//!   removes (no nudge in this mode). This is how crashcheck's `wal` cycle
//!   (failed op `del`) can have hung.
//! - `flushes-auto`: as `flushes`, but the listener lets RocksDB recover by
//!   itself (no veto). The SstFileManager's recovery then leaves the error
//!   state: `Resume` returns Busy, and a write succeeds afterwards. This
//!   shows what the veto changes.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashcheck::store::fault_fs;
use rocksdb::{FlushOptions, Options, WriteOptions, DB};

extern "C" {
    /// csrc/fault_env.cc: 1 = the listener vetoes automatic recovery
    /// (crashcheck's default), 0 = it lets RocksDB recover by itself.
    fn crashcheck_fault_env_veto_auto_recovery(on: libc::c_int);
    /// csrc/fault_env.cc: keeps every flush-pool thread of the default Env
    /// busy for `ms` milliseconds; returns how many.
    fn crashcheck_occupy_flush_pool(ms: libc::c_int) -> libc::c_int;
}

const RESUME_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the nudge keeps the flush pool busy.
const NUDGE_MS: libc::c_int = 300;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Flushes,
    Race,
    FlushesAuto,
    Orphan,
}

enum Outcome {
    Resumed,
    /// Resume returned Ok, but writes made before it are not persisted.
    Lost(String),
    ResumeFailed(String),
    Hang,
}

fn open(dir: &std::path::Path) -> DB {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(4);
    o.set_max_background_jobs(2);
    // `--atomic-flush`: atomic flush requests bypass the per-column-family
    // deduplication, but an uncounted request ahead of the recovery's in
    // the queue takes the only job scheduled for it.
    o.set_atomic_flush(std::env::args().any(|a| a == "--atomic-flush"));
    fault_fs::install_fault_env(&mut o, false);
    DB::open(&o, dir).expect("open")
}

fn flush(db: &DB) -> Result<(), rocksdb::Error> {
    let mut f = FlushOptions::default();
    f.set_wait(true);
    db.flush_opt(&f)
}

fn round(mode: Mode, r: usize, seed: u64, wait_idle: bool, nudge: bool) -> (Outcome, String) {
    let dir = std::env::temp_dir().join(format!("resume-hang-{}-{r}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(open(&dir));
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    let n = std::cell::Cell::new(0u64);
    let put = |db: &DB| {
        db.put_opt(format!("k{:08}", n.get()), [7u8; 200], &w)
            .expect("put");
        n.set(n.get() + 1);
    };
    let mut what = match mode {
        Mode::Flushes | Mode::FlushesAuto => {
            for _ in 0..100 {
                put(&db);
            }
            fault_fs::fill_disk();
            let a = flush(&db).err().map(|e| e.to_string());
            let b = flush(&db).err().map(|e| e.to_string());
            format!("flush 1: {a:?}; flush 2: {b:?}")
        }
        Mode::Orphan => {
            // Writes with the WAL on.
            let wal = WriteOptions::default();
            for i in 0..100 {
                db.put_opt(format!("k{i:08}"), [7u8; 200], &wal)
                    .expect("put");
            }
            n.set(100);
            // A flush job is scheduled while the flush pool is busy, so it
            // starts only after the error below: it then finds background
            // work stopped and no recovery in progress, and returns without
            // popping its request (BackgroundFlush), after which it backs
            // off for 1 s. The request stays queued, uncounted.
            // SAFETY: schedules plain sleeping jobs on the default Env.
            unsafe { crashcheck_occupy_flush_pool(NUDGE_MS) };
            std::thread::sleep(Duration::from_millis(20));
            let mut f = FlushOptions::default();
            f.set_wait(false);
            let a = db.flush_opt(&f).err().map(|e| e.to_string());
            fault_fs::fill_disk();
            let b = db
                .put_opt(b"on-full-disk", b"v", &wal)
                .err()
                .map(|e| e.to_string());
            std::thread::sleep(Duration::from_millis(NUDGE_MS as u64 + 1200));
            format!("flush without wait: {a:?}; put: {b:?}")
        }
        Mode::Race => {
            // Some data, then put until a background flush is running; a
            // few rounds stop after a pseudo-random number of extra puts.
            for _ in 0..(seed % 500) {
                put(&db);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while db
                .property_int_value("rocksdb.num-running-flushes")
                .unwrap()
                .unwrap_or(0)
                == 0
                && Instant::now() < deadline
            {
                put(&db);
            }
            fault_fs::fill_disk();
            let a = flush(&db).err().map(|e| e.to_string());
            format!("flush: {a:?}")
        }
    };
    if wait_idle {
        // The failed background flush backs off for a second before it
        // gives its flush slot back (db_impl_compaction_flush.cc
        // BackgroundCallFlush: SleepForMicroseconds(1000000) after a flush
        // error). A Resume started meanwhile would let that job, as it
        // ends, schedule the queued request and drop it before the
        // recovery flush is requested; crashcheck's failing ops can take
        // that long (a stalled write). Wait for the job to end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while db
            .property_int_value("rocksdb.num-running-flushes")
            .unwrap()
            .unwrap_or(0)
            > 0
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    fault_fs::restore_disk();
    if nudge && mode != Mode::Orphan {
        // Keep the flush pool busy while Resume starts (see the module
        // comment), then give the sleeping jobs time to start.
        // SAFETY: schedules plain sleeping jobs on the default Env.
        unsafe { crashcheck_occupy_flush_pool(NUDGE_MS) };
        std::thread::sleep(Duration::from_millis(20));
    }
    let (tx, rx) = mpsc::channel();
    let db2 = db.clone();
    std::thread::spawn(move || {
        let _ = tx.send(fault_fs::resume(&db2));
    });
    let out = match rx.recv_timeout(RESUME_TIMEOUT) {
        Ok(Ok(())) => {
            // Every write made before the disk filled must now be in an SST
            // file: the recovery flushed every memtable, so none holds an
            // entry and every key reads back. (Not `ReadTier::Persisted`:
            // rust-rocksdb 0.22 lacks it, and this runs on every version.)
            let in_memtables: u64 = [
                "rocksdb.num-entries-active-mem-table",
                "rocksdb.num-entries-imm-mem-tables",
            ]
            .iter()
            .map(|p| db.property_int_value(*p).ok().flatten().unwrap_or(0))
            .sum();
            let unread = (0..n.get())
                .filter(|i| db.get(format!("k{i:08}")).expect("get").is_none())
                .count() as u64;
            let missing = unread.max(in_memtables.min(n.get()));
            if missing == 0 {
                Outcome::Resumed
            } else {
                Outcome::Lost(format!(
                    "Resume returned Ok, but {missing} of {} writes are not persisted",
                    n.get()
                ))
            }
        }
        Ok(Err(e)) => Outcome::ResumeFailed(e),
        Err(_) => Outcome::Hang,
    };
    if let Outcome::Hang = out {
        // The helper thread is blocked inside Resume with its reference to
        // the database: leak ours too, nothing can close it.
        std::mem::forget(db);
    } else {
        if mode == Mode::FlushesAuto {
            // Automatic recovery may still be running: wait for it (a
            // write succeeds once the error is cleared).
            let deadline = Instant::now() + Duration::from_secs(30);
            while db.put(b"after", b"v").is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            what += &format!(
                "; write after recovery: {:?}",
                db.put(b"after", b"v").is_ok()
            );
        }
        drop(db);
        if std::env::var_os("RESUME_HANG_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    (out, what)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wait_idle = !args.iter().any(|a| a == "--no-wait");
    let nudge = !args.iter().any(|a| a == "--no-nudge");
    let mut mode = Mode::Flushes;
    let mut rounds = 3;
    for a in args.iter().filter(|a| !a.starts_with("--")) {
        match a.as_str() {
            "flushes" => mode = Mode::Flushes,
            "race" => mode = Mode::Race,
            "flushes-auto" => mode = Mode::FlushesAuto,
            "orphan" => mode = Mode::Orphan,
            n => rounds = n.parse().expect("MODE or ROUNDS"),
        }
    }
    run(mode, rounds, wait_idle, nudge)
}

fn run(mode: Mode, rounds: usize, wait_idle: bool, nudge: bool) {
    // SAFETY: sets a process-wide flag of the shim.
    unsafe { crashcheck_fault_env_veto_auto_recovery(i32::from(mode != Mode::FlushesAuto)) };
    let (mut hangs, mut failed, mut ok, mut lost) = (0, 0, 0, 0);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for r in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (out, what) = round(mode, r, seed, wait_idle, nudge);
        let verdict = match &out {
            Outcome::Resumed => {
                ok += 1;
                "resumed, every write persisted".to_string()
            }
            Outcome::ResumeFailed(e) => {
                failed += 1;
                format!("Resume failed: {e}")
            }
            Outcome::Lost(e) => {
                lost += 1;
                e.clone()
            }
            Outcome::Hang => {
                hangs += 1;
                format!("HANG: DB::Resume() did not return within {RESUME_TIMEOUT:?}")
            }
        };
        println!("round {r}: {what} -> {verdict}");
    }
    println!(
        "{rounds} rounds: {hangs} hung in DB::Resume(), {ok} resumed with every write persisted, \
         {lost} resumed with writes not persisted, {failed} Resume returned an error"
    );
    // A hung Resume thread still holds its database: exit without joining.
    std::process::exit(i32::from(hangs + lost > 0));
}
