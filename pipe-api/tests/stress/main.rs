//! Long runs under pressure, across real processes: the kill storm
//! (`kill_storm`: clients and servers SIGKILLed at random while messages
//! flow), a server process under abuse (`abuse`: out of descriptors,
//! members that never answer), and scale (`scale`: descriptors per end,
//! ring memory of listening instances, a thousand connected instances of
//! one name; 10 000 by hand).
//!
//! One binary so that their long waits overlap: `abuse`'s silent-member
//! test spends about ten seconds waiting for forwarded opens to give up,
//! which the kill storm's busy seconds now cover. They share a process
//! safely: the kill storm's test process only starts, kills and checks its
//! server and client children and owns no name, so `abuse` flooding this
//! process's request threads cannot touch it (`abuse` cannot share a
//! process with tests whose clients are forwarded to members: see
//! `named_xproc`), and descriptor limits are lowered in children only.
//!
//! The kill storm alone, longer: `SHMPIPE_KILL_STORM_KILLS=2000 cargo test
//! --release -p shmpipe --test stress kill_storm`.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod kill_storm;
mod scale;

common::main! {
    modules: [abuse, kill_storm, scale],
}
