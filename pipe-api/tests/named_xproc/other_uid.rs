//! Clients and servers of another uid (SEM-149, SEM-150): what the
//! security of a pipe lets them do.

use crate::common;

use super::support::*;
use common::named::{
    become_nobody, child_done, default_opts, env, hear, say, unique_name, Kid, NOBODY,
};
use shmpipe::named::{ClientOptions, Permissions, Security, UNLIMITED_INSTANCES};
use std::io::{Read, Write};

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

common::tests! {
    tests: [
        sem_149_security_refuses_connect_for_write_to_another_uid,
        sem_150_security_refuses_creating_instances_to_another_uid,
    ],
    children: [child_nobody],
}
