//! Instances of one name created by several processes (the owner, which
//! bound the name, and *members* linked to it): clients attach across
//! processes in FIFO order (SEM-042) with an atomic claim (SEM-043), max
//! instances counts every process's instances (SEM-009), the creation
//! refusals still hold (SEM-011, SEM-013), another uid with the
//! create-instance right may add instances (SEM-150), `status` shows them
//! all, a member's new or re-armed instance wakes `wait_available`
//! (SEM-054, SEM-055), its ServerGone instance counts until its client
//! closes (SEM-016), and killed processes leave nothing stale: a killed
//! member's instances vanish, a killed owner's name is taken over by a
//! member. Hostile members (and a squatter answering CREATE) are cut off
//! without harming anyone.
//!
//!
//! Children are this test binary run again (see [`common::named::Kid`]):
//! `child_member` (in `attach`) and those each module lists in
//! `common::tests!` at its end.
//!
//! [`common::named::Kid`]: crate::common::named::Kid

pub(crate) mod attach;
pub(crate) mod creation;
pub(crate) mod hostile;
pub(crate) mod killed;
pub(crate) mod other_uid;
mod support;
