//! Runnable programs built on pinwheel live in `examples/`; this library is empty.
