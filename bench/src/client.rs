//! A Kafka client connection on a glommio executor: requests are encoded with
//! `strom_net::request::encode_request`, responses decoded with
//! `kafka-protocol`. A connection lives on the executor that opened it.
//!
//! [`Connection::split`] gives a writer and a reader that can run in two tasks,
//! so a producer can keep several requests in flight (Kafka answers the
//! requests of one connection in order).

use crate::error::BenchError;
use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::collections::HashMap;
use std::time::Duration;

/// The `client_id` of every request.
pub const CLIENT_ID: &str = "strom-bench";
/// Larger responses are refused as garbage rather than allocated.
pub const RESPONSE_BYTES_MAX: usize = 256 << 20;
/// Connecting and each read and write give up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Read buffer of a connection.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// The highest version of each API this generator sends. Fetch stays below
/// v13 (topic ids) and Produce below v13 (topic ids) so topics go by name.
pub fn our_max_version(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::Produce => 11,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets => 7,
        ApiKey::Metadata => 12,
        ApiKey::CreateTopics => 7,
        ApiKey::DeleteTopics => 5,
        ApiKey::ApiVersions => 3,
        _ => 0,
    }
}

/// One API's version range, as the broker advertised it.
#[derive(Clone, Copy, Debug)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

/// The versions to use with one broker.
#[derive(Clone, Debug, Default)]
pub struct Versions {
    ranges: HashMap<i16, VersionRange>,
}

impl Versions {
    /// The highest version both sides speak.
    pub fn pick(&self, addr: &str, api_key: ApiKey) -> Result<i16, BenchError> {
        let ours = our_max_version(api_key);
        let theirs = self
            .ranges
            .get(&(api_key as i16))
            .ok_or_else(|| BenchError::protocol(addr, api_key, "the broker does not serve it"))?;
        let version = ours.min(theirs.max);
        if version < theirs.min {
            return Err(BenchError::protocol(
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
    half: WriteHalf<TcpStream>,
    next_correlation_id: i32,
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

impl Connection {
    /// Connects and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str) -> Result<Connection, BenchError> {
        let io = |what: &'static str| {
            let addr = addr.to_string();
            move |source| BenchError::Io { addr, what, source }
        };
        let target = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(io("resolving"))?
            .next()
            .ok_or_else(|| BenchError::Io {
                addr: addr.to_string(),
                what: "resolving",
                source: std::io::Error::other("no address"),
            })?;
        let stream = TcpStream::connect_timeout(target, IO_TIMEOUT)
            .await
            .map_err(|e| BenchError::Io {
                addr: addr.to_string(),
                what: "connecting",
                source: e.into(),
            })?;
        let setup = |r: glommio::Result<(), ()>| r.map_err(std::io::Error::from);
        setup(stream.set_nodelay(true)).map_err(io("setting TCP_NODELAY"))?;
        setup(stream.set_read_timeout(Some(IO_TIMEOUT))).map_err(io("setting a read timeout"))?;
        setup(stream.set_write_timeout(Some(IO_TIMEOUT))).map_err(io("setting a write timeout"))?;
        let (read_half, write_half) = stream.split();
        let mut conn = Connection {
            writer: FrameWriter {
                addr: addr.to_string(),
                half: write_half,
                next_correlation_id: 1,
            },
            reader: FrameReader {
                addr: addr.to_string(),
                half: BufReader::with_capacity(READ_BUFFER_BYTES, read_half),
            },
            versions: Versions::default(),
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    async fn negotiate(&mut self) -> Result<(), BenchError> {
        let mut request = ApiVersionsRequest::default();
        request.client_software_name = StrBytes::from_static_str(CLIENT_ID);
        request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let version = our_max_version(ApiKey::ApiVersions);
        self.writer
            .send(ApiKey::ApiVersions, version, &request)
            .await?;
        let body = self.reader.read_body(ApiKey::ApiVersions, version).await?;
        let response = match ApiVersionsResponse::decode(&mut body.clone(), version) {
            Ok(r) if r.error_code == 0 => r,
            // UNSUPPORTED_VERSION answers are v0 (KIP-511); v0 is enough for us.
            _ => ApiVersionsResponse::decode(&mut body.clone(), 0).map_err(|e| {
                BenchError::protocol(&self.writer.addr, ApiKey::ApiVersions, e.to_string())
            })?,
        };
        if response.error_code != 0 {
            return Err(BenchError::kafka(
                &self.writer.addr,
                ApiKey::ApiVersions,
                response.error_code,
                "",
            ));
        }
        self.versions.ranges = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Ok(())
    }

    /// One request, one response, at the highest common version.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        request: &Req,
    ) -> Result<Resp, BenchError> {
        let version = self.versions.pick(&self.writer.addr, api_key)?;
        self.writer.send(api_key, version, request).await?;
        let mut body = self.reader.read_body(api_key, version).await?;
        Resp::decode(&mut body, version)
            .map_err(|e| BenchError::protocol(&self.writer.addr, api_key, e.to_string()))
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
    ) -> Result<i32, BenchError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = strom_net::request::encode_request(
            api_key,
            version,
            correlation_id,
            CLIENT_ID,
            request,
        )
        .map_err(|e| BenchError::protocol(&self.addr, api_key, e.to_string()))?;
        self.write(&frame).await?;
        Ok(correlation_id)
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), BenchError> {
        self.half
            .write_all(frame)
            .await
            .map_err(|source| BenchError::Io {
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
    pub async fn read_body(&mut self, api_key: ApiKey, version: i16) -> Result<Bytes, BenchError> {
        let io = |source| BenchError::Io {
            addr: self.addr.clone(),
            what: "reading a response",
            source,
        };
        let mut size = [0u8; 4];
        self.half.read_exact(&mut size).await.map_err(io)?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=RESPONSE_BYTES_MAX).contains(s))
            .ok_or_else(|| {
                BenchError::protocol(&self.addr, api_key, format!("response size {size}"))
            })?;
        let mut frame = BytesMut::zeroed(size);
        self.half
            .read_exact(&mut frame)
            .await
            .map_err(|source| BenchError::Io {
                addr: self.addr.clone(),
                what: "reading a response",
                source,
            })?;
        let mut frame = frame.freeze();
        ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
            .map_err(|e| BenchError::protocol(&self.addr, api_key, e.to_string()))?;
        Ok(frame)
    }
}
