//! `child_member`, and clients attaching to the instances of several
//! processes in FIFO order (SEM-042) with an atomic claim (SEM-043).

use crate::common;

use super::support::*;
use common::named::{assert_kind, become_nobody, child_done, env, hear, say, unique_name, HANG};
use shmpipe::named::{wait_available, ClientOptions, Direction, NamedPipeServer, WaitTimeout};
use shmpipe::ErrorKind;
use std::sync::Arc;

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

common::tests! {
    tests: [
        sem_042_clients_attach_in_fifo_order_across_processes,
        sem_043_racing_clients_claim_a_remote_instance_once,
    ],
    children: [child_member],
}
