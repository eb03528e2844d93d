//! Controller-quorum traffic between nodes, on the `CONTROLLER` listener.
//!
//! Who touches it: shard 0 of every voter. Each node opens one connection to
//! every other voter and sends everything for that voter on it (raft
//! messages, controller requests, answers to requests it received); it reads
//! what the others send on the connections they opened to it. A frame:
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! |      0 |    4 | length u32 BE: bytes after this field (13 + payload)   |
//! |      4 |    1 | kind: 1 raft message, 2 request, 3 response            |
//! |      5 |    4 | sender's node id i32 BE                                |
//! |      9 |    8 | correlation id u64 BE (0 for raft messages)            |
//! |     17 |    … | payload: protobuf raft `Message`, or a JSON controller |
//! |        |      | request / response (`cluster::controller`)             |
//!
//! Raft messages are fire-and-forget: a full queue or a broken connection
//! drops them and raft retransmits. A request is answered by a response frame
//! with its correlation id, sent back on the answering node's own connection.
//! Outgoing connections come from the node's own controller address, so
//! traffic between nodes on 127.0.0.x can be told apart and cut in fault
//! tests.

use bytes::{Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use futures::{FutureExt, StreamExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Frames queued per peer before new ones are dropped.
pub const PEER_QUEUE_FRAMES: usize = 4096;
/// Largest frame accepted (a snapshot of a large image travels in one).
pub const FRAME_BYTES_MAX: usize = 64 << 20;
const FRAME_HEADER_BYTES: usize = 13;
/// Pause before reconnecting to a peer, doubling up to the maximum.
const RECONNECT_MIN_MS: u64 = 50;
const RECONNECT_MAX_MS: u64 = 1000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Raft = 1,
    Request = 2,
    Response = 3,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Raft),
            2 => Some(FrameKind::Request),
            3 => Some(FrameKind::Response),
            _ => None,
        }
    }
}

/// A received frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub from: i32,
    pub correlation: u64,
    pub payload: Bytes,
}

/// Encodes one frame.
pub fn encode_frame(kind: FrameKind, from: i32, correlation: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&((FRAME_HEADER_BYTES + payload.len()) as u32).to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&from.to_be_bytes());
    out.extend_from_slice(&correlation.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes a frame body (everything after the length).
pub fn decode_frame(body: Bytes) -> Result<Frame, String> {
    if body.len() < FRAME_HEADER_BYTES {
        return Err(format!("frame of {} bytes is too short", body.len()));
    }
    let kind =
        FrameKind::from_byte(body[0]).ok_or_else(|| format!("unknown frame kind {}", body[0]))?;
    let from = i32::from_be_bytes([body[1], body[2], body[3], body[4]]);
    let mut correlation = [0u8; 8];
    correlation.copy_from_slice(&body[5..13]);
    Ok(Frame {
        kind,
        from,
        correlation: u64::from_be_bytes(correlation),
        payload: body.slice(FRAME_HEADER_BYTES..),
    })
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("node {0} is not a voter")]
    UnknownNode(i32),
    #[error("no answer from node {node} within {timeout:?}")]
    Timeout { node: i32, timeout: Duration },
    #[error("the queue to node {0} is full")]
    QueueFull(i32),
}

/// One peer: where it listens and the queue its writer task drains.
struct Peer {
    address: String,
    queue: mpsc::Sender<Vec<u8>>,
}

/// Handles what arrives from peers.
pub trait Inbound {
    /// A raft message (protobuf bytes) from `from`.
    fn raft(&self, from: i32, payload: Bytes);
    /// A request from `from`; the answer goes back with [`Transport::respond`].
    fn request(&self, from: i32, correlation: u64, payload: Bytes);
}

/// The node's connections to the other voters.
pub struct Transport {
    node_id: i32,
    peers: HashMap<i32, Peer>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Bytes>>>,
    next_correlation: Cell<u64>,
}

impl Transport {
    /// Starts one writer task per peer (`(id, "host:port")`), connecting from
    /// `bind` when given.
    pub fn start(node_id: i32, peers: &[(i32, String)], bind: Option<IpAddr>) -> Rc<Transport> {
        let mut map = HashMap::new();
        for (id, address) in peers {
            if *id == node_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_FRAMES);
            glommio::spawn_local(write_to_peer(*id, address.clone(), bind, rx)).detach();
            map.insert(
                *id,
                Peer {
                    address: address.clone(),
                    queue: tx,
                },
            );
        }
        Rc::new(Transport {
            node_id,
            peers: map,
            pending: RefCell::new(HashMap::new()),
            next_correlation: Cell::new(1),
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The address a peer's controller listens on.
    pub fn address_of(&self, node: i32) -> Option<&str> {
        self.peers.get(&node).map(|p| p.address.as_str())
    }

    fn enqueue(&self, to: i32, frame: Vec<u8>) -> Result<(), RpcError> {
        let peer = self.peers.get(&to).ok_or(RpcError::UnknownNode(to))?;
        peer.queue
            .clone()
            .try_send(frame)
            .map_err(|_| RpcError::QueueFull(to))
    }

    /// Sends a raft message (dropped if the peer's queue is full).
    pub fn send_raft(&self, to: i32, payload: &[u8]) {
        let frame = encode_frame(FrameKind::Raft, self.node_id, 0, payload);
        if let Err(err) = self.enqueue(to, frame) {
            debug!("raft message to node {to} dropped: {err}");
        }
    }

    /// Sends a request and waits for its answer.
    pub async fn call(
        &self,
        to: i32,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        let correlation = self.next_correlation.get();
        self.next_correlation.set(correlation + 1);
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(correlation, tx);
        let frame = encode_frame(FrameKind::Request, self.node_id, correlation, payload);
        if let Err(err) = self.enqueue(to, frame) {
            self.pending.borrow_mut().remove(&correlation);
            return Err(err);
        }
        let sleep = glommio::timer::sleep(timeout);
        futures::select! {
            answer = rx.fuse() => answer.map_err(|_| RpcError::Timeout { node: to, timeout }),
            _ = FutureExt::fuse(sleep) => {
                self.pending.borrow_mut().remove(&correlation);
                Err(RpcError::Timeout { node: to, timeout })
            }
        }
    }

    /// Answers a request received from `to`.
    pub fn respond(&self, to: i32, correlation: u64, payload: &[u8]) {
        let frame = encode_frame(FrameKind::Response, self.node_id, correlation, payload);
        if let Err(err) = self.enqueue(to, frame) {
            debug!("answer to node {to} dropped: {err}");
        }
    }

    fn answer_arrived(&self, correlation: u64, payload: Bytes) {
        if let Some(waiter) = self.pending.borrow_mut().remove(&correlation) {
            let _ = waiter.send(payload);
        }
    }

    /// Accepts peers' connections and hands what they send to `inbound`.
    pub async fn serve(self: Rc<Self>, listener: TcpListener, inbound: Rc<dyn Inbound>) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let transport = self.clone();
                    let inbound = inbound.clone();
                    glommio::spawn_local(async move {
                        let peer = stream
                            .peer_addr()
                            .map_or_else(|_| "?".to_string(), |a| a.to_string());
                        if let Err(err) = transport.read_peer(stream, &*inbound).await {
                            debug!(%peer, "controller connection closed: {err}");
                        }
                    })
                    .detach();
                }
                Err(err) => {
                    warn!("controller listener: accept failed: {err}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn read_peer(&self, stream: TcpStream, inbound: &dyn Inbound) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let mut reader = BufReader::with_capacity(256 << 10, stream);
        loop {
            let mut size = [0u8; 4];
            reader.read_exact(&mut size).await?;
            let size = u32::from_be_bytes(size) as usize;
            if !(FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&size) {
                return Err(std::io::Error::other(format!("frame size {size}")));
            }
            let mut body = BytesMut::zeroed(size);
            reader.read_exact(&mut body).await?;
            let frame = decode_frame(body.freeze()).map_err(std::io::Error::other)?;
            match frame.kind {
                FrameKind::Raft => inbound.raft(frame.from, frame.payload),
                FrameKind::Request => inbound.request(frame.from, frame.correlation, frame.payload),
                FrameKind::Response => self.answer_arrived(frame.correlation, frame.payload),
            }
        }
    }
}

/// Resolves `host:port` (a voter's address).
fn resolve(address: &str) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{address} resolves to nothing")))
}

/// Keeps a connection to one peer and writes its queued frames, reconnecting
/// with a growing pause when it breaks.
async fn write_to_peer(
    node: i32,
    address: String,
    bind: Option<IpAddr>,
    mut queue: mpsc::Receiver<Vec<u8>>,
) {
    let mut pause_ms = RECONNECT_MIN_MS;
    let mut connected_once = false;
    loop {
        let stream = match resolve(&address) {
            Ok(target) => strom_net::client::connect_tcp(target, bind, CONNECT_TIMEOUT).await,
            Err(err) => Err(err),
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                debug!(node, %address, "cannot reach controller peer: {err}");
                // Frames queued meanwhile are stale; raft resends what matters.
                while queue.try_recv().is_ok() {}
                glommio::timer::sleep(Duration::from_millis(pause_ms)).await;
                pause_ms = (pause_ms * 2).min(RECONNECT_MAX_MS);
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            debug!(node, "TCP_NODELAY not set: {err}");
        }
        if !connected_once {
            info!(node, %address, "connected to controller peer");
            connected_once = true;
        }
        pause_ms = RECONNECT_MIN_MS;
        let (mut read_half, mut write_half) = stream.split();
        // The peer never writes on this connection: a read that ends means
        // it closed (or died), and the connection must be dropped at once,
        // not left half-closed until the next write fails.
        let closed = async move {
            let mut buf = [0u8; 64];
            loop {
                match read_half.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        futures::pin_mut!(closed);
        loop {
            let next = queue.next();
            let first = match futures::future::select(next, closed.as_mut()).await {
                futures::future::Either::Left((Some(frame), _)) => frame,
                futures::future::Either::Left((None, _)) => return,
                futures::future::Either::Right(_) => {
                    debug!(node, %address, "controller peer closed the connection");
                    break;
                }
            };
            let mut batch = first;
            while batch.len() < (1 << 20) {
                match queue.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Err(err) = write_half.write_all(&batch).await {
                debug!(node, %address, "controller peer connection broke: {err}");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        let bytes = encode_frame(FrameKind::Request, 3, 77, b"{}");
        assert_eq!(
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
            bytes.len() - 4
        );
        let frame = decode_frame(Bytes::copy_from_slice(&bytes[4..])).unwrap();
        assert_eq!(frame.kind, FrameKind::Request);
        assert_eq!((frame.from, frame.correlation), (3, 77));
        assert_eq!(&frame.payload[..], b"{}");
        assert!(decode_frame(Bytes::from_static(&[9; 13])).is_err());
        assert!(decode_frame(Bytes::from_static(&[1; 5])).is_err());
    }
}
