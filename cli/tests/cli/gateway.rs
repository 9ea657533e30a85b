//! `shmpipe gateway init` and `shmpipe gateway`: the snippets `init`
//! prints are the configuration a real gateway process runs with, and a
//! real `shmpipe call` of `\\host\pipe\name` reaches a real `shmpipe serve`
//! through it.
//!
//! The gateway switches threads to the mapped uid, which needs root:
//! without it the test says why and returns, except under `CI=true`.

use crate::common;

use common::{bin, drain, full, run_without_input, wait_bounded, HANG};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps the child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn needs_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs root under CI=true (the gateway switches to mapped uids)"
    );
    println!("{test}: skipped: needs root");
    false
}

#[test]
fn gateway_init_snippets_serve_a_remote_call() {
    if !needs_root("gateway_init_snippets_serve_a_remote_call") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-gateway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let init = [
        "gateway",
        "init",
        "--dir",
        d,
        "--name",
        "localhost",
        "--uid",
        "0",
        "--gid",
        "0",
        "--host",
        "gwtest",
        "--port",
        "0",
    ];
    // A client certificate acting as root is refused unless asked for.
    let refused = run_without_input(&init);
    assert!(
        !refused.status.success(),
        "init mapped a client to root unasked"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--allow-root"), "{stderr}");
    let init = [&init[..], &["--allow-root"]].concat();
    let out = run_without_input(&init);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (gateway_toml, remote_toml) = text
        .split_once("# remote.toml")
        .expect("init prints both snippets");
    // Never over existing files: a second init fails.
    let again = run_without_input(&init);
    assert!(!again.status.success(), "a second init overwrote the keys");

    let gateway_toml = gateway_toml.replace("0.0.0.0:0", "127.0.0.1:0");
    std::fs::write(dir.join("gateway.toml"), gateway_toml).unwrap();
    let mut gateway = Reaped(
        bin()
            .args(["gateway", "--config", &format!("{d}/gateway.toml")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start shmpipe gateway"),
    );
    let mut first = String::new();
    BufReader::new(gateway.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("gateway said {first:?}"));
    // Past the rest of the header line.
    let remote_toml = remote_toml.split_once('\n').unwrap().1;
    let remote_toml = remote_toml
        .replace("address = \"gwtest\"", "address = \"127.0.0.1\"")
        .replace("port = 0", &format!("port = {port}"));
    std::fs::write(dir.join("remote.toml"), remote_toml).unwrap();

    let name = format!("cli-remote-{}", std::process::id());
    let _server = Reaped(
        bin()
            .args(["serve", &name, "--message", "--echo"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !run_without_input(&["info", &full(&name)]).status.success() {
        assert!(start.elapsed() < HANG, "serve never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut call = bin()
        .args([
            "call",
            &format!(r"\\gwtest\pipe\{name}"),
            "over the network",
        ])
        .env("SHMPIPE_REMOTE_CONFIG", dir.join("remote.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (o, e) = (
        drain(call.stdout.take().unwrap()),
        drain(call.stderr.take().unwrap()),
    );
    let out = wait_bounded(call, o, e, "remote call");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"over the network");
    let _ = std::fs::remove_dir_all(&dir);
}
