//! Writing a response: owned bytes through glommio's socket writes, file regions
//! by `sendfile(2)` straight from the page cache.
//!
//! Ordering: items are written strictly in sequence; each write is awaited before
//! the next starts, so header bytes always precede the file bytes they describe.
//! A region that fits in the socket's free send buffer is sent inline on the
//! shard (it cannot block); a larger one is handed to glommio's blocking pool,
//! which waits for socket space with poll(2) so the shard never stalls on a slow
//! consumer. Either way no segment byte is copied into user space.

use crate::zerocopy;
use crate::NetError;
use bytes::Bytes;
use futures::io::{AsyncWrite, AsyncWriteExt};
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

/// A region of a segment file to send. The `Arc` keeps the descriptor open while the
/// send is in flight, even if the segment is deleted meanwhile.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
}

/// One piece of a response on the wire.
#[derive(Debug, Clone)]
pub enum SendItem {
    Bytes(Bytes),
    File(FileSlice),
}

impl SendItem {
    pub fn len(&self) -> u64 {
        match self {
            SendItem::Bytes(b) => b.len() as u64,
            SendItem::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes every item in order to a socket.
pub async fn write_items<S>(stream: &mut S, items: Vec<SendItem>) -> Result<(), NetError>
where
    S: AsyncWrite + AsRawFd + Unpin,
{
    let fd = stream.as_raw_fd();
    write_items_to(stream, fd, items).await
}

/// [`write_items`] to the write half of a split socket: bytes through
/// `writer`, file regions by `sendfile` on `socket_fd` (the same socket).
pub async fn write_items_to<W>(
    writer: &mut W,
    socket_fd: RawFd,
    items: Vec<SendItem>,
) -> Result<(), NetError>
where
    W: AsyncWrite + Unpin,
{
    for item in items {
        match item {
            SendItem::Bytes(bytes) => writer.write_all(&bytes).await?,
            SendItem::File(slice) => {
                writer.flush().await?;
                send_file(socket_fd, slice).await?;
            }
        }
    }
    writer.flush().await?;
    Ok(())
}

async fn send_file(socket_fd: RawFd, slice: FileSlice) -> Result<(), NetError> {
    let mut position = slice.position;
    let mut len = slice.len;
    // Fast path: the region fits in the free send buffer, so sendfile returns at once.
    while len > 0 {
        let free = zerocopy::send_queue_free_bytes(socket_fd)?;
        if free < len.min(64 * 1024) {
            break;
        }
        let sent = zerocopy::sendfile_once(socket_fd, &slice.file, position, len.min(free))?;
        if sent == 0 {
            break;
        }
        position += sent;
        len -= sent;
    }
    if len == 0 {
        return Ok(());
    }
    let file = slice.file;
    glommio::executor()
        .spawn_blocking(move || zerocopy::sendfile_all_waiting(socket_fd, &file, position, len))
        .await?;
    Ok(())
}
