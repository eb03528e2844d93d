//! The one error type of `strom-net`.

use std::io;

/// Errors of the wire layer. Every variant means "close this connection":
/// Kafka's own broker closes a connection whose bytes it cannot trust.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("connection closed by peer")]
    Closed,
    #[error("socket I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("request frame of {size_bytes} bytes is invalid (limit {limit_bytes} bytes)")]
    FrameSize { size_bytes: i64, limit_bytes: u32 },
    #[error("request header is truncated or malformed ({len_bytes} bytes)")]
    BadHeader { len_bytes: usize },
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("API {api_name} does not support version {api_version}")]
    UnsupportedVersion {
        api_name: &'static str,
        api_version: i16,
    },
    #[error("malformed {api_name} v{api_version} request: {reason}")]
    Malformed {
        api_name: &'static str,
        api_version: i16,
        reason: String,
    },
    #[error("encoding {api_name} response failed: {reason}")]
    Encode {
        api_name: &'static str,
        reason: String,
    },
}
