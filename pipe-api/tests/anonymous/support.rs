//! Helpers of the anonymous-pipe tests.

use crate::common;

use common::{Pending, HANG};
use shmpipe::{Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{self, Read};
use std::time::{Duration, Instant};

pub(super) fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

pub(super) fn pipe_with(quota: u32) -> (PipeReader, PipeWriter) {
    PipeBuilder::new().buffer_size(quota).build().unwrap()
}

/// Reads exactly `n` bytes that are known to be queued.
pub(super) fn take(r: &mut PipeReader, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).unwrap();
    buf
}

/// Polls `cond` until it holds; fails the test on a hang.
pub(super) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts a blocking write of `data` on its own thread.
pub(super) fn start_write(
    w: PipeWriter,
    data: Vec<u8>,
) -> Pending<(io::Result<usize>, PipeWriter)> {
    Pending::start("blocking write", move || (w.try_write(&data), w))
}
