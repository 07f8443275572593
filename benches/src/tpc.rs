//! tokio run thread-per-core, the idiom pinning should be compared with: one current-thread
//! runtime per thread, each with its own `SO_REUSEPORT` listener on the same address (all
//! bound before any accepts), sessions `spawn_local`'d on the thread that accepted them.
//! [`TokioTpc`] is the third column of the compare runner's network rows.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;

use crate::Tokio;

/// A group of thread-per-core tokio servers (started by the workloads, stopped when dropped),
/// beside a multi-thread tokio runtime that the generic `Exec` calls use.
#[derive(Debug)]
pub struct TokioTpc {
    rt: Tokio,
    workers: usize,
    servers: Mutex<Vec<Server>>,
}

#[derive(Debug)]
struct Server {
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for TokioTpc {
    fn drop(&mut self) {
        let servers = std::mem::take(&mut *self.servers.lock().unwrap());
        for s in servers {
            drop(s.stop);
            for t in s.threads {
                let _ = t.join();
            }
        }
    }
}

/// A listening socket with `SO_REUSEPORT` on `addr` (non-blocking), so that several threads
/// may each accept on the same address.
pub(crate) fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

impl TokioTpc {
    /// Starts one server thread per worker, each running `session` for the connections its
    /// listener accepts (TCP_NODELAY on); returns the shared address.
    pub fn serve<Fut>(&self, session: fn(tokio::net::TcpStream) -> Fut) -> SocketAddr
    where
        Fut: Future<Output = ()> + 'static,
    {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = first.local_addr().unwrap();
        let mut listeners = vec![first];
        for _ in 1..self.workers {
            listeners.push(reuseport_listener(addr).expect("bind a reuseport sibling"));
        }
        let (stop, watch) = tokio::sync::watch::channel(false);
        let threads = listeners
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let mut watch = watch.clone();
                std::thread::Builder::new()
                    .name(format!("tokio-tpc-{i}"))
                    .spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        let local = tokio::task::LocalSet::new();
                        local.block_on(&rt, async move {
                            let l = tokio::net::TcpListener::from_std(l).unwrap();
                            loop {
                                tokio::select! {
                                    r = l.accept() => {
                                        if let Ok((s, _)) = r {
                                            let _ = s.set_nodelay(true);
                                            tokio::task::spawn_local(session(s));
                                        }
                                    }
                                    _ = watch.changed() => return,
                                }
                            }
                        });
                    })
                    .unwrap()
            })
            .collect();
        self.servers.lock().unwrap().push(Server { stop, threads });
        addr
    }
}

/// The `Exec` impl of a group of servers of its own beside a multi-thread tokio runtime (field
/// `rt`), with `workers` and an empty `servers` list: the generic `Exec` calls go to tokio
/// (`TokioTpc` here, `MioFloor` in `floor.rs`).
macro_rules! exec_beside_tokio {
    ($ty:ty, $name:expr, $thread:expr) => {
        impl $crate::Exec for $ty {
            const NAME: &'static str = $name;
            const THREADS: &'static [&'static str] = &[$thread];

            fn build(workers: usize) -> Self {
                Self {
                    rt: $crate::Tokio::build(workers),
                    workers,
                    servers: std::sync::Mutex::new(Vec::new()),
                }
            }

            fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
                self.rt.block_on(f)
            }

            fn spawn_outside<F>(
                &self,
                f: F,
            ) -> impl std::future::Future<Output = F::Output> + Send + 'static
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                self.rt.spawn_outside(f)
            }

            fn spawn<F>(f: F) -> impl std::future::Future<Output = F::Output> + Send + 'static
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                <$crate::Tokio as $crate::Exec>::spawn(f)
            }

            fn yield_now() -> impl std::future::Future<Output = ()> + Send {
                <$crate::Tokio as $crate::Exec>::yield_now()
            }

            type Sleep = <$crate::Tokio as $crate::Exec>::Sleep;

            fn sleep(d: std::time::Duration) -> Self::Sleep {
                <$crate::Tokio as $crate::Exec>::sleep(d)
            }

            fn reset(sleep: std::pin::Pin<&mut Self::Sleep>, deadline: std::time::Instant) {
                <$crate::Tokio as $crate::Exec>::reset(sleep, deadline)
            }

            fn timeout<F>(
                d: std::time::Duration,
                f: F,
            ) -> impl std::future::Future<Output = Result<F::Output, ()>> + Send
            where
                F: std::future::Future + Send,
            {
                <$crate::Tokio as $crate::Exec>::timeout(d, f)
            }
        }
    };
}
pub(crate) use exec_beside_tokio;

exec_beside_tokio!(TokioTpc, "tokio thread-per-core", "tokio-tpc");
