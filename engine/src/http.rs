//! The admin HTTP API (`admin.listeners`, default port 9644), served by
//! shard 0 on its own glommio executor: no extra runtime, and a scrape costs
//! one message per shard.
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text format of every shard's counters ([`crate::metrics`]) |
//! | `GET /v1/health` | `200 {"status":"ok"}` while the broker runs (liveness) |
//! | `GET /v1/ready` | `200 {"ready":true}` once every shard recovered its logs and listens for Kafka clients, else `503 {"ready":false}` |
//! | `GET /v1/status` | JSON: version, node id, cluster id, uptime, shards with their partitions and connections |
//!
//! A deliberately small HTTP/1.1 server: one request per connection
//! (`Connection: close`), request head at most `HEAD_BYTES_MAX` and read
//! within `READ_TIMEOUT`, at most `CONNECTIONS_MAX` connections at once;
//! anything else gets 400, 404 or 405.

use crate::metrics::{render, Process, ShardSnapshot};
use crate::shard::Shard;
use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Largest request head (request line and headers) accepted.
const HEAD_BYTES_MAX: usize = 8 * 1024;
/// A client must send its request head within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Most admin connections served at once; more are closed at accept.
const CONNECTIONS_MAX: usize = 64;

/// What the admin API reports about the process.
#[derive(Debug)]
pub struct AdminState {
    /// Set once every shard has recovered its partitions and listens.
    pub ready: AtomicBool,
    pub started: Instant,
}

impl AdminState {
    pub fn new() -> Arc<AdminState> {
        Arc::new(AdminState {
            ready: AtomicBool::new(false),
            started: Instant::now(),
        })
    }
}

/// Accepts admin connections until the task is cancelled.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, state: Arc<AdminState>) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if open.get() >= CONNECTIONS_MAX {
                    warn!("admin API: {CONNECTIONS_MAX} connections open, refusing one");
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (shard, state, open) = (shard.clone(), state.clone(), open.clone());
                glommio::spawn_local(async move {
                    if let Err(err) = handle(&shard, stream, &state).await {
                        debug!("admin API connection: {err}");
                    }
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Err(err) => {
                warn!("admin API accept failed: {err}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn handle(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    state: &AdminState,
) -> std::io::Result<()> {
    let head = {
        let read = Box::pin(read_head(&mut stream));
        let deadline = Box::pin(glommio::timer::sleep(READ_TIMEOUT));
        match select(read, deadline).await {
            Either::Left((head, _)) => head?,
            Either::Right(_) => return Ok(()),
        }
    };
    let response = match head {
        None => reply(400, "text/plain", "request head too large or malformed\n"),
        Some(head) => route(shard, &head, state).await,
    };
    stream.write_all(&response).await?;
    stream.close().await
}

/// Reads until the blank line ending the head; `None` if it is too large or
/// the peer closes first.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(String::from_utf8(buf[..end].to_vec()).ok());
        }
        if buf.len() > HEAD_BYTES_MAX {
            return Ok(None);
        }
    }
}

async fn route(shard: &Rc<Shard>, head: &str, state: &AdminState) -> Vec<u8> {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if !matches!(path, "/metrics" | "/v1/health" | "/v1/ready" | "/v1/status") {
        return reply(
            404,
            "text/plain",
            "not found; try /metrics, /v1/health, /v1/ready, /v1/status\n",
        );
    }
    if method != "GET" {
        return reply(405, "text/plain", "only GET is served\n");
    }
    match path {
        "/v1/health" => reply(200, "application/json", "{\"status\":\"ok\"}\n"),
        "/v1/ready" => {
            if state.ready.load(Ordering::SeqCst) {
                reply(200, "application/json", "{\"ready\":true}\n")
            } else {
                reply(503, "application/json", "{\"ready\":false}\n")
            }
        }
        "/metrics" => {
            let snapshots = snapshots(shard).await;
            let process = Process {
                version: env!("CARGO_PKG_VERSION"),
                uptime: state.started.elapsed(),
            };
            reply(
                200,
                "text/plain; version=0.0.4",
                &render(&process, &snapshots),
            )
        }
        _ => {
            let snapshots = snapshots(shard).await;
            let table = shard.table();
            let status = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "node_id": shard.broker.node_id,
                "cluster_id": table.cluster_id,
                "uptime_seconds": state.started.elapsed().as_secs_f64(),
                "ready": state.ready.load(Ordering::SeqCst),
                "topics": table.topics.len(),
                "partitions": snapshots.iter().map(|s| s.partitions.len()).sum::<usize>(),
                "shards": snapshots.iter().map(|s| serde_json::json!({
                    "shard": s.shard,
                    "partitions": s.partitions.len(),
                    "connections": s.connections,
                })).collect::<Vec<_>>(),
            });
            reply(200, "application/json", &format!("{status}\n"))
        }
    }
}

/// Every shard's snapshot (a shard that is stopping is left out).
async fn snapshots(shard: &Rc<Shard>) -> Vec<ShardSnapshot> {
    let calls = (0..shard.count).map(|id| {
        let shard = shard.clone();
        async move {
            shard
                .call(id, |s| async move { s.metrics_snapshot() })
                .await
        }
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

fn reply(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}
