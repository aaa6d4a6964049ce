//! Tests of the repro file format: round trips, parse errors, shrinking.
use super::*;
use crate::workload::{Generator, Profile};

#[test]
fn case_round_trips() {
    let ops = Generator::new(3, Profile::by_name("default").unwrap()).ops(200);
    let case = Case {
        check: CheckKind::Crash,
        seed: 3,
        profile: "default".into(),
        store: "mutant:early-ack".into(),
        options: StoreOptions::default(),
        expect: Expect::Violation(Some(ViolationClass::LostAckedWrite)),
        fault: Some(Fault::KILL),
        kill_after_op: Some(17),
        kill_step: None,
        kill_writer: 0,
        kill_flush: false,
        kill_timed: false,
        comments: vec!["a comment".into()],
        base: Vec::new(),
        ops,
        writers: Vec::new(),
        interleaving: None,
    };
    let text = case.to_text();
    let back = Case::parse(&text, "x").unwrap();
    // The engine line names the writer's RocksDB and is not kept as a
    // comment (saving again does not repeat it).
    let engine = crate::store::engine::engine().to_string();
    assert_eq!(Case::engine_of(&text), Some(engine.as_str()));
    assert_eq!(back, case);
    assert_eq!(back.to_text(), text);
    // A base section round-trips, before the ops.
    let based = Case {
        base: crate::workload::load::load_ops(
            5,
            &Profile::by_name("crash").unwrap(),
            Default::default(),
        ),
        ..case.clone()
    };
    let t = based.to_text();
    assert!(t.find("\nbase:\n") < t.find("\nops:\n"), "{t}");
    assert_eq!(Case::parse(&t, "x").unwrap(), based);
    // Several writers, column families and checkpoints.
    let layout = |w| crate::keyspace::Layout {
        cfs: 3,
        writer: w,
        writers: 3,
    };
    let gen = |w: u8| {
        Generator::new(w as u64, Profile::by_name("checkpoint").unwrap())
            .with_layout(layout(w), crate::workload::FlushStyle::Mixed)
            .ops(120)
    };
    let multi = Case {
        options: StoreOptions {
            column_families: 3,
            atomic_flush: true,
            ..StoreOptions::default()
        },
        ops: gen(0),
        writers: vec![gen(1), gen(2)],
        interleaving: Some((0..360).map(|i| (i % 3) as u8).collect()),
        ..case
    };
    let text = multi.to_text();
    assert!(text.contains("\nwriter 2:\n"), "{text}");
    assert!(text.contains("\ninterleaving: 0 1 2 0 1 2 "), "{text}");
    assert_eq!(Case::parse(&text, "x").unwrap(), multi);
    // An interleaving that does not fit the writers' ops is refused.
    let short = text.replace("interleaving: 0 1 2 ", "interleaving: 0 1 ");
    assert!(Case::parse(&short, "x").is_err());
    let bad = text.replace("writer 2:", "writer 5:");
    assert!(Case::parse(&bad, "x").is_err());
}

#[test]
fn malformed_files_name_the_line() {
    let good = "# crashcheck repro v1\ncheck: run\nseed: 1\nops:\nput k1 \"a\"\n";
    assert!(Case::parse(good, "f").is_ok());
    let cases = [
        ("# crashcheck repro v1\ncheck: run\nseed: x\nops:\n", 3),
        (
            "# crashcheck repro v1\ncheck: run\nops:\nput k1 \"a\"\nfrob\n",
            5,
        ),
        ("# crashcheck repro v1\noptions: nope=1\nops:\n", 2),
        ("hello\n", 1),
        ("# crashcheck repro v1\ncheck: run\n", 2),
    ];
    for (text, line) in cases {
        match Case::parse(text, "f") {
            Err(ReproError::Parse { line: l, .. }) => assert_eq!(l, line, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn shrink_finds_the_minimal_pair() {
    let ops = Generator::new(9, Profile::by_name("default").unwrap()).ops(300);
    let a = ops[40].clone();
    let b = ops[250].clone();
    let min = shrink(ops, 10_000, |c| c.contains(&a) && c.contains(&b));
    assert!(min.len() <= 3, "{}", min.len());
    assert!(min.contains(&a) && min.contains(&b));
}

#[test]
fn a_kill_inside_an_op_round_trips() {
    let text = "# crashcheck repro v1\ncheck: crash\nfault: kill\nkill: in-op 3 step 2\nexpect: torn-batch\nops:\nput a \"1\"\ndel b\ndelrange a z\n";
    let c = Case::parse(text, "t").unwrap();
    assert_eq!((c.kill_after_op, c.kill_step), (Some(3), Some(2)));
    assert_eq!(c.expect, Expect::Violation(Some(ViolationClass::TornBatch)));
    assert_eq!(Case::parse(&c.to_text(), "t").unwrap(), c);
    assert_eq!(c.kill_writer, 0);
    // Another writer's op.
    let w = text.replace("step 2\n", "step 2 writer 3\n");
    let c = Case::parse(&w, "t").unwrap();
    assert_eq!(
        (c.kill_after_op, c.kill_step, c.kill_writer),
        (Some(3), Some(2), 3)
    );
    assert!(c.to_text().contains("kill: in-op 3 step 2 writer 3\n"));
    assert_eq!(Case::parse(&c.to_text(), "t").unwrap(), c);
    assert!(!c.kill_flush);
    // A flush at the kill, with and without a writer.
    for (line, writer) in [("step 2 writer 3 flush\n", 3), ("step 2 flush\n", 0)] {
        let c = Case::parse(&text.replace("step 2\n", line), "t").unwrap();
        assert_eq!(
            (c.kill_step, c.kill_writer, c.kill_flush),
            (Some(2), writer, true)
        );
        assert!(c.to_text().contains(&format!("kill: in-op 3 {line}")));
        assert_eq!(Case::parse(&c.to_text(), "t").unwrap(), c);
    }
    // A timed kill, with and without a flush and a writer.
    for (line, writer, flush) in [
        ("step 2 writer 3 timed flush\n", 3, true),
        ("step 2 timed\n", 0, false),
    ] {
        let c = Case::parse(&text.replace("step 2\n", line), "t").unwrap();
        assert_eq!(
            (c.kill_step, c.kill_writer, c.kill_flush, c.kill_timed),
            (Some(2), writer, flush, true)
        );
        assert!(c.to_text().contains(&format!("kill: in-op 3 {line}")));
        assert_eq!(Case::parse(&c.to_text(), "t").unwrap(), c);
    }
    for bad in [
        "kill: in-op 3",
        "kill: in-op x step 1",
        "kill: somewhere",
        "kill: in-op 3 step 2 writer x",
        "kill: in-op 3 step 2 flushed",
        "kill: in-op 3 step flush",
    ] {
        let t = text.replace("kill: in-op 3 step 2", bad);
        assert!(Case::parse(&t, "t").is_err(), "{bad}");
    }
}
