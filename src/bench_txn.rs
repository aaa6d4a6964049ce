//! The transaction pair of `bench crash`: a bare loop and crashcheck, both
//! on a TransactionDB (`--store transaction-db`) running the `txn` profile,
//! so the ratio says what crashcheck costs on that store, beside the plain
//! pairs of [`crate::bench::crash`].
//!
//! The bare loop forks a writer that opens the store, runs the same ops
//! through the store's own calls ([`drive`] with no hooks: no model, no
//! acknowledgement log) and dies by SIGKILL at a random op; then a
//! verifier that reopens it and reads everything. Both sides start each
//! cycle on an empty database (the transactional stores have no deep base
//! of their own).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::campaign::{run_campaign, CrashConfig};
use crate::crash::{isolate, ChildEnd};
use crate::store::drive::{drive, Plain};
use crate::store::{StoreFactory, StoreOptions, WalMode};
use crate::workload::{Generator, Profile};

/// Crash cycles/s of the transaction pair.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TxnPair {
    /// Bare loop on a TransactionDB: cycles/s.
    pub bare_cycles_per_s: f64,
    /// crashcheck on a TransactionDB: cycles/s.
    pub cycles_per_s: f64,
}

/// The `txn` profile as the TransactionDB store draws it.
fn profile(factory: &dyn StoreFactory) -> Result<Profile, String> {
    let mut p = Profile::by_name("txn").ok_or("no txn profile")?;
    factory.capabilities().restrict(&mut p.weights);
    Ok(p)
}

/// One bare cycle in `dir`: the writer child, killed at a random op, then
/// the verifier child.
fn bare_cycle(
    factory: &dyn StoreFactory,
    dir: &Path,
    p: &Profile,
    seed: u64,
    ops: usize,
) -> Result<(), String> {
    let opts = StoreOptions::default();
    let seq = Generator::new(seed, p.clone()).ops(ops);
    let kill_at = ChaCha8Rng::seed_from_u64(seed).random_range(0..=seq.len());
    isolate(
        || {
            let Ok(mut s) = factory.open(dir, &opts) else {
                return 2;
            };
            for op in seq.iter().take(kill_at) {
                let _ = drive(s.as_mut(), op, &mut Plain);
            }
            // SAFETY: plain syscall.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            0
        },
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    let end = isolate(
        || match factory.open(dir, &opts) {
            Ok(mut s) => {
                std::hint::black_box(s.scan_all().map_or(0, |v| v.len()));
                i32::from(s.close().is_err())
            }
            Err(_) => 1,
        },
        Duration::from_secs(60),
    )
    .map_err(|e| e.to_string())?;
    if end != (ChildEnd::Exited { code: 0 }) {
        return Err(format!("bare transaction verifier failed: {end:?}"));
    }
    crate::fsutil::remove_tree(dir).map_err(|e| e.to_string())
}

/// Bare cycles/s over `seconds`, in one stream per job.
fn bare_loop(
    factory: Arc<dyn StoreFactory>,
    work: &Path,
    seconds: f64,
    jobs: usize,
    ops: usize,
) -> Result<f64, String> {
    let p = profile(factory.as_ref())?;
    let start = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    let hs: Vec<_> = (0..jobs)
        .map(|j| {
            let (f, p) = (factory.clone(), p.clone());
            let dir = work.join(format!("bare-txn-{j}"));
            std::thread::spawn(move || -> Result<u64, String> {
                let mut n = 0u64;
                while start.elapsed() < limit {
                    n += 1;
                    bare_cycle(f.as_ref(), &dir, &p, n * 1000 + j as u64, ops)?;
                }
                Ok(n)
            })
        })
        .collect();
    let mut done = 0;
    for h in hs {
        done += h.join().map_err(|_| "bare transaction loop panicked")??;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

/// crashcheck's cycles/s on the same store and profile, WAL mode, kills
/// after acknowledged ops (as the bare loop's).
fn crashcheck_loop(
    factory: Arc<dyn StoreFactory>,
    work: &Path,
    seconds: f64,
    jobs: usize,
    ops: usize,
) -> Result<f64, String> {
    let base = CrashConfig::new(work);
    let cfg = CrashConfig {
        modes: vec![WalMode::Wal],
        cycles: None,
        duration: Some(Duration::from_secs_f64(seconds)),
        jobs,
        ops_per_cycle: ops,
        timeout: Duration::from_secs(60),
        ack_kills_only: true,
        deep_base: false,
        option_profile: "defaults".into(),
        profile: profile(factory.as_ref())?,
        store_name: factory.name(),
        ..base
    };
    let r = run_campaign(cfg, factory, None).map_err(|e| e.to_string())?;
    if !r.violations.is_empty() {
        return Err(format!(
            "transaction benchmark campaign found violations: {:?}",
            r.violations
        ));
    }
    Ok(r.cycles_per_s)
}

/// One round of the pair: bare, then crashcheck, `seconds` each.
pub fn round(work: &Path, seconds: f64, jobs: usize, ops: usize) -> Result<TxnPair, String> {
    let factory: Arc<dyn StoreFactory> = match crate::store::txn::factory_by_name("transaction-db")
    {
        Some(f) => Arc::from(f),
        None => return Err("this build has no transaction-db store (feature txn-db)".into()),
    };
    Ok(TxnPair {
        bare_cycles_per_s: bare_loop(factory.clone(), work, seconds, jobs, ops)?,
        cycles_per_s: crashcheck_loop(factory, work, seconds, jobs, ops)?,
    })
}
