//! Another uid with the create-instance right adds instances (SEM-150),
//! members never rejoin a squatter, and a slow member stays counted.

use crate::common;

use super::support::*;
use common::named::{assert_kind, raw_control_socket, unique_name, Kid, Pending, HANG, NOBODY};
use shmpipe::named::{status, ClientOptions, Direction, Permissions, Security};
use shmpipe::ErrorKind;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

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

common::tests! {
    tests: [
        sem_150_another_uid_with_the_grant_creates_instances_clients_reach,
        members_do_not_rejoin_a_squatter_after_the_owner_died,
        a_slow_member_keeps_its_instance_counted_and_answers_late,
    ],
    children: [],
}
