//! Windows-style anonymous and named pipes for Linux, on the lock-free
//! shared-memory engine [`shmpipe_engine`].
//!
//! This crate is being filled in: anonymous pipes and named pipes follow the
//! engine (see the project README for the plan).
#![deny(missing_docs)]
