//! Kafka wire protocol for Strom: framing, request headers, response encoding,
//! and the zero-copy send path.
//!
//! Everything here is per connection and runs on the shard that accepted the
//! connection. Codecs are pure functions over bytes; only [`send`] and [`frame`]
//! touch a socket.

pub mod client;
pub mod client_core;
pub mod error;
pub mod fetch_response;
pub mod frame;
pub mod header;
pub mod request;
pub mod response;
pub mod send;
pub mod shape;
pub mod versions;
mod zerocopy;

pub use error::NetError;
pub use send::{FileSlice, SendItem};
