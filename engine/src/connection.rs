//! One client connection, served on the shard that accepted it.
//!
//! Requests are handled one at a time in arrival order and each response is fully
//! written before the next request is read, as Apache Kafka does per connection;
//! clients pipeline across connections, and ordering of responses is trivially
//! kept. Anything we cannot trust (bad frame size, unknown API or version,
//! truncated body) closes the connection; other connections are not affected.

use crate::handlers::dispatch;
use crate::metrics::ShardMetrics;
use crate::shard::Shard;
use futures::future::{select, Either};
use futures::io::BufReader;
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;
use std::rc::Rc;
use std::time::{Duration, Instant};
use strom_net::frame::{read_frame_body, read_frame_size};
use strom_net::header::{classify, Classified};
use strom_net::response::api_versions_too_new;
use strom_net::send::write_items;
use strom_net::{NetError, SendItem};
use strom_tuning::limits::REQUEST_BODY_READ_TIMEOUT_MS;
use tracing::{debug, info};

/// Bytes read from the socket per read call.
const READ_BUFFER_BYTES: usize = 64 * 1024;

pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
    if let Err(err) = stream.set_nodelay(true) {
        debug!(shard = shard.id, %peer, "TCP_NODELAY not set: {err}");
    }
    shard.connections.set(shard.connections.get() + 1);
    ShardMetrics::add(&shard.metrics.connections_accepted, 1);
    let result = serve_requests(&shard, stream).await;
    shard.connections.set(shard.connections.get() - 1);
    match result {
        Ok(()) | Err(NetError::Closed) => debug!(shard = shard.id, %peer, "connection closed"),
        Err(NetError::Io(err)) => debug!(shard = shard.id, %peer, "connection dropped: {err}"),
        Err(err) => info!(shard = shard.id, %peer, "closing connection: {err}"),
    }
}

async fn serve_requests(shard: &Rc<Shard>, stream: TcpStream) -> Result<(), NetError> {
    let limit = shard.broker.socket_request_max_bytes;
    // Kafka shows a group member's host as "/<ip>".
    let client_host = stream
        .peer_addr()
        .map_or_else(|_| String::new(), |a| format!("/{}", a.ip()));
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    loop {
        let size = read_frame_size(&mut reader, limit).await?;
        let started = Instant::now();
        // Held until the response is written: bounds the shard's request memory.
        let _memory = shard.reserve_request_memory(size).await;
        let body = Box::pin(read_frame_body(&mut reader, size));
        let deadline = Box::pin(glommio::timer::sleep(Duration::from_millis(
            REQUEST_BODY_READ_TIMEOUT_MS,
        )));
        let frame = match select(body, deadline).await {
            Either::Left((frame, _)) => frame?,
            Either::Right(_) => {
                return Err(NetError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("request body of {size} bytes not received within {REQUEST_BODY_READ_TIMEOUT_MS} ms"),
                )))
            }
        };
        ShardMetrics::add(&shard.metrics.request_bytes, 4 + size as u64);
        let (api_key, items) = match classify(frame.freeze(), &shard.api_support)? {
            Classified::Request(info, body) => {
                let api_key = info.api_key as i16;
                match dispatch(shard, info, body, &client_host).await? {
                    Some(items) => (api_key, items),
                    None => {
                        shard.metrics.request_done(api_key, started.elapsed());
                        continue;
                    }
                }
            }
            Classified::ApiVersionsTooNew(prefix) => (
                ApiKey::ApiVersions as i16,
                vec![SendItem::Bytes(api_versions_too_new(
                    prefix,
                    &shard.api_support,
                )?)],
            ),
        };
        let response_bytes: u64 = items.iter().map(SendItem::len).sum();
        write_items(reader.get_mut(), items).await?;
        ShardMetrics::add(&shard.metrics.response_bytes, response_bytes);
        shard.metrics.request_done(api_key, started.elapsed());
    }
}
