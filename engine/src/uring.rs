//! The engine's only `unsafe`: handing a duplicated descriptor to glommio so
//! that `fdatasync` goes through the shard's io_uring instead of blocking the
//! shard's thread in a system call.
#![allow(unsafe_code)]

use glommio::io::BufferedFile;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};

/// `fdatasync(2)` of `file` (for a directory: its entries) as an io_uring
/// request on this shard's ring. Syncing works on the inode, so syncing a
/// duplicate of the descriptor syncs the file the log writes to.
pub async fn fdatasync(file: &File) -> io::Result<()> {
    let raw = file.try_clone()?.into_raw_fd();
    // SAFETY: `raw` comes from `into_raw_fd` on a freshly duplicated
    // descriptor, so it is open and owned by nobody else; the BufferedFile
    // takes over that ownership and closes it exactly once when dropped.
    let uring_file = unsafe { BufferedFile::from_raw_fd(raw) };
    let result = uring_file.fdatasync().await;
    drop(uring_file);
    result.map_err(io::Error::from)
}
