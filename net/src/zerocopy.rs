//! The only `unsafe` of `strom-net`: raw socket queries and `sendfile(2)` on the
//! raw descriptor of a glommio socket.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};

nix::ioctl_read_bad!(socket_out_queue, nix::libc::TIOCOUTQ, nix::libc::c_int);

/// Bytes that can be queued on the socket right now without blocking (an estimate:
/// half of SO_SNDBUF, which the kernel doubles for bookkeeping, minus what is queued).
pub fn send_queue_free_bytes(socket_fd: RawFd) -> io::Result<u64> {
    // SAFETY: `socket_fd` is an open socket owned by the caller's stream for the whole
    // call; the borrow does not outlive this function.
    let fd = unsafe { BorrowedFd::borrow_raw(socket_fd) };
    let sndbuf = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SndBuf)?;
    let mut queued: nix::libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer, which points
    // to a live local.
    unsafe { socket_out_queue(socket_fd, &mut queued) }?;
    Ok((sndbuf as u64 / 2).saturating_sub(queued.max(0) as u64))
}

/// One `sendfile` call: the bytes sent, or 0 when the socket had no room (EAGAIN).
/// The file ending before the region does (it was truncated under us) is an error:
/// the response header already promised those bytes.
pub fn sendfile_once(socket_fd: RawFd, file: &File, position: u64, len: u64) -> io::Result<u64> {
    // SAFETY: as in `send_queue_free_bytes`: the socket outlives this call.
    let socket = unsafe { BorrowedFd::borrow_raw(socket_fd) };
    let mut offset = position as nix::libc::off_t;
    match nix::sys::sendfile::sendfile(socket, file, Some(&mut offset), len as usize) {
        Ok(0) if len > 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "segment file ended before the region being sent",
        )),
        Ok(n) => Ok(n as u64),
        Err(nix::errno::Errno::EAGAIN) => Ok(0),
        Err(nix::errno::Errno::EINTR) => Ok(0),
        Err(errno) => Err(errno.into()),
    }
}

/// Sends the whole region, waiting for socket space with poll(2). Runs on a
/// blocking-pool thread, never on a shard (it may wait for a slow client).
pub fn sendfile_all_waiting(
    socket_fd: RawFd,
    file: &File,
    mut position: u64,
    mut len: u64,
) -> io::Result<()> {
    let mut idle_rounds = 0u32;
    while len > 0 {
        let n = sendfile_once(socket_fd, file, position, len)?;
        if n == 0 {
            // SAFETY: as above.
            let socket = unsafe { BorrowedFd::borrow_raw(socket_fd) };
            let mut fds = [nix::poll::PollFd::new(
                socket,
                nix::poll::PollFlags::POLLOUT,
            )];
            let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16))?;
            if ready == 0 {
                idle_rounds += 1;
                // A client that reads nothing for a minute is gone.
                if idle_rounds > 60 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading a fetch response",
                    ));
                }
            }
            let revents = fds[0].revents().unwrap_or(nix::poll::PollFlags::empty());
            if revents.intersects(nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLHUP) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            continue;
        }
        idle_rounds = 0;
        position += n;
        len -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn sends_a_file_region_byte_exact() {
        let mut file = tempfile_with((0..=255u8).cycle().take(1 << 20).collect());
        file.flush().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            got
        });
        let sock = std::net::TcpStream::connect(addr).unwrap();
        assert!(send_queue_free_bytes(sock.as_raw_fd()).unwrap() > 0);
        sendfile_all_waiting(sock.as_raw_fd(), &file, 1000, 500_000).unwrap();
        drop(sock);
        let got = reader.join().unwrap();
        let expected: Vec<u8> = (0..=255u8).cycle().skip(1000).take(500_000).collect();
        assert_eq!(got, expected);
    }

    fn tempfile_with(data: Vec<u8>) -> File {
        let path = std::env::temp_dir().join(format!("strom-net-test-{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.write_all(&data).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
