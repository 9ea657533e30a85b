//! Killed processes leave nothing stale: a killed member's instances
//! vanish, a killed owner's name is taken over by a member.

use crate::common;

use super::support::*;
use common::named::{assert_kind, child_done, env, hear, say, unique_name, Kid};
use shmpipe::named::{status, ClientOptions, Direction};
use shmpipe::ErrorKind;
use std::sync::Arc;

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

common::tests! {
    tests: [
        killed_member_instances_vanish_and_the_name_keeps_working,
        killed_owner_members_take_over_the_name,
    ],
    children: [child_owner],
}
