//! How long a benchmark run measures: one setting shared by the suite
//! ([`crate::suite`]) and the kill bench ([`crate::liveness`]), kept apart
//! from both so that neither imports the other.
//!
//! ```
//! use shmpipe_benches::suite::Mode;
//! assert_ne!(Mode::Quick, Mode::Full);
//! ```

use serde::Serialize;

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A few iterations of everything: checks that it all works, measures
    /// nothing meaningful.
    Smoke,
    /// About a minute in all with every row (every transport, connect, kill,
    /// zero copy and the async rows; the unaligned ratio adds a few seconds).
    Quick,
    /// About three minutes in all.
    Full,
}
