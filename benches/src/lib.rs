//! Shared helpers for the shmpipe benchmarks.
