//! Cross-process streaming through a shared segment, between real processes:
//! every record arrives exactly once, in order, whole and uncorrupted; writes
//! of several writer processes never interleave; the reader sees the end of
//! the stream only when the last writer handle, in any process, is gone.
//!
//! Children are this test binary re-executed (see `common`). The number of
//! records of the streaming tests is `SHMPIPE_XPROC_RECORDS` (default: 10
//! million in release builds, fewer in debug builds, where the same run would
//! take many minutes); CI runs this binary in release for the full count. The
//! three-writer test makes `SHMPIPE_XPROC_MULTI_RECORDS` writes per writer
//! (default: 3,333,334 in release builds, so 10 million in all; fewer in
//! debug builds).
//!
//! Several writers' empty messages cannot carry a key. Each writer follows
//! its keyed record `n` with `e(n)` empty messages, `e` a pure function of
//! (seed, key), and the reader ([`Merged`]) decides whether the empty
//! messages it saw can be shared out so that each keyed record is followed,
//! before its writer's next record, by exactly its own `e(n)`: a lost,
//! duplicated or misplaced empty message fails unless the delivered stream
//! is one that correct, atomic writes could also have produced.

#[path = "../common/mod.rs"]
mod common;

mod records;
mod streams;
mod writers;

common::main! {
    modules: [streams, writers],
}
