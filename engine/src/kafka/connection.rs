//! One client connection, served on the shard that accepted it.
//!
//! Requests are handled one at a time in arrival order. Most are answered
//! before the next one is read, as Apache Kafka does; an acks=all produce
//! request, once its records are appended, waits for its replicas while the
//! connection reads and handles the next requests (at most
//! `REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX` unanswered). A writer half writes
//! the answers strictly in request order. Appends still happen in request
//! order, so a producer pipelining requests keeps its records in order.
//! Anything we cannot trust (bad frame size, unknown API or version,
//! truncated body) closes the connection (after the answers already due);
//! other connections are not affected.

use crate::kafka::{dispatch, Dispatched};
use crate::metrics::ShardMetrics;
use crate::shard::Shard;
use futures::future::{select, Either};
use futures::io::{AsyncReadExt, BufReader};
use futures::{SinkExt, StreamExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};
use strom_net::frame::{read_frame_body, read_frame_size};
use strom_net::header::{classify, Classified};
use strom_net::response::api_versions_too_new;
use strom_net::send::write_items_to;
use strom_net::{NetError, SendItem};
use strom_tuning::limits::{REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX, REQUEST_BODY_READ_TIMEOUT_MS};
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

/// An answer on its way: ready or still waiting, with what the metrics need.
struct Pending<'a> {
    api_key: i16,
    started: Instant,
    answer: Dispatched,
    /// The frame's share of the shard's request memory, held until written.
    _memory: Option<glommio::sync::Permit<'a>>,
}

async fn serve_requests(shard: &Rc<Shard>, stream: TcpStream) -> Result<(), NetError> {
    // Kafka shows a group member's host as "/<ip>".
    let client_host = stream
        .peer_addr()
        .map_or_else(|_| String::new(), |a| format!("/{}", a.ip()));
    let socket_fd = stream.as_raw_fd();
    let (read_half, mut write_half) = AsyncReadExt::split(stream);
    let reader = BufReader::with_capacity(READ_BUFFER_BYTES, read_half);
    let (tx, mut rx) =
        futures::channel::mpsc::channel::<Pending<'_>>(REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX - 1);
    let read = Box::pin(read_requests(shard, reader, client_host, tx));
    let write = Box::pin(async move {
        while let Some(pending) = rx.next().await {
            let reply = match pending.answer {
                Dispatched::Now(reply) => reply,
                Dispatched::Later(answer) => answer.await?,
            };
            if let Some(items) = reply {
                let response_bytes: u64 = items.iter().map(SendItem::len).sum();
                write_items_to(&mut write_half, socket_fd, items).await?;
                ShardMetrics::add(&shard.metrics.response_bytes, response_bytes);
            }
            shard
                .metrics
                .request_done(pending.api_key, pending.started.elapsed());
        }
        Ok::<(), NetError>(())
    });
    match select(read, write).await {
        // The client stopped sending (or sent something we refuse): the
        // answers already due still go out.
        Either::Left((read_result, write)) => {
            let written = write.await;
            read_result.and(written)
        }
        // The socket broke while writing: stop reading too.
        Either::Right((write_result, _)) => write_result,
    }
}

/// Reads and handles requests, in order, and queues their answers.
async fn read_requests<'a>(
    shard: &'a Rc<Shard>,
    mut reader: BufReader<futures::io::ReadHalf<TcpStream>>,
    client_host: String,
    mut answers: futures::channel::mpsc::Sender<Pending<'a>>,
) -> Result<(), NetError> {
    let limit = shard.broker.socket_request_max_bytes;
    loop {
        let size = read_frame_size(&mut reader, limit).await?;
        let started = Instant::now();
        // Held until the response is written: bounds the shard's request memory.
        let memory = shard.reserve_request_memory(size).await;
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
        let (api_key, answer) = match classify(frame.freeze(), &shard.api_support)? {
            Classified::Request(info, body) => {
                let api_key = info.api_key as i16;
                (api_key, dispatch(shard, info, body, &client_host).await?)
            }
            Classified::ApiVersionsTooNew(prefix) => (
                ApiKey::ApiVersions as i16,
                Dispatched::Now(Some(vec![SendItem::Bytes(api_versions_too_new(
                    prefix,
                    &shard.api_support,
                )?)])),
            ),
        };
        let pending = Pending {
            api_key,
            started,
            answer,
            _memory: memory,
        };
        if answers.send(pending).await.is_err() {
            // The writer stopped (the socket broke).
            return Ok(());
        }
    }
}
