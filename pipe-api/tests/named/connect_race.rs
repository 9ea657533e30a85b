//! `connect` after `disconnect` re-arms the instance; a client that opens
//! it from then on came after the call, and `connect` must report it as
//! `Connected::New`. `Connected::Already` (Windows' `ERROR_PIPE_CONNECTED`)
//! is only for a client that was there before the call (spec 4.3).
//!
//! The race: `connect` makes the instance Listening, lets go of its lock,
//! queues the instance (waking waiting clients) and only then looks at the
//! state again. A client that attaches in between used to be reported as
//! `Already`. To hit that window every round rather than now and then, the
//! test runs everything on one CPU and `connect` at the idle scheduling
//! class: the woken client, and the name's thread answering it, preempt
//! `connect` as soon as it wakes them, so the client is attached before
//! `connect` looks again.

use crate::common;

use common::named::unique_name;
use common::{within, Pending};
use shmpipe::named::{wait_available, ClientOptions, Connected, ServerOptions, WaitTimeout};
use std::sync::Arc;

/// Rounds: with the window forced open, a wrong `connect` fails the first
/// few; the rest make a lucky pass unlikely where pinning is not possible.
const ROUNDS: usize = 200;

/// Pins the calling thread (and the threads it spawns later, which inherit
/// it) to the first CPU it may run on.
fn pin_to_one_cpu() {
    // SAFETY: an all-zero cpu_set_t is an empty set; the calls get its size
    // and a valid pointer; pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .expect("some CPU is allowed");
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        assert_eq!(
            libc::sched_setaffinity(0, size, &one),
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Moves the calling thread to the idle scheduling class: any other
/// runnable thread on its CPU preempts it (lowering one's own class needs
/// no privilege).
fn become_idle() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is valid for the call.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    assert_eq!(
        r,
        0,
        "sched_setscheduler: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn a_client_that_comes_after_connect_rearmed_the_instance_is_new() {
    pin_to_one_cpu();
    let name = unique_name("rearm-race");
    let server = Arc::new(ServerOptions::new().max_instances(1).create(&name).unwrap());
    for round in 0..ROUNDS {
        // Disconnected: only `connect` can make it Listening again.
        server.disconnect().unwrap();
        let n = name.clone();
        let client = Pending::start("wait for the instance, then open it", move || {
            wait_available(&n, WaitTimeout::Forever)?;
            ClientOptions::new().open(&n)
        });
        let s = Arc::clone(&server);
        let connected = within("connect", move || {
            become_idle();
            s.connect()
        });
        let client = client
            .finish()
            .expect("the client opens the re-armed instance");
        assert_eq!(
            connected.expect("connect"),
            Connected::New,
            "round {round}: the client opened after connect was called"
        );
        drop(client);
    }
}

/// The other side of the rule: a client that opened before the call is
/// `Already`, every round.
#[test]
fn a_client_that_came_before_connect_is_already_there() {
    let name = unique_name("rearm-before");
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    for round in 0..20 {
        let client = ClientOptions::new().open(&name).unwrap();
        assert_eq!(
            server.connect().unwrap(),
            Connected::Already,
            "round {round}"
        );
        drop(client);
        server.disconnect().unwrap();
        server.set_nonblocking(true).unwrap();
        assert!(server.connect().is_err(), "re-armed, nobody there yet");
        server.set_nonblocking(false).unwrap();
    }
}
