//! The creation rules across processes: max instances counts every
//! process's instances (SEM-009), the refusals still hold (SEM-011,
//! SEM-013), and a member's instances wake `wait_available`.

use crate::common;

use super::support::*;
use common::named::{assert_kind, unique_name, Pending, HANG};
use shmpipe::named::{status, wait_available, ClientOptions, Direction, WaitTimeout};
use shmpipe::ErrorKind;

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

common::tests! {
    tests: [
        sem_009_max_instances_counted_across_processes,
        sem_011_013_refusals_hold_for_other_processes,
        sem_054_055_instances_of_another_process_wake_wait_available,
        sem_016_server_gone_instance_of_another_process_counts_until_its_client_closes,
    ],
    children: [],
}
