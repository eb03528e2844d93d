//! The engine's only `unsafe`: handing descriptors glommio did not create to
//! glommio — a duplicated file descriptor, so that `fdatasync` goes through
//! the shard's io_uring instead of blocking the shard's thread in a system
//! call; and listening sockets with the options glommio's own `bind` does not
//! set.
#![allow(unsafe_code)]

use glommio::io::BufferedFile;
use glommio::net::TcpListener;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

/// A listening socket on `addr` for this shard: SO_REUSEPORT (every shard
/// listens on the same address) and SO_REUSEADDR. The latter is inherited by
/// accepted connections, so when a broker dies, the connections the kernel is
/// still closing (FIN-WAIT-2 until peers notice) do not keep a restarted
/// broker from binding its address again; another process *listening* on it
/// still does.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let raw = socket.into_raw_fd();
    // SAFETY: `raw` comes from `into_raw_fd` of a socket this function
    // created, bound and set listening, so it is an open listening TCP socket
    // owned by nobody else; the TcpListener takes over that ownership and
    // closes it exactly once when dropped.
    Ok(unsafe { TcpListener::from_raw_fd(raw) })
}

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

/// Binds `addr` with SO_REUSEADDR and no SO_REUSEPORT, as a test that no
/// other process listens on it (connections of a previous broker that the
/// kernel is still closing do not count; see `uring::listen`).
pub fn probe_bind(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1)?;
    Ok(socket)
}
