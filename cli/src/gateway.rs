//! `shmpipe gateway`: export this machine's named pipes to remote clients
//! (`\\host\pipe\name`), and `shmpipe gateway init`, which writes the
//! certificates and prints both configuration snippets. The library does
//! the work ([`shmpipe::remote`]); see docs/guide/remote.md.

use clap::{Args, Subcommand};
use shmpipe::remote::{Gateway, GatewayConfig};
use std::io::Write;
use std::path::PathBuf;

/// Where `shmpipe gateway` looks for its configuration by default.
const DEFAULT_CONFIG: &str = "/etc/shmpipe/gateway.toml";

/// Options of `shmpipe gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(subcommand)]
    command: Option<GatewayCommand>,
    /// The gateway's configuration file
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

#[derive(Subcommand, Debug)]
enum GatewayCommand {
    /// Write a CA, a gateway certificate and a client certificate into DIR
    /// and print the gateway's and the client's configuration
    Init(InitArgs),
}

/// Options of `shmpipe gateway init`.
#[derive(Args, Debug)]
struct InitArgs {
    /// Directory for the certificates and keys (must not hold them yet)
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Names the gateway is reached by (DNS names or IP addresses; repeat)
    #[arg(long = "name", default_values = ["localhost", "127.0.0.1"])]
    names: Vec<String>,
    /// The local user the client certificate acts as (default: yours)
    #[arg(long)]
    uid: Option<u32>,
    /// Its primary group (default: yours)
    #[arg(long)]
    gid: Option<u32>,
    /// The host name clients write in `\\HOST\pipe\name` (default: the first --name)
    #[arg(long)]
    host: Option<String>,
    /// The UDP port the gateway listens on
    #[arg(long, default_value_t = 4433)]
    port: u16,
    /// Let the client certificate act as root (uid 0), e.g. when run as
    /// root without --uid; refused otherwise
    #[arg(long)]
    allow_root: bool,
}

/// Runs `shmpipe gateway [init]`.
pub fn run(args: &GatewayArgs) -> Result<(), String> {
    match &args.command {
        Some(GatewayCommand::Init(a)) => init(a),
        None => serve(args),
    }
}

fn serve(args: &GatewayArgs) -> Result<(), String> {
    let config = GatewayConfig::load(&args.config).map_err(|e| e.to_string())?;
    let gateway = Gateway::bind(config).map_err(|e| format!("gateway: {e}"))?;
    let addr = gateway.local_addr().map_err(|e| e.to_string())?;
    // The first line says where it listens (a port of 0 is chosen now).
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
    drop(out);
    gateway.run().map_err(|e| format!("gateway: {e}"))
}

fn init(a: &InitArgs) -> Result<(), String> {
    let uid = a.uid.unwrap_or_else(|| rustix::process::geteuid().as_raw());
    let gid = a.gid.unwrap_or_else(|| rustix::process::getegid().as_raw());
    // Run as root (as a gateway is), the default would map the remote
    // client to root: a remote key would then be a root login.
    if uid == 0 && !a.allow_root {
        return Err(
            "gateway init: the client certificate would act as root (uid 0); \
             pass --uid and --gid of the local user it should act as \
             (or --allow-root if root is really meant)"
                .into(),
        );
    }
    let host = a
        .host
        .clone()
        .or_else(|| a.names.first().cloned())
        .unwrap_or_else(|| "localhost".into());
    let out = shmpipe::remote::init(&a.dir, &a.names, uid, gid, &host, a.port)
        .map_err(|e| format!("gateway init: {e}"))?;
    for f in &out.files {
        eprintln!("wrote {}", f.display());
    }
    println!("# gateway.toml (on the gateway's machine, e.g. {DEFAULT_CONFIG})");
    println!("{}", out.gateway_toml);
    println!("# remote.toml (on the client's machine: $XDG_CONFIG_HOME/shmpipe/remote.toml)");
    print!("{}", out.remote_toml);
    Ok(())
}
