//! What the numbers were measured on: CPU model, kernel, CPU counts, and
//! whether a hypervisor is involved (futex wake-ups and timer reads cost
//! several times more in a VM), and how busy the machine was.

use serde::Serialize;

/// A description of the machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// CPUs online.
    pub cpus_online: usize,
    /// CPUs this process may run on.
    pub cpus_allowed: usize,
    /// The CPU reports the `hypervisor` flag.
    pub hypervisor: bool,
    /// The kernel's clock source (`tsc` makes clock reads cheap).
    pub clocksource: String,
    /// 1, 5 and 15 minute load averages when the run started: other work on
    /// the machine disturbs every number, spinning ones most.
    pub load_average: String,
}

/// Reads the machine description from `/proc`.
pub fn probe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let cpu_model = field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("cpu model"))
        .unwrap_or_else(|| "unknown".into());
    let hypervisor = field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
    let cpus_online = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let clocksource =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    Machine {
        load_average,
        clocksource,
        cpu_model,
        kernel,
        cpus_online,
        cpus_allowed: crate::affinity::allowed_cpus().len(),
        hypervisor,
    }
}
