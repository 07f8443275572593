//! Runnable programs built on pinwheel live in `examples/`; the proxy's code lives here, in the
//! library, so that `tests/proxy.rs` can run it end to end.

pub mod proxy;
