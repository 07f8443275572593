//! Loom models of the scheduler protocols.
