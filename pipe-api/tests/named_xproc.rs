//! Named pipes across real processes: the atomic claim of a Listening
//! instance (SEM-043), process ids (SEM-137, SEM-138), security against
//! another uid (SEM-149, SEM-150), and processes killed with SIGKILL while
//! their peers wait on them.
//!
//! Children are this test binary run again (see [`common::named::Kid`]) as
//! one of the `child_*` functions listed in `main` at the end. A child
//! reports success with exit status [`common::named::CHILD_OK`], so a child
//! that failed or was not found cannot pass for one that worked.

mod common;

use common::named::{
    assert_kind, become_nobody, child_done, default_opts, env, hear, kind, say, unique_name, Kid,
    Pending, HANG, NOBODY,
};
use shmpipe::named::{
    wait_available, ClientOptions, Connected, NamedPipeClient, NamedPipeServer, Permissions,
    Security, WaitTimeout, UNLIMITED_INSTANCES,
};
use shmpipe::ErrorKind;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_NAMED_TEST_NAME";
const PARENT_ENV: &str = "SHMPIPE_NAMED_TEST_PARENT";

/// How long a survivor may take to see that its peer process was killed.
/// Generous: the engine polls liveness every park slice, and the machine is
/// shared.
const KILL_NOTICE: Duration = Duration::from_secs(2);

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

/// Client → server and server → client, one short write each way.
#[track_caller]
fn assert_data_flows(server: &NamedPipeServer, client: &NamedPipeClient, tag: &str) {
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
fn timed<T: Send + 'static>(
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
fn notice(what: &str, since: Instant, at: Instant) {
    let took = at.saturating_duration_since(since);
    println!("{what}: noticed the kill after {took:?}");
    assert!(
        took < KILL_NOTICE,
        "{what}: took {took:?} to notice the kill"
    );
}

// ------------------------------------------------- SEM-043 atomic claim

fn child_race_opener() {
    let name = env(NAME_ENV);
    while let Some(cmd) = hear() {
        assert_eq!(cmd, "go");
        let r = ClientOptions::new().open(&name);
        say(&outcome(&r));
        drop(r);
    }
    child_done();
}

fn sem_043_two_processes_race_for_one_listening_instance() {
    let name = unique_name("x043");
    let server = default_opts().create(&name).unwrap();
    server.set_nonblocking(true).unwrap();
    let envs = [(NAME_ENV, name.clone())];
    let mut kids = [
        Kid::spawn("child_race_opener", &envs),
        Kid::spawn("child_race_opener", &envs),
    ];
    let mut wins = [0; 2];
    for round in 0..25 {
        for k in kids.iter_mut() {
            k.tell("go");
        }
        let said = [kids[0].listen(), kids[1].listen()];
        let winner = match (said[0].as_str(), said[1].as_str()) {
            ("ok", "PipeBusy") => 0,
            ("PipeBusy", "ok") => 1,
            _ => panic!("round {round}: one open must win, the other get PipeBusy: {said:?}"),
        };
        wins[winner] += 1;
        assert_eq!(
            server.client_process_id().unwrap(),
            kids[winner].pid(),
            "round {round}: the instance belongs to the winner"
        );
        server.disconnect().unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    }
    println!("wins per process: {wins:?}");
    for k in kids {
        k.finish();
    }
}

// --------------------------------------------------- SEM-137/138 pids

fn child_pid_client() {
    let client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say(&format!(
        "pids {} {}",
        client.client_process_id().unwrap(),
        client.server_process_id().unwrap()
    ));
    // Hold the client end until the parent has looked.
    let _ = hear();
    drop(client);
    child_done();
}

fn child_pid_server() {
    let server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("close"));
    assert_eq!(server.connect().unwrap(), Connected::Already);
    drop(server);
    say("closed");
    let _ = hear();
    child_done();
}

fn sem_137_pids_of_opener_and_creator_in_different_processes() {
    let name = unique_name("x137");
    let me = std::process::id();
    let server = default_opts().create(&name).unwrap();
    let mut kid = Kid::spawn(
        "child_pid_client",
        &[(NAME_ENV, name.clone()), (PARENT_ENV, me.to_string())],
    );
    let child = kid.pid();
    assert_eq!(
        kid.listen(),
        format!("pids {child} {me}"),
        "client end's view"
    );
    assert_eq!(server.client_process_id().unwrap(), child);
    assert_eq!(server.server_process_id().unwrap(), me);
    assert_eq!(server.client_credentials().unwrap().pid, child);
    assert_ne!(child, me);
    kid.finish();
}

/// `unshare` with a new pid namespace (and its own /proc), when this
/// machine lets us make one; otherwise why not.
fn pid_namespace_wrapper() -> Result<&'static [&'static str], String> {
    const WRAPPER: &[&str] = &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"];
    let out = std::process::Command::new(WRAPPER[0])
        .args(&WRAPPER[1..])
        .arg("true")
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(WRAPPER)
    } else {
        Err(format!(
            "cannot create a pid namespace here (needs root or user namespaces): \
             unshare {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn child_namespaced_server() {
    // Our session leader is outside this pid namespace: the kernel's
    // session id for us is 0 here, as on container-based CI runners.
    let server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    server.connect().unwrap();
    let mut req = [0u8; 2];
    (&server).read_exact(&mut req).unwrap();
    assert_eq!(&req, b"hi");
    let reply = format!(
        "{} {} {}\n",
        std::process::id(),
        server.client_process_id().unwrap(),
        server.client_credentials().unwrap().pid
    );
    (&server).write_all(reply.as_bytes()).unwrap();
    let _ = hear();
    child_done();
}

/// A server in a pid namespace of its own serves a client outside it: the
/// handshake copes with the kernel's 0 (a session id, a peer pid that the
/// namespace cannot see), and each side's pids are the kernel's
/// translation into its own namespace, never the other side's numbering.
fn sem_137_pids_across_pid_namespaces() {
    let wrapper = match pid_namespace_wrapper() {
        Ok(w) => w,
        Err(why) => {
            common::require(false, "sem_137_pids_across_pid_namespaces", &why);
            return;
        }
    };
    let name = unique_name("x137ns");
    let mut kid = Kid::spawn_under(
        wrapper,
        "child_namespaced_server",
        &[(NAME_ENV, name.clone())],
    );
    kid.expect("ready");
    let client = ClientOptions::new().open(&name).unwrap();
    (&client).write_all(b"hi").unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n") {
        (&client).read_exact(&mut byte).unwrap();
        reply.push(byte[0]);
    }
    let reply = String::from_utf8(reply).unwrap();
    let mut parts = reply
        .trim_end()
        .split(' ')
        .map(|p| p.parse::<u32>().unwrap());
    let (inner_pid, client_pid_seen, cred_pid_seen) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    // We are outside the server's namespace: it cannot name us.
    assert_eq!(
        client_pid_seen, 0,
        "client pid as the namespaced server sees it"
    );
    assert_eq!(
        cred_pid_seen, 0,
        "credentials pid as the namespaced server sees it"
    );
    // The server's pid as we see it is a real pid of ours whose innermost
    // namespace pid is the one the server knows itself by.
    let server_pid = client.server_process_id().unwrap();
    assert_ne!(server_pid, 0);
    assert_ne!(
        server_pid, inner_pid,
        "the server's own numbering leaked through"
    );
    let status = std::fs::read_to_string(format!("/proc/{server_pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .expect("NSpid line");
    assert_eq!(
        nspid
            .split_whitespace()
            .last()
            .unwrap()
            .parse::<u32>()
            .unwrap(),
        inner_pid,
        "NSpid of {server_pid}: {nspid}"
    );
    drop(client);
    kid.finish();
}

fn sem_138_pids_survive_the_peer_closing() {
    // The client's process exits: the server end still names it.
    let name = unique_name("x138a");
    let me = std::process::id();
    let server = default_opts().create(&name).unwrap();
    let mut kid = Kid::spawn(
        "child_pid_client",
        &[(NAME_ENV, name.clone()), (PARENT_ENV, me.to_string())],
    );
    let child = kid.pid();
    assert_eq!(kid.listen(), format!("pids {child} {me}"));
    kid.finish();
    assert_kind(server.send_msg(b"x"), ErrorKind::NoData, "ClientGone");
    assert_eq!(
        server.client_process_id().unwrap(),
        child,
        "after ClientGone"
    );
    assert_eq!(server.server_process_id().unwrap(), me);

    // The server's process closes its end: the client end still names both.
    let name = unique_name("x138b");
    let mut kid = Kid::spawn("child_pid_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let child = kid.pid();
    let client = ClientOptions::new().open(&name).unwrap();
    assert_eq!(client.client_process_id().unwrap(), me);
    assert_eq!(client.server_process_id().unwrap(), child);
    kid.tell("close");
    kid.expect("closed");
    assert_kind(client.send_msg(b"x"), ErrorKind::NoData, "ServerGone");
    assert_eq!(client.client_process_id().unwrap(), me, "after ServerGone");
    assert_eq!(
        client.server_process_id().unwrap(),
        child,
        "after ServerGone"
    );
    kid.finish();
}

// ------------------------------------------------ SEM-149/150 security

const CASE_ENV: &str = "SHMPIPE_NAMED_TEST_CASE";

/// Whether `test` may run: it needs root (to start a process of another
/// uid). Outside CI it is skipped otherwise; under `CI=true` it fails.
fn running_as_root(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "not root (needs to start a process of another uid)",
    )
}

/// `(label, name)` pairs passed to the nobody child, one per pipe.
fn names_env(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(l, n)| format!("{l}={n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn name_for(label: &str) -> String {
    env(NAME_ENV)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no pipe for {label}"))
}

fn child_nobody() {
    become_nobody();
    let write_only = || {
        let mut o = ClientOptions::new();
        o.read(false).write(true);
        o
    };
    let read_only = || {
        let mut o = ClientOptions::new();
        o.read(true).write(false);
        o
    };
    match env(CASE_ENV).as_str() {
        "open" => {
            let owner = name_for("owner");
            say(&format!(
                "owner write {}",
                outcome(&write_only().open(&owner))
            ));
            say(&format!(
                "owner read {}",
                outcome(&read_only().open(&owner))
            ));
            let readable = name_for("readable");
            say(&format!(
                "readable write {}",
                outcome(&write_only().open(&readable))
            ));
            say(&format!(
                "readable read_write {}",
                outcome(&ClientOptions::new().open(&readable))
            ));
            let reader = read_only().open(&readable);
            say(&format!("readable read {}", outcome(&reader)));
            let open = name_for("open");
            let client = ClientOptions::new().open(&open);
            say(&format!("open read_write {}", outcome(&client)));
            let client = client.unwrap();
            (&client).write_all(b"from nobody").unwrap();
            let mut reply = [0u8; 5];
            (&client).read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"hello");
            let _ = hear();
        }
        "create" => {
            let opts = || {
                let mut o = default_opts();
                o.max_instances(UNLIMITED_INSTANCES);
                o
            };
            say(&format!(
                "owner create {}",
                outcome(&opts().create(&name_for("owner")))
            ));
            say(&format!(
                "connectable create {}",
                outcome(&opts().create(&name_for("connectable")))
            ));
            say(&format!(
                "granted create {}",
                outcome(&opts().create(&name_for("granted")))
            ));
        }
        other => panic!("unknown case {other}"),
    }
    child_done();
}

fn sem_149_security_refuses_connect_for_write_to_another_uid() {
    if !running_as_root("sem_149") {
        return;
    }
    let owner = unique_name("x149owner");
    let readable = unique_name("x149readable");
    let open = unique_name("x149open");
    // Owner-only (the default security).
    let _s_owner = default_opts().create(&owner).unwrap();
    // Others may connect for reading only (Windows' default descriptor).
    let _s_readable = default_opts()
        .security(Security {
            group: Permissions::NONE,
            others: Permissions {
                connect_read: true,
                ..Permissions::NONE
            },
        })
        .create(&readable)
        .unwrap();
    // Others may connect both ways.
    let s_open = default_opts()
        .security(Security {
            group: Permissions::NONE,
            others: Permissions {
                connect_read: true,
                connect_write: true,
                create_instance: false,
            },
        })
        .create(&open)
        .unwrap();
    let mut kid = Kid::spawn(
        "child_nobody",
        &[
            (CASE_ENV, "open".to_owned()),
            (
                NAME_ENV,
                names_env(&[("owner", &owner), ("readable", &readable), ("open", &open)]),
            ),
        ],
    );
    kid.expect("owner write AccessDenied");
    kid.expect("owner read AccessDenied");
    kid.expect("readable write AccessDenied");
    kid.expect("readable read_write AccessDenied");
    kid.expect("readable read ok");
    kid.expect("open read_write ok");
    let mut buf = [0u8; 11];
    (&s_open).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from nobody");
    (&s_open).write_all(b"hello").unwrap();
    let creds = s_open.client_credentials().unwrap();
    assert_eq!((creds.uid, creds.gid), (NOBODY, NOBODY));
    assert_eq!(creds.pid, kid.pid());
    kid.finish();
}

fn sem_150_security_refuses_creating_instances_to_another_uid() {
    if !running_as_root("sem_150") {
        return;
    }
    let owner = unique_name("x150owner");
    let connectable = unique_name("x150conn");
    let granted = unique_name("x150granted");
    let opts = || {
        let mut o = default_opts();
        o.max_instances(UNLIMITED_INSTANCES);
        o
    };
    let s_owner = opts().create(&owner).unwrap();
    // Connecting both ways is not creating.
    let _s_conn = opts()
        .security(Security {
            group: Permissions::NONE,
            others: Permissions {
                connect_read: true,
                connect_write: true,
                create_instance: false,
            },
        })
        .create(&connectable)
        .unwrap();
    let _s_granted = opts()
        .security(Security {
            group: Permissions::NONE,
            others: Permissions::ALL,
        })
        .create(&granted)
        .unwrap();
    let mut kid = Kid::spawn(
        "child_nobody",
        &[
            (CASE_ENV, "create".to_owned()),
            (
                NAME_ENV,
                names_env(&[
                    ("owner", &owner),
                    ("connectable", &connectable),
                    ("granted", &granted),
                ]),
            ),
        ],
    );
    kid.expect("owner create AccessDenied");
    kid.expect("connectable create AccessDenied");
    let granted_said = kid.listen();
    println!("nobody creating an instance of a pipe that grants it: {granted_said}");
    // With the right granted, security must not be what refuses it.
    assert_ne!(granted_said, "granted create AccessDenied");
    kid.finish();
    // The refused attempts left the owner's pipe as it was.
    assert_eq!(s_owner.state().unwrap().current_instances, 1);
}

// ------------------------------------------------------ killed processes

fn child_kill_server() {
    let _server = default_opts().create(&env(NAME_ENV)).unwrap();
    say("ready");
    // Serve nothing; wait to be killed.
    while hear().is_some() {}
    child_done();
}

fn killed_server_process_releases_its_clients_and_its_name() {
    let name = unique_name("xkillsrv");
    let mut kid = Kid::spawn("child_kill_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let client = Arc::new(ClientOptions::new().open(&name).unwrap());
    let c = Arc::clone(&client);
    let read = timed("client read", move || {
        let mut buf = [0u8; 16];
        c.recv_msg(&mut buf)
    });
    // 5000 bytes against a quota of 1024, with nobody reading: pending.
    let c = Arc::clone(&client);
    let write = timed("client write", move || c.send_msg(&[7u8; 5000]));
    let n = name.clone();
    let wait = timed("wait_available", move || {
        wait_available(&n, WaitTimeout::Duration(HANG))
    });
    read.assert_pending("nothing was written");
    write.assert_pending("nothing was read");
    wait.assert_pending("the only instance is Connected");

    let killed = Instant::now();
    kid.kill();
    let (r, at) = read.finish();
    notice("pending read", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending read");
    let (r, at) = write.finish();
    notice("pending write", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending write");
    let (r, at) = wait.finish();
    notice("pending wait_available", killed, at);
    assert_kind(r, ErrorKind::FileNotFound, "pending wait_available");
    assert_kind(client.send_msg(b"x"), ErrorKind::NoData, "new write");
    let mut buf = [0u8; 4];
    assert_kind(client.recv_msg(&mut buf), ErrorKind::BrokenPipe, "new read");

    // The name is free again, even while the old client holds its end.
    let server = default_opts()
        .create(&name)
        .expect("a new server takes the name");
    let fresh = ClientOptions::new().open(&name).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    assert_data_flows(&server, &fresh, "after server kill");
}

fn child_kill_client() {
    let client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    (&client).write_all(b"queued-bytes").unwrap();
    say("ready");
    while hear().is_some() {}
    drop(client);
    child_done();
}

fn killed_client_process_releases_the_server() {
    let name = unique_name("xkillcli");
    let server = Arc::new(default_opts().create(&name).unwrap());
    let mut kid = Kid::spawn("child_kill_client", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let child = kid.pid();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    let mut buf = [0u8; 12];
    (&*server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"queued-bytes");
    let s = Arc::clone(&server);
    let read = timed("server read", move || {
        let mut buf = [0u8; 16];
        s.recv_msg(&mut buf)
    });
    read.assert_pending("the client wrote nothing more");

    let killed = Instant::now();
    kid.kill();
    let (r, at) = read.finish();
    notice("pending server read", killed, at);
    assert_kind(r, ErrorKind::BrokenPipe, "pending server read");
    assert_kind(
        server.send_msg(b"x"),
        ErrorKind::NoData,
        "write to a killed client",
    );
    assert_kind(
        server.connect(),
        ErrorKind::NoData,
        "connect after the client died",
    );
    assert_eq!(server.client_process_id().unwrap(), child);
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "ClientGone instance",
    );

    // The instance serves a new client after disconnect + connect.
    server.disconnect().unwrap();
    server.set_nonblocking(true).unwrap();
    assert_kind(server.connect(), ErrorKind::PipeListening, "re-arm");
    server.set_nonblocking(false).unwrap();
    let fresh = ClientOptions::new().open(&name).unwrap();
    assert_data_flows(&server, &fresh, "after client kill");
}

fn killed_server_process_with_a_waiting_connectless_client() {
    // A client waits for an instance of a name whose owner is killed before
    // any instance frees up; afterwards the name can be created again with
    // other attributes.
    let name = unique_name("xkillwait");
    let mut kid = Kid::spawn("child_kill_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let holder = ClientOptions::new().open(&name).unwrap();
    let n = name.clone();
    let wait = timed("wait_available", move || {
        wait_available(&n, WaitTimeout::Forever)
    });
    wait.assert_pending("the only instance is Connected");
    let killed = Instant::now();
    kid.kill();
    let (r, at) = wait.finish();
    notice("wait_available(Forever)", killed, at);
    assert_kind(r, ErrorKind::FileNotFound, "wait on a vanished name");
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::FileNotFound,
        "open after the owner died",
    );
    let server = default_opts()
        .access(shmpipe::named::Direction::Outbound)
        .create(&name)
        .expect("re-create with another direction");
    let reader = ClientOptions::new().write(false).open(&name).unwrap();
    (&server).write_all(b"out").unwrap();
    let mut buf = [0u8; 3];
    (&reader).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"out");
    drop(holder);
}

fn child_idle_client() {
    let _client = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say("ready");
    while hear().is_some() {}
    child_done();
}

fn killed_client_process_fails_the_next_server_write() {
    // The survivor only writes: nothing of its own has noticed the death
    // before the write.
    let name = unique_name("xkillw");
    // A quota large enough that the rounds below never wait on it.
    let server = default_opts()
        .quotas(1 << 20, 1 << 20)
        .create(&name)
        .unwrap();
    let mut kid = Kid::spawn("child_idle_client", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    assert_eq!(server.connect().unwrap(), Connected::Already);
    (&server).write_all(b"before").unwrap();
    kid.kill();
    // A killed process leaves no hang-up hint; a write that need not wait
    // asks the kernel once a coarse-clock tick passed since it last asked
    // (pipe-api/src/datapath/), so the first write of a round (20 ms after the
    // last) gets NoData, and it stays.
    // (In rounds: a child that another test forks at the same moment holds
    // copies of our descriptors until it execs.)
    let mut failed = None;
    for round in 0..100 {
        if let Some((i, e)) = (0..64).find_map(|i| server.send_msg(b"after").err().map(|e| (i, e)))
        {
            failed = Some((round, i, e));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (round, i, e) = failed.expect("no NoData within 100 rounds of 64 writes after the kill");
    println!("NoData at write {i} of round {round} after the kill");
    assert_kind(
        Err::<(), _>(e),
        ErrorKind::NoData,
        "write after the client was killed",
    );
    assert_kind(server.send_msg(b"again"), ErrorKind::NoData, "next write");
}

common::main! {
    tests: [
        sem_043_two_processes_race_for_one_listening_instance,
        sem_137_pids_of_opener_and_creator_in_different_processes,
        sem_137_pids_across_pid_namespaces,
        sem_138_pids_survive_the_peer_closing,
        sem_149_security_refuses_connect_for_write_to_another_uid,
        sem_150_security_refuses_creating_instances_to_another_uid,
        killed_server_process_releases_its_clients_and_its_name,
        killed_client_process_releases_the_server,
        killed_server_process_with_a_waiting_connectless_client,
        killed_client_process_fails_the_next_server_write,
    ],
    children: [
        child_race_opener,
        child_pid_client,
        child_pid_server,
        child_namespaced_server,
        child_nobody,
        child_kill_server,
        child_kill_client,
        child_idle_client,
    ],
}
