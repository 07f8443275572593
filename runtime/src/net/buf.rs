//! Reads into a `bytes::BufMut`'s spare capacity, as tokio's `try_read_buf` / `recv_buf` do.

use std::io;
use std::mem::MaybeUninit;

use bytes::BufMut;

/// Reads with `read` (a `recv` into memory that need not be initialised) into `buf`'s spare
/// capacity (growing a growable buffer), and advances `buf` by what was read.
pub(crate) fn read_into<B: BufMut + ?Sized, R>(
    buf: &mut B,
    read: impl FnOnce(&mut [MaybeUninit<u8>]) -> io::Result<(usize, R)>,
) -> io::Result<(usize, R)> {
    let dst = buf.chunk_mut();
    // SAFETY: the slice is only handed to `read`, a `recv`, which writes into it and never
    // reads it; nothing here reads it either (`UninitSlice`'s rule for this view).
    let dst = unsafe { dst.as_uninit_slice_mut() };
    let (n, extra) = read(dst)?;
    // SAFETY: `read` initialised the first `n` bytes of the chunk (a `recv` returns how many it
    // wrote, never more than the slice it was given).
    unsafe { buf.advance_mut(n) };
    Ok((n, extra))
}
