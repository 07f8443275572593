//! Integration tests of pinwheel live in `tests/`; this library only checks that the Rust
//! examples in the README compile and run.

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
