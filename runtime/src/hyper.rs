//! [hyper] 1.x on pinwheel (feature `hyper`): an executor, a timer on the workers' wheels, and
//! hyper's `Read`/`Write` for the stream sockets.
//!
//! | hyper needs | pinwheel gives |
//! | --- | --- |
//! | `rt::Executor` (HTTP/2 streams, client connections) | [`Executor`] (work-stolen, `Send` futures) or [`LocalExecutor`] (pinned to the calling worker, like the session) |
//! | `rt::Timer` (`header_read_timeout`, keep-alive) | [`Timer`]: sleeps on the polling worker's timer wheel; `reset` moves the same timer instead of boxing a new one |
//! | `rt::Read` + `rt::Write` | implemented for [`TcpStream`](crate::net::TcpStream) and [`UnixStream`](crate::net::UnixStream) directly: reads go into hyper's uninitialised buffer without zero-filling it |
//!
//! An HTTP/1.1 server whose sessions are pinned to the worker that owns their socket:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use http_body_util::Full;
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
//! }
//!
//! #[pinwheel::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = pinwheel::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     pinwheel::net::serve(listener, |stream, _peer| async move {
//!         let served = hyper::server::conn::http1::Builder::new()
//!             .timer(pinwheel::hyper::Timer)
//!             .header_read_timeout(Duration::from_secs(5))
//!             .serve_connection(stream, hyper::service::service_fn(hello))
//!             .await;
//!         if let Err(e) = served {
//!             eprintln!("connection error: {e}");
//!         }
//!     })
//!     .await
//! }
//! ```
//!
//! [hyper]: https://docs.rs/hyper/1

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt;

/// A hyper executor spawning each future with [`crate::spawn`]: work-stolen across the
/// workers. Futures must be `Send`.
///
/// # Panics
///
/// `execute` panics outside a pinwheel runtime, as [`crate::spawn`] does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        crate::spawn::spawn(fut);
    }
}

/// A hyper executor spawning each future with [`crate::spawn_local`]: pinned to the calling
/// worker, so an HTTP/2 session's streams run on the thread that owns its socket and need not
/// be `Send`.
///
/// # Panics
///
/// `execute` panics when not called on a worker thread (from a task), as
/// [`crate::spawn_local`] does.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExecutor;

impl<F> rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        crate::spawn_local(fut);
    }
}

/// hyper's timer on pinwheel's wheels: each sleep is a [`crate::time::Sleep`], registered on
/// the wheel of the worker that polls it.
///
/// # Panics
///
/// `sleep` and `sleep_until` panic outside a pinwheel runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

/// The sleep [`Timer`] hands to hyper.
#[derive(Debug)]
pub struct Sleep(crate::time::Sleep);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl rt::Sleep for Sleep {}

impl rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn rt::Sleep>> {
        Box::pin(Sleep(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn rt::Sleep>> {
        Box::pin(Sleep(crate::time::sleep_until(
            crate::time::Instant::from_std(deadline),
        )))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            // The same timer moves (pushing it later costs nothing): no new box.
            Some(ours) => ours
                .get_mut()
                .0
                .reset(crate::time::Instant::from_std(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
