//! Spec 9.14: state and identity queries (SEM-136, SEM-139..141).

use crate::common;

use super::support::*;
use common::named::{assert_kind, default_opts, unique_name};
use shmpipe::named::{Access, ClientOptions, Direction};
use shmpipe::{ErrorKind, PipeType, ReadMode, WaitMode};

// ------------------------------------------------- 9.14 state and identity

#[test]
fn sem_136_state_of_a_fresh_server_end() {
    let name = unique_name("s136");
    let first = default_opts().max_instances(2).create(&name).unwrap();
    let st = first.state().unwrap();
    assert!(!st.nonblocking, "blocking");
    assert!(!st.message_read, "byte-read");
    assert_eq!(st.current_instances, 1);
    let second = default_opts().max_instances(2).create(&name).unwrap();
    assert_eq!(first.state().unwrap().current_instances, 2);
    assert_eq!(second.state().unwrap().current_instances, 2);
    let client = open(&name);
    assert_eq!(client.state().unwrap().current_instances, 2);
    drop(second);
    assert_eq!(first.state().unwrap().current_instances, 1);
}

#[test]
fn sem_139_pids_after_disconnect() {
    let name = unique_name("s139");
    let server = default_opts().create(&name).unwrap();
    let client = open(&name);
    let me = std::process::id();
    assert_eq!(server.client_process_id().unwrap(), me);
    assert_eq!(client.client_process_id().unwrap(), me);
    assert_eq!(client.server_process_id().unwrap(), me);
    server.disconnect().unwrap();
    assert_kind(
        server.client_process_id(),
        ErrorKind::NotFound,
        "client pid on a disconnected server end",
    );
    assert_eq!(server.server_process_id().unwrap(), me);
    assert_kind(
        client.client_process_id(),
        ErrorKind::PipeNotConnected,
        "client pid on the orphaned client end",
    );
    assert_kind(
        client.server_process_id(),
        ErrorKind::PipeNotConnected,
        "server pid on the orphaned client end",
    );
}

#[test]
fn sem_139_client_pid_on_a_listening_server_end_is_not_found() {
    let name = unique_name("s139b");
    let server = default_opts().create(&name).unwrap();
    assert_kind(
        server.client_process_id(),
        ErrorKind::NotFound,
        "never had a client",
    );
}

#[test]
fn sem_140_attribute_rights_of_one_way_ends() {
    let name = unique_name("s140in");
    let inbound = default_opts()
        .access(Direction::Inbound)
        .create(&name)
        .unwrap();
    assert_kind(
        inbound.set_state(None, Some(WaitMode::Nonblocking)),
        ErrorKind::AccessDenied,
        "set_state on an inbound server end",
    );
    assert_kind(
        inbound.set_nonblocking(true),
        ErrorKind::AccessDenied,
        "set_nonblocking on an inbound server end",
    );
    assert!(inbound.info().is_ok(), "inbound server end can get_info");

    let name = unique_name("s140out");
    let outbound = default_opts()
        .access(Direction::Outbound)
        .pipe_type(PipeType::Message)
        .max_instances(2)
        .create(&name)
        .unwrap();
    assert_kind(
        outbound.info(),
        ErrorKind::AccessDenied,
        "get_info on an outbound server end",
    );
    assert_kind(
        outbound.state(),
        ErrorKind::AccessDenied,
        "get_state on an outbound server end",
    );
    outbound
        .set_state(None, Some(WaitMode::Blocking))
        .expect("outbound server end has write-attributes");

    // READ alone cannot change the read mode ...
    let read_only = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(
        read_only.set_read_mode(ReadMode::Message),
        ErrorKind::AccessDenied,
        "set_state with READ only",
    );
    // ... READ plus write-attributes can.
    let _other = default_opts()
        .access(Direction::Outbound)
        .pipe_type(PipeType::Message)
        .max_instances(2)
        .create(&name)
        .unwrap();
    let with_attrs = ClientOptions::new()
        .access(Access {
            write_attributes: true,
            ..Access::READ
        })
        .open(&name)
        .unwrap();
    with_attrs.set_read_mode(ReadMode::Message).unwrap();
    assert!(with_attrs.state().unwrap().message_read);
}

#[test]
fn sem_141_client_credentials() {
    let name = unique_name("s141");
    let server = default_opts().create(&name).unwrap();
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "Listening",
    );
    let client = open(&name);
    let c = server.client_credentials().expect("Connected");
    assert_eq!(c.pid, std::process::id());
    assert_eq!(c.uid, rustix::process::geteuid().as_raw());
    assert_eq!(c.gid, rustix::process::getegid().as_raw());
    drop(client);
    let after = server
        .client_credentials()
        .expect("still available when ClientGone");
    assert_eq!(after, c);
    server.disconnect().unwrap();
    assert_kind(
        server.client_credentials(),
        ErrorKind::CannotImpersonate,
        "Disconnected",
    );
}
