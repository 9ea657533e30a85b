//! Named pipes within one process: creation options and instance limits
//! (SEM-007..017), instance states and `connect` (SEM-029..042), client
//! `open` (SEM-044..050), `wait_available` (SEM-051..058), state and
//! identity queries (SEM-136, SEM-139..141), hostile input on the
//! rendezvous socket, and the race of `connect` after `disconnect`.
//!
//! "Pipe" means the spec's default (section 9): Duplex, max instances 1,
//! quota 1024 each way, client opened READ_WRITE ([`default_opts`]). Every
//! test uses its own pipe name: tests run in parallel. Nothing here starts
//! a process (see the `anonymous` binary for why that matters); the tests
//! across processes are in `named_xproc`.
//!
//! [`default_opts`]: common::named::default_opts

#[path = "../common/mod.rs"]
mod common;

mod connect;
mod connect_race;
mod creation;
mod hostile_input;
mod identity;
mod open_and_wait;
mod support;
