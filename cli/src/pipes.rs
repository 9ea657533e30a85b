//! `shmpipe serve`, `send`, `call` and `cat`: named pipes from the shell.
//!
//! `serve` gives each connected client its own thread. Without
//! `--instances` it keeps one instance listening, as
//! [`shmpipe::named::PipeListener`] does, but it also serves a client that
//! opened, wrote and closed before the server noticed it (`connect` says
//! `NoData` then; the data is still there to read). With `--instances N` it
//! creates the N instances up front and each thread reuses its own with
//! `disconnect` + `connect`, the classic Windows server loop, so the name
//! never vanishes between clients.
//!
//! The clients wait up to `--timeout` for a free instance, and try again
//! when another client takes the instance their wait found (Windows'
//! `CallNamedPipe` waits once only).
//!
//! Whom they trust is the library's rule (a server running as root or as
//! the client's own user), widened by `--trust-uid`, `--trust-gid` and
//! `--trust-any-server`; `serve` joins a name another process owns only if
//! that process runs as root or as our user, or as a uid/gid given with
//! `--trust-owner-uid`/`--trust-owner-gid` (see the guide, "Who may serve
//! and who may connect").
//!
//! A failure the user can fix says what caused it and what to do
//! ([`hint`]): a `call` to a byte pipe, a name nothing serves, every
//! instance busy.

use crate::fail::{full_name, peer_left, Context, Failure};
use clap::Args;
use shmpipe::named::{
    Access, ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions, WaitTimeout,
};
use shmpipe::{Error, ErrorKind, PipeType, ReadMode};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Largest reply `call` takes.
const MAX_REPLY: usize = 1 << 20;
/// Copy buffer of every byte loop.
const CHUNK: usize = 64 * 1024;
/// The default timeout `serve` gives its pipe (what clients that wait with
/// `WaitTimeout::Default` wait).
const SERVE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `send`, `call` and `cat` wait for a free instance by default.
const CLIENT_TIMEOUT_MS: u64 = 5000;

/// Options of `shmpipe serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The pipe: `\\.\pipe\NAME`, or just NAME
    name: String,
    /// A message pipe: every write is one message (needed by `call`)
    #[arg(long)]
    message: bool,
    /// At most N instances, so at most N clients at once (default: unlimited)
    #[arg(long, value_name = "N")]
    instances: Option<u32>,
    /// Send every message (or every byte) back to its client
    #[arg(long, conflicts_with = "file")]
    echo: bool,
    /// Send FILE's content to every client, then disconnect it
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Serve one client, then exit
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    trust: OwnerTrustArgs,
}

/// Whom `serve` joins when another process already owns the name.
#[derive(Args, Debug)]
#[command(next_help_heading = "Trust")]
pub struct OwnerTrustArgs {
    /// When another process owns the name, join it also if it runs as UID
    /// (root and your own user are trusted anyway); repeatable
    #[arg(long = "trust-owner-uid", value_name = "UID")]
    uids: Vec<u32>,
    /// The same for a name owner whose group is GID; repeatable
    #[arg(long = "trust-owner-gid", value_name = "GID")]
    gids: Vec<u32>,
}

/// Which servers a client uses.
#[derive(Args, Debug)]
#[command(next_help_heading = "Trust")]
pub struct TrustArgs {
    /// Also use a pipe served by a process running as UID (root and your
    /// own user are trusted anyway); repeatable
    #[arg(long = "trust-uid", value_name = "UID")]
    uids: Vec<u32>,
    /// Also use a pipe served by a process whose group is GID; repeatable
    #[arg(long = "trust-gid", value_name = "GID")]
    gids: Vec<u32>,
    /// Use a pipe whoever serves it (what Windows does; anyone can create
    /// a name first)
    #[arg(long)]
    trust_any_server: bool,
}

impl TrustArgs {
    /// Client options that trust what these flags say.
    fn options(&self) -> ClientOptions {
        let mut opts = ClientOptions::new();
        for &uid in &self.uids {
            opts.trust_server_uid(uid);
        }
        for &gid in &self.gids {
            opts.trust_server_gid(gid);
        }
        opts.trust_any_server(self.trust_any_server);
        opts
    }
}

/// Options of `shmpipe send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The pipe: `\\.\pipe\NAME`, or just NAME
    name: String,
    /// What to send; `-` or nothing: standard input
    data: Option<String>,
    /// How long to wait for a free instance, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = CLIENT_TIMEOUT_MS)]
    timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Options of `shmpipe call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The pipe (a message pipe): `\\.\pipe\NAME`, or just NAME
    name: String,
    /// The request; `-`: standard input
    data: String,
    /// How long to wait for a free instance, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = CLIENT_TIMEOUT_MS)]
    timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Options of `shmpipe cat`.
#[derive(Args, Debug)]
pub struct CatArgs {
    /// The pipe: `\\.\pipe\NAME`, or just NAME
    name: String,
    /// How long to wait for a free instance, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = CLIENT_TIMEOUT_MS)]
    timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Which subcommand failed: the fix a hint suggests depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Serve,
    Send,
    Call,
    Cat,
}

/// The cause of a pipe error that `cmd` met on the pipe the user named
/// `arg`, and its fix, when the user can do something about it. A server
/// refused for the user it runs as is left to [`Failure`], which names the
/// flag that trusts it.
fn hint(cmd: Cmd, arg: &str, e: &io::Error) -> Option<String> {
    if Error::untrusted_peer_of(e).is_some() {
        return None;
    }
    let name = full_name(arg);
    Some(match (cmd, Error::kind_of(e)?) {
        (Cmd::Call, ErrorKind::FileNotFound) => format!(
            "nothing serves {name}; start a message-pipe server, e.g. \
             `shmpipe serve {arg} --message --echo`"
        ),
        (_, ErrorKind::FileNotFound) => {
            format!("nothing serves {name}; start a server: `shmpipe serve {arg}`")
        }
        // The only parameter `call` can get wrong: read mode message on a
        // byte pipe (the library's `call` sets it; Windows refuses it so).
        (Cmd::Call, ErrorKind::InvalidParameter) => format!(
            "{name} is a byte pipe; `call` needs a message pipe: `shmpipe serve {arg} --message`"
        ),
        (Cmd::Serve, ErrorKind::InvalidParameter) => {
            "--instances takes 1 to 255 (255: unlimited)".to_owned()
        }
        (Cmd::Serve, ErrorKind::PipeBusy) => format!(
            "another server already has every instance of {name} its --instances allows; \
             stop it, or serve another name"
        ),
        (_, ErrorKind::PipeBusy) => format!(
            "every instance of {name} is busy with another client; wait longer \
             (--timeout MS), or serve it with more instances (--instances N)"
        ),
        (_, ErrorKind::BadNetPath) => {
            r"pipes are local only: name it \\.\pipe\NAME, or just NAME".to_owned()
        }
        (_, ErrorKind::InvalidName) => r"a pipe name is \\.\pipe\NAME, or just NAME".to_owned(),
        (Cmd::Send, ErrorKind::NoData | ErrorKind::BrokenPipe | ErrorKind::PipeNotConnected) => {
            format!("the server of {name} closed or disconnected the pipe before reading it all")
        }
        _ => return None,
    })
}

/// Runs `attempt` again while it fails for want of a free instance (other
/// clients may take the instance a wait found), until `timeout_ms` has
/// passed; each attempt gets the time left to wait for an instance itself.
fn patiently<T>(
    timeout_ms: u64,
    mut attempt: impl FnMut(WaitTimeout) -> io::Result<T>,
) -> io::Result<T> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = if left.is_zero() {
            WaitTimeout::NoWait
        } else {
            WaitTimeout::Duration(left)
        };
        match attempt(wait) {
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) && !left.is_zero() => {}
            r => return r,
        }
    }
}

/// What `serve` does with each client.
enum Mode {
    /// Copy what it sends to standard output.
    Sink,
    /// Send it back.
    Echo,
    /// Send it this, then let it go.
    File(Vec<u8>),
}

/// `shmpipe serve`.
pub fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let name = full_name(&args.name);
    let mode = Arc::new(match &args.file {
        Some(path) => {
            Mode::File(std::fs::read(path).what(|| format!("cannot read {}", path.display()))?)
        }
        None if args.echo => Mode::Echo,
        None => Mode::Sink,
    });
    let mut opts = ServerOptions::new();
    opts.default_timeout(SERVE_DEFAULT_TIMEOUT);
    for &uid in &args.trust.uids {
        opts.trust_owner_uid(uid);
    }
    for &gid in &args.trust.gids {
        opts.trust_owner_gid(gid);
    }
    if args.message {
        opts.pipe_type(PipeType::Message)
            .read_mode(ReadMode::Message);
    }
    match args.instances {
        Some(n) => {
            opts.max_instances(n);
            serve_fixed(&name, &opts, n, mode, args.once)
        }
        None => serve_growing(&name, &opts, mode, args.once),
    }
}

/// Unlimited instances: one always listening, a thread per client.
fn serve_growing(
    name: &str,
    opts: &ServerOptions,
    mode: Arc<Mode>,
    once: bool,
) -> Result<(), Failure> {
    let mut next = create(opts, name)?;
    let mut more = opts.clone();
    more.first_instance(false);
    loop {
        wait_for_client(&next, name)?;
        // A fresh instance listens before this client is served, so the
        // next one does not wait for this one.
        let fresh = create(&more, name)?;
        let server = std::mem::replace(&mut next, fresh);
        if once {
            return serve_client(&server, &mode);
        }
        let mode = Arc::clone(&mode);
        std::thread::spawn(move || report(serve_client(&server, &mode)));
    }
}

/// `count` instances, each reused by its own thread.
fn serve_fixed(
    name: &str,
    opts: &ServerOptions,
    count: u32,
    mode: Arc<Mode>,
    once: bool,
) -> Result<(), Failure> {
    let mut servers = Vec::new();
    // At least one: `create` itself refuses a count of 0.
    for _ in 0..count.max(1) {
        servers.push(create(opts, name)?);
    }
    let (done, results) = mpsc::channel();
    for server in servers {
        let done = done.clone();
        let mode = Arc::clone(&mode);
        let name = name.to_owned();
        std::thread::spawn(move || loop {
            if let Err(f) = wait_for_client(&server, &name) {
                // The instance is unusable: this thread is done.
                let _ = done.send(Err(f));
                return;
            }
            let served = serve_client(&server, &mode);
            let _ = server.disconnect();
            if done.send(served).is_err() {
                return;
            }
        });
    }
    drop(done);
    for r in results {
        match r {
            r if once => return r,
            Ok(()) => {}
            Err(f) => report(Err(f)),
        }
    }
    // Every thread stopped on an error it reported.
    Err(Failure::kind(
        format!("no instance of {name} left"),
        ErrorKind::PipeNotConnected,
    ))
}

/// Creates an instance of `name` (joining its owner, if trusted).
fn create(opts: &ServerOptions, name: &str) -> Result<NamedPipeServer, Failure> {
    opts.create(name).map_err(|e| {
        let h = hint(Cmd::Serve, name, &e);
        Failure::new(format!("cannot create {name}"), e).hint(h)
    })
}

/// Waits until a client opened `server`'s instance. A client that already
/// came and went counts: what it wrote is still there.
fn wait_for_client(server: &NamedPipeServer, name: &str) -> Result<(), Failure> {
    match server.connect() {
        Ok(_) => Ok(()),
        Err(e) if Error::kind_of(&e) == Some(ErrorKind::NoData) => Ok(()),
        Err(e) => Err(Failure::new(format!("waiting for a client of {name}"), e)),
    }
}

fn report(r: Result<(), Failure>) {
    if let Err(f) = r {
        eprintln!("shmpipe: {f}");
    }
}

fn client_of(server: &NamedPipeServer) -> String {
    match server.client_process_id() {
        Ok(pid) => format!("client {pid} of {}", server.name()),
        Err(_) => format!("a client of {}", server.name()),
    }
}

/// One conversation; the client leaving ends it without error.
fn serve_client(server: &NamedPipeServer, mode: &Mode) -> Result<(), Failure> {
    let r = match mode {
        Mode::Sink => sink(server),
        Mode::Echo => echo(server),
        Mode::File(data) => send_file(server, data),
    };
    match r {
        Err(e) if !peer_left(&e) => Err(Failure::new(client_of(server), e)),
        _ => Ok(()),
    }
}

fn sink(server: &NamedPipeServer) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = (&*server).read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

fn echo(server: &NamedPipeServer) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    if server.info()?.pipe_type == PipeType::Byte {
        loop {
            let n = (&*server).read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            (&*server).write_all(&buf[..n])?;
        }
    }
    // A message comes back as one message, however long.
    let mut message = Vec::new();
    loop {
        let m = server.recv_msg(&mut buf)?;
        message.extend_from_slice(&buf[..m.len]);
        if m.complete {
            server.send_msg(&message)?;
            message.clear();
        }
    }
}

fn send_file(server: &NamedPipeServer, data: &[u8]) -> io::Result<()> {
    if server.info()?.pipe_type == PipeType::Message {
        server.send_msg(data)?;
    } else {
        (&*server).write_all(data)?;
    }
    // Until the client has read it all: letting go earlier would cut it.
    server.flush_buffers()
}

/// Opens a client end of the pipe the user named `arg` for `cmd`, of a
/// server `trust` allows, waiting up to `timeout_ms` for a free instance.
fn open(
    cmd: Cmd,
    arg: &str,
    access: Access,
    timeout_ms: u64,
    trust: &TrustArgs,
) -> Result<NamedPipeClient, Failure> {
    let name = &full_name(arg);
    let mut opts = trust.options();
    opts.access(access);
    patiently(timeout_ms, |wait| match opts.open(name) {
        Err(e)
            if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) && wait != WaitTimeout::NoWait =>
        {
            opts.wait_available(name, wait)?;
            opts.open(name)
        }
        r => r,
    })
    .map_err(|e| {
        let h = hint(cmd, arg, &e);
        Failure::new(format!("cannot open {name}"), e).hint(h)
    })
}

/// `DATA`, or standard input for `-`.
fn data_or_stdin(data: Option<&str>) -> Result<Vec<u8>, Failure> {
    match data {
        Some(d) if d != "-" => Ok(d.as_bytes().to_vec()),
        _ => {
            let mut v = Vec::new();
            io::stdin()
                .read_to_end(&mut v)
                .what(|| "cannot read standard input".to_owned())?;
            Ok(v)
        }
    }
}

/// `shmpipe send`.
pub fn send(args: &SendArgs) -> Result<(), Failure> {
    let name = full_name(&args.name);
    let access = Access {
        write_data: true,
        write_attributes: true,
        read_attributes: true,
        read_data: false,
    };
    let client = open(Cmd::Send, &args.name, access, args.timeout, &args.trust)?;
    let what = || format!("cannot write to {name}");
    let sent = |r: io::Result<()>| {
        r.map_err(|e| {
            let h = hint(Cmd::Send, &args.name, &e);
            Failure::new(what(), e).hint(h)
        })
    };
    let message = client.info().what(what)?.pipe_type == PipeType::Message;
    let from_stdin = args.data.as_deref().is_none_or(|d| d == "-");
    if message || !from_stdin {
        // One write: one message on a message pipe.
        let data = data_or_stdin(args.data.as_deref())?;
        if message {
            sent(client.send_msg(&data).map(drop))?;
        } else {
            sent((&client).write_all(&data))?;
        }
    } else {
        let mut buf = vec![0u8; CHUNK];
        let mut stdin = io::stdin().lock();
        loop {
            let n = stdin
                .read(&mut buf)
                .what(|| "cannot read standard input".to_owned())?;
            if n == 0 {
                break;
            }
            sent((&client).write_all(&buf[..n]))?;
        }
    }
    // Delivered means read: wait for the server before closing.
    client.flush_buffers().map_err(|e| {
        let h = hint(Cmd::Send, &args.name, &e);
        Failure::new(format!("{name} did not read everything"), e).hint(h)
    })
}

/// `shmpipe call`.
pub fn call(args: &CallArgs) -> Result<(), Failure> {
    let name = full_name(&args.name);
    let request = data_or_stdin(Some(&args.data))?;
    let mut reply = vec![0u8; MAX_REPLY];
    let opts = args.trust.options();
    let r = patiently(args.timeout, |wait| {
        opts.call(&name, &request, &mut reply, wait)
    })
    .map_err(|e| {
        let h = hint(Cmd::Call, &args.name, &e);
        Failure::new(format!("cannot call {name}"), e).hint(h)
    })?;
    write_stdout(&reply[..r.len]).what(|| "cannot write standard output".to_owned())?;
    if !r.complete {
        return Err(Failure::kind(
            format!(
                "the reply of {name} is longer than {MAX_REPLY} bytes, the most `call` takes \
                 (read longer replies with the library's `transact` and `recv_msg`)"
            ),
            ErrorKind::MoreData,
        ));
    }
    Ok(())
}

/// `shmpipe cat`.
pub fn cat(args: &CatArgs) -> Result<(), Failure> {
    let name = full_name(&args.name);
    let client = open(
        Cmd::Cat,
        &args.name,
        Access::READ,
        args.timeout,
        &args.trust,
    )?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match (&client).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // A server that disconnects once we read everything (the
            // Windows way to say goodbye) ends the pipe too.
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeNotConnected) => return Ok(()),
            Err(e) => return Err(Failure::new(format!("cannot read {name}"), e)),
        };
        match write_stdout(&buf[..n]) {
            Ok(()) => {}
            // The reader of our output is gone (`| head`): stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Failure::new("cannot write standard output", e)),
        }
    }
}

fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}
