//! How the shared-memory sides wait: the [`Policy`] a measurement names,
//! the engine default it resolves to, and the encoding by which the parent
//! ships a resolved policy to its peer over the control protocol.

use serde::Serialize;
use shmpipe_engine::WaitPolicy;
use std::sync::OnceLock;

/// How a shared-memory side waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Spin and never sleep (`WaitPolicy::spin()`; the floor always spins).
    Spin,
    /// The engine's default: spin briefly, then park on a futex. For the
    /// kernel transports: their ordinary blocking system calls.
    Default,
}

impl Policy {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Spin => "spin",
            Policy::Default => "default",
        }
    }

    /// The engine wait policy this stands for.
    pub fn resolve(self) -> WaitPolicy {
        match self {
            Policy::Spin => WaitPolicy::spin(),
            Policy::Default => default_wait_policy(),
        }
    }
}

/// The engine's [`WaitPolicy::default`], resolved once per process.
///
/// The engine derives it from the CPUs the calling thread may use, so a
/// thread pinned to one CPU gets `park()` (no spinning) even on a machine
/// with many. [`affinity::place`](crate::affinity::place) resolves it before
/// pinning, and the parent ships the resolved values to its peers (which
/// start out pinned), so "default" means what an unpinned application on
/// this machine gets.
pub fn default_wait_policy() -> WaitPolicy {
    static RESOLVED: OnceLock<WaitPolicy> = OnceLock::new();
    *RESOLVED.get_or_init(WaitPolicy::default)
}

/// A short description of a wait policy.
pub fn describe(w: &WaitPolicy) -> String {
    match w.spin {
        None => "spin".into(),
        Some(d) if d.is_zero() => format!("park (slice {:?})", w.park_slice),
        Some(d) => format!("spin {d:?}, then park (slice {:?})", w.park_slice),
    }
}

/// Encodes a wait policy for the control protocol: `<spin ns|none> <slice ns>`.
pub(crate) fn encode_wait(w: &WaitPolicy) -> String {
    let spin = w
        .spin
        .map_or_else(|| "none".to_owned(), |d| d.as_nanos().to_string());
    format!("{spin} {}", w.park_slice.as_nanos())
}

/// Decodes [`encode_wait`].
pub(crate) fn decode_wait(spin: &str, slice: &str) -> Option<WaitPolicy> {
    let spin = match spin {
        "none" => None,
        ns => Some(std::time::Duration::from_nanos(ns.parse().ok()?)),
    };
    let park_slice = std::time::Duration::from_nanos(slice.parse().ok()?);
    Some(WaitPolicy { spin, park_slice })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_policies_survive_the_control_protocol() {
        for w in [
            WaitPolicy::spin(),
            WaitPolicy::park(),
            WaitPolicy::spin_then_park(Duration::from_micros(20)),
        ] {
            let line = encode_wait(&w);
            let mut parts = line.split(' ');
            let back = decode_wait(parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(back, Some(w), "{line}");
        }
        assert_eq!(decode_wait("x", "1"), None);
    }
}
