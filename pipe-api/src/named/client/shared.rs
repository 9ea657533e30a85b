//! What a client end is, whichever process holds it: the end's connection,
//! what it knows of its instance ([`Instance`], from the server's `OPENED`
//! or from the process that passed the end on), its rights, and its modes,
//! kept in the segment so that duplicates in other processes share them.
//! Also the description that travels with an end passed to another process
//! (`describe`, and `parse`, which trusts nothing in it).

use crate::datapath::{Conn, RING_IN, RING_OUT, ROLE_CLIENT, ROLE_SERVER};
use crate::error::{Error, ErrorKind};
use crate::info::PipeType;
use crate::named::name::PipeName;
use crate::named::options::{Access, Direction, ServerCredentials};
use crate::named::wire;
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{UserWord, HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::WaitPolicy;
use std::io;

#[derive(Debug)]
pub(super) struct Instance {
    pub(super) name: String,
    pub(super) direction: Direction,
    pub(super) pipe_type: PipeType,
    pub(super) max_instances: u32,
    pub(super) out_size: u32,
    pub(super) in_size: u32,
    pub(super) server: ServerCredentials,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) conn: Conn,
    pub(super) info: Instance,
    pub(super) access: Access,
    pub(super) opener: u32,
    /// A remote end's bridge (`remote::client`): its flush waits for the
    /// remote reader too.
    #[cfg(feature = "remote")]
    pub(super) remote: std::sync::OnceLock<crate::remote::bridge::Link>,
}

impl Shared {
    /// The client end behind `fd` (received from the server, or from
    /// another process holding the end), mapped through the first of
    /// `given` and with this process's slot made through the second when
    /// the server sent them with it (else through reopens).
    pub(super) fn attach(
        fd: std::os::fd::OwnedFd,
        given: Option<(std::os::fd::OwnedFd, Option<std::os::fd::OwnedFd>)>,
        info: Instance,
        access: Access,
        opener: u32,
        policy: Option<WaitPolicy>,
    ) -> io::Result<Shared> {
        let hangups = [(RING_OUT, HANGUP_READER), (RING_IN, HANGUP_WRITER)];
        let end = match given {
            Some((map, slot)) => End::attach_with_mapping(fd, map, slot, ROLE_CLIENT, &hangups),
            None => End::attach(fd, ROLE_CLIENT, &hangups),
        }
        .map_err(crate::named::conn_engine_error)?;
        let conn = Conn::new(
            end,
            (access.write_data && info.direction != Direction::Outbound).then_some(RING_IN),
            (access.read_data && info.direction != Direction::Inbound).then_some(RING_OUT),
            ROLE_SERVER,
            info.pipe_type,
            info.in_size,
            policy,
        )?;
        Ok(Shared {
            conn,
            info,
            access,
            opener,
            #[cfg(feature = "remote")]
            remote: std::sync::OnceLock::new(),
        })
    }

    /// The flags in the user word (of the ring [`Conn::modes`] picks, the
    /// same for every duplicate of an end) holding the client end's modes:
    /// in the segment, so duplicates in other processes share them as
    /// Windows' duplicates share one file object. The server never writes
    /// it; a hostile one could only flip the client's own modes, which are
    /// validated on every read.
    pub(super) fn modes(&self) -> u64 {
        self.conn.modes(UserWord::ClientModes)
    }

    /// Sets `bits` in the modes word (see [`Shared::modes`]).
    pub(super) fn set_modes(&self, bits: u64) -> u64 {
        self.conn.set_modes(UserWord::ClientModes, bits)
    }

    /// Clears `bits` in the modes word (see [`Shared::modes`]).
    pub(super) fn clear_modes(&self, bits: u64) -> u64 {
        self.conn.clear_modes(UserWord::ClientModes, bits)
    }

    /// The description that travels with the end's descriptor:
    /// `version, pipe type, direction, access` (u8 each), `max instances,
    /// out size, in size, server pid, opener pid, server uid, server gid`
    /// (u32 LE each), `name` (UTF-8).
    pub(super) fn describe(&self) -> Vec<u8> {
        let i = &self.info;
        let mut d = vec![
            DESCRIPTION_VERSION,
            u8::from(i.pipe_type == PipeType::Message),
            i.direction.to_u8(),
            self.access.to_u8(),
        ];
        for v in [
            i.max_instances,
            i.out_size,
            i.in_size,
            i.server.pid,
            self.opener,
            i.server.uid,
            i.server.gid,
        ] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(i.name.as_bytes());
        d
    }

    /// Parses [`Shared::describe`]'s output, which came from another
    /// process: every field is checked.
    pub(super) fn parse(d: &[u8]) -> io::Result<(Instance, Access, u32)> {
        let bad = || -> io::Error {
            Error::with_source(
                ErrorKind::InvalidHandle,
                "malformed named-pipe end description",
            )
            .into()
        };
        let [version, kind, dir, access, ..] = *d else {
            return Err(bad());
        };
        if version != DESCRIPTION_VERSION || d.len() < NAME_AT {
            return Err(bad());
        }
        let pipe_type = match kind {
            0 => PipeType::Byte,
            1 => PipeType::Message,
            _ => return Err(bad()),
        };
        let direction = Direction::from_u8(dir).ok_or_else(bad)?;
        let access = Access::from_u8(access).ok_or_else(bad)?;
        let word = |k: usize| wire::u32_at(d, 4 + 4 * k).map_err(|_| bad());
        let name = std::str::from_utf8(&d[NAME_AT..]).map_err(|_| bad())?;
        // The name must be one a client could have opened.
        let name = PipeName::for_client(name).map_err(|_| bad())?.full();
        let info = Instance {
            name,
            direction,
            pipe_type,
            max_instances: word(0)?,
            out_size: word(1)?,
            in_size: word(2)?,
            server: ServerCredentials {
                pid: word(3)?,
                uid: word(5)?,
                gid: word(6)?,
            },
        };
        Ok((info, access, word(4)?))
    }
}

/// 2: the server's uid and gid came.
pub(super) const DESCRIPTION_VERSION: u8 = 2;
/// Where the name starts in a description.
pub(super) const NAME_AT: usize = 4 + 7 * 4;
