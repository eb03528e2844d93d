//! A small blocking Kafka client: one TCP connection per broker, one request in
//! flight, ApiVersions first so every request goes out at the highest version
//! both sides speak. [`Session`] adds what the tools need on top: the bootstrap
//! list, connections by broker address, the coordinator of a group (found with
//! FindCoordinator and retried while it moves or loads), Metadata and ListOffsets
//! sent to each partition's leader.

use super::{codes, is_coordinator_retriable, CliError, KafkaError};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, FindCoordinatorRequest, ListOffsetsRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes, VersionRange};
use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use strom_net::client_core::{
    api_versions_request, common_version, read_api_versions, response_body, response_size,
    ApiTable, Correlation, Negotiation,
};

/// Where the tools connect unless told otherwise.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// Environment variable naming the bootstrap brokers.
pub const BOOTSTRAP_ENV: &str = "STROM_BOOTSTRAP";
/// Default limit on connecting and on waiting for each answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The `client_id` of every request.
pub const CLIENT_ID: &str = "strom-cli";
/// Larger responses are refused as garbage rather than allocated.
const MAX_RESPONSE_BYTES: usize = 512 << 20;

/// ListOffsets timestamps with a special meaning.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// The bootstrap list: the flag, else `$STROM_BOOTSTRAP`, else 127.0.0.1:9092.
pub fn bootstrap_from(flag: Option<&str>, env: Option<&str>) -> String {
    flag.or(env)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_BOOTSTRAP)
        .to_string()
}

/// `host:port`, bracketing an IPv6 literal.
pub fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The name of an API as Kafka spells it (`DescribeGroups`).
pub fn api_name(api_key: ApiKey) -> String {
    format!("{api_key:?}")
}

/// One connection to one broker.
pub struct Client {
    addr: String,
    stream: TcpStream,
    timeout: Duration,
    correlation: Correlation,
    /// The broker's version range of each API it serves.
    apis: ApiTable,
}

impl Client {
    /// Connects (trying every address `addr` resolves to) and negotiates versions.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Client, CliError> {
        let targets: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| CliError::Resolve {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        let mut last_error = None;
        let mut connected = None;
        for target in &targets {
            match TcpStream::connect_timeout(target, timeout) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let stream = match connected {
            Some(stream) => stream,
            None => {
                return Err(CliError::Connect {
                    addr: addr.to_string(),
                    source: last_error.unwrap_or_else(|| {
                        std::io::Error::new(ErrorKind::NotFound, "the name resolves to no address")
                    }),
                })
            }
        };
        let io = |what: &str, source| CliError::Io {
            addr: addr.to_string(),
            what: what.to_string(),
            source,
        };
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| io("setting the read timeout", e))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| io("setting the write timeout", e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io("setting TCP_NODELAY", e))?;
        let mut client = Client {
            addr: addr.to_string(),
            stream,
            timeout,
            correlation: Correlation::default(),
            apis: ApiTable::default(),
        };
        client.negotiate()?;
        Ok(client)
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// ApiVersions at our highest version; a broker that does not know it answers
    /// UNSUPPORTED_VERSION with a v0 body naming its range (KIP-511), and we ask
    /// again at the highest version it named.
    fn negotiate(&mut self) -> Result<(), CliError> {
        let mut version = ApiVersionsRequest::VERSIONS.max;
        for _ in 0..2 {
            let request = api_versions_request(version, CLIENT_ID);
            let body = self.exchange(ApiKey::ApiVersions, version, &request)?;
            match read_api_versions(&body, version).map_err(|e| self.protocol(e))? {
                Negotiation::Agreed(apis) => {
                    self.apis = apis;
                    return Ok(());
                }
                Negotiation::AskAgainAt(theirs) => version = theirs,
                Negotiation::Refused(code) => {
                    return Err(KafkaError::new(
                        code,
                        format!("ApiVersions refused by the broker at {}", self.addr),
                    )
                    .into())
                }
            }
        }
        Err(self.protocol("ApiVersions negotiation did not converge".to_string()))
    }

    /// The highest version of an API both the broker and we speak.
    pub fn version(&self, api_key: ApiKey, ours: VersionRange) -> Result<i16, CliError> {
        let theirs = self
            .apis
            .range(api_key)
            .ok_or_else(|| CliError::Unsupported {
                addr: self.addr.clone(),
                api: api_name(api_key),
            })?;
        common_version(theirs, ours).ok_or_else(|| CliError::NoCommonVersion {
            addr: self.addr.clone(),
            api: api_name(api_key),
            broker_min: theirs.min,
            broker_max: theirs.max,
            ours_min: ours.min,
            ours_max: ours.max,
        })
    }

    /// Whether the broker serves an API at all.
    pub fn supports(&self, api_key: ApiKey) -> bool {
        self.apis.range(api_key).is_some()
    }

    /// Sends a request built for the negotiated version; returns that version and
    /// the decoded answer.
    pub fn send<R: Request>(
        &mut self,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), CliError> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|()| self.protocol(format!("unknown API key {}", R::KEY)))?;
        let version = self.version(api_key, R::VERSIONS)?;
        let request = build(version);
        let mut body = self.exchange(api_key, version, &request)?;
        let response = R::Response::decode(&mut body, version).map_err(|e| {
            self.protocol(format!(
                "undecodable {} v{version} answer: {e}",
                api_name(api_key)
            ))
        })?;
        Ok((version, response))
    }

    /// Sends a request that gets no answer (Produce with acks=0): writes it at
    /// the negotiated version and returns that version.
    pub fn send_without_answer<R: Request>(
        &mut self,
        build: impl FnOnce(i16) -> R,
    ) -> Result<i16, CliError> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|()| self.protocol(format!("unknown API key {}", R::KEY)))?;
        let version = self.version(api_key, R::VERSIONS)?;
        let request = build(version);
        let (_, frame) = self
            .correlation
            .frame(api_key, version, CLIENT_ID, &request)
            .map_err(CliError::Message)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| self.io_error(&api_name(api_key), "sending", e))?;
        Ok(version)
    }

    /// Changes how long a read may wait for an answer (a JoinGroup answer comes
    /// only when the rebalance completes, up to the rebalance timeout).
    pub fn set_answer_timeout(&mut self, timeout: Duration) -> Result<(), CliError> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|source| CliError::Io {
                addr: self.addr.clone(),
                what: "setting the read timeout".to_string(),
                source,
            })?;
        self.timeout = timeout;
        Ok(())
    }

    /// Writes one request, reads its answer; returns the body after the header.
    fn exchange<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<Bytes, CliError> {
        let (correlation_id, frame) = self
            .correlation
            .frame(api_key, version, CLIENT_ID, request)
            .map_err(CliError::Message)?;
        let api = api_name(api_key);
        self.stream
            .write_all(&frame)
            .map_err(|e| self.io_error(&api, "sending", e))?;
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|e| self.io_error(&api, "reading the answer", e))?;
        let size = response_size(prefix, MAX_RESPONSE_BYTES)
            .map_err(|e| self.protocol(format!("{api} answer: {e}")))?;
        let mut response = vec![0u8; size];
        self.stream
            .read_exact(&mut response)
            .map_err(|e| self.io_error(&api, "reading the answer", e))?;
        response_body(
            Bytes::from(response),
            api_key,
            version,
            Some(correlation_id),
        )
        .map_err(|e| self.protocol(format!("{api} answer: {e}")))
    }

    fn protocol(&self, reason: String) -> CliError {
        CliError::Protocol {
            addr: self.addr.clone(),
            reason,
        }
    }

    fn io_error(&self, api: &str, what: &str, source: std::io::Error) -> CliError {
        match source.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => CliError::Timeout {
                addr: self.addr.clone(),
                api: api.to_string(),
                secs: self.timeout.as_secs(),
            },
            ErrorKind::UnexpectedEof => CliError::Io {
                addr: self.addr.clone(),
                what: format!("{what} of {api}"),
                source: std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the broker closed the connection",
                ),
            },
            _ => CliError::Io {
                addr: self.addr.clone(),
                what: format!("{what} of {api}"),
                source,
            },
        }
    }
}

/// A broker as Metadata and FindCoordinator name it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl Node {
    pub fn addr(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// One topic of a Metadata answer.
#[derive(Clone, Debug)]
pub struct TopicMeta {
    pub name: String,
    pub error_code: i16,
    /// Partition index → leader node id (-1: none).
    pub leaders: BTreeMap<i32, i32>,
}

/// The parts of a Metadata answer the tools use.
#[derive(Clone, Debug, Default)]
pub struct ClusterMeta {
    pub brokers: BTreeMap<i32, Node>,
    pub topics: BTreeMap<String, TopicMeta>,
}

impl ClusterMeta {
    /// The partitions of a topic that exists, in order.
    pub fn partitions(&self, topic: &str) -> Option<Vec<i32>> {
        self.topics
            .get(topic)
            .filter(|t| t.error_code == codes::NONE)
            .map(|t| t.leaders.keys().copied().collect())
    }
}

/// What ListOffsets said about one partition.
pub type OffsetAnswer = Result<i64, i16>;

/// Connections to a cluster for one command.
pub struct Session {
    bootstrap: Vec<String>,
    timeout: Duration,
    /// Open connections by `host:port`.
    conns: HashMap<String, Client>,
    /// The address that answered for the bootstrap list.
    bootstrap_addr: Option<String>,
    /// Coordinator of each group asked about.
    coordinators: HashMap<String, Node>,
}

impl Session {
    /// `bootstrap` is `HOST:PORT[,HOST:PORT...]`.
    pub fn new(bootstrap: &str, timeout: Duration) -> Session {
        Session {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            timeout,
            conns: HashMap::new(),
            bootstrap_addr: None,
            coordinators: HashMap::new(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection to `addr`, opened on first use.
    pub fn client(&mut self, addr: &str) -> Result<&mut Client, CliError> {
        if !self.conns.contains_key(addr) {
            let client = Client::connect(addr, self.timeout)?;
            self.conns.insert(addr.to_string(), client);
        }
        Ok(self.conns.get_mut(addr).expect("connection just opened"))
    }

    /// A connection to any broker of the bootstrap list (the first that answers).
    pub fn any(&mut self) -> Result<&mut Client, CliError> {
        if self.bootstrap_addr.is_none() {
            let mut last_error = None;
            for addr in self.bootstrap.clone() {
                match self.client(&addr) {
                    Ok(_) => {
                        self.bootstrap_addr = Some(addr);
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            if self.bootstrap_addr.is_none() {
                return Err(last_error.unwrap_or_else(|| {
                    CliError::Message("the bootstrap broker list is empty".to_string())
                }));
            }
        }
        let addr = self.bootstrap_addr.clone().expect("set above");
        self.client(&addr)
    }

    /// Runs `op` on a connection and forgets the connection if the exchange broke
    /// it, so the next use reconnects.
    pub fn call<T>(
        &mut self,
        addr: &str,
        op: impl FnOnce(&mut Client) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let result = op(self.client(addr)?);
        if matches!(
            result,
            Err(CliError::Io { .. } | CliError::Timeout { .. } | CliError::Protocol { .. })
        ) {
            self.conns.remove(addr);
            if self.bootstrap_addr.as_deref() == Some(addr) {
                self.bootstrap_addr = None;
            }
        }
        result
    }

    fn any_addr(&mut self) -> Result<String, CliError> {
        let addr = self.any()?.addr().to_string();
        Ok(addr)
    }

    /// FindCoordinator (key type 0) for a group.
    pub fn find_coordinator(&mut self, group: &str) -> Result<Node, CliError> {
        self.find_key_coordinator(0, group)
    }

    /// FindCoordinator for a group (key type 0) or a transactional id (1).
    pub fn find_key_coordinator(&mut self, key_type: i8, key: &str) -> Result<Node, CliError> {
        let what = if key_type == 0 {
            "group"
        } else {
            "transactional id"
        };
        let cache_key = format!("{key_type}:{key}");
        if let Some(node) = self.coordinators.get(&cache_key) {
            return Ok(node.clone());
        }
        let group = key;
        let addr = self.any_addr()?;
        let (version, response) = self.call(&addr, |c| {
            c.send(|version| {
                let mut request = FindCoordinatorRequest::default();
                request.key_type = key_type;
                if version >= 4 {
                    request.coordinator_keys = vec![StrBytes::from_string(group.to_string())];
                } else {
                    request.key = StrBytes::from_string(group.to_string());
                }
                request
            })
        })?;
        let (code, message, node) = if version >= 4 {
            let c = response
                .coordinators
                .first()
                .ok_or_else(|| CliError::Protocol {
                    addr: addr.clone(),
                    reason: "FindCoordinator answer names no coordinator".to_string(),
                })?;
            let node = Node {
                node_id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
            };
            (c.error_code, c.error_message.clone(), node)
        } else {
            let node = Node {
                node_id: response.node_id.0,
                host: response.host.to_string(),
                port: response.port,
            };
            (response.error_code, response.error_message.clone(), node)
        };
        if code != codes::NONE {
            return Err(KafkaError::new(
                code,
                format!("cannot find the coordinator of {what} '{group}'"),
            )
            .with_message(message.as_deref())
            .into());
        }
        self.coordinators.insert(cache_key, node.clone());
        Ok(node)
    }

    /// Runs a group request on the group's coordinator, finding it again and
    /// retrying (until the timeout) while it is loading or has moved.
    pub fn with_coordinator<T>(
        &mut self,
        group: &str,
        op: impl FnMut(&mut Client) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        self.with_key_coordinator(0, group, op)
    }

    /// [`Self::with_coordinator`] for a group (key type 0) or a
    /// transactional id (1).
    pub fn with_key_coordinator<T>(
        &mut self,
        key_type: i8,
        group: &str,
        mut op: impl FnMut(&mut Client) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = self
                .find_key_coordinator(key_type, group)
                .and_then(|node| self.call(&node.addr(), &mut op));
            match result {
                Err(CliError::Kafka(e))
                    if is_coordinator_retriable(e.code) && Instant::now() < deadline =>
                {
                    self.coordinators.remove(&format!("{key_type}:{group}"));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// Metadata of some topics (`None`: every topic), never creating topics.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMeta, CliError> {
        let addr = self.any_addr()?;
        let (_, response) = self.call(&addr, |c| {
            c.send(|version| {
                let mut request = MetadataRequest::default();
                request.allow_auto_topic_creation = false;
                request.topics = match topics {
                    Some(names) => Some(
                        names
                            .iter()
                            .map(|n| {
                                let mut t = MetadataRequestTopic::default();
                                t.name = Some(TopicName(StrBytes::from_string(n.clone())));
                                t
                            })
                            .collect(),
                    ),
                    // v0 has no null: an empty list means every topic.
                    None if version == 0 => Some(Vec::new()),
                    None => None,
                };
                request
            })
        })?;
        let mut meta = ClusterMeta::default();
        for b in &response.brokers {
            meta.brokers.insert(
                b.node_id.0,
                Node {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                },
            );
        }
        for t in &response.topics {
            let Some(name) = &t.name else { continue };
            meta.topics.insert(
                name.0.to_string(),
                TopicMeta {
                    name: name.0.to_string(),
                    error_code: t.error_code,
                    leaders: t
                        .partitions
                        .iter()
                        .map(|p| (p.partition_index, p.leader_id.0))
                        .collect(),
                },
            );
        }
        Ok(meta)
    }

    /// ListOffsets at `timestamp` (LATEST, EARLIEST or milliseconds) for partitions,
    /// each asked of its leader. Answers by partition: the offset (-1 when no record
    /// has that timestamp or a later one), or the error code.
    pub fn list_offsets(
        &mut self,
        meta: &ClusterMeta,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> Result<BTreeMap<(String, i32), OffsetAnswer>, CliError> {
        let mut answers = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = meta
                .topics
                .get(topic)
                .and_then(|t| t.leaders.get(partition).copied());
            match leader {
                None => {
                    answers.insert(
                        (topic.clone(), *partition),
                        Err(codes::UNKNOWN_TOPIC_OR_PARTITION),
                    );
                }
                Some(leader) if !meta.brokers.contains_key(&leader) => {
                    answers.insert(
                        (topic.clone(), *partition),
                        Err(codes::LEADER_NOT_AVAILABLE),
                    );
                }
                Some(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition),
            }
        }
        let timeout_ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        for (leader, topics) in by_leader {
            let addr = meta.brokers[&leader].addr();
            let (_, response) = self.call(&addr, |c| {
                c.send(|_version| {
                    let mut request = ListOffsetsRequest::default();
                    request.replica_id = BrokerId(-1);
                    request.isolation_level = 0;
                    request.timeout_ms = timeout_ms;
                    request.topics = topics
                        .iter()
                        .map(|(topic, partitions)| {
                            let mut t = ListOffsetsTopic::default();
                            t.name = TopicName(StrBytes::from_string(topic.clone()));
                            t.partitions = partitions
                                .iter()
                                .map(|p| {
                                    let mut lp = ListOffsetsPartition::default();
                                    lp.partition_index = *p;
                                    lp.current_leader_epoch = -1;
                                    lp.timestamp = timestamp;
                                    lp
                                })
                                .collect();
                            t
                        })
                        .collect();
                    request
                })
            })?;
            for t in &response.topics {
                for p in &t.partitions {
                    let answer = if p.error_code == codes::NONE {
                        Ok(p.offset)
                    } else {
                        Err(p.error_code)
                    };
                    answers.insert((t.name.0.to_string(), p.partition_index), answer);
                }
            }
            // A partition the answer left out is an error, not a silent gap.
            for (topic, partitions) in &topics {
                for p in partitions {
                    answers
                        .entry((topic.clone(), *p))
                        .or_insert(Err(codes::UNKNOWN_TOPIC_OR_PARTITION));
                }
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsResponse;

    fn range(min: i16, max: i16) -> VersionRange {
        VersionRange { min, max }
    }

    #[test]
    fn bootstrap_flag_wins_over_env_over_default() {
        assert_eq!(bootstrap_from(Some("a:1"), Some("b:2")), "a:1");
        assert_eq!(bootstrap_from(None, Some("b:2")), "b:2");
        assert_eq!(bootstrap_from(None, Some("  ")), DEFAULT_BOOTSTRAP);
        assert_eq!(bootstrap_from(None, None), DEFAULT_BOOTSTRAP);
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(host_port("::1", 9092), "[::1]:9092");
        assert_eq!(host_port("broker-1", 19092), "broker-1:19092");
    }

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(api_name(ApiKey::DescribeGroups), "DescribeGroups");
        assert_eq!(api_name(ApiKey::OffsetFetch), "OffsetFetch");
    }

    #[test]
    fn session_splits_the_bootstrap_list() {
        let s = Session::new(" a:1, b:2 ,,", DEFAULT_TIMEOUT);
        assert_eq!(s.bootstrap, vec!["a:1".to_string(), "b:2".to_string()]);
    }

    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A fake broker for one connection: reads each request's api key, version
    /// and correlation id, reports them, and writes whatever `answer` returns
    /// (nothing: stay silent).
    fn fake_broker(
        answer: impl Fn(ApiKey, i16, i32) -> Option<Bytes> + Send + 'static,
    ) -> (String, mpsc::Receiver<(ApiKey, i16)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            loop {
                let mut size = [0u8; 4];
                if stream.read_exact(&mut size).is_err() {
                    return;
                }
                let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
                stream.read_exact(&mut frame).unwrap();
                let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                let _ = tx.send((key, version));
                if let Some(bytes) = answer(key, version, correlation_id) {
                    stream.write_all(&bytes).unwrap();
                }
            }
        });
        (addr, rx)
    }

    fn api_versions(error_code: i16, apis: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        let mut response = ApiVersionsResponse::default();
        response.error_code = error_code;
        response.api_keys = apis
            .iter()
            .map(|(key, min, max)| {
                let mut v = ApiVersion::default();
                v.api_key = *key as i16;
                v.min_version = *min;
                v.max_version = *max;
                v
            })
            .collect();
        response
    }

    #[test]
    fn falls_back_to_an_older_api_versions_and_names_missing_apis() {
        // An old broker: ApiVersions 0-2 only (KIP-511 answer to our v4), no group APIs.
        let (addr, seen) = fake_broker(|key, version, correlation_id| {
            assert_eq!(key, ApiKey::ApiVersions);
            let body = if version > 2 {
                api_versions(codes::UNSUPPORTED_VERSION, &[(ApiKey::ApiVersions, 0, 2)])
            } else {
                api_versions(0, &[(ApiKey::ApiVersions, 0, 2), (ApiKey::Metadata, 0, 12)])
            };
            let encode_version = if version > 2 { 0 } else { version };
            Some(
                strom_net::response::encode_response(
                    ApiKey::ApiVersions,
                    encode_version,
                    correlation_id,
                    &body,
                )
                .unwrap(),
            )
        });
        let client = Client::connect(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(seen.recv().unwrap(), (ApiKey::ApiVersions, 4));
        assert_eq!(seen.recv().unwrap(), (ApiKey::ApiVersions, 2));
        assert_eq!(client.version(ApiKey::Metadata, range(0, 13)).unwrap(), 12);
        assert!(client.supports(ApiKey::Metadata));
        assert!(!client.supports(ApiKey::DescribeGroups));
        let err = client
            .version(ApiKey::DescribeGroups, range(0, 5))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the broker at {addr} does not support DescribeGroups; upgrade it")
        );
        let err = client.version(ApiKey::Metadata, range(13, 13)).unwrap_err();
        assert!(
            err.to_string().contains("serves Metadata versions 0-12"),
            "{err}"
        );
    }

    #[test]
    fn a_silent_broker_times_out_with_a_clear_message() {
        let (addr, _seen) = fake_broker(|_, _, _| None);
        let err = match Client::connect(&addr, Duration::from_secs(1)) {
            Ok(_) => panic!("connected to a silent broker"),
            Err(e) => e,
        };
        assert_eq!(
            err.to_string(),
            format!("no answer from the broker at {addr} to ApiVersions within 1 s")
        );
    }

    #[test]
    fn a_wrong_correlation_id_is_a_protocol_error() {
        let (addr, _seen) = fake_broker(|_, version, correlation_id| {
            let body = api_versions(0, &[(ApiKey::ApiVersions, 0, 4)]);
            Some(
                strom_net::response::encode_response(
                    ApiKey::ApiVersions,
                    version,
                    correlation_id + 1,
                    &body,
                )
                .unwrap(),
            )
        });
        let err = match Client::connect(&addr, Duration::from_secs(5)) {
            Ok(_) => panic!("accepted a wrong correlation id"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("correlation id"), "{err}");
    }

    #[test]
    fn connect_failure_names_the_address() {
        // Port 1 on loopback: nothing listens there.
        let err = match Client::connect("127.0.0.1:1", Duration::from_secs(5)) {
            Ok(_) => return, // something does listen; nothing to check
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(
            text.contains("cannot connect to the broker at 127.0.0.1:1"),
            "{text}"
        );
    }
}
