//! Attribute macros for `pinwheel`.
//!
//! `#[pinwheel::main]` and `#[pinwheel::test]` are planned here (see the project's issue list);
//! this crate is part of the workspace so that the layout of `ARCHITECTURE.md` holds from the
//! start. It exports nothing yet.
