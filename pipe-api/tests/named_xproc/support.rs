//! Helpers of the named-pipe tests across processes.

use crate::common;

use common::named::{kind, Pending};
use shmpipe::named::{NamedPipeClient, NamedPipeServer};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub(super) const NAME_ENV: &str = "SHMPIPE_NAMED_TEST_NAME";
pub(super) const PARENT_ENV: &str = "SHMPIPE_NAMED_TEST_PARENT";

/// How long a survivor may take to see that its peer process was killed.
/// Generous: the engine polls liveness every park slice, and the machine is
/// shared.
pub(super) const KILL_NOTICE: Duration = Duration::from_secs(2);

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

/// Starts `f` on a thread; its result comes with the moment it returned.
pub(super) fn timed<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Pending<(T, Instant)> {
    Pending::start(what, move || {
        let r = f();
        (r, Instant::now())
    })
}

/// How long after `since` an operation returned; prints it and asserts the
/// generous [`KILL_NOTICE`] bound.
#[track_caller]
pub(super) fn notice(what: &str, since: Instant, at: Instant) {
    let took = at.saturating_duration_since(since);
    println!("{what}: noticed the kill after {took:?}");
    assert!(
        took < KILL_NOTICE,
        "{what}: took {took:?} to notice the kill"
    );
}
