//! Networking: TCP, UDP and Unix sockets registered with the poller of the worker that
//! creates them.
//!
//! A socket made inside a task registers with that worker's `mio::Poll` (an accepted stream at
//! its first I/O call, with the poller of the worker making it), so its readiness events wake
//! its task on the same thread; and that task, if it was spawned stealable, is bound to that
//! worker from then on (I/O affinity: stolen only when its worker is overloaded). So a plain
//! accept loop that `spawn`s each connection's task keeps each connection on one thread. A
//! socket used from another thread still works (its wakes cross threads), only slower. Made
//! off the workers (inside `Runtime::block_on`), it registers with one of the runtime's
//! workers.
//!
//! ```
//! use pinwheel::net::{TcpListener, TcpStream};
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(rt.spawn(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = pinwheel::spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let mut buf = [0u8; 5];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut back = [0u8; 5];
//!     client.read_exact(&mut back).await?;
//!     assert_eq!(&back, b"hello");
//!     server.await.unwrap()
//! }))
//! .unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Every waiting operation (and each `poll_*` of the I/O traits) is a resource of the task's
//! cooperative budget (`task::coop::budgeted`): 128 that complete in one poll, then `Pending`.

#[macro_use]
mod stream;
#[macro_use]
mod split;
#[macro_use]
mod datagram;
mod buf;

mod addr;
mod serve;
mod tcp;
mod udp;
#[cfg(unix)]
pub mod unix;

pub use addr::ToSocketAddrs;

/// The addresses `host` resolves to (tokio's `lookup_host`): `"host:port"`, `("host", port)`,
/// or addresses as they are; names are resolved on the blocking pool.
///
/// # Errors
///
/// The resolution's error, naming the host; outside a runtime, an error saying so.
pub async fn lookup_host(
    host: impl ToSocketAddrs,
) -> io::Result<impl Iterator<Item = std::net::SocketAddr>> {
    Ok(addr::resolve(host).await?.into_iter())
}
pub use serve::{Balance, Listener, Server, Shard, serve, serve_with};
pub use tcp::{
    OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, TcpListener, TcpSocket, TcpStream,
    WriteHalf,
};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixDatagram, UnixListener, UnixStream};

use std::io;

use crate::scheduler::with_worker;

/// Inside `block_on` (not on a worker): one of the current runtime's workers' drivers, in
/// turn.
fn off_worker_driver() -> io::Result<pinwheel_io_driver::Handle> {
    crate::scheduler::context::with_current(|s| {
        s.map(|s| {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let i = NEXT.fetch_add(1, Ordering::Relaxed) % s.workers.len();
            s.workers[i].io().clone()
        })
    })
    .ok_or_else(|| {
        io::Error::other(
            "pinwheel::net: sockets must be created inside a pinwheel runtime (in a task, or inside Runtime::block_on)",
        )
    })
}

/// Registers `source` with the poller of the worker the task being polled is bound to, binding
/// it first if it is a stealable task not bound yet (to the calling worker, or to a less loaded
/// one: `WorkerContext::io_worker_for_polled`; I/O affinity, see `scheduler/route.rs`); other
/// callers register with the calling worker's poller (off the workers, one of the current
/// runtime's workers' in turn). A task that accepts or connects its
/// own sockets then keeps their events and its code on one thread, as a `net::serve` session
/// does, without being written as one.
pub(crate) fn register_here(
    source: &mut impl mio::event::Source,
    interest: mio::Interest,
) -> io::Result<pinwheel_io_driver::Registration> {
    let here = with_worker(|w| {
        w.map(|w| {
            let target = w.io_worker_for_polled();
            w.shared.workers[target].io().register(source, interest)
        })
    });
    match here {
        Some(r) => r,
        None => off_worker_driver()?.register(source, interest),
    }
}
