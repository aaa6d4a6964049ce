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
        ("deep", "deep", 1, 1, "crash"),
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

/// The hash of cycle `cycle`'s plan as the campaign makes it
/// (`crashcheck::cycle::plan`), for a campaign with these settings.
fn plan_digest(option_profile: &str, cfs: u8, writers: usize, profile: &str, cycle: u64) -> u64 {
    use crashcheck::cycle::plan::{plan, PlanInputs};
    use crashcheck::fault::Fault;
    use crashcheck::model::State;
    use crashcheck::store::{StoreOptions, WalMode};
    let faults: Vec<Fault> = Fault::all()
        .iter()
        .copied()
        .filter(|f| f.works_with_writers(writers))
        .collect();
    let options = StoreOptions {
        column_families: cfs,
        atomic_flush: cfs > 3,
        ..StoreOptions::default()
    };
    let profile = Profile::by_name(profile).unwrap();
    let inputs = PlanInputs {
        seqno_zero_opening: false,
        modes: &WalMode::ALL,
        faults: &faults,
        seed: 1,
        options: &options,
        option_profile,
        forced_options: "",
        writers,
        ops_per_cycle: 300,
        profile: &profile,
        cf_flush: None,
        ack_kills_only: false,
    };
    let p = plan(&inputs, cycle, |_| State::new()).unwrap();
    let mut s = format!(
        "{} {} {}\n",
        p.mode.name(),
        p.fault.name(),
        p.opts.to_options_string()
    );
    for h in &p.histories {
        let _ = writeln!(s, "{:016x}", hash_ops(&h.ops));
    }
    let _ = write!(s, "{:?}\n{:?}", p.kill, p.sample);
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
        lines
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.as_str() != **b)
            .count(),
        lines.len(),
        differ.join("\n")
    );
}
