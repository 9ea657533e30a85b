//! libFuzzer entry point. The body lives in `harness/framing.rs`, which the
//! stable test `engine/tests/fuzz_replay.rs` runs over the checked-in corpus.
#![no_main]

#[path = "../harness/framing.rs"]
mod harness;
#[path = "../harness/input.rs"]
mod input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
