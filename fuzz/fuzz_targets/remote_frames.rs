//! libFuzzer entry point. The body lives in `harness/remote_frames.rs`,
//! which the stable test `pipe-api/tests/remote_fuzz_replay.rs` runs over
//! the checked-in corpus.
#![no_main]

#[path = "../harness/remote_frames.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
