//! Behaviour fixture: the generator's op sequences and the crash
//! campaign's per-cycle plans (options, kill plan, sampled keys) hash to
//! the values recorded in `tests/fixtures/plans.txt`, which were written by
//! the commit before the `src/` restructure (issue 13). A restructure that
//! changes what crashcheck generates or where it kills fails here.
//!
//! `CRASHCHECK_BLESS=1 cargo test --test plan_fixture` rewrites the file;
//! do that only for a change that means to alter the generated workloads,
//! and say so in the commit.

use std::fmt::Write as _;

use crashcheck::keyspace::Layout;
use crashcheck::op::Op;
use crashcheck::workload::{FlushStyle, Generator, Profile};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/plans.txt");

fn hash_ops(ops: &[Op]) -> u64 {
    let mut s = String::new();
    for op in ops {
        let _ = writeln!(s, "{op}");
    }
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// One line per (profile, seed, layout): the hash of 300 generated ops.
fn generator_lines() -> Vec<String> {
    let layouts = [
        ("plain", Layout::default(), FlushStyle::All, false),
        ("plain-noreopen", Layout::default(), FlushStyle::All, true),
        (
            "cfs3-mixed",
            Layout {
                cfs: 3,
                writer: 0,
                writers: 1,
            },
            FlushStyle::Mixed,
            false,
        ),
        (
            "cfs2-w1of4-all",
            Layout {
                cfs: 2,
                writer: 1,
                writers: 4,
            },
            FlushStyle::All,
            false,
        ),
    ];
    let mut out = Vec::new();
    for p in Profile::all() {
        for seed in 1..=20u64 {
            for (name, layout, style, noreopen) in layouts {
                let mut g = Generator::new(seed, p.clone());
                if noreopen {
                    g = g.without_reopen();
                }
                let ops = g.with_layout(layout, style).ops(300);
                out.push(format!(
                    "gen {} {seed} {name} {:016x}",
                    p.name,
                    hash_ops(&ops)
                ));
            }
        }
    }
    out
}

/// One line per campaign cycle: the hash of everything the planner decided.
fn plan_lines() -> Vec<String> {
    let mut out = Vec::new();
    for (name, option_profile, cfs, writers, profile) in [
        ("default", "defaults", 1u8, 1usize, "crash"),
        ("randomized", "randomized", 1, 1, "crash"),
        ("cfs4-w4", "defaults", 4, 4, "crash"),
        ("checkpoint", "tiny", 3, 2, "checkpoint"),
    ] {
        for cycle in 0..60u64 {
            let d = plan_digest(option_profile, cfs, writers, profile, cycle);
            out.push(format!("plan {name} {cycle} {:016x}", d));
        }
    }
    out
}

/// The campaign worker's per-cycle planning, as `campaign::worker` does
/// it on the commit that wrote the fixture.
fn plan_digest(option_profile: &str, cfs: u8, writers: usize, profile: &str, cycle: u64) -> u64 {
    use crashcheck::campaign::{choose_kill, cycle_seed, reopen_loses_data, sample_keys};
    use crashcheck::history::History;
    use crashcheck::model::State;
    use crashcheck::oracle::Fault;
    use crashcheck::store::{StoreOptions, WalMode};
    use rand::SeedableRng;
    let modes = WalMode::ALL;
    let faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| f.works_with_writers(writers))
        .collect();
    let combo = (cycle as usize) % (modes.len() * faults.len());
    let mode = modes[combo % modes.len()];
    let fault = faults[combo / modes.len()];
    let campaign_seed = 1;
    let seed = cycle_seed(campaign_seed, cycle);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let base = StoreOptions {
        wal_mode: mode,
        column_families: cfs,
        atomic_flush: cfs > 3,
        ..StoreOptions::default()
    };
    let opts = crashcheck::option_matrix::apply_profile(option_profile, &base, &mut rng).unwrap();
    let flush_style = if opts.atomic_flush {
        FlushStyle::All
    } else {
        FlushStyle::Mixed
    };
    let per_writer = if writers > 1 { (300 / writers).max(60) } else { 300 };
    let lanes: Vec<History> = (0..writers)
        .map(|w| {
            let s = if w == 0 { seed } else { cycle_seed(seed, w as u64) };
            let mut g = Generator::new(s, Profile::by_name(profile).unwrap());
            if reopen_loses_data(fault, &opts) {
                g = g.without_reopen();
            }
            let layout = Layout {
                cfs: opts.column_families.max(1),
                writer: w as u8,
                writers: writers as u8,
            };
            History::new(g.with_layout(layout, flush_style).ops(per_writer), State::new())
        })
        .collect();
    let plan = choose_kill(&mut rng, &lanes[0], false);
    let mut sample = Vec::new();
    for h in &lanes {
        sample.extend(sample_keys(&mut rng, h));
    }
    sample.sort();
    sample.dedup();
    let mut s = format!("{} {} {}\n", mode.name(), fault.name(), opts.to_options_string());
    for h in &lanes {
        let _ = writeln!(s, "{:016x}", hash_ops(&h.ops));
    }
    let _ = write!(s, "{plan:?}\n{sample:?}");
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

#[test]
fn generated_sequences_and_cycle_plans_match_the_fixture() {
    let mut lines = generator_lines();
    lines.extend(plan_lines());
    let text = lines.join("\n") + "\n";
    if std::env::var_os("CRASHCHECK_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(FIXTURE).parent().unwrap()).unwrap();
        std::fs::write(FIXTURE, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(FIXTURE).expect("tests/fixtures/plans.txt");
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(want.len(), lines.len(), "fixture line count");
    let differ: Vec<String> = lines
        .iter()
        .zip(&want)
        .filter(|(a, b)| a.as_str() != **b)
        .map(|(a, b)| format!("got  {a}\nwant {b}"))
        .take(10)
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} plans differ from the fixture:\n{}",
        lines.iter().zip(&want).filter(|(a, b)| a.as_str() != **b).count(),
        lines.len(),
        differ.join("\n")
    );
}
