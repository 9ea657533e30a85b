//! A server process under pressure keeps serving its names: it runs out of
//! descriptors for a while, or another process (with the create-instance
//! right) joins a name and then never answers. Either may slow clients
//! down; neither may leave a name dead while its server lives, nor starve
//! the process's other names, nor hand a client a raw system error.

use crate::common;

use common::named::{child_done, env, hear, kind, raw_member, say, unique_name, Kid, Pending};
use shmpipe::named::{ClientOptions, Direction, ServerOptions};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io;
use std::os::fd::OwnedFd;

const NAME_ENV: &str = "SHMPIPE_ABUSE_TEST_NAME";

fn message_opts(max: u32) -> ServerOptions {
    let mut o = ServerOptions::new();
    o.access(Direction::Duplex)
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(max)
        .quotas(1024, 1024);
    o
}

fn child_owner_at_the_descriptor_limit() {
    let name = env(NAME_ENV);
    let _server = message_opts(1).create(&name).unwrap();
    say("ready");
    assert_eq!(hear().as_deref(), Some("fill"));
    // Take every descriptor this process may open: the name's thread can
    // then accept no client.
    let mut filler: Vec<OwnedFd> = Vec::new();
    while let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 0) {
        filler.push(fd);
        assert!(filler.len() < 1 << 20, "no descriptor limit");
    }
    say("full");
    assert_eq!(hear().as_deref(), Some("free"));
    drop(filler);
    say("freed");
    let _ = hear();
    child_done();
}

/// Finding: a failed `accept` (EMFILE) used to end the name's thread, so
/// the name stayed bound but answered nobody, ever again.
fn a_name_survives_its_server_running_out_of_descriptors() {
    let name = unique_name("abuse-emfile");
    let mut kid = Kid::spawn(
        "child_owner_at_the_descriptor_limit",
        &[(NAME_ENV, name.clone())],
    );
    kid.expect("ready");
    kid.tell("fill");
    kid.expect("full");
    // The server cannot accept this client now; it must once it can.
    let n = name.clone();
    let opening = Pending::start("open while the server has no descriptors", move || {
        ClientOptions::new().open(&n).map(|_| ())
    });
    opening.assert_pending("the server cannot take the connection yet");
    kid.tell("free");
    kid.expect("freed");
    match opening.finish() {
        Ok(()) => {}
        // Also acceptable: the server said busy while it could not take
        // the client; but then it must serve the next one.
        Err(e) if kind(&e) == Some(ErrorKind::PipeBusy) => {}
        Err(e) => panic!("open after the server recovered: {e:?}"),
    }
    // The instance was free (or taken by the client above, now closed):
    // in any case the name answers.
    let st = shmpipe::named::status(&name).expect("the name still answers");
    assert_eq!(st.max_instances, 1);
    kid.finish();
}

fn outcome(r: &io::Result<()>) -> Result<(), Option<ErrorKind>> {
    r.as_ref().map(|_| ()).map_err(kind)
}

/// Finding: clients forwarded to a member that never answers each held a
/// request thread of the owner's process for seconds; with enough of them
/// every other name of that process dropped its clients, who saw a raw
/// `ECONNRESET`.
fn a_silent_member_starves_neither_its_name_nor_the_process() {
    let name = unique_name("abuse-silent");
    let other = unique_name("abuse-other");
    let _owner = message_opts(255).create(&name).unwrap();
    let _taken = ClientOptions::new().open(&name).unwrap(); // the owner's own instance
    let _unrelated = message_opts(1).create(&other).unwrap();
    // Members that joined and then never answer.
    let links: Vec<OwnedFd> = (0..70).map(|_| raw_member(&name)).collect();
    let openers: Vec<_> = (0..70)
        .map(|_| {
            let n = name.clone();
            Pending::start("open forwarded to a silent member", move || {
                outcome(&ClientOptions::new().open(&n).map(|_| ()))
            })
        })
        .collect();
    // Meanwhile the process's other name serves its clients.
    let o = other.clone();
    let unrelated = Pending::start("open of another name of the process", move || {
        outcome(&ClientOptions::new().open(&o).map(|_| ()))
    });
    assert_eq!(
        unrelated.finish(),
        Ok(()),
        "the other name's instance was free"
    );
    assert!(shmpipe::named::status(&other).is_ok());
    // The forwarded clients get a pipe error, never a raw system error.
    for o in openers {
        match o.finish() {
            Ok(()) => panic!("a silent member cannot have served a client"),
            Err(Some(ErrorKind::PipeBusy | ErrorKind::FileNotFound | ErrorKind::Timeout)) => {}
            Err(k) => panic!("forwarded client got {k:?}"),
        }
    }
    drop(links);
}

common::tests! {
    tests: [
        a_name_survives_its_server_running_out_of_descriptors,
        a_silent_member_starves_neither_its_name_nor_the_process,
    ],
    children: [child_owner_at_the_descriptor_limit],
}
