//! Replays the pipe crate's fuzz corpora on stable: every input in
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` goes through the
//! body the libFuzzer target runs (`fuzz/harness/<target>.rs`), so each
//! corpus is a regression suite that needs neither nightly nor cargo-fuzz.
//! `names` always; `remote_frames` with the `remote` feature. The engine's
//! targets are replayed by `engine/tests/fuzz_replay.rs`.

#[path = "../../fuzz/harness/names.rs"]
mod names;
#[cfg(feature = "remote")]
#[path = "../../fuzz/harness/remote_frames.rs"]
mod remote_frames;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs `check` on every input of `target`'s corpus and artifacts; fails
/// if the corpus is missing or nearly empty, or if any input panics.
fn replay(target: &str, check: fn(&[u8])) {
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
    assert!(
        files.len() >= 10,
        "fuzz/corpus/{target}/ is missing or nearly empty"
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
fn names_corpus() {
    replay("names", names::check);
}

#[cfg(feature = "remote")]
#[test]
fn remote_frames_corpus() {
    replay("remote_frames", remote_frames::check);
}
