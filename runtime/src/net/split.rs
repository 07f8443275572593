use std::io;
use std::sync::Arc;

use super::TcpStream;

/// The read half of a [`TcpStream`], borrowed ([`TcpStream::split`]).
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The write half of a [`TcpStream`], borrowed ([`TcpStream::split`]).
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The read half of a [`TcpStream`], owned ([`TcpStream::into_split`]); `Send`, so it can
/// move to another task.
#[derive(Debug)]
pub struct OwnedReadHalf(Arc<TcpStream>);

/// The write half of a [`TcpStream`], owned ([`TcpStream::into_split`]). Dropping it shuts
/// the write side down, so the peer sees the end of the stream.
#[derive(Debug)]
pub struct OwnedWriteHalf(Arc<TcpStream>);

impl TcpStream {
    /// Splits into a read half and a write half borrowing the stream.
    pub fn split(&self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Splits into owned halves that can go to different tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let s = Arc::new(self);
        (OwnedReadHalf(s.clone()), OwnedWriteHalf(s))
    }
}

macro_rules! read_half {
    ($t:ty) => {
        impl $t {
            /// Reads into `buf`; 0 means the peer closed its side.
            ///
            /// # Errors
            ///
            /// The read's error.
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf).await
            }

            /// Reads exactly `buf.len()` bytes.
            ///
            /// # Errors
            ///
            /// `UnexpectedEof` when the peer closes first, or the read's error.
            pub async fn read_exact(&self, buf: &mut [u8]) -> io::Result<()> {
                self.0.read_exact(buf).await
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl $t {
            /// Writes some of `buf`.
            ///
            /// # Errors
            ///
            /// The write's error.
            pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf).await
            }

            /// Writes all of `buf`.
            ///
            /// # Errors
            ///
            /// The write's error.
            pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
                self.0.write_all(buf).await
            }
        }
    };
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);

impl_async_read!(ReadHalf<'_>, |h| h.0);
impl_async_read!(OwnedReadHalf, |h| &h.0);
impl_async_write!(WriteHalf<'_>, |h| h.0);
impl_async_write!(OwnedWriteHalf, |h| &h.0);

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        // The peer learns that nothing more comes; an error here (already closed) is moot.
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}
