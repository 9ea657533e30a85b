//! Replays the `names` fuzz corpus on stable: every input in
//! `fuzz/corpus/names/` and `fuzz/artifacts/names/` goes through the body the
//! libFuzzer target runs (`fuzz/harness/names.rs`), so the corpus is a
//! regression suite that needs neither nightly nor cargo-fuzz. The engine's
//! targets are replayed by `engine/tests/fuzz_replay.rs`.

#[path = "../../fuzz/harness/names.rs"]
mod names;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[test]
fn names_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("names")) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 10,
        "fuzz/corpus/names/ is missing or nearly empty"
    );
    let failed: Vec<_> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable corpus file");
            catch_unwind(AssertUnwindSafe(|| names::check(&data))).is_err()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} names inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}
