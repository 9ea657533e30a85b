//! Anonymous pipes within one process: spec 9.2 (SEM-018 to SEM-025,
//! SEM-027, SEM-028) and the byte-pipe behaviours of 9.6 to 9.12 that apply
//! to a pipe with one read end and one write end, and a model check of the
//! whole (`model`).
//!
//! Operations that must wait run on their own thread ([`Pending`]): a
//! "still pending" check waits until the operation's thread sleeps in the
//! kernel and then looks, which a correct implementation cannot fail, and a
//! wrong one fails by returning first; a completion check has a generous hang
//! guard, so a wrong implementation fails a test instead of hanging CI.
//! Cross-process behaviours (SEM-026, inherited copies, kills) are in the
//! `anonymous_xproc` test binary. Nothing here starts a process: a test that
//! closes an end and expects the peer to see it at once must not share its
//! process with tests that fork (a child holds copies of every descriptor
//! until it execs).
//!
//! [`Pending`]: common::Pending

#[path = "../common/mod.rs"]
mod common;

mod closing;
mod ends;
mod model;
mod quota;
mod support;
mod transfer;
