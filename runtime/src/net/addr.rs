//! Addresses to bind or connect to; host names are resolved on the blocking pool, never on a
//! worker thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What pinwheel's `bind` and `connect` accept: a socket address (or several), or a
/// `"host:port"` string / `(host, port)` pair. An address is used as is; a host name is
/// resolved with the system resolver on the blocking pool ([`spawn_blocking`]), so a slow DNS
/// server never stalls a worker. Implemented for the same types as
/// [`std::net::ToSocketAddrs`]; sealed.
///
/// [`spawn_blocking`]: crate::spawn_blocking
pub trait ToSocketAddrs: sealed::Sealed {}

pub(crate) mod sealed {
    use super::Addrs;

    /// Turns the value into addresses, or a name to look up.
    pub trait Sealed {
        fn into_addrs(self) -> std::io::Result<Addrs>;
    }
}

/// An address list, or a name still to resolve.
#[derive(Debug)]
pub enum Addrs {
    /// One address (no allocation).
    One(SocketAddr),
    /// Already addresses.
    Ready(Vec<SocketAddr>),
    /// `host:port` (or a `(host, port)` pair) to resolve.
    Lookup(String, Option<u16>),
}

macro_rules! ready {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn into_addrs(self) -> io::Result<Addrs> {
                Ok(Addrs::One(SocketAddr::from(self)))
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

ready!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for &[SocketAddr] {
    fn into_addrs(self) -> io::Result<Addrs> {
        Ok(Addrs::Ready(self.to_vec()))
    }
}
impl ToSocketAddrs for &[SocketAddr] {}

impl<const N: usize> sealed::Sealed for [SocketAddr; N] {
    fn into_addrs(self) -> io::Result<Addrs> {
        Ok(Addrs::Ready(self.to_vec()))
    }
}
impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {}

impl sealed::Sealed for &str {
    fn into_addrs(self) -> io::Result<Addrs> {
        match self.parse::<SocketAddr>() {
            Ok(a) => Ok(Addrs::Ready(vec![a])),
            Err(_) => Ok(Addrs::Lookup(self.to_owned(), None)),
        }
    }
}
impl ToSocketAddrs for &str {}

impl sealed::Sealed for String {
    fn into_addrs(self) -> io::Result<Addrs> {
        self.as_str().into_addrs()
    }
}
impl ToSocketAddrs for String {}

/// A reference to anything that is one (`&SocketAddr`, `&String`, `&(&str, u16)`...), as
/// tokio's `ToSocketAddrs for &T`: `TcpStream::connect(&addr)` works.
impl<T: sealed::Sealed + Clone> sealed::Sealed for &T {
    fn into_addrs(self) -> io::Result<Addrs> {
        self.clone().into_addrs()
    }
}
impl<T: ToSocketAddrs + Clone> ToSocketAddrs for &T {}

impl sealed::Sealed for (&str, u16) {
    fn into_addrs(self) -> io::Result<Addrs> {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Ok(Addrs::Ready(vec![SocketAddr::new(ip, self.1)])),
            Err(_) => Ok(Addrs::Lookup(self.0.to_owned(), Some(self.1))),
        }
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl sealed::Sealed for (String, u16) {
    fn into_addrs(self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).into_addrs()
    }
}
impl ToSocketAddrs for (String, u16) {}

/// The first address of `addr` (resolving a name on the blocking pool), without allocating for
/// one given as an address.
pub(crate) async fn resolve_first(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    match sealed::Sealed::into_addrs(addr)? {
        Addrs::One(a) => Ok(a),
        more => Ok(resolve_addrs(more).await?[0]),
    }
}

/// The addresses of `addr`, resolving a name on the blocking pool.
pub(crate) async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    resolve_addrs(sealed::Sealed::into_addrs(addr)?).await
}

/// The addresses of an address list, resolving a name on the blocking pool; never empty.
async fn resolve_addrs(addrs: Addrs) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addrs {
        Addrs::One(a) => vec![a],
        Addrs::Ready(a) => a,
        Addrs::Lookup(host, port) => {
            let shown = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            let looked_up = crate::spawn_blocking(move || -> io::Result<Vec<SocketAddr>> {
                use std::net::ToSocketAddrs as _;
                Ok(match port {
                    Some(p) => (host.as_str(), p).to_socket_addrs()?.collect(),
                    None => host.to_socket_addrs()?.collect(),
                })
            })
            .await
            .map_err(io::Error::other)?;
            looked_up.map_err(|e| io::Error::new(e.kind(), format!("resolving {shown:?}: {e}")))?
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to no socket address",
        ));
    }
    Ok(addrs)
}
