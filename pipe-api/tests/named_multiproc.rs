//! Instances of one name created by several processes (the owner, which
//! bound the name, and *members* linked to it): clients attach across
//! processes in FIFO order (SEM-042) with an atomic claim (SEM-043), max
//! instances counts every process's instances (SEM-009), the creation
//! refusals still hold (SEM-011, SEM-013), another uid with the
//! create-instance right may add instances (SEM-150), `status` shows them
//! all, a member's new or re-armed instance wakes `wait_available`
//! (SEM-054, SEM-055), its ServerGone instance counts until its client
//! closes (SEM-016), and killed processes leave nothing stale: a killed
//! member's instances vanish, a killed owner's name is taken over by a
//! member. Hostile members (and a squatter answering CREATE) are cut off
//! without harming anyone.
//!
//! Children are this test binary run again (see [`common::named::Kid`]) as
//! one of the `child_*` functions listed in `main` at the end.

mod common;

use common::named::{
    assert_kind, become_nobody, child_done, env, hear, kind, raw_control_socket, raw_member, say,
    unique_name, Kid, Pending, HANG, NOBODY,
};
use shmpipe::named::{
    list, status, wait_available, ClientOptions, Direction, NamedPipeClient, NamedPipeServer,
    Permissions, Security, ServerOptions, WaitTimeout,
};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_MULTI_TEST_NAME";
const TAG_ENV: &str = "SHMPIPE_MULTI_TEST_TAG";
const NOBODY_ENV: &str = "SHMPIPE_MULTI_TEST_NOBODY";

/// A result as a child reports it: `ok` or the error kind's name.
fn outcome<T>(r: &io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => match kind(e) {
            Some(k) => format!("{k:?}"),
            None => format!("io:{e}"),
        },
    }
}

/// A message pipe, Duplex unless told otherwise.
fn opts(dir: Direction, first: bool, max: u32) -> ServerOptions {
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
fn serve(server: Arc<NamedPipeServer>, tag: String) {
    std::thread::spawn(move || {
        if server.connect().is_ok() {
            let _ = server.send_msg(tag.as_bytes());
        }
    });
}

/// Disconnects `server` and makes it Listening again before returning (a
/// nonblocking `connect` re-arms at once), then serves it with `tag`.
fn rearm(server: &Arc<NamedPipeServer>, tag: &str) {
    server.disconnect().unwrap();
    server.set_nonblocking(true).unwrap();
    assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    server.set_nonblocking(false).unwrap();
    serve(Arc::clone(server), tag.to_owned());
}

/// Opens `name` and reads the tag its instance sends (a hang fails the
/// test).
#[track_caller]
fn open_tagged(name: &str) -> (NamedPipeClient, String) {
    open_tagged_with(name, ClientOptions::new())
}

/// [`open_tagged`] with `opts`.
#[track_caller]
fn open_tagged_with(name: &str, opts: ClientOptions) -> (NamedPipeClient, String) {
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
fn eventually<T>(what: &str, mut f: impl FnMut() -> io::Result<T>) -> T {
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
fn check(ok: bool, what: &str) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(what.to_owned()))
    }
}

/// A member: creates instances of `NAME_ENV` on command and serves each
/// with its tag (`<TAG_ENV><index>`).
///
/// Commands: `create <in|out|duplex> <first 0|1> <max> <serve 0|1>`,
/// `rearm <i>` (disconnect, then listen again), `drop <i>`, `count`.
fn child_member() {
    if std::env::var(NOBODY_ENV).is_ok() {
        become_nobody();
    }
    let name = env(NAME_ENV);
    let tag = env(TAG_ENV);
    let mut servers: Vec<Option<Arc<NamedPipeServer>>> = Vec::new();
    while let Some(line) = hear() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["create", dir, first, max, serving] => {
                let dir = match dir {
                    "in" => Direction::Inbound,
                    "out" => Direction::Outbound,
                    _ => Direction::Duplex,
                };
                let r = opts(dir, first == "1", max.parse().unwrap()).create(&name);
                say(&outcome(&r));
                if let Ok(s) = r {
                    let s = Arc::new(s);
                    if serving == "1" {
                        serve(Arc::clone(&s), format!("{tag}{}", servers.len()));
                    }
                    servers.push(Some(s));
                }
            }
            ["rearm", i] => {
                let i: usize = i.parse().unwrap();
                // Listening again before we answer.
                rearm(servers[i].as_ref().unwrap(), &format!("{tag}{i}"));
                say("ok");
            }
            ["drop", i] => {
                servers[i.parse::<usize>().unwrap()] = None;
                say("ok");
            }
            ["count"] => {
                let s = servers.iter().flatten().next().unwrap();
                say(&s.state().unwrap().current_instances.to_string());
            }
            _ => panic!("unknown command {line}"),
        }
    }
    child_done();
}

fn member(name: &str, tag: &str) -> Kid {
    Kid::spawn(
        "child_member",
        &[(NAME_ENV, name.to_owned()), (TAG_ENV, tag.to_owned())],
    )
}

// ------------------------------------------------ SEM-042/043 across processes

fn sem_042_clients_attach_in_fifo_order_across_processes() {
    let name = unique_name("m042");
    let me = std::process::id();
    let p0 = Arc::new(opts(Direction::Duplex, false, 8).create(&name).unwrap());
    serve(Arc::clone(&p0), "P0".into());
    let mut m = member(&name, "M");
    m.tell("create duplex 0 8 1");
    m.expect("ok");
    let p1 = Arc::new(opts(Direction::Duplex, false, 8).create(&name).unwrap());
    serve(Arc::clone(&p1), "P1".into());
    m.tell("create duplex 0 8 1");
    m.expect("ok");

    // Created P0, M0, P1, M1: clients get them in that order.
    let mut clients = Vec::new();
    for want in ["P0", "M0", "P1", "M1"] {
        let (c, tag) = open_tagged(&name);
        assert_eq!(tag, want, "attach order");
        let server_pid = if want.starts_with('M') { m.pid() } else { me };
        assert_eq!(c.server_process_id().unwrap(), server_pid, "{want}");
        clients.push(c);
    }
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "every instance Connected",
    );

    // Re-armed instances queue at the back: M1 first, then P0.
    m.tell("rearm 1");
    m.expect("ok");
    // The owner has queued M1 once an instance is Listening for it.
    wait_available(&name, WaitTimeout::Duration(HANG)).unwrap();
    rearm(&p0, "P0");
    let order: Vec<String> = (0..2).map(|_| open_tagged(&name).1).collect();
    assert_eq!(order, ["M1", "P0"], "re-armed instances in re-arm order");
    assert_eq!(p1.state().unwrap().current_instances, 4);
    m.finish();
}

fn sem_043_racing_clients_claim_a_remote_instance_once() {
    let name = unique_name("m043");
    // The owner's only instance is taken: the member's is the one to race for.
    let owner = opts(Direction::Duplex, false, 2).create(&name).unwrap();
    let _holder = ClientOptions::new().open(&name).unwrap();
    let mut m = member(&name, "M");
    m.tell("create duplex 0 2 1");
    m.expect("ok");
    for round in 0..10 {
        if round > 0 {
            m.tell("rearm 0");
            m.expect("ok");
        }
        wait_available(&name, WaitTimeout::Duration(HANG)).unwrap();
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let n = name.clone();
                std::thread::spawn(move || ClientOptions::new().open(&n))
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let said: Vec<String> = results.iter().map(outcome).collect();
        let winners = said.iter().filter(|s| *s == "ok").count();
        assert_eq!(winners, 1, "round {round}: {said:?}");
        assert!(
            said.contains(&"PipeBusy".to_owned()),
            "round {round}: {said:?}"
        );
        let winner = results.into_iter().flatten().next().unwrap();
        assert_eq!(winner.server_process_id().unwrap(), m.pid());
    }
    drop(owner);
    m.finish();
}

// ------------------------------------------------ creation rules across processes

fn sem_009_max_instances_counted_across_processes() {
    let name = unique_name("m009");
    let first = opts(Direction::Duplex, false, 2).create(&name).unwrap();
    let mut m = member(&name, "M");
    m.tell("create duplex 0 2 0");
    m.expect("ok");
    // Two exist, one in each process: a third fails wherever it is made.
    m.tell("create duplex 0 2 0");
    m.expect("PipeBusy");
    assert_kind(
        opts(Direction::Duplex, false, 2).create(&name),
        ErrorKind::PipeBusy,
        "owner's third instance",
    );
    assert_eq!(first.state().unwrap().current_instances, 2);
    m.tell("count");
    m.expect("2");
    // The member closes its instance: the owner may create one again.
    m.tell("drop 0");
    m.expect("ok");
    let second = eventually("create after the member's instance closed", || {
        opts(Direction::Duplex, false, 2).create(&name)
    });
    assert_eq!(second.state().unwrap().current_instances, 2);
    m.finish();
}

fn sem_011_013_refusals_hold_for_other_processes() {
    let name = unique_name("m011");
    let _first = opts(Direction::Duplex, false, 8).create(&name).unwrap();
    let mut m = member(&name, "M");
    m.tell("create in 0 8 0");
    m.expect("AccessDenied"); // SEM-011: another direction
    m.tell("create duplex 1 8 0");
    m.expect("AccessDenied"); // SEM-013: first instance only
    m.tell("create duplex 0 3 0");
    m.expect("ok"); // SEM-012: another max is accepted...
    m.tell("create duplex 0 3 0");
    m.expect("ok"); // ...and the first instance's (8) is in force
    m.tell("count");
    m.expect("3");
    m.finish();
}

fn sem_054_055_instances_of_another_process_wake_wait_available() {
    let name = unique_name("m054");
    let _owner = opts(Direction::Duplex, false, 4).create(&name).unwrap();
    let _holder = ClientOptions::new().open(&name).unwrap();
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    wait.assert_pending("the only instance is Connected");
    let mut m = member(&name, "M");
    m.tell("create duplex 0 4 1");
    m.expect("ok");
    wait.finish()
        .expect("woken by the member's new instance (SEM-054)");
    let (_c, tag) = open_tagged(&name);
    assert_eq!(tag, "M0");
    // Re-armed by `connect` after `disconnect` in the member (SEM-055).
    let n = name.clone();
    let wait = Pending::start("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    wait.assert_pending("every instance is Connected");
    m.tell("rearm 0");
    m.expect("ok");
    wait.finish()
        .expect("woken by the member's re-armed instance");
    m.finish();
}

fn sem_016_server_gone_instance_of_another_process_counts_until_its_client_closes() {
    let name = unique_name("m016");
    let owner = opts(Direction::Duplex, false, 2).create(&name).unwrap();
    let _c0 = ClientOptions::new().open(&name).unwrap();
    let mut m = member(&name, "M");
    m.tell("create duplex 0 2 0");
    m.expect("ok");
    let on_member = ClientOptions::new().open(&name).unwrap();
    assert_eq!(on_member.server_process_id().unwrap(), m.pid());
    // The member closes its server end while its client holds on.
    m.tell("drop 0");
    m.expect("ok");
    assert_kind(
        on_member.send_msg(b"x"),
        ErrorKind::NoData,
        "write to a closed server end",
    );
    // The owner learns it from the member's report.
    let s = eventually("the owner sees the instance ServerGone", || {
        let s = status(&name)?;
        check(s.server_gone == 1, "not yet")?;
        Ok(s)
    });
    assert_eq!(s.current_instances(), 2);
    assert_kind(
        opts(Direction::Duplex, false, 2).create(&name),
        ErrorKind::PipeBusy,
        "the ServerGone instance still counts",
    );
    drop(on_member);
    let _again = eventually("create once the member's client closed", || {
        opts(Direction::Duplex, false, 2).create(&name)
    });
    assert_eq!(owner.state().unwrap().current_instances, 2);
    m.finish();
}

// ------------------------------------------------ killed processes

fn killed_member_instances_vanish_and_the_name_keeps_working() {
    let name = unique_name("mkillm");
    let owner = Arc::new(opts(Direction::Duplex, false, 3).create(&name).unwrap());
    let (_c0, _) = {
        serve(Arc::clone(&owner), "P0".into());
        open_tagged(&name)
    };
    let mut m = member(&name, "M");
    m.tell("create duplex 0 3 1");
    m.expect("ok");
    m.tell("create duplex 0 3 1");
    m.expect("ok");
    // A client on the member's first instance, the second one Listening.
    let (on_member, tag) = open_tagged(&name);
    assert_eq!(tag, "M0");
    assert_eq!(owner.state().unwrap().current_instances, 3);
    m.kill();

    // Its client sees the server end gone.
    let mut buf = [0u8; 8];
    assert_kind(
        on_member.recv_msg(&mut buf),
        ErrorKind::BrokenPipe,
        "client of the killed member",
    );
    // Its instances no longer count, and none is left to open.
    eventually("the killed member's instances dropped", || {
        check(owner.state()?.current_instances == 1, "still counted")
    });
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "the owner's instance is Connected",
    );
    // The name keeps working: new instances, new clients.
    let fresh = Arc::new(opts(Direction::Duplex, false, 3).create(&name).unwrap());
    serve(Arc::clone(&fresh), "P1".into());
    assert_eq!(open_tagged(&name).1, "P1");
    assert_eq!(status(&name).unwrap().current_instances(), 2);
}

/// An owner whose only instance is taken, waiting to be killed.
fn child_owner() {
    let name = env(NAME_ENV);
    let _server = opts(Direction::Duplex, false, 8).create(&name).unwrap();
    // Its own instance is Connected: clients go to the members'.
    let _client = ClientOptions::new().open(&name).unwrap();
    say("ready");
    while hear().is_some() {}
    child_done();
}

fn killed_owner_members_take_over_the_name() {
    let name = unique_name("mkillo");
    let mut owner = Kid::spawn("child_owner", &[(NAME_ENV, name.clone())]);
    owner.expect("ready");
    let mut m = member(&name, "M");
    let mut c = member(&name, "C");
    for k in [&mut m, &mut c] {
        k.tell("create duplex 0 8 1");
        k.expect("ok");
    }
    m.tell("create duplex 0 8 1");
    m.expect("ok");
    assert_eq!(status(&name).unwrap().server_pid, owner.pid());
    // A client of the member's first instance, across the owner's death.
    let (early, tag) = open_tagged(&name);
    assert_eq!(tag, "M0");
    m.tell("create duplex 0 8 1");
    m.expect("ok");
    owner.kill();

    // Exactly one member binds the name; the other joins it.
    let s = eventually("a member took the name over", || {
        let s = status(&name)?;
        check(
            s.server_pid != owner.pid() && s.current_instances() == 4,
            "not yet",
        )?;
        Ok(s)
    });
    assert!(
        [m.pid(), c.pid()].contains(&s.server_pid),
        "new owner {} is a member",
        s.server_pid
    );
    let mut pids: Vec<u32> = s.instances.iter().map(|i| i.server_pid).collect();
    pids.sort_unstable();
    let mut want = vec![m.pid(), m.pid(), m.pid(), c.pid()];
    want.sort_unstable();
    assert_eq!(pids, want, "every member's instance is registered");
    assert_eq!(s.connected, 1, "M0 kept its client");
    early.send_msg(b"still here").unwrap();

    // Every Listening instance is reachable by name.
    let mut tags: Vec<String> = (0..3).map(|_| open_tagged(&name).1).collect();
    tags.sort();
    assert_eq!(tags, ["C0", "M1", "M2"]);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "all taken",
    );
    // The members go on creating instances under the new owner.
    c.tell("create duplex 0 8 1");
    c.expect("ok");
    assert_eq!(open_tagged(&name).1, "C1");
    drop(early);
    m.finish();
    c.finish();
}

// ------------------------------------------------ status, list

fn status_and_list_show_every_process_instances() {
    let name = unique_name("mstatus");
    let me = std::process::id();
    let _p0 = opts(Direction::Duplex, false, 4).create(&name).unwrap();
    let mut m = member(&name, "M");
    m.tell("create duplex 0 4 1");
    m.expect("ok");
    let s = status(&name).unwrap();
    assert_eq!(
        (s.server_pid, s.listening, s.current_instances()),
        (me, 2, 2)
    );
    let pids: Vec<u32> = s.instances.iter().map(|i| i.server_pid).collect();
    assert_eq!(pids, [me, m.pid()]);
    // The first client takes the owner's instance, the second the member's.
    let _c0 = ClientOptions::new().open(&name).unwrap();
    let (_c1, tag) = open_tagged(&name);
    assert_eq!(tag, "M0");
    let s = status(&name).unwrap();
    assert_eq!((s.listening, s.connected), (0, 2));
    assert_eq!(s.client_pids(), [me, me]);
    let listed = list().unwrap();
    let l = listed.iter().find(|p| p.name == name).expect("listed");
    assert_eq!(l.instances.len(), 2);
    assert_eq!(l.instances[1].server_pid, m.pid());
    m.finish();
}

// ------------------------------------------------ hostile members

fn hostile_members_are_cut_off_and_harm_nobody() {
    let name = unique_name("mhostile");
    let owner = Arc::new(opts(Direction::Duplex, false, 8).create(&name).unwrap());
    let count = || owner.state().map(|s| s.current_instances);
    let cases: [(&str, &[u8]); 4] = [
        ("garbage", b"hello, owner"),
        ("a verdict nobody asked for", &[0x91, 1, 1, 0, 0, 0, 0, 0]),
        ("an unknown state", &[0x91, 0, 9, 0, 0, 0, 0, 0]),
        ("an unknown mode bit", &[0x91, 0, 0, 4, 0, 0, 0, 0]),
    ];
    for (what, packet) in cases {
        let link = raw_member(&name);
        assert_eq!(count().unwrap(), 2, "{what}: registered");
        rustix::net::send(&link, packet, rustix::net::SendFlags::NOSIGNAL).unwrap();
        eventually(what, || check(count()? == 1, "still registered"));
        // And the owner closed the link.
        let mut buf = [0u8; 8];
        let n = rustix::net::recv(&link, &mut buf, rustix::net::RecvFlags::empty());
        assert!(matches!(n, Ok((0, _))), "{what}: link not closed: {n:?}");
    }

    // A member that takes a forwarded client and hangs up: the client is
    // not left hanging, and gets the next instance (or PipeBusy).
    let link = raw_member(&name);
    serve(Arc::clone(&owner), "P0".into());
    let (_first, tag) = open_tagged(&name);
    assert_eq!(tag, "P0");
    let opener = {
        let n = name.clone();
        std::thread::spawn(move || ClientOptions::new().open(&n))
    };
    // The FWD arrives with the client's connection: drop both.
    let mut buf = [0u8; 8];
    let n = rustix::net::recv(&link, &mut buf, rustix::net::RecvFlags::empty())
        .unwrap()
        .0;
    assert_eq!((n, buf[0]), (2, 0x90), "FWD");
    drop(link);
    assert_kind(
        opener.join().unwrap(),
        ErrorKind::PipeBusy,
        "client of a member that hung up",
    );
    // The owner's instances are unharmed.
    rearm(&owner, "P0 again");
    assert_eq!(open_tagged(&name).1, "P0 again");

    // A member that refuses every client while claiming to listen: the
    // client is offered it once and gets PipeBusy, it is not looped.
    let link = raw_member(&name);
    let opener = {
        let n = name.clone();
        std::thread::spawn(move || ClientOptions::new().open(&n))
    };
    let n = rustix::net::recv(&link, &mut buf, rustix::net::RecvFlags::empty())
        .unwrap()
        .0;
    assert_eq!((n, buf[0]), (2, 0x90), "FWD");
    let busy_but_listening = [0x91, 2, 0, 0, 0, 0, 0, 0];
    rustix::net::send(&link, &busy_but_listening, rustix::net::SendFlags::NOSIGNAL).unwrap();
    assert_kind(
        opener.join().unwrap(),
        ErrorKind::PipeBusy,
        "client of a member that always refuses",
    );
    assert_eq!(count().unwrap(), 2, "a refusal is not a fault");
}

fn a_squatter_answering_create_with_garbage_is_an_error_for_the_creator() {
    let name = unique_name("msquat");
    let (sock, addr) = raw_control_socket(&name);
    rustix::net::bind(&sock, &addr).unwrap();
    rustix::net::listen(&sock, 8).unwrap();
    let replies: [&[u8]; 3] = [
        b"\x85garbage",
        &[0x85, 7, 3, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // pipe type 7
        &[
            0x85, 0, 3, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0,
        ], // permission bit 4
    ];
    let squatter = std::thread::spawn(move || {
        for reply in replies {
            let conn = rustix::net::accept(&sock).unwrap();
            let mut buf = [0u8; 1024];
            let _ = rustix::net::recv(&conn, &mut buf, rustix::net::RecvFlags::empty());
            rustix::net::send(&conn, reply, rustix::net::SendFlags::NOSIGNAL).unwrap();
        }
    });
    for what in ["short", "bad pipe type", "bad permissions"] {
        let r = opts(Direction::Duplex, false, 8).create(&name);
        let e = r.expect_err(what);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e:?}");
    }
    squatter.join().unwrap();
}

// ------------------------------------------------ SEM-150 (positive side)

fn sem_150_another_uid_with_the_grant_creates_instances_clients_reach() {
    if !common::require(
        common::is_root(),
        "sem_150_another_uid_with_the_grant_creates_instances_clients_reach",
        "not root (needs a process of another uid)",
    ) {
        return;
    }
    let name = unique_name("m150");
    let grant = Security {
        group: Permissions::NONE,
        others: Permissions {
            create_instance: true,
            ..Permissions::NONE
        },
    };
    let owner = opts(Direction::Duplex, false, 4)
        .security(grant)
        .create(&name)
        .unwrap();
    let _c0 = ClientOptions::new().open(&name).unwrap(); // the owner's instance
    let mut m = Kid::spawn(
        "child_member",
        &[
            (NAME_ENV, name.clone()),
            (TAG_ENV, "N".to_owned()),
            (NOBODY_ENV, "1".to_owned()),
        ],
    );
    m.tell("create duplex 0 4 1");
    m.expect("ok");
    assert_eq!(owner.state().unwrap().current_instances, 2);
    // A client (root) that trusts nobody's servers reaches nobody's
    // instance through the owner.
    let (client, tag) = open_tagged_with(&name, {
        let mut o = ClientOptions::new();
        o.trust_server_uid(NOBODY);
        o
    });
    assert_eq!(tag, "N0");
    assert_eq!(client.server_process_id().unwrap(), m.pid());
    m.finish();
}

/// The owner dies while a member is stopped, and a third process (this
/// test) binds the freed name first, describing the pipe differently: the
/// member must not re-register its instance there (its clients' data would
/// go to whoever squatted the name); it closes the link without a report.
fn members_do_not_rejoin_a_squatter_after_the_owner_died() {
    use rustix::process::{kill_process, Pid, Signal};
    let name = unique_name("msquat");
    let mut owner = Kid::spawn("child_owner", &[(NAME_ENV, name.clone())]);
    owner.expect("ready");
    let mut m = member(&name, "M");
    m.tell("create duplex 0 8 0");
    m.expect("ok");
    let member_pid = Pid::from_raw(m.pid() as i32).unwrap();
    // Stopped for good before anything it could react to happens.
    common::stop_process(m.pid());
    owner.kill();

    // Bind the name the dead owner's socket held.
    let (squatter, addr) = raw_control_socket(&name);
    let deadline = Instant::now() + HANG;
    while rustix::net::bind(&squatter, &addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the dead owner's name never came free"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    rustix::net::listen(&squatter, 8).unwrap();
    kill_process(member_pid, Signal::CONT).unwrap();

    // The member asks to re-register: answer JOINED for an Outbound pipe
    // (the name is Duplex).
    let conn = rustix::net::accept(&squatter).unwrap();
    let mut buf = [0u8; 1024];
    let (n, _) = rustix::net::recv(&conn, &mut buf, rustix::net::RecvFlags::empty()).unwrap();
    assert_eq!(buf[..n].first(), Some(&4), "CREATE expected");
    let mut joined = vec![0x85, 1, 2, 8, 0, 50, 0, 0, 0];
    joined.extend_from_slice(&rustix::process::geteuid().as_raw().to_le_bytes());
    joined.extend_from_slice(&rustix::process::getegid().as_raw().to_le_bytes());
    joined.extend_from_slice(&[0, 0]);
    rustix::net::send(&conn, &joined, rustix::net::SendFlags::NOSIGNAL).unwrap();
    // Refused: the link closes with nothing on it (a trusting member would
    // report its Listening instance here).
    wire_timeout(&conn, HANG);
    let (n, _) = rustix::net::recv(&conn, &mut buf, rustix::net::RecvFlags::empty())
        .expect("the member closes the link, it does not leave it hanging");
    assert_eq!(n, 0, "the member reported to the squatter: {:?}", &buf[..n]);
    m.kill();
}

/// Bounds every receive on `fd` by `t`.
fn wire_timeout(fd: &OwnedFd, t: Duration) {
    rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, Some(t))
        .unwrap();
}

/// A member too slow to answer a forwarded client (stopped here) is not
/// forgotten: its instance keeps counting for max instances while the owner
/// stops waiting for it, and its late answer still connects the client.
fn a_slow_member_keeps_its_instance_counted_and_answers_late() {
    use rustix::process::{kill_process, Pid, Signal};
    let name = unique_name("mslow");
    let _p0 = opts(Direction::Duplex, false, 2).create(&name).unwrap();
    let _c0 = ClientOptions::new().open(&name).unwrap(); // the owner's instance is taken
    let mut m = member(&name, "M");
    m.tell("create duplex 0 2 0");
    m.expect("ok");
    let member_pid = Pid::from_raw(m.pid() as i32).unwrap();
    // Stopped for good before anything it could react to happens.
    common::stop_process(m.pid());
    let n = name.clone();
    let late = Pending::start("open forwarded to a stopped member", move || {
        ClientOptions::new().open(&n).map(|_| ())
    });
    // Longer than the owner waits for a member's verdict (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    late.assert_pending_now("the member is stopped");
    assert_kind(
        opts(Direction::Duplex, false, 2).create(&name),
        ErrorKind::PipeBusy,
        "the slow member's instance still counts for max instances",
    );
    kill_process(member_pid, Signal::CONT).unwrap();
    late.finish()
        .expect("the member's late answer connects the client");
    let s = eventually("both instances Connected", || {
        let s = status(&name)?;
        check(s.connected == 2 && s.current_instances() == 2, "not yet")?;
        Ok(s)
    });
    assert_eq!(s.max_instances, 2);
    m.kill();
}

common::main! {
    tests: [
        sem_042_clients_attach_in_fifo_order_across_processes,
        sem_043_racing_clients_claim_a_remote_instance_once,
        sem_009_max_instances_counted_across_processes,
        sem_011_013_refusals_hold_for_other_processes,
        sem_054_055_instances_of_another_process_wake_wait_available,
        sem_016_server_gone_instance_of_another_process_counts_until_its_client_closes,
        killed_member_instances_vanish_and_the_name_keeps_working,
        killed_owner_members_take_over_the_name,
        status_and_list_show_every_process_instances,
        hostile_members_are_cut_off_and_harm_nobody,
        a_squatter_answering_create_with_garbage_is_an_error_for_the_creator,
        sem_150_another_uid_with_the_grant_creates_instances_clients_reach,
        members_do_not_rejoin_a_squatter_after_the_owner_died,
        a_slow_member_keeps_its_instance_counted_and_answers_late,
    ],
    children: [
        child_member,
        child_owner,
    ],
}
