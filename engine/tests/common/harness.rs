//! The `main` of the test binaries that re-execute themselves as child
//! processes, plus the gate and blocked-thread helpers every test binary
//! shares. Compiled into both crates' tests (pipe-api includes this file with
//! `#[path]`), so keep it free of crate-specific code.
//!
//! A binary with children is a `harness = false` target whose `main` is
//! written by [`main!`]:
//!
//! ```ignore
//! common::main! {
//!     tests: [sem_116_sigkilled_client_looks_closed, kill_the_writer],
//!     children: [child_sem_116_client],
//! }
//! ```
//!
//! A binary of several modules lists each module's tests and children in
//! that module, with [`tests!`], and names the modules in its `main`:
//!
//! ```ignore
//! // tests/named_xproc/claim.rs
//! common::tests! {
//!     tests: [sem_043_one_listening_instance_one_client],
//!     children: [child_claimer],
//! }
//! // tests/named_xproc/main.rs
//! mod claim;
//! mod killed;
//! common::main! { modules: [claim, killed] }
//! ```
//!
//! A module's tests are named `module::test`, as the built-in harness names
//! them; children keep their bare names, so a child name must be unique
//! within a binary (checked when it starts).
//!
//! Started with [`ROLE_ENV`] set to `name` or `name:arg:..`, the binary runs
//! the child function `name` and exits with [`CHILD_OK`] when it returns (a
//! panic exits with 101, an unknown role with [`NO_SUCH_ROLE`]). Without the
//! variable it runs `tests` through `libtest-mimic`, which takes the usual
//! arguments (`--exact NAME`, one or more filters, `--skip`,
//! `--test-threads` or `RUST_TEST_THREADS`, `--list`, `-q`; `--nocapture`
//! is accepted and output is never captured) and prints
//! the usual `test result: ok. N passed; ..` line. Children are plain `fn`s:
//! they are not tests and are not counted. A test or child that is not
//! listed is dead code, which `cargo clippy -- -D warnings` rejects.
#![allow(dead_code)] // Each test binary uses its own subset.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Environment variable naming the role (`name` or `name:arg:..`) a
/// re-executed test binary plays.
pub const ROLE_ENV: &str = "SHMPIPE_TEST_ROLE";

/// Exit status of a child that ran its role to the end. A failing child
/// exits with 101 (panic), so neither a failure nor a plain `exit(0)`
/// passes for success.
pub const CHILD_OK: i32 = 42;

/// Exit status of a binary asked for a child role it does not have (a
/// renamed or unlisted child function).
pub const NO_SUCH_ROLE: i32 = 99;

/// How long a wait for another thread to block (or spin) may take before
/// the test calls it a hang. It never measures speed.
const BLOCKED_HANG: Duration = Duration::from_secs(20);

/// Writes `main` for a test binary with child processes; see the module
/// documentation. Tests are `fn()` or `fn() -> Result<(), E: Debug>`;
/// children are `fn()`.
/// With `modules: [a, b::c, ..]`, the `main` of a binary whose modules
/// each list their tests and children with [`tests!`].
#[allow(unused_macros)] // Binaries without children do not use it.
macro_rules! main_ {
    (
        tests: [$($test:ident),* $(,)?],
        children: [$($child:ident),* $(,)?] $(,)?
    ) => {
        fn main() -> ::std::process::ExitCode {
            $crate::common::harness::run(
                ::std::vec![$($crate::common::harness::trial(stringify!($test), $test)),*],
                &[$((stringify!($child), $child as fn())),*],
            )
        }
    };
    (modules: [$($($module:ident)::+),* $(,)?] $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            let mut tests = ::std::vec::Vec::new();
            $(tests.extend($($module)::+::tests());)*
            let children: ::std::vec::Vec<(&str, fn())> =
                [$($($module)::+::CHILDREN),*].concat();
            $crate::common::harness::run(tests, &children)
        }
    };
}
#[allow(unused_imports)] // Binaries without children do not use it.
pub(crate) use main_ as main;

/// In one module of a binary of several: its tests (`pub(crate) fn
/// tests()`, each named `module::test`) and children (`pub(crate) const
/// CHILDREN`), for [`main!`]`{ modules: [..] }`.
#[allow(unused_macros)] // Binaries of one file do not use it.
macro_rules! tests_ {
    (
        tests: [$($test:ident),* $(,)?],
        children: [$($child:ident),* $(,)?] $(,)?
    ) => {
        pub(crate) fn tests() -> ::std::vec::Vec<::libtest_mimic::Trial> {
            ::std::vec![$($crate::common::harness::trial(
                $crate::common::harness::in_module(module_path!(), stringify!($test)),
                $test,
            )),*]
        }

        pub(crate) const CHILDREN: &[(&str, fn())] = &[$((stringify!($child), $child as fn())),*];
    };
}
#[allow(unused_imports)] // Binaries of one file do not use it.
pub(crate) use tests_ as tests;

/// `test` of the module at `module_path` (`crate::a::b`), named as the
/// built-in harness would: `a::b::test`.
pub fn in_module(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_owned(),
    }
}

/// What a test function returns: `()` or a `Result` whose error is shown.
pub trait Outcome {
    /// `Err(message)` for a failure.
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }
}

/// How long one test may run before the binary reports it hung and exits
/// (seconds; `SHMPIPE_TEST_LIMIT_SECS` overrides). Far above any test's
/// normal time even on a loaded 2-CPU machine: it only turns a hang, which
/// would otherwise stall the whole run until CI's own limit, into a
/// failure that names the test.
const TEST_LIMIT_SECS: u64 = 600;

fn test_limit() -> std::time::Duration {
    let secs = std::env::var("SHMPIPE_TEST_LIMIT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TEST_LIMIT_SECS);
    std::time::Duration::from_secs(secs)
}

/// The test `f` named `name`. Like the built-in harness, every test runs on
/// a fresh thread named after it: panic messages name the test, and
/// whatever is tied to the thread's life (`PR_SET_PDEATHSIG` children,
/// thread-locals) ends with the test. A test still running after
/// [`TEST_LIMIT_SECS`] ends the whole binary with a failure naming it.
pub fn trial<R: Outcome + 'static>(name: impl Into<String>, f: fn() -> R) -> libtest_mimic::Trial {
    let name = name.into();
    libtest_mimic::Trial::test(name.clone(), move || {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let t = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let r = std::panic::catch_unwind(f);
                // The receiver is gone only if the binary is exiting.
                let _ = done_tx.send(());
                r.map(Outcome::into_result)
            })
            .map_err(|e| format!("cannot start the test's thread: {e}"))?;
        let limit = test_limit();
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
            eprintln!(
                "test {name} still running after {} s: hung; ending the test binary",
                limit.as_secs()
            );
            std::process::exit(101);
        }
        match t.join() {
            Ok(Ok(r)) => r.map_err(Into::into),
            // The panic hook already printed the message and location.
            Ok(Err(p)) | Err(p) => Err(match p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
            {
                Some(msg) => format!("test panicked: {msg}"),
                None => "test panicked".to_owned(),
            }
            .into()),
        }
    })
}

/// The body of [`main!`]: plays the child role named in [`ROLE_ENV`], or
/// runs `tests`.
pub fn run(tests: Vec<libtest_mimic::Trial>, children: &[(&str, fn())]) -> ExitCode {
    // A child is found by its bare name: two of one name (from two modules)
    // would make one of them unreachable.
    let mut names: Vec<&str> = children.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        eprintln!("two children named {:?} in this test binary", w[0]);
        return ExitCode::from(NO_SUCH_ROLE as u8);
    }
    if let Ok(spec) = std::env::var(ROLE_ENV) {
        let name = spec.split(':').next().unwrap_or_default();
        let Some(&(_, child)) = children.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = children.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "{ROLE_ENV}={spec:?}: this test binary has no child {name:?} (it has {known:?})"
            );
            return ExitCode::from(NO_SUCH_ROLE as u8);
        };
        child();
        return ExitCode::from(CHILD_OK as u8);
    }
    let (mut args, filters) = arguments();
    // The built-in harness honours RUST_TEST_THREADS too.
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|v| v.parse().ok());
    }
    let mut tests = tests;
    // In name order, as the built-in harness runs them: which tests overlap
    // stays what it was (and `--list` reads the same).
    tests.sort_by(|a, b| a.name().cmp(b.name()));
    if filters.len() > 1 {
        // Several filters (the built-in harness runs a test matching any
        // of them); libtest-mimic takes one. Tests dropped here are not
        // counted as "filtered out".
        tests.retain(|t| {
            filters.iter().any(|f| {
                let mut one = args.clone();
                one.filter = Some(f.clone());
                one.skip.clear();
                !one.is_filtered_out(t)
            })
        });
    }
    libtest_mimic::run(&args, tests).exit_code()
}

/// The command line, parsed by libtest-mimic, and its filters when there
/// are several (which libtest-mimic does not take; one stays in the
/// arguments).
fn arguments() -> (libtest_mimic::Arguments, Vec<String>) {
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--logfile",
        "--skip",
        "--color",
        "--format",
        "-Z",
    ];
    let argv: Vec<String> = std::env::args().collect();
    let mut options = vec![argv[0].clone()];
    let mut filters = Vec::new();
    let mut rest = argv.into_iter().skip(1);
    while let Some(a) = rest.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            options.push(a);
            options.extend(rest.next());
        } else if a.starts_with('-') {
            options.push(a);
        } else {
            filters.push(a);
        }
    }
    if filters.len() > 1 {
        (libtest_mimic::Arguments::from_iter(options), filters)
    } else {
        (libtest_mimic::Arguments::from_args(), filters)
    }
}

/// In a child: argument `i` of its role (`name:arg0:arg1..` in
/// [`ROLE_ENV`]).
pub fn role_arg<T: std::str::FromStr>(i: usize) -> T {
    let spec = std::env::var(ROLE_ENV).expect("role_arg called outside a child");
    let args: Vec<&str> = spec.split(':').skip(1).collect();
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{ROLE_ENV}={spec:?}: bad or missing argument {i}"))
}

/// Whether this run is under CI (`CI=true`, as GitHub Actions and most CI
/// systems set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Gate for a test that needs something of its environment (root, a pid
/// namespace, a tool): `true` if `ok`. Otherwise the test must not run; it
/// prints `skipped: why` and the caller returns, except under `CI=true`,
/// where a test that cannot run fails (CI is set up to run every test).
#[track_caller]
pub fn require(ok: bool, test: &str, why: &str) -> bool {
    if !ok {
        assert!(
            !under_ci(),
            "{test}: cannot run under CI=true, where every test must run: {why}"
        );
        println!("{test}: skipped: {why}");
    }
    ok
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The calling thread's kernel thread id, to hand to
/// [`wait_until_blocked`] before the thread blocks.
pub fn gettid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// A thread whose kernel state a test watches: one of this process, or the
/// main thread of a child process.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// Thread `tid` of this process (from [`gettid`] on that thread).
    Thread(i32),
    /// The main thread of process `pid` (where a child's role runs).
    Process(u32),
}

impl Task {
    fn dir(self) -> String {
        match self {
            Task::Thread(tid) => format!("/proc/self/task/{tid}"),
            Task::Process(pid) => format!("/proc/{pid}/task/{pid}"),
        }
    }

    /// One look: state letter and `wchan`; `None` once the thread is gone.
    fn look(self) -> Option<(char, String)> {
        let dir = self.dir();
        let state = state_in(format!("{dir}/stat"))?;
        let wchan = std::fs::read_to_string(format!("{dir}/wchan")).ok()?;
        Some((state, wchan))
    }

    /// CPU time used so far (user + system), in clock ticks.
    fn cpu_ticks(self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("{}/stat", self.dir())).ok()?;
        // Fields after the command: state is field 3, utime 14, stime 15.
        let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
    }
}

/// Waits until `task` sleeps in a wait whose `wchan` starts with
/// `wchan_prefix` (`"futex"`: where `thread::park`, blocking channels and
/// the engine's cross-process waits sleep; `""`: any interruptible sleep)
/// on two looks in a row, and returns `true`; returns `false` as soon as
/// `done()` says the thread finished what it would block in. Fails the
/// test if the thread disappears, or neither happens within 20 s.
///
/// A thread that spins before it parks counts as blocked only once it
/// parked: "still pending" checked after this means the operation went to
/// sleep without completing. (A parked waiter that wakes for a moment at
/// the end of a park slice, to check its peer, is still waiting.)
#[track_caller]
pub fn blocked_unless(task: Task, wchan_prefix: &str, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut waiting_before = false;
    loop {
        if done() {
            return false;
        }
        let Some((state, wchan)) = task.look() else {
            // Its last act may have been to finish.
            if done() {
                return false;
            }
            panic!("{task:?} ended while a test waited for it to block");
        };
        // wchan reads "0" where the kernel hides it; the state still tells
        // a sleep from a run.
        let waiting = state == 'S' && (wchan.starts_with(wchan_prefix) || wchan == "0");
        if waiting && waiting_before {
            return true;
        }
        waiting_before = waiting;
        assert!(
            start.elapsed() < BLOCKED_HANG,
            "{task:?} did not block within {BLOCKED_HANG:?} (state {state}, wchan {wchan})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until every thread of this process named `comm` (its name as
/// `/proc` shows it: at most 15 bytes) sleeps in a wait whose `wchan`
/// contains `wchan_part`, all on one look; fails the test after 20 s.
/// (No such thread at all also counts as all asleep.) The readiness tests
/// use it to know the bridge threads went back to their futex wait.
#[track_caller]
pub fn wait_until_threads_asleep(comm: &str, wchan_part: &str) {
    let start = Instant::now();
    let all_asleep = || -> Option<bool> {
        let mut all = true;
        for t in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = t.ok()?.path();
            if std::fs::read_to_string(dir.join("comm")).ok()?.trim() != comm {
                continue;
            }
            let tid: i32 = dir.file_name()?.to_str()?.parse().ok()?;
            let (state, wchan) = Task::Thread(tid).look()?;
            all &= state == 'S' && wchan.contains(wchan_part);
        }
        Some(all)
    };
    while all_asleep() != Some(true) {
        assert!(
            start.elapsed() < BLOCKED_HANG,
            "the {comm:?} threads did not go to sleep within {BLOCKED_HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until thread `tid` of this process sleeps in a futex wait (see
/// [`blocked_unless`]).
#[track_caller]
pub fn wait_until_blocked(tid: i32) {
    blocked_unless(Task::Thread(tid), "futex", || false);
}

/// Waits until the main thread of process `pid` (a child playing its role)
/// sleeps in a futex wait (see [`blocked_unless`]).
#[track_caller]
pub fn wait_until_process_blocked(pid: u32) {
    blocked_unless(Task::Process(pid), "futex", || false);
}

/// For a waiter that spins and never sleeps (the engine's `spin` policy):
/// waits until thread `tid` has used at least 30 ms of CPU since this call,
/// which a thread about to start a wait does only by spinning in it. Fails
/// the test if the thread disappears, or this does not happen within 20 s.
#[track_caller]
pub fn wait_until_spinning(tid: i32) {
    let task = Task::Thread(tid);
    // SAFETY: sysconf only reads a system constant.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    // 30 ms in ticks, rounded up, plus one for the tick the first look may
    // have been in the middle of.
    let need = (30 * hz).div_ceil(1000) + 1;
    let first = task.cpu_ticks().expect("the spinning thread exists");
    let start = Instant::now();
    while task.cpu_ticks().expect("the spinning thread ended") < first + need {
        assert!(
            start.elapsed() < BLOCKED_HANG,
            "{task:?} did not spin for 30 ms of CPU within {BLOCKED_HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The state letter of a `/proc/.../stat` file (`R`, `S`, `T` stopped, `Z`
/// zombie, ...); `None` once the process or thread is gone.
fn state_in(stat: impl AsRef<std::path::Path>) -> Option<char> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // The state follows the command name, which may hold anything but ends
    // at the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The state letter of process `pid` (see [`state_in`]).
pub fn process_state(pid: u32) -> Option<char> {
    state_in(format!("/proc/{pid}/stat"))
}

/// Stops process `pid` (SIGSTOP) and waits until every one of its threads
/// is stopped: `kill` returns before the stop takes effect, and a thread
/// that runs on meanwhile (say, reacting to what the test does next) would
/// defeat the point of stopping it. Fails the test if the process goes
/// away, or does not stop within 20 s.
#[track_caller]
pub fn stop_process(pid: u32) {
    let p = rustix::process::Pid::from_raw(pid as i32).expect("a valid pid");
    rustix::process::kill_process(p, rustix::process::Signal::STOP).expect("SIGSTOP");
    let start = Instant::now();
    let all_stopped = || -> Option<bool> {
        let mut all = true;
        for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            all &= state_in(t.ok()?.path().join("stat"))? == 'T';
        }
        Some(all)
    };
    while !all_stopped().expect("the process to stop went away") {
        assert!(
            start.elapsed() < BLOCKED_HANG,
            "process {pid} did not stop within {BLOCKED_HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
