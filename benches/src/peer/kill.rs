//! The kill role: the peer of the killed-peer measurement
//! ([`crate::liveness`]), which holds the only copy of one pipe end until
//! the parent SIGKILLs it.
//!
//! The role's arguments are the case's name and the round's sequence number;
//! its one descriptor is its end of the pipe. Before it says hello, the
//! peer does whatever must happen before the parent blocks: a peer holding
//! a write end writes the round's data ([`DATA_LEN`] bytes, stamped with
//! the sequence number, which fits the pipe at once), a peer holding a read
//! end only opens it. Then it waits on the control socket and never reads
//! or writes the pipe again. No command is expected: the parent kills it,
//! or sends `quit` when the round failed before the kill.
//!
//! ```text
//! child:  hello pinned=<0|1>     (after opening the end, and writing if it is a write end)
//! parent: (SIGKILL)              or: quit (the child exits 0)
//! ```

use super::protocol::{pin, protocol_error, Control};
use crate::link::take;
use crate::liveness::{Case, DATA_LEN};
use crate::payload;
use rustix::fd::OwnedFd;
use shmpipe::{PipeReader, PipeWriter};
use std::fs::File;
use std::io::{self, Write};

/// The peer side of the kill role: opens its end (`fds`) as `args` (case,
/// sequence number) say, writes if it holds a write end, pins itself to
/// `cpu` if given, says hello and holds the end until killed.
pub(super) fn serve(
    ctl: &mut Control,
    fds: Vec<OwnedFd>,
    args: &[String],
    cpu: Option<usize>,
) -> io::Result<()> {
    let (case, seq) = parse_args(args)
        .ok_or_else(|| io::Error::other(format!("bad kill role arguments {args:?}")))?;
    let [fd] = take::<1>(fds)?;
    // First, as the other roles do, so that the end is opened on the CPU
    // the peer runs on (the engine's default wait policy depends on it).
    let pinned = pin(cpu);
    match case {
        // The async cases differ only in the parent: the peer holds a
        // blocking end as in the blocking case of the same pipe.
        Case::AnonRead | Case::AsyncAnonRead => {
            let mut writer = PipeWriter::from_fd(fd)?;
            writer.write_all(&data(seq))?;
            hold(ctl, pinned, writer)
        }
        Case::AnonWrite | Case::AsyncAnonWrite => {
            let reader = PipeReader::from_fd(fd)?;
            hold(ctl, pinned, reader)
        }
        Case::PipeRead | Case::AsyncPipeRead => {
            let mut file = File::from(fd);
            file.write_all(&data(seq))?;
            hold(ctl, pinned, file)
        }
        // Holding the read end is all the writer needs to block on a full pipe.
        Case::PipeWrite | Case::AsyncPipeWrite => hold(ctl, pinned, fd),
    }
}

/// The role's arguments: the case's name and the round's sequence number.
fn parse_args(args: &[String]) -> Option<(Case, u64)> {
    let [case, seq] = args else {
        return None;
    };
    Some((Case::from_name(case)?, seq.parse().ok()?))
}

/// The data the peer writes in round `seq`.
fn data(seq: u64) -> Vec<u8> {
    let mut d = vec![0u8; DATA_LEN];
    payload::fill_pattern(&mut d);
    payload::stamp(&mut d, seq);
    d
}

/// Says hello, then keeps `_end` open until the kill, or until the parent
/// says `quit` or closes the control socket (a round that failed before the
/// kill).
fn hold<T>(ctl: &mut Control, pinned: bool, _end: T) -> io::Result<()> {
    ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
    match ctl.recv()? {
        None => Ok(()),
        Some(line) if line == "quit" => Ok(()),
        Some(line) => Err(protocol_error(format!("unknown command {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_args_round_trip_and_reject_garbage() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for case in Case::ALL {
            assert_eq!(parse_args(&args(&[case.name(), "7"])), Some((case, 7)));
        }
        assert_eq!(parse_args(&args(&["nope", "1"])), None);
        assert_eq!(parse_args(&args(&["pipe-read"])), None);
        assert_eq!(parse_args(&args(&["pipe-read", "x"])), None);
        assert_eq!(parse_args(&args(&["pipe-read", "1", "extra"])), None);
    }

    #[test]
    fn the_data_is_stamped_with_its_round() {
        let d = data(42);
        assert_eq!(d.len(), DATA_LEN);
        assert!(payload::full_ok(&d, 42));
        assert!(!payload::full_ok(&d, 43));
    }
}
