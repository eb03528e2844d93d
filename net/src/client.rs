//! A Kafka client connection on a glommio executor: requests are encoded with
//! [`crate::request::encode_request`], responses decoded with
//! `kafka-protocol`. A connection lives on the executor that opened it.
//!
//! Used by `strom-bench` (producers and consumers) and by the broker itself
//! (followers fetching from leaders). The [`FrameWriter`] and [`FrameReader`]
//! halves can run in two tasks, so a producer can keep several requests in
//! flight (Kafka answers the requests of one connection in order).

use crate::client_core::{
    api_versions_request, read_api_versions, response_body, response_size, ApiTable, Correlation,
    Negotiation,
};
use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use std::time::Duration;

/// Larger responses are refused as garbage rather than allocated.
pub const RESPONSE_BYTES_MAX: usize = 256 << 20;
/// Read buffer of a connection.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{addr}: {what}: {source}")]
    Io {
        addr: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: {api}: {reason}")]
    Protocol {
        addr: String,
        api: String,
        reason: String,
    },
    #[error("{addr}: {api} answered {name} ({code}){context}")]
    Kafka {
        addr: String,
        api: String,
        code: i16,
        name: String,
        context: String,
    },
}

/// Kafka's name of an error code (`TOPIC_ALREADY_EXISTS`-style Debug name).
pub fn error_name(code: i16) -> String {
    kafka_protocol::error::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("error {code}"))
}

impl ClientError {
    pub fn protocol(addr: &str, api: ApiKey, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            addr: addr.to_string(),
            api: format!("{api:?}"),
            reason: reason.into(),
        }
    }

    /// `context` is appended as is (start it with ": " when not empty).
    pub fn kafka(addr: &str, api: ApiKey, code: i16, context: &str) -> ClientError {
        ClientError::Kafka {
            addr: addr.to_string(),
            api: format!("{api:?}"),
            code,
            name: error_name(code),
            context: context.to_string(),
        }
    }
}

/// Who is connecting: the `client_id` of every request, the highest version
/// of each API it sends, how long connecting and each read or write may
/// take, and optionally the local address to connect from.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    pub client_id: &'static str,
    pub max_version: fn(ApiKey) -> i16,
    pub io_timeout: Duration,
    /// Connect from this local address (port 0): a broker connects from
    /// its own listener's address, so traffic between brokers on
    /// 127.0.0.x addresses can be told apart (and cut, in fault tests).
    pub bind: Option<std::net::IpAddr>,
}

/// The versions to use with one broker.
#[derive(Clone, Debug)]
pub struct Versions {
    apis: ApiTable,
    max_version: fn(ApiKey) -> i16,
}

impl Versions {
    /// The highest version both sides speak.
    pub fn pick(&self, addr: &str, api_key: ApiKey) -> Result<i16, ClientError> {
        let ours = (self.max_version)(api_key);
        let theirs = self
            .apis
            .range(api_key)
            .ok_or_else(|| ClientError::protocol(addr, api_key, "the broker does not serve it"))?;
        let version = ours.min(theirs.max);
        if version < theirs.min {
            return Err(ClientError::protocol(
                addr,
                api_key,
                format!(
                    "the broker serves v{}..v{}, we send up to v{ours}",
                    theirs.min, theirs.max
                ),
            ));
        }
        Ok(version)
    }
}

/// Writes request frames.
pub struct FrameWriter {
    addr: String,
    client_id: &'static str,
    half: WriteHalf<TcpStream>,
    correlation: Correlation,
}

/// Reads response frames, in the order their requests were written.
pub struct FrameReader {
    addr: String,
    half: BufReader<ReadHalf<TcpStream>>,
}

/// A negotiated connection.
pub struct Connection {
    pub writer: FrameWriter,
    pub reader: FrameReader,
    pub versions: Versions,
}

/// Opens a TCP connection to `target`, from `bind` (any port) when given,
/// giving up after `timeout`.
pub async fn connect_tcp(
    target: std::net::SocketAddr,
    bind: Option<std::net::IpAddr>,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    match bind {
        None => TcpStream::connect_timeout(target, timeout)
            .await
            .map_err(std::io::Error::from),
        Some(ip) => {
            // glommio cannot bind before connecting: connect a bound socket
            // on the blocking pool (a connect takes no longer than a round
            // trip, or the timeout).
            glommio::executor()
                .spawn_blocking(move || {
                    let domain = socket2::Domain::for_address(target);
                    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
                    socket.bind(&std::net::SocketAddr::new(ip, 0).into())?;
                    socket.connect_timeout(&target.into(), timeout)?;
                    Ok::<_, std::io::Error>(socket)
                })
                .await
                .map(TcpStream::from)
        }
    }
}

impl Connection {
    /// Connects and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str, options: ClientOptions) -> Result<Connection, ClientError> {
        let io = |what: &'static str| {
            let addr = addr.to_string();
            move |source| ClientError::Io { addr, what, source }
        };
        let target = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(io("resolving"))?
            .next()
            .ok_or_else(|| ClientError::Io {
                addr: addr.to_string(),
                what: "resolving",
                source: std::io::Error::other("no address"),
            })?;
        let connected = connect_tcp(target, options.bind, options.io_timeout).await;
        let stream = connected.map_err(|source| ClientError::Io {
            addr: addr.to_string(),
            what: "connecting",
            source,
        })?;
        let setup = |r: glommio::Result<(), ()>| r.map_err(std::io::Error::from);
        setup(stream.set_nodelay(true)).map_err(io("setting TCP_NODELAY"))?;
        setup(stream.set_read_timeout(Some(options.io_timeout)))
            .map_err(io("setting a read timeout"))?;
        setup(stream.set_write_timeout(Some(options.io_timeout)))
            .map_err(io("setting a write timeout"))?;
        let (read_half, write_half) = stream.split();
        let mut conn = Connection {
            writer: FrameWriter {
                addr: addr.to_string(),
                client_id: options.client_id,
                half: write_half,
                correlation: Correlation::default(),
            },
            reader: FrameReader {
                addr: addr.to_string(),
                half: BufReader::with_capacity(READ_BUFFER_BYTES, read_half),
            },
            versions: Versions {
                apis: ApiTable::default(),
                max_version: options.max_version,
            },
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// ApiVersions at our highest version (at most v3), once more at the
    /// broker's when it does not know ours (KIP-511).
    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let mut version = (self.versions.max_version)(ApiKey::ApiVersions).min(3);
        for _ in 0..2 {
            let request = api_versions_request(version, self.writer.client_id);
            let body = self.call_at(ApiKey::ApiVersions, version, &request).await?;
            let protocol = |e: String| ClientError::protocol(self.addr(), ApiKey::ApiVersions, e);
            match read_api_versions(&body, version).map_err(protocol)? {
                Negotiation::Agreed(apis) => {
                    self.versions.apis = apis;
                    return Ok(());
                }
                Negotiation::AskAgainAt(theirs) => version = theirs,
                Negotiation::Refused(code) => {
                    return Err(ClientError::kafka(
                        self.addr(),
                        ApiKey::ApiVersions,
                        code,
                        "",
                    ))
                }
            }
        }
        Err(ClientError::protocol(
            self.addr(),
            ApiKey::ApiVersions,
            "ApiVersions negotiation did not converge",
        ))
    }

    /// One request at `version`; the body of its answer, whose correlation
    /// id is checked.
    async fn call_at<Req: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Bytes, ClientError> {
        let correlation_id = self.writer.send(api_key, version, request).await?;
        self.reader
            .read_answer(api_key, version, Some(correlation_id))
            .await
    }

    /// One request, one response, at the highest common version.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        let version = self.versions.pick(&self.writer.addr, api_key)?;
        let mut body = self.call_at(api_key, version, request).await?;
        Resp::decode(&mut body, version)
            .map_err(|e| ClientError::protocol(&self.writer.addr, api_key, e.to_string()))
    }

    pub fn addr(&self) -> &str {
        &self.writer.addr
    }
}

impl FrameWriter {
    /// Encodes and writes one request; returns its correlation id.
    pub async fn send<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<i32, ClientError> {
        let (correlation_id, frame) = self
            .correlation
            .frame(api_key, version, self.client_id, request)
            .map_err(|e| ClientError::protocol(&self.addr, api_key, e))?;
        self.write(&frame).await?;
        Ok(correlation_id)
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.half
            .write_all(frame)
            .await
            .map_err(|source| ClientError::Io {
                addr: self.addr.clone(),
                what: "writing a request",
                source,
            })
    }
}

impl FrameReader {
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Reads one response frame of `api_key` v`version` and returns its body
    /// (after the response header).
    pub async fn read_body(&mut self, api_key: ApiKey, version: i16) -> Result<Bytes, ClientError> {
        self.read_answer(api_key, version, None).await
    }

    /// [`Self::read_body`], checking the correlation id when `expected`.
    async fn read_answer(
        &mut self,
        api_key: ApiKey,
        version: i16,
        expected: Option<i32>,
    ) -> Result<Bytes, ClientError> {
        let io = |source| ClientError::Io {
            addr: self.addr.clone(),
            what: "reading a response",
            source,
        };
        let mut prefix = [0u8; 4];
        self.half.read_exact(&mut prefix).await.map_err(io)?;
        let size = response_size(prefix, RESPONSE_BYTES_MAX)
            .map_err(|e| ClientError::protocol(&self.addr, api_key, e))?;
        let mut frame = BytesMut::zeroed(size);
        self.half.read_exact(&mut frame).await.map_err(io)?;
        response_body(frame.freeze(), api_key, version, expected)
            .map_err(|e| ClientError::protocol(&self.addr, api_key, e))
    }
}
