//! The blocks of a gates.yaml kernel that the layers above the loader read on their own: a
//! `cuda:` kernel (what the runner compiles, feeds, checks and launches) and its `profile:`
//! limits (what gate 4 checks). [`crate::config`] parses and validates them as part of the
//! whole file; the CUDA runner and gate 4 use them without depending on the loader, and the
//! loader without depending on them.

pub mod cuda;
pub mod dtype;
pub mod profile;
