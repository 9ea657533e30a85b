//! Helpers of the tests of instances created by several processes.

use crate::common;

use common::named::{assert_kind, kind, Kid, Pending, HANG};
use shmpipe::named::{ClientOptions, Direction, NamedPipeClient, NamedPipeServer, ServerOptions};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) const NAME_ENV: &str = "SHMPIPE_MULTI_TEST_NAME";
pub(super) const TAG_ENV: &str = "SHMPIPE_MULTI_TEST_TAG";
pub(super) const NOBODY_ENV: &str = "SHMPIPE_MULTI_TEST_NOBODY";

/// A result as a child reports it: `ok` or the error kind's name.
pub(super) fn outcome<T>(r: &io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => match kind(e) {
            Some(k) => format!("{k:?}"),
            None => format!("io:{e}"),
        },
    }
}

/// A message pipe, Duplex unless told otherwise.
pub(super) fn opts(dir: Direction, first: bool, max: u32) -> ServerOptions {
    let mut o = ServerOptions::new();
    o.access(dir)
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(max)
        .first_instance(first)
        .quotas(1024, 1024);
    o
}

/// Waits (on a thread) for a client on `server`, then sends it `tag`, so
/// that the client learns which instance it got.
pub(super) fn serve(server: Arc<NamedPipeServer>, tag: String) {
    std::thread::spawn(move || {
        if server.connect().is_ok() {
            let _ = server.send_msg(tag.as_bytes());
        }
    });
}

/// Disconnects `server` and makes it Listening again before returning (a
/// nonblocking `connect` re-arms at once), then serves it with `tag`.
pub(super) fn rearm(server: &Arc<NamedPipeServer>, tag: &str) {
    server.disconnect().unwrap();
    server.set_nonblocking(true).unwrap();
    assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    server.set_nonblocking(false).unwrap();
    serve(Arc::clone(server), tag.to_owned());
}

/// Opens `name` and reads the tag its instance sends (a hang fails the
/// test).
#[track_caller]
pub(super) fn open_tagged(name: &str) -> (NamedPipeClient, String) {
    open_tagged_with(name, ClientOptions::new())
}

/// [`open_tagged`] with `opts`.
#[track_caller]
pub(super) fn open_tagged_with(name: &str, opts: ClientOptions) -> (NamedPipeClient, String) {
    let n = name.to_owned();
    let got = Pending::start("open and read the tag", move || {
        let client = opts.open(&n)?;
        client.set_read_mode(ReadMode::Message)?;
        let mut buf = [0u8; 64];
        let m = client.recv_msg(&mut buf)?;
        let tag = String::from_utf8(buf[..m.len].to_vec()).unwrap();
        Ok::<_, io::Error>((client, tag))
    });
    got.finish().expect("open and read the tag")
}

/// Retries `f` until it succeeds; a hang (nothing within [`HANG`]) fails
/// the test. For what another process does asynchronously (a link hang-up
/// seen by the owner, a takeover): no timing is asserted.
#[track_caller]
pub(super) fn eventually<T>(what: &str, mut f: impl FnMut() -> io::Result<T>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > HANG => panic!("{what}: still {e:?} after {HANG:?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A condition as a retryable result.
pub(super) fn check(ok: bool, what: &str) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(what.to_owned()))
    }
}

pub(super) fn member(name: &str, tag: &str) -> Kid {
    Kid::spawn(
        "child_member",
        &[(NAME_ENV, name.to_owned()), (TAG_ENV, tag.to_owned())],
    )
}
