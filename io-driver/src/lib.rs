//! The per-worker I/O driver of `pinwheel`: one `mio::Poll` per worker thread.
//!
//! This crate knows nothing of the executor: it takes `std::task::Waker`s and plain values.
//! Its registrations and readiness tracking are planned in the project's issue list; the crate
//! exists now so the workspace has its final shape.
