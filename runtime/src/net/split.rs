//! Read and write halves of a stream socket, borrowed (`split`) or owned (`into_split`): one
//! definition, made for `TcpStream` (here) and `UnixStream` (in `net::unix`).

/// Defines `ReadHalf`, `WriteHalf`, `OwnedReadHalf`, `OwnedWriteHalf` for the stream type `$s`
/// in the calling module, with `$s::split` and `$s::into_split`.
macro_rules! define_halves {
    ($s:ident) => {
        /// The read half of a stream, borrowed (`split`).
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $s);

        /// The write half of a stream, borrowed (`split`).
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $s);

        /// The read half of a stream, owned (`into_split`); `Send`, so it can move to another
        /// task.
        #[derive(Debug)]
        pub struct OwnedReadHalf(std::sync::Arc<$s>);

        /// The write half of a stream, owned (`into_split`). Dropping it shuts the write side
        /// down, so the peer sees the end of the stream.
        #[derive(Debug)]
        pub struct OwnedWriteHalf(std::sync::Arc<$s>);

        impl $s {
            /// Splits into a read half and a write half borrowing the stream.
            pub fn split(&self) -> (ReadHalf<'_>, WriteHalf<'_>) {
                (ReadHalf(self), WriteHalf(self))
            }

            /// Splits into owned halves that can go to different tasks.
            pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
                let s = std::sync::Arc::new(self);
                (OwnedReadHalf(s.clone()), OwnedWriteHalf(s))
            }
        }

        read_half!(ReadHalf<'_>);
        read_half!(OwnedReadHalf);
        write_half!(WriteHalf<'_>);
        write_half!(OwnedWriteHalf);

        impl_async_read!(ReadHalf<'_>, $s, |h| h.0);
        impl_async_read!(OwnedReadHalf, $s, |h| &h.0);
        impl_async_write!(WriteHalf<'_>, $s, |h| h.0);
        impl_async_write!(OwnedWriteHalf, $s, |h| &h.0);

        /// The error of `reunite` with the halves of two different streams: both halves, given
        /// back.
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        impl std::fmt::Debug for ReuniteError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad("ReuniteError(..)")
            }
        }

        impl std::fmt::Display for ReuniteError {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tried to reunite halves that are not from the same socket")
            }
        }

        impl std::error::Error for ReuniteError {}

        impl OwnedReadHalf {
            /// Puts the stream back together from its two owned halves (tokio's `reunite`).
            ///
            /// # Errors
            ///
            /// [`ReuniteError`], giving both halves back, when they come from different
            /// streams.
            pub fn reunite(self, other: OwnedWriteHalf) -> Result<$s, ReuniteError> {
                if !std::sync::Arc::ptr_eq(&self.0, &other.0) {
                    return Err(ReuniteError(self, other));
                }
                // The write half's reference goes without its `Drop` (which would shut the
                // write side down): it is moved out of a `ManuallyDrop` once.
                let write = std::mem::ManuallyDrop::new(other);
                // SAFETY: `write` is a `ManuallyDrop` that is never used, dropped or read again
                // after this line, so its `Arc` is moved out exactly once.
                drop(unsafe { std::ptr::read(&write.0) });
                Ok(std::sync::Arc::try_unwrap(self.0)
                    .unwrap_or_else(|_| unreachable!("the two halves held the only references")))
            }
        }

        impl OwnedWriteHalf {
            /// Puts the stream back together; see [`OwnedReadHalf::reunite`].
            ///
            /// # Errors
            ///
            /// [`ReuniteError`] when the halves come from different streams.
            pub fn reunite(self, other: OwnedReadHalf) -> Result<$s, ReuniteError> {
                other.reunite(self)
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                // The peer learns that nothing more comes; an error here (already closed) is
                // moot.
                let _ = self.0.shutdown_std(std::net::Shutdown::Write);
            }
        }
    };
}

macro_rules! read_half {
    ($t:ty) => {
        impl $t {
            /// Reads into `buf`; 0 means the peer closed its side.
            ///
            /// # Errors
            ///
            /// The read's error.
            pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf).await
            }

            /// Reads exactly `buf.len()` bytes; returns that length (as tokio's
            /// `AsyncReadExt::read_exact`).
            ///
            /// # Errors
            ///
            /// `UnexpectedEof` when the peer closes first, or the read's error.
            pub async fn read_exact(&self, buf: &mut [u8]) -> std::io::Result<usize> {
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
            pub async fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write(buf).await
            }

            /// Writes all of `buf`.
            ///
            /// # Errors
            ///
            /// The write's error.
            pub async fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
                self.0.write_all(buf).await
            }
        }
    };
}
