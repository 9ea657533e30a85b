//! Kill storm (issue 9): a message-mode name served by a server process,
//! several client processes writing numbered messages of 1 B to three
//! times the ring size, and SIGKILLs: of random clients in one test, of the
//! server (restarted each time) in the other. Asserts that no message a
//! client saw confirmed is lost, none is received twice, no cut message is
//! reported whole (every message reported complete is checked byte for byte
//! against what its writer wrote), and nothing hangs.
//!
//! * **Confirmed** means `send_msg` + `flush_buffers` returned `Ok`. The
//!   client then appends `(incarnation, number)` to a file the engine never
//!   touches.
//! * **Received** means the server read the message whole and logged it.
//!   A server killed between reading a message and logging it would make a
//!   confirmed message look lost, so the server reads straight into a file
//!   mapping shared with the parent (`MAP_SHARED`; its first bytes fenced
//!   with a value no message holds before each read): after killing it, the
//!   parent counts a message found whole in a slot as received.
//! * **Hangs**: a client whose server was killed must leave its blocked call
//!   and exit, and a server must notice a killed client (or its instance is
//!   never free again and the next client cannot connect); both are guarded
//!   by [`HANG`], no timing is asserted.
//!
//! Each test makes `SHMPIPE_KILL_STORM_KILLS` kills (250 by default; a few
//! seconds each in a debug build on two cores). The full-size run:
//!
//! ```text
//! SHMPIPE_KILL_STORM_KILLS=2000 cargo test --release -p shmpipe --test stress kill_storm
//! ```
//!
//! Children are this test binary run again (`child_storm_*`).

use crate::common;

use common::named::{env, unique_name};
use common::{child_command, HANG};
use shmpipe::named::{ClientOptions, NamedPipeServer, ServerOptions};
use shmpipe::{Error, ErrorKind, PipeType, ReadMode};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_STORM_NAME";
const ID_ENV: &str = "SHMPIPE_STORM_ID";
const CONFIRM_ENV: &str = "SHMPIPE_STORM_CONFIRM";
const LOG_ENV: &str = "SHMPIPE_STORM_LOG";
const SLOTS_ENV: &str = "SHMPIPE_STORM_SLOTS";
const KILLS_ENV: &str = "SHMPIPE_KILL_STORM_KILLS";

/// Client processes (and server instances).
const CLIENTS: usize = 4;
const QUOTA: u32 = 4096;
/// The ring the quota above gets (64 KiB, the smallest).
const RING: usize = 64 * 1024;
const MAX_MSG: usize = 3 * RING;
/// Bytes of a slot fenced before each read (see the module docs).
const FENCE: usize = 64;
const HELLO: &[u8; 8] = b"stormhi!";
/// Exit status of a client that could not connect within [`HANG`].
const STUCK: i32 = 3;

/// Server log records: `[tag, id, k]` as little-endian u64s.
const TAG_HELLO: u64 = 1; // id connected on slot k
const TAG_GOT: u64 = 2; // message (id, k) received whole
const TAG_CUT: u64 = 3; // message (id, k) cut, reported as cut
const TAG_BAD: u64 = 4; // a violation (details on the server's stderr)

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Message `k` (from 1) of client incarnation `id`: its length (mostly
/// small, some up to three rings) and bytes follow from `(id, k)`, and no
/// byte is 0xff (the fence).
fn message(id: u64, k: u64) -> Vec<u8> {
    let mut s = id.wrapping_mul(0x1000_0000_01b3) ^ k;
    let len = match splitmix(&mut s) % 10 {
        0..=3 => 1 + splitmix(&mut s) % 64,
        4..=6 => 1 + splitmix(&mut s) % 4096,
        _ => 1 + splitmix(&mut s) % MAX_MSG as u64,
    } as usize;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend(splitmix(&mut s).to_le_bytes().map(|b| b % 255));
    }
    v.truncate(len);
    v
}

fn hello(id: u64) -> Vec<u8> {
    let mut v = HELLO.to_vec();
    v.extend_from_slice(&id.to_le_bytes());
    v
}

fn append(f: &mut File, words: &[u64]) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    // One write: a kill never leaves half a record behind.
    f.write_all(&bytes).unwrap();
}

fn records(path: &Path, width: usize) -> Vec<Vec<u64>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes
        .chunks_exact(8 * width)
        .map(|r| {
            r.chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
                .collect()
        })
        .collect()
}

fn append_file(path: &str) -> File {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
}

/// Child: one client incarnation. Connects (retrying while the name is
/// missing or busy), says hello, then sends message after message, each
/// confirmed by a flush, until an operation fails (its server died).
fn child_storm_client() {
    let (name, id) = (env(NAME_ENV), env(ID_ENV).parse::<u64>().unwrap());
    let mut confirm = append_file(&env(CONFIRM_ENV));
    let start = Instant::now();
    let client = loop {
        match ClientOptions::new().open(&name) {
            Ok(c) => break c,
            Err(e) => {
                let kind = Error::kind_of(&e);
                if !matches!(kind, Some(ErrorKind::PipeBusy | ErrorKind::FileNotFound)) {
                    std::process::exit(0); // the server died while we opened
                }
                if start.elapsed() > HANG {
                    std::process::exit(STUCK);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let sent = |m: &[u8]| client.send_msg(m).and_then(|_| client.flush_buffers());
    if sent(&hello(id)).is_err() {
        std::process::exit(0);
    }
    append(&mut confirm, &[id, 0]);
    for k in 1.. {
        if sent(&message(id, k)).is_err() {
            std::process::exit(0);
        }
        append(&mut confirm, &[id, k]);
    }
}

/// The shared slots the server reads into.
struct Slots {
    base: *mut u8,
}

// SAFETY: the pointer is to a mapping that is never unmapped, so it stays
// valid on any thread.
unsafe impl Send for Slots {}
// SAFETY: shared use only hands out slot `i` to the one thread serving
// instance `i` (see `Slots::slot`), so no two threads alias a slot.
unsafe impl Sync for Slots {}

impl Slots {
    fn map(path: &str) -> Slots {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: a fresh shared mapping of a file of CLIENTS * MAX_MSG
        // bytes (made by the parent), at an address the kernel picks; it is
        // never unmapped, so the pointer stays valid for the process.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                CLIENTS * MAX_MSG,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &f,
                0,
            )
        }
        .unwrap();
        Slots { base: p.cast() }
    }

    /// Slot `i`, for the one thread that serves instance `i`.
    #[allow(clippy::mut_from_ref)]
    fn slot(&self, i: usize) -> &mut [u8] {
        assert!(i < CLIENTS);
        // SAFETY: inside the mapping (see `map`); only instance `i`'s thread
        // asks for slot `i`, once, so no other reference to it exists.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(i * MAX_MSG), MAX_MSG) }
    }
}

/// Child: the server. `CLIENTS` instances, each served by a thread that
/// reads messages into its slot, checks them, and logs them.
fn child_storm_server() {
    let name = env(NAME_ENV);
    let slots: &'static Slots = Box::leak(Box::new(Slots::map(&env(SLOTS_ENV))));
    let log_path = env(LOG_ENV);
    let servers: Vec<NamedPipeServer> = (0..CLIENTS)
        .map(|_| {
            ServerOptions::new()
                .pipe_type(PipeType::Message)
                .read_mode(ReadMode::Message)
                .max_instances(CLIENTS as u32)
                .quotas(QUOTA, QUOTA)
                .create(&name)
                .unwrap()
        })
        .collect();
    let threads: Vec<_> = servers
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut log = append_file(&log_path);
            std::thread::spawn(move || loop {
                let _ = s.connect();
                serve_one(&s, slots.slot(i), i, &mut log);
                let _ = s.disconnect();
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Serves one connection until its client is gone.
fn serve_one(s: &NamedPipeServer, slot: &mut [u8], i: usize, log: &mut File) {
    let bad = |log: &mut File, what: String| {
        eprintln!("storm server, slot {i}: {what}");
        append(log, &[TAG_BAD, 0, 0]);
    };
    let Ok(m) = s.recv_msg(slot) else { return };
    if !m.complete || m.len != 16 || &slot[..8] != HELLO {
        // A cut hello, or an error after it, is the client's death.
        if m.complete {
            bad(log, format!("not a hello: {:?}", &slot[..m.len.min(16)]));
        }
        return;
    }
    let id = u64::from_le_bytes(slot[8..16].try_into().unwrap());
    append(log, &[TAG_HELLO, id, i as u64]);
    for k in 1.. {
        slot[..FENCE].fill(0xff);
        let m = match s.recv_msg(slot) {
            Ok(m) => m,
            Err(_) => return,
        };
        let want = message(id, k);
        let got = &slot[..m.len];
        if m.complete {
            if got != want {
                return bad(
                    log,
                    format!(
                        "message ({id}, {k}) reported whole: {} of {} bytes, equal: {}",
                        m.len,
                        want.len(),
                        got.len() == want.len()
                    ),
                );
            }
            append(log, &[TAG_GOT, id, k]);
            continue;
        }
        if m.len >= want.len() || got != &want[..m.len] {
            return bad(
                log,
                format!("cut message ({id}, {k}): not a prefix ({} bytes)", m.len),
            );
        }
        // A caller reading on after `complete == false` gets an error,
        // never another message.
        match s.recv_msg(slot) {
            Err(_) => append(log, &[TAG_CUT, id, k]),
            Ok(n) => bad(log, format!("after the cut ({id}, {k}): {n:?}")),
        }
        return;
    }
}

/// The parent's side of a storm: files, children, bookkeeping.
struct Storm {
    name: String,
    dir: PathBuf,
    next_id: u64,
    clients: Vec<(u64, Child)>,
    server: Option<Child>,
    /// Messages found whole in slots after a server kill.
    rescued: Vec<(u64, u64)>,
    /// Log records before the running server's start.
    log_mark: usize,
}

impl Storm {
    fn new(tag: &str) -> Storm {
        let dir = std::env::temp_dir().join(format!("shmpipe-storm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let slots = File::create(dir.join("slots")).unwrap();
        slots.set_len((CLIENTS * MAX_MSG) as u64).unwrap();
        Storm {
            name: unique_name(tag),
            dir,
            next_id: 1,
            clients: Vec::new(),
            server: None,
            rescued: Vec::new(),
            log_mark: 0,
        }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_str().unwrap().to_owned()
    }

    fn spawn(&self, role: &str, id: u64) -> Child {
        let mut cmd = child_command(role);
        cmd.env(NAME_ENV, &self.name)
            .env(ID_ENV, id.to_string())
            .env(CONFIRM_ENV, self.path("confirmed"))
            .env(LOG_ENV, self.path("log"))
            .env(SLOTS_ENV, self.path("slots"))
            .stderr(Stdio::inherit());
        cmd.spawn().unwrap()
    }

    fn start_server(&mut self) {
        self.log_mark = records(Path::new(&self.path("log")), 3).len();
        self.server = Some(self.spawn("child_storm_server", 0));
    }

    fn start_client(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let c = self.spawn("child_storm_client", id);
        self.clients.push((id, c));
    }

    /// Reaps clients that exited on their own; a stuck one fails the test.
    fn reap(&mut self) -> usize {
        let before = self.clients.len();
        self.clients
            .retain_mut(|(id, c)| match c.try_wait().unwrap() {
                None => true,
                Some(st) => {
                    assert_ne!(
                        st.code(),
                        Some(STUCK),
                        "client {id} never got an instance: a server hangs"
                    );
                    false
                }
            });
        before - self.clients.len()
    }

    /// SIGKILLs the server and counts what it had read but not logged.
    fn kill_server(&mut self) {
        let mut s = self.server.take().unwrap();
        s.kill().unwrap();
        s.wait().unwrap();
        let log = records(Path::new(&self.path("log")), 3);
        let slots = std::fs::read(self.path("slots")).unwrap();
        let mut last: HashMap<u64, u64> = HashMap::new();
        for r in &log {
            if r[0] == TAG_GOT || r[0] == TAG_CUT {
                last.insert(r[1], r[2]);
            }
        }
        let done: HashSet<u64> = log
            .iter()
            .filter(|r| r[0] == TAG_CUT)
            .map(|r| r[1])
            .collect();
        let mut on_slot = HashMap::new();
        for r in &log[self.log_mark..] {
            if r[0] == TAG_HELLO {
                on_slot.insert(r[2], r[1]);
            }
        }
        for (slot, id) in on_slot {
            if done.contains(&id) {
                continue;
            }
            let k = last.get(&id).copied().unwrap_or(0) + 1;
            let want = message(id, k);
            let at = slot as usize * MAX_MSG;
            if slots[at..at + want.len()] == want[..] {
                self.rescued.push((id, k));
            }
        }
    }

    /// Waits (bounded) for every client to exit.
    fn wait_clients_exit(&mut self, which: &HashSet<u64>, what: &str) {
        let start = Instant::now();
        while self.clients.iter().any(|(id, _)| which.contains(id)) {
            self.reap();
            assert!(
                start.elapsed() < HANG,
                "{what}: a client's call did not return after its server died"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Ends the storm (kills everything) and checks the books.
    fn finish(mut self) {
        for (_, c) in &mut self.clients {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.clients.clear();
        self.kill_server();
        let log = records(Path::new(&self.path("log")), 3);
        let bad = log.iter().filter(|r| r[0] == TAG_BAD).count();
        let cut = log.iter().filter(|r| r[0] == TAG_CUT).count();
        let mut received: HashMap<(u64, u64), u32> = HashMap::new();
        for r in log.iter().filter(|r| r[0] == TAG_GOT) {
            *received.entry((r[1], r[2])).or_default() += 1;
        }
        for &m in &self.rescued {
            *received.entry(m).or_default() += 1;
        }
        let confirmed: Vec<(u64, u64)> = records(Path::new(&self.path("confirmed")), 2)
            .into_iter()
            .filter(|r| r[1] > 0)
            .map(|r| (r[0], r[1]))
            .collect();
        let lost: Vec<_> = confirmed
            .iter()
            .filter(|m| !received.contains_key(m))
            .collect();
        let dup: Vec<_> = received.iter().filter(|&(_, &n)| n > 1).collect();
        eprintln!(
            "kill storm {}: {} confirmed, {} received ({} rescued from slots), {cut} cut",
            self.name,
            confirmed.len(),
            received.len(),
            self.rescued.len()
        );
        assert_eq!(
            bad, 0,
            "the server saw {bad} violations (see its stderr above)"
        );
        assert!(
            lost.is_empty(),
            "{} confirmed messages lost: {lost:?}",
            lost.len()
        );
        assert!(dup.is_empty(), "messages received twice: {dup:?}");
        assert!(!confirmed.is_empty(), "nothing was ever confirmed");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kills() -> usize {
    std::env::var(KILLS_ENV).map_or(250, |v| v.parse().unwrap())
}

/// A few milliseconds, varied, so that kills land at every point of a
/// message (this is when to kill, not a synchronisation).
fn jitter(seed: &mut u64) {
    std::thread::sleep(Duration::from_micros(500 + splitmix(seed) % 8000));
}

fn kill_storm_of_clients() {
    let mut storm = Storm::new("storm-clients");
    storm.start_server();
    for _ in 0..CLIENTS {
        storm.start_client();
    }
    let mut seed = 0x5eed;
    for _ in 0..kills() {
        // Every client connected: the server noticed each killed client
        // and freed its instance (a server call that hung would not).
        let start = Instant::now();
        loop {
            let hello: HashSet<u64> = records(Path::new(&storm.path("confirmed")), 2)
                .into_iter()
                .filter(|r| r[1] == 0)
                .map(|r| r[0])
                .collect();
            if storm.clients.iter().all(|(id, _)| hello.contains(id)) {
                break;
            }
            assert_eq!(
                storm.reap(),
                0,
                "a client left on its own: the server failed it (see its stderr)"
            );
            assert!(
                start.elapsed() < HANG,
                "a client never got an instance: the server's call on a killed client hangs"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        jitter(&mut seed);
        storm.reap();
        let victim = (splitmix(&mut seed) % storm.clients.len() as u64) as usize;
        let (_, mut c) = storm.clients.swap_remove(victim);
        let _ = c.kill();
        c.wait().unwrap();
        while storm.clients.len() < CLIENTS {
            storm.start_client();
        }
    }
    storm.finish();
}

fn kill_storm_of_the_server() {
    let mut storm = Storm::new("storm-server");
    storm.start_server();
    let mut seed = 0x5e4e4;
    for _ in 0..kills() {
        while storm.clients.len() < CLIENTS {
            storm.start_client();
        }
        // Kill while messages flow: once this server confirmed one more.
        let before = records(Path::new(&storm.path("confirmed")), 2).len();
        let start = Instant::now();
        while records(Path::new(&storm.path("confirmed")), 2).len() <= before {
            storm.reap();
            assert!(
                start.elapsed() < HANG,
                "no message got through the new server"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        jitter(&mut seed);
        storm.kill_server();
        // Every client connected to the dead server must leave its call.
        let connected: HashSet<u64> = records(Path::new(&storm.path("confirmed")), 2)
            .into_iter()
            .map(|r| r[0])
            .collect();
        storm.start_server();
        storm.wait_clients_exit(&connected, "server killed");
    }
    storm.finish();
}

common::tests! {
    tests: [kill_storm_of_clients, kill_storm_of_the_server],
    children: [child_storm_client, child_storm_server],
}
