//! `Segment::attach` against descriptors no correct creator would hand over:
//! every check of the attach path and of `SegmentHeader::validate`, each
//! reached through the public API with exactly one thing wrong, and each
//! answered by its own error variant and a message that names the problem.
//!
//! Broken segments are made the way a hostile or foreign peer would make
//! them: a real segment is created, then its header bytes are overwritten
//! through a duplicate of its descriptor (the seals forbid resizing, not
//! writing), or a valid header is copied into a file of our own making
//! (unsealed memfd, regular file, wrong size). Each crafting helper is also
//! shown to produce an attachable segment when nothing is wrong, so a
//! rejection is caused by the one defect, not by the helper.
//!
//! `smoke` is the first look at the engine: a heap ring and a channel in
//! one process.

mod crafting;
mod file_kinds;
mod header_fields;
mod smoke;
