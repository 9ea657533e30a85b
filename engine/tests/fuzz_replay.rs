//! Replays the fuzz corpora on stable: every input in `fuzz/corpus/<target>/`
//! (what the fuzzer kept for coverage) and `fuzz/artifacts/<target>/`
//! (minimised crashes, kept as regressions) goes through the same fuzz body
//! the libFuzzer target runs, so the corpus is a regression suite that needs
//! neither nightly nor cargo-fuzz.

#[path = "../../fuzz/harness/framing.rs"]
mod framing;
#[path = "../../fuzz/harness/hostile_segment.rs"]
mod hostile_segment;
#[path = "../../fuzz/harness/input.rs"]
mod input;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `check` on every input and fails with the list of those that panicked
/// (each panic message is printed as it happens).
fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for fuzz target {target} (fuzz/corpus/{target}/ is missing or empty)"
    );
    let failed: Vec<_> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn framing_corpus() {
    replay("framing", framing::check);
}

#[test]
fn hostile_segment_corpus() {
    replay("hostile_segment", hostile_segment::check);
}
