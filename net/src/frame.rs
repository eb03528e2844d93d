//! Size-prefixed request frames.
//!
//! Wire format of every Kafka request: `size: i32 BE` followed by `size` bytes
//! (request header + body). A negative size, a size of zero, or a size above
//! `socket.request.max.bytes` is a protocol violation; the connection is closed
//! without reading the body, so a hostile length never allocates memory.

use crate::NetError;
use bytes::BytesMut;
use futures::io::{AsyncRead, AsyncReadExt};

/// The smallest request that can exist: api_key, api_version, correlation_id, client_id length.
pub const REQUEST_HEADER_MIN_BYTES: usize = 10;

/// Checks a frame's size prefix against the limit (pure, for tests and fuzzing).
pub fn check_frame_size(size_prefix: [u8; 4], limit_bytes: u32) -> Result<usize, NetError> {
    let size = i32::from_be_bytes(size_prefix);
    if size < REQUEST_HEADER_MIN_BYTES as i32 || size as u32 > limit_bytes {
        return Err(NetError::FrameSize {
            size_bytes: i64::from(size),
            limit_bytes,
        });
    }
    Ok(size as usize)
}

/// Reads one whole frame body (without the size prefix). `Err(Closed)` at a clean EOF
/// between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit_bytes: u32,
) -> Result<BytesMut, NetError> {
    let size = read_frame_size(reader, limit_bytes).await?;
    read_frame_body(reader, size).await
}

/// Reads and checks a frame's size prefix, so the caller can reserve memory for
/// the body before it is allocated. `Err(Closed)` at a clean EOF between frames.
pub async fn read_frame_size<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit_bytes: u32,
) -> Result<usize, NetError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = reader.read(&mut prefix[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                NetError::Closed
            } else {
                NetError::Io(std::io::ErrorKind::UnexpectedEof.into())
            });
        }
        filled += n;
    }
    check_frame_size(prefix, limit_bytes)
}

/// Reads a frame body of `size` bytes (after [`read_frame_size`]).
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
) -> Result<BytesMut, NetError> {
    let mut body = BytesMut::zeroed(size);
    reader.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_zero_and_oversized_frames() {
        assert!(check_frame_size((-1i32).to_be_bytes(), 100).is_err());
        assert!(check_frame_size(0i32.to_be_bytes(), 100).is_err());
        assert!(check_frame_size(101i32.to_be_bytes(), 100).is_err());
        assert_eq!(check_frame_size(100i32.to_be_bytes(), 100).unwrap(), 100);
    }

    #[test]
    fn reads_frames_and_reports_clean_eof() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&12i32.to_be_bytes());
        wire.extend_from_slice(&[7u8; 12]);
        let mut reader = futures::io::Cursor::new(wire);
        let body = futures::executor::block_on(read_frame(&mut reader, 1024)).unwrap();
        assert_eq!(&body[..], &[7u8; 12]);
        let end = futures::executor::block_on(read_frame(&mut reader, 1024));
        assert!(matches!(end, Err(NetError::Closed)));
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&40i32.to_be_bytes());
        wire.extend_from_slice(&[7u8; 12]);
        let mut reader = futures::io::Cursor::new(wire);
        let body = futures::executor::block_on(read_frame(&mut reader, 1024));
        assert!(matches!(body, Err(NetError::Io(_))));
    }
}
