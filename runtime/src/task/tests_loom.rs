//! Loom models of the task state protocol.
