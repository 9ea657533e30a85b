//! Replays the `remote_frames` fuzz corpus on stable: every input in
//! `fuzz/corpus/remote_frames/` and `fuzz/artifacts/remote_frames/` goes
//! through the body the libFuzzer target runs
//! (`fuzz/harness/remote_frames.rs`).

#[path = "../../fuzz/harness/remote_frames.rs"]
mod remote_frames;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[test]
fn remote_frames_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join("remote_frames")) else {
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
        "fuzz/corpus/remote_frames/ is missing or nearly empty"
    );
    let failed: Vec<_> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable corpus file");
            catch_unwind(AssertUnwindSafe(|| remote_frames::check(&data))).is_err()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} remote_frames inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}
