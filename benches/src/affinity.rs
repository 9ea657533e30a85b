//! Where the two processes run: on two different CPUs (different physical
//! cores when the topology says so), when the process may use at least two.
//!
//! Pinning keeps the scheduler from stacking both processes on one CPU or
//! moving them mid-run, which would measure the scheduler instead of the
//! transport. When pinning is impossible (one allowed CPU, or refused), the
//! run goes on unpinned and says so.

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use std::io;

/// The CPUs chosen for the benchmark process and its peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// The CPU the calling thread was pinned to.
    pub parent_cpu: Option<usize>,
    /// The CPU the peer should pin itself to.
    pub child_cpu: Option<usize>,
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

fn core_of(cpu: usize) -> Option<(String, String)> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{f}"))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    Some((read("physical_package_id")?, read("core_id")?))
}

/// Picks two CPUs: the first allowed one, and the first other allowed one on
/// a different physical core (SMT siblings share caches, which would flatter
/// every shared-memory number), falling back to any other CPU.
pub fn choose(allowed: &[usize]) -> Option<(usize, usize)> {
    let (&parent, rest) = allowed.split_first()?;
    let core = core_of(parent);
    let child = rest
        .iter()
        .copied()
        .find(|&c| core.is_none() || core_of(c) != core)
        .or_else(|| rest.first().copied())?;
    Some((parent, child))
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    Ok(sched_setaffinity(None, &set)?)
}

/// Chooses two CPUs and pins the calling thread to the first. `enable =
/// false`, fewer than two allowed CPUs or a refused pin give an empty
/// placement (nothing pinned).
pub fn place(enable: bool) -> Placement {
    // Before narrowing the CPUs: the engine's default wait policy depends
    // on how many this thread may use.
    crate::policy::default_wait_policy();
    if !enable {
        return Placement::default();
    }
    match choose(&allowed_cpus()) {
        Some((parent, child)) if pin_current_thread(parent).is_ok() => Placement {
            parent_cpu: Some(parent),
            child_cpu: Some(child),
        },
        _ => Placement::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_needs_two_distinct_cpus() {
        assert_eq!(choose(&[]), None);
        assert_eq!(choose(&[3]), None);
        let (p, c) = choose(&[0, 1]).unwrap();
        assert_eq!(p, 0);
        assert_eq!(c, 1);
    }
}
