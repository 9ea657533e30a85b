//! libFuzzer entry point. The body lives in `harness/names.rs`, which the
//! stable test `pipe-api/tests/fuzz_replay.rs` runs over the checked-in corpus.
#![no_main]

#[path = "../harness/names.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
