//! `status` and `list` with members, and hostile members (and a squatter
//! answering CREATE) cut off without harming anyone.

use crate::common;

use super::support::*;
use common::named::{assert_kind, raw_control_socket, raw_member, unique_name};
use shmpipe::named::{list, status, ClientOptions, Direction};
use shmpipe::ErrorKind;
use std::io;
use std::sync::Arc;

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

common::tests! {
    tests: [
        status_and_list_show_every_process_instances,
        hostile_members_are_cut_off_and_harm_nobody,
        a_squatter_answering_create_with_garbage_is_an_error_for_the_creator,
    ],
    children: [],
}
