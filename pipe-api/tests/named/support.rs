//! Helpers of the in-process named-pipe tests.

use crate::common;

use common::named::assert_kind;
use shmpipe::named::{ClientOptions, NamedPipeClient, NamedPipeServer};
use shmpipe::ErrorKind;
use std::io::{Read, Write};

pub(super) fn open(name: &str) -> NamedPipeClient {
    ClientOptions::new().open(name).expect("open a client end")
}

/// Client → server and server → client, one short write each way.
#[track_caller]
pub(super) fn assert_data_flows(server: &NamedPipeServer, client: &NamedPipeClient, tag: &str) {
    let up = format!("up:{tag}");
    (&*client).write_all(up.as_bytes()).unwrap();
    let mut buf = vec![0u8; up.len()];
    (&*server).read_exact(&mut buf).unwrap();
    assert_eq!(buf, up.as_bytes());
    let down = format!("down:{tag}");
    (&*server).write_all(down.as_bytes()).unwrap();
    let mut buf = vec![0u8; down.len()];
    (&*client).read_exact(&mut buf).unwrap();
    assert_eq!(buf, down.as_bytes());
}

/// Re-arms a disconnected instance without waiting: a nonblocking
/// `connect` puts it back to Listening and reports PipeListening (SEM-035).
#[track_caller]
pub(super) fn rearm(server: &NamedPipeServer) {
    server.set_nonblocking(true).unwrap();
    assert_kind(
        server.connect(),
        ErrorKind::PipeListening,
        "re-arming connect",
    );
    server.set_nonblocking(false).unwrap();
}
