//! The crate's layout stays as `docs/architecture.md` says: every library
//! module is in its pipeline order, no module refers to one later in that
//! order (so the import graph has no cycle), and no file under `src/` is
//! longer than 600 lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The pipeline order from docs/architecture.md.
fn order() -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap();
    let line = doc
        .lines()
        .find_map(|l| l.strip_prefix("Pipeline order: "))
        .expect("docs/architecture.md has a 'Pipeline order: ' line");
    line.split(',').map(|m| m.trim().to_string()).collect()
}

/// `crate::x` references in code (comments dropped).
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn modules_follow_the_documented_pipeline_and_files_stay_small() {
    let order = order();
    let pos: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    for m in &declared {
        assert!(
            pos.contains_key(m),
            "module {m} is missing from the pipeline order"
        );
    }
    assert_eq!(
        declared.len(),
        order.len(),
        "the order lists modules that do not exist"
    );
    let src = Path::new(ROOT).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&src).unwrap();
        assert!(
            text.lines().count() <= 600,
            "{} has {} lines (at most 600)",
            rel.display(),
            text.lines().count()
        );
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&me) = pos.get(top.as_str()) else {
            continue; // lib.rs, main.rs and the CLI (the binary's own crate)
        };
        for r in references(&text) {
            if let Some(&there) = pos.get(r.as_str()) {
                if there > me {
                    upward.push(format!("{} refers to {r}", rel.display()));
                }
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "modules refer to modules later in the pipeline:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_reference() {
    // The scanner itself must be able to fail.
    let refs =
        references("use crate::campaign::X; // crate::ignored\nlet y = crate::op::Op::Reopen;");
    assert_eq!(refs, vec!["campaign", "op"]);
}
