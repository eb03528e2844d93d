//! Consumer groups (Kafka's classic group protocol) end to end, as users see
//! them through real clients: librdkafka (python confluent_kafka) group
//! members in separate processes that report their assignments and the
//! records they consumed as JSON lines, kafka-python's consumer and admin
//! client, and raw JoinGroup / SyncGroup / Heartbeat / LeaveGroup /
//! OffsetCommit / OffsetFetch / OffsetDelete / DeleteGroups / DescribeGroups /
//! ListGroups requests for the error codes.
//!
//! NOT_COORDINATOR is not tested: a single node coordinates every group, so
//! no request can reach a broker that is not the coordinator.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strom_net::request::encode_request;
use strom_tests::*;

/// Fast group formation for tests: the first rebalance of an empty group waits
/// 100 ms (not Kafka's 3 s) and members may ask for session timeouts down to 1 s.
const FAST_GROUPS: &str =
    "group.initial.rebalance.delay.ms = 100\ngroup.min.session.timeout.ms = 1000\n";
/// Session timeout of the librdkafka members (ms), and as seconds.
const SESSION_MS: &str = "6000";
const SESSION_S: f64 = 6.0;

// Kafka error codes.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

// ---------------------------------------------------------------- clients

fn groups(b: &str, args: &[&str]) -> Value {
    let mut all = vec!["--bootstrap", b];
    all.extend_from_slice(args);
    python("groups.py", &all).json()
}

fn create_topic(b: &str, topic: &str, partitions: u32) {
    let partitions = partitions.to_string();
    let r = python(
        "admin.py",
        &[
            "--bootstrap",
            b,
            "create",
            topic,
            "--partitions",
            &partitions,
        ],
    )
    .json();
    assert_eq!(r["error_code"], 0, "creating {topic}: {r}");
}

/// An acknowledged record: (seq, partition, offset).
type Ack = (i64, i64, i64);

/// Produces `count` records k<seq>/v<seq> (seq from `start`), all acknowledged.
fn produce(b: &str, topic: &str, count: u32, start: u32) -> Vec<Ack> {
    let (count_s, start_s) = (count.to_string(), start.to_string());
    let r = groups(
        b,
        &[
            "produce", "--topic", topic, "--count", &count_s, "--start", &start_s,
        ],
    );
    assert!(
        r["errors"] == serde_json::json!([]) && r["undelivered"] == 0,
        "produce to {topic} failed: {r}"
    );
    let acked: Vec<Ack> = r["acked"]
        .as_array()
        .unwrap_or_else(|| panic!("no acked list: {r}"))
        .iter()
        .map(|a| (i(&a[0]), i(&a[1]), i(&a[2])))
        .collect();
    assert_eq!(
        acked.len(),
        count as usize,
        "every record acknowledged: {r}"
    );
    acked
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The next offset to consume in each partition once every acked record is.
fn ends(acked: &[Ack]) -> BTreeMap<i64, i64> {
    let mut ends = BTreeMap::new();
    for &(_, p, o) in acked {
        let e = ends.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    ends
}

/// A consumed record: (partition, offset, seq).
type Rec = (i64, i64, Option<i64>);

fn recs(v: &Value) -> Vec<Rec> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a record list: {v}"))
        .iter()
        .map(|r| (i(&r[0]), i(&r[1]), r[2].as_i64()))
        .collect()
}

/// Next offset after the records of each partition.
fn ends_of(records: &[Rec]) -> BTreeMap<i64, i64> {
    let mut ends = BTreeMap::new();
    for &(p, o, _) in records {
        let e = ends.entry(p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    ends
}

fn offsets_map(v: &Value) -> BTreeMap<i64, i64> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an offsets map: {v}"))
        .iter()
        .map(|(k, o)| (k.parse().expect("partition key"), i(o)))
        .collect()
}

/// Offsets of `topic` committed by `group`, read with confluent's
/// AdminClient.list_consumer_group_offsets and kafka-python's
/// KafkaAdminClient.list_group_offsets, which must agree.
fn committed(b: &str, group: &str, topic: &str) -> BTreeMap<i64, i64> {
    let r = groups(b, &["committed", "--group", group, "--topic", topic]);
    assert!(
        r["confluent_error"].is_null() && r["kafka_python_error"].is_null(),
        "reading the offsets of {group}: {r}"
    );
    let confluent = offsets_map(&r["confluent"]);
    assert_eq!(
        confluent,
        offsets_map(&r["kafka_python"]),
        "AdminClient and kafka-python disagree on the offsets of {group}: {r}"
    );
    confluent
}

/// `groups.py consume`: exactly `count` records by one member of `group`,
/// committed; returns them.
fn consume(b: &str, group: &str, topic: &str, count: u32) -> Vec<Rec> {
    let count_s = count.to_string();
    let r = groups(
        b,
        &[
            "consume", "--topic", topic, "--group", group, "--count", &count_s,
        ],
    );
    assert_eq!(r["commit_errors"], serde_json::json!([]), "commits: {r}");
    assert_eq!(r["errors"], serde_json::json!([]), "consumer errors: {r}");
    recs(&r["records"])
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn python_bin() -> String {
    std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

// ---------------------------------------------------------------- group members

/// A `groups.py member` process: a librdkafka group member that prints its
/// rebalance callbacks and consumed records as JSON lines. Killed on drop.
struct Member {
    name: String,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Member {
    fn start(dir: &Path, b: &str, name: &str, group: &str, topic: &str, extra: &[&str]) -> Member {
        require_confluent_kafka();
        let out = dir.join(format!("member-{name}.out"));
        let err = dir.join(format!("member-{name}.err"));
        let child = Command::new(python_bin())
            .arg(clients_dir().join("groups.py"))
            .args(["--bootstrap", b, "member", "--topic", topic])
            .args(["--group", group, "--name", name])
            .args(["--session-timeout-ms", SESSION_MS])
            .args(extra)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("member stdout"))
            .stderr(std::fs::File::create(&err).expect("member stderr"))
            .spawn()
            .expect("spawn member");
        Member {
            name: name.to_string(),
            child: Some(child),
            out,
            err,
        }
    }

    /// Every complete line printed so far.
    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("member {}: bad line {l:?}: {e}", self.name))
            })
            .collect()
    }

    fn rebalance_events(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| matches!(e["ev"].as_str(), Some("assign" | "revoke" | "lost")))
            .collect()
    }

    /// Partitions owned after the last rebalance callback; None before the first.
    fn owned(&self) -> Option<BTreeSet<i64>> {
        let last = self.rebalance_events().pop()?;
        Some(last["owned"].as_array()?.iter().map(i).collect())
    }

    /// Time (epoch s) of the last assign callback.
    fn last_assign_t(&self) -> f64 {
        self.events()
            .iter()
            .rev()
            .find(|e| e["ev"] == "assign")
            .and_then(|e| e["t"].as_f64())
            .unwrap_or_else(|| panic!("member {} was never assigned", self.name))
    }

    fn records(&self) -> Vec<Rec> {
        self.events()
            .iter()
            .filter(|e| e["ev"] == "recs")
            .flat_map(|e| recs(&e["recs"]))
            .collect()
    }

    /// Foreign records, failed commits and consumer errors.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for e in self.events() {
            match e["ev"].as_str() {
                Some("recs") => {
                    if e["foreign"] != serde_json::json!([]) {
                        problems.push(format!("records of partitions it did not own: {e}"));
                    }
                    if !e["commit_error"].is_null() {
                        problems.push(format!("commit failed: {e}"));
                    }
                }
                Some("error") => problems.push(format!("consumer error: {e}")),
                _ => {}
            }
        }
        problems
    }

    fn assert_clean(&self) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "member {}: {problems:#?}\n{}",
            self.name,
            self.log()
        );
    }

    fn log(&self) -> String {
        let tail = |p: &Path, n: usize| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "--- member {} stdout (tail) ---\n{}\n--- member {} stderr (tail) ---\n{}",
            self.name,
            tail(&self.out, 40),
            self.name,
            tail(&self.err, 20)
        )
    }

    /// SIGTERM: the member closes its consumer (LeaveGroup unless static) and
    /// must exit 0 within 30 s.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("member not running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM member {}", self.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "member {} did not close within 30 s of SIGTERM\n{}",
                    self.name,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "member {} exited with {status}\n{}",
            self.name,
            self.log()
        );
        assert!(
            self.events().iter().any(|e| e["ev"] == "closed"),
            "member {} exited without closing\n{}",
            self.name,
            self.log()
        );
    }

    /// SIGKILL: no LeaveGroup; the coordinator only learns from the session timeout.
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("member not running");
        child.kill().expect("SIGKILL member");
        let _ = child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("{}", self.log());
        }
    }
}

/// Polls `check` every 100 ms until it returns Some; after `timeout` fails,
/// showing the members' output.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    members: &[&Member],
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = members.iter().map(|m| m.log()).collect();
            panic!(
                "timed out ({timeout:?}) waiting for {what}\n{}",
                logs.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Partition → owning member, when every member owns at least one partition,
/// no partition has two owners and together they own exactly 0..partitions.
fn owners(members: &[&Member], partitions: i64) -> Option<BTreeMap<i64, String>> {
    let mut map = BTreeMap::new();
    for m in members {
        let owned = m.owned()?;
        if owned.is_empty() {
            return None;
        }
        for p in owned {
            if map.insert(p, m.name.clone()).is_some() {
                return None;
            }
        }
    }
    map.keys().copied().eq(0..partitions).then_some(map)
}

fn wait_owners(members: &[&Member], partitions: i64) -> BTreeMap<i64, String> {
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    wait_for(
        &format!("partitions 0..{partitions} shared by {names:?}"),
        Duration::from_secs(60),
        members,
        || owners(members, partitions),
    )
}

/// Waits until every acked record was consumed by one of `members`, then a
/// little longer so that duplicates would show.
fn wait_consumed(members: &[&Member], acked: &[Ack]) {
    wait_for(
        &format!("{} records consumed", acked.len()),
        Duration::from_secs(60),
        members,
        || {
            let got: BTreeSet<(i64, i64)> = members
                .iter()
                .flat_map(|m| m.records())
                .map(|(p, o, _)| (p, o))
                .collect();
            acked
                .iter()
                .all(|&(_, p, o)| got.contains(&(p, o)))
                .then_some(())
        },
    );
    thread::sleep(Duration::from_millis(700));
}

/// Every acked record was consumed exactly once (with its own key and value)
/// across `records`, and nothing else was.
fn assert_exactly_once<'a>(records: impl IntoIterator<Item = (&'a str, Rec)>, acked: &[Ack]) {
    // (partition, offset) -> who consumed it, with which seq.
    type Readers<'a> = Vec<(&'a str, Option<i64>)>;
    let mut seen: BTreeMap<(i64, i64), Readers> = BTreeMap::new();
    for (who, (p, o, seq)) in records {
        seen.entry((p, o)).or_default().push((who, seq));
    }
    let mut wrong = Vec::new();
    for &(seq, p, o) in acked {
        match seen.get(&(p, o)).map(Vec::as_slice) {
            Some([(_, s)]) if *s == Some(seq) => {}
            other => wrong.push(format!(
                "seq {seq} at {p}/{o}: consumed as {other:?} (want exactly once)"
            )),
        }
    }
    let produced: BTreeSet<(i64, i64)> = acked.iter().map(|&(_, p, o)| (p, o)).collect();
    for (at, who) in &seen {
        if !produced.contains(at) {
            wrong.push(format!("{at:?} consumed by {who:?} but never produced"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} problems over {} records, first: {:#?}",
        wrong.len(),
        acked.len(),
        &wrong[..wrong.len().min(10)]
    );
}

fn member_records<'a>(members: &[&'a Member]) -> Vec<(&'a str, Rec)> {
    members
        .iter()
        .flat_map(|m| m.records().into_iter().map(|r| (m.name.as_str(), r)))
        .collect()
}

// ---------------------------------------------------------------- raw protocol

/// One connection for raw group requests (JoinGroup and SyncGroup may wait
/// for other members, hence the long read timeout).
struct Conn {
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    fn open(b: &str) -> Conn {
        let stream = raw_connect(b);
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Conn {
            stream,
            correlation: 0,
        }
    }

    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Resp {
        self.correlation += 1;
        let frame = encode_request(
            api_key,
            version,
            self.correlation,
            "strom-groups-test",
            request,
        )
        .expect("encode request");
        self.stream.write_all(&frame).expect("send");
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .unwrap_or_else(|e| panic!("{api_key:?} v{version}: no response ({e})"));
        let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream
            .read_exact(&mut response)
            .expect("response body");
        let mut buf = Bytes::from(response);
        assert_eq!(buf.get_i32(), self.correlation, "correlation id");
        if api_key.response_header_version(version) >= 1 {
            assert_eq!(buf.get_u8(), 0, "no response header tags");
        }
        Resp::decode(&mut buf, version)
            .unwrap_or_else(|e| panic!("decode {api_key:?} v{version} response: {e}"))
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// ConsumerProtocolSubscription v0 for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        buf.put_i16(t.len() as i16);
        buf.put_slice(t.as_bytes());
    }
    buf.put_i32(-1); // no user data
    buf.freeze()
}

/// ConsumerProtocolAssignment v0: `partitions` of `topic`.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(1);
    buf.put_i16(topic.len() as i16);
    buf.put_slice(topic.as_bytes());
    buf.put_i32(partitions.len() as i32);
    for p in partitions {
        buf.put_i32(*p);
    }
    buf.put_i32(-1);
    buf.freeze()
}

struct Join<'a> {
    version: i16,
    group: &'a str,
    member_id: &'a str,
    instance_id: Option<&'a str>,
    session_ms: i32,
    rebalance_ms: i32,
    protocol_type: &'a str,
    protocols: &'a [&'a str],
    topics: &'a [&'a str],
}

impl<'a> Join<'a> {
    /// A v5 JoinGroup of a "consumer" member with the "range" protocol.
    fn new(group: &'a str, member_id: &'a str, topics: &'a [&'a str]) -> Join<'a> {
        Join {
            version: 5,
            group,
            member_id,
            instance_id: None,
            session_ms: 10_000,
            rebalance_ms: 10_000,
            protocol_type: "consumer",
            protocols: &["range"],
            topics,
        }
    }

    fn send(&self, conn: &mut Conn) -> JoinGroupResponse {
        let mut r = JoinGroupRequest::default();
        r.group_id = GroupId(s(self.group));
        r.session_timeout_ms = self.session_ms;
        r.rebalance_timeout_ms = self.rebalance_ms;
        r.member_id = s(self.member_id);
        r.group_instance_id = self.instance_id.map(s);
        r.protocol_type = s(self.protocol_type);
        r.protocols = self
            .protocols
            .iter()
            .map(|name| {
                let mut p = JoinGroupRequestProtocol::default();
                p.name = s(name);
                p.metadata = subscription(self.topics);
                p
            })
            .collect();
        conn.call(ApiKey::JoinGroup, self.version, &r)
    }
}

fn sync(
    conn: &mut Conn,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, Bytes)],
) -> SyncGroupResponse {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member_id);
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = a.clone();
            x
        })
        .collect();
    conn.call(ApiKey::SyncGroup, 3, &r)
}

fn heartbeat(conn: &mut Conn, group: &str, generation: i32, member_id: &str) -> i16 {
    heartbeat_as(conn, group, generation, member_id, None)
}

fn heartbeat_as(
    conn: &mut Conn,
    group: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member_id);
    r.group_instance_id = instance_id.map(s);
    let resp: HeartbeatResponse = conn.call(ApiKey::Heartbeat, 3, &r);
    resp.error_code
}

/// OffsetCommit v7 of one offset of partition 0, metadata "raw"; the
/// partition's error code.
fn commit(
    conn: &mut Conn,
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    commit_with(conn, group, generation, member_id, topic, offset, "raw")
}

fn commit_with(
    conn: &mut Conn,
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offset: i64,
    metadata: &str,
) -> i16 {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = Some(s(metadata));
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member_id);
    r.topics = vec![t];
    let resp: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 7, &r);
    assert_eq!(resp.topics.len(), 1, "{resp:?}");
    assert_eq!(resp.topics[0].partitions.len(), 1, "{resp:?}");
    resp.topics[0].partitions[0].error_code
}

/// An OffsetFetch answer for one partition: (top-level error, partition
/// error, offset, metadata).
type Fetched = (i16, i16, i64, Option<String>);

/// OffsetFetch v5 of partition 0.
fn fetch_offset(conn: &mut Conn, group: &str, topic: &str) -> Fetched {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, 5, &r);
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .unwrap_or_else(|| panic!("OffsetFetch answered no partition: {resp:?}"));
    (
        resp.error_code,
        p.error_code,
        p.committed_offset,
        p.metadata.as_ref().map(|m| m.to_string()),
    )
}

/// LeaveGroup v3 of `members`: (top-level error, per-member errors).
fn leave(conn: &mut Conn, group: &str, members: &[&str]) -> (i16, Vec<i16>) {
    let mut r = LeaveGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.members = members
        .iter()
        .map(|m| {
            let mut x = MemberIdentity::default();
            x.member_id = s(m);
            x
        })
        .collect();
    let resp: LeaveGroupResponse = conn.call(ApiKey::LeaveGroup, 3, &r);
    (
        resp.error_code,
        resp.members.iter().map(|m| m.error_code).collect(),
    )
}

fn delete_groups(conn: &mut Conn, names: &[&str]) -> BTreeMap<String, i16> {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = names.iter().map(|n| GroupId(s(n))).collect();
    let resp: DeleteGroupsResponse = conn.call(ApiKey::DeleteGroups, 2, &r);
    resp.results
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect()
}

/// OffsetDelete v0 of partition 0 of `topic`: (top-level error, partition error).
fn offset_delete(conn: &mut Conn, group: &str, topic: &str) -> (i16, Option<i16>) {
    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = 0;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = vec![t];
    let resp: OffsetDeleteResponse = conn.call(ApiKey::OffsetDelete, 0, &r);
    let partition = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.error_code);
    (resp.error_code, partition)
}

// ================================================================ tests

/// Three librdkafka members of one group on a 6-partition topic (2 shards):
/// every partition has exactly one owner, every record is consumed exactly
/// once and committed; a member that closes (LeaveGroup) hands its partitions
/// over at once; a member killed with SIGKILL hands them over after the
/// session timeout, not before.
#[test]
fn three_members_share_a_topic_and_take_over_on_leave_and_on_kill() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(FAST_GROUPS));
    let b = broker.bootstrap();
    let dir = broker.work_dir();
    create_topic(&b, "orders", 6);
    let (topic, group) = ("orders", "orders-g");
    let a = Member::start(dir, &b, "a", group, topic, &[]);
    let mut m_b = Member::start(dir, &b, "b", group, topic, &[]);
    let mut c = Member::start(dir, &b, "c", group, topic, &[]);

    let owners3 = wait_owners(&[&a, &m_b, &c], 6);
    for m in [&a, &m_b, &c] {
        assert_eq!(
            m.owned().map(|o| o.len()),
            Some(2),
            "range assignment of 6 partitions over 3 members: {owners3:?}"
        );
    }

    let mut acked = produce(&b, topic, 600, 0);
    wait_consumed(&[&a, &m_b, &c], &acked);
    assert_exactly_once(member_records(&[&a, &m_b, &c]), &acked);
    assert_eq!(
        committed(&b, group, topic),
        ends(&acked),
        "committed offsets"
    );
    // Each member only got records of its own partitions (checked by the member).
    for m in [&a, &m_b, &c] {
        m.assert_clean();
    }

    // c closes: LeaveGroup, so a and b take its partitions over without waiting
    // for its session to time out.
    let c_parts = c.owned().expect("c owns partitions");
    let t0 = now_s();
    c.terminate();
    let owners2 = wait_owners(&[&a, &m_b], 6);
    let took = a.last_assign_t().max(m_b.last_assign_t()) - t0;
    eprintln!("rebalance after LeaveGroup: {took:.2}s");
    assert!(
        took < SESSION_S - 1.5,
        "after c left, the rebalance took {took:.2}s: LeaveGroup must not wait for the \
         {SESSION_S}s session timeout"
    );
    for p in &c_parts {
        assert!(
            owners2[p] != "c",
            "partition {p} of c moved to a or b: {owners2:?}"
        );
    }
    acked.extend(produce(&b, topic, 200, 600));
    wait_consumed(&[&a, &m_b, &c], &acked);
    assert_exactly_once(member_records(&[&a, &m_b, &c]), &acked);
    assert_eq!(
        committed(&b, group, topic),
        ends(&acked),
        "committed offsets"
    );

    // b dies without a LeaveGroup: a gets everything once b's session expired.
    let t0 = now_s();
    m_b.kill9();
    let owner1 = wait_owners(&[&a], 6);
    let took = a.last_assign_t() - t0;
    eprintln!("rebalance after SIGKILL (session {SESSION_S}s): {took:.2}s");
    assert!(
        took >= SESSION_S / 2.0,
        "a took b's partitions {took:.2}s after b was killed, before b's {SESSION_S}s \
         session could expire: {owner1:?}"
    );
    assert!(
        took < SESSION_S + 10.0,
        "a took b's partitions only {took:.2}s after b was killed"
    );
    acked.extend(produce(&b, topic, 100, 800));
    wait_consumed(&[&a, &m_b, &c], &acked);
    assert_exactly_once(member_records(&[&a, &m_b, &c]), &acked);
    assert_eq!(
        committed(&b, group, topic),
        ends(&acked),
        "committed offsets"
    );
    for m in [&a, &m_b, &c] {
        m.assert_clean();
    }
}

/// A group id that is not ASCII (the coordinator shard comes from Java's
/// String.hashCode over UTF-16 units).
const G_TWO: &str = "g-zwei-\u{fc}-\u{1f680}";

/// Two groups on one topic (2 shards) are independent: each consumes every record once
/// and has its own committed offsets; a third, new group starts from the
/// earliest offsets and reads everything again.
#[test]
fn two_groups_each_receive_every_record() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(FAST_GROUPS));
    let b = broker.bootstrap();
    let dir = broker.work_dir();
    let topic = "shared";
    create_topic(&b, topic, 4);
    let x = Member::start(dir, &b, "x", "g-one", topic, &[]);
    let y = Member::start(dir, &b, "y", G_TWO, topic, &[]);
    let z = Member::start(dir, &b, "z", G_TWO, topic, &[]);
    wait_owners(&[&x], 4);
    wait_owners(&[&y, &z], 4);

    let acked = produce(&b, topic, 400, 0);
    wait_consumed(&[&x], &acked);
    wait_consumed(&[&y, &z], &acked);
    assert_exactly_once(member_records(&[&x]), &acked);
    assert_exactly_once(member_records(&[&y, &z]), &acked);
    assert_eq!(committed(&b, "g-one", topic), ends(&acked), "g-one offsets");
    assert_eq!(committed(&b, G_TWO, topic), ends(&acked), "g-two offsets");
    for m in [&x, &y, &z] {
        m.assert_clean();
    }

    let third = consume(&b, "g-three", topic, 400);
    assert_exactly_once(third.iter().map(|r| ("g-three", *r)), &acked);
    assert_eq!(
        committed(&b, "g-three", topic),
        ends(&acked),
        "g-three offsets"
    );
    // The first two groups are unchanged by the third.
    assert_eq!(committed(&b, "g-one", topic), ends(&acked), "g-one offsets");
}

/// Committed offsets live in `__consumer_offsets` and survive a clean restart
/// and kill -9: a new member of the group resumes exactly at the committed
/// offsets (nothing re-delivered, nothing skipped), and both admin clients read
/// the same offsets back; the group is listed as Empty after the restart.
#[test]
fn committed_offsets_survive_restart_and_kill_9() {
    let config = format!("{FAST_GROUPS}offsets.topic.num.partitions = 7\n");
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    let (topic, group) = ("resume", "resume-g");
    create_topic(&b, topic, 3);
    let acked = produce(&b, topic, 300, 0);

    let first = consume(&b, group, topic, 120);
    let c1 = committed(&b, group, topic);
    assert_eq!(c1, ends_of(&first), "offsets committed by the first member");

    let offset_partitions = std::fs::read_dir(broker.data_dir())
        .expect("data dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("__consumer_offsets-")
                .is_some_and(|p| p.parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(
        offset_partitions, 7,
        "__consumer_offsets has offsets.topic.num.partitions = 7 partitions in the data dir"
    );

    broker.stop();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(
        committed(&b, group, topic),
        c1,
        "offsets after a clean restart"
    );
    let listed = groups(&b, &["list-groups"]);
    assert_eq!(
        listed["groups"][group]["state"], "EMPTY",
        "the group is known again after the restart, without members: {listed}"
    );

    let second = consume(&b, group, topic, 100);
    for (p, first_offset) in
        second
            .iter()
            .fold(BTreeMap::new(), |mut m: BTreeMap<i64, i64>, &(p, o, _)| {
                let e = m.entry(p).or_insert(o);
                *e = (*e).min(o);
                m
            })
    {
        assert_eq!(
            first_offset,
            c1.get(&p).copied().unwrap_or(0),
            "after the restart, partition {p} resumed at its committed offset"
        );
    }
    let mut c2 = c1.clone();
    c2.extend(ends_of(&second));
    assert_eq!(
        committed(&b, group, topic),
        c2,
        "offsets after the second member"
    );

    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(committed(&b, group, topic), c2, "offsets after kill -9");
    let third = consume(&b, group, topic, 80);
    let all: Vec<(&str, Rec)> = first
        .iter()
        .map(|r| ("first", *r))
        .chain(second.iter().map(|r| ("second", *r)))
        .chain(third.iter().map(|r| ("third", *r)))
        .collect();
    assert_exactly_once(all, &acked);
    assert_eq!(committed(&b, group, topic), ends(&acked), "final offsets");
}

/// Static membership (group.instance.id): a member restarted with the same
/// instance id within the session timeout (after a clean close, which sends no
/// LeaveGroup for a static member, or after SIGKILL) gets its partitions back
/// and the other member sees no rebalance; a static member that does not come
/// back loses its partitions only after the session timeout.
#[test]
fn static_member_restart_gets_its_partitions_back_without_a_rebalance() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    let dir = broker.work_dir();
    let (topic, group) = ("static", "static-g");
    create_topic(&b, topic, 4);
    let mut a = Member::start(dir, &b, "a", group, topic, &["--instance-id", "inst-a"]);
    let mut m_b = Member::start(dir, &b, "b", group, topic, &["--instance-id", "inst-b"]);
    wait_owners(&[&a, &m_b], 4);
    // Wait out any rebalance still in flight, then take the reference point.
    thread::sleep(Duration::from_secs(2));
    let owners = wait_owners(&[&a, &m_b], 4);
    let a_parts = a.owned().expect("a owns");
    let b_parts = m_b.owned().expect("b owns");
    let b_rebalances = m_b.rebalance_events().len();
    let mut acked = produce(&b, topic, 100, 0);
    wait_consumed(&[&a, &m_b], &acked);

    // a closes (a static member sends no LeaveGroup) and comes back at once.
    let t0 = now_s();
    a.terminate();
    let a2 = Member::start(dir, &b, "a2", group, topic, &["--instance-id", "inst-a"]);
    wait_for(
        "the restarted static member a2 to get a's partitions",
        Duration::from_secs(30),
        &[&a2, &m_b],
        || (a2.owned() == Some(a_parts.clone())).then_some(()),
    );
    let took = a2.last_assign_t() - t0;
    assert!(
        took < SESSION_S,
        "a2 got a's partitions {took:.2}s after a closed (session timeout {SESSION_S}s)"
    );
    assert_eq!(
        m_b.rebalance_events().len(),
        b_rebalances,
        "b saw a rebalance when the static member a restarted: {:#?}",
        m_b.rebalance_events()
    );

    // b is killed and comes back at once.
    let a2_rebalances = a2.rebalance_events().len();
    m_b.kill9();
    let mut b2 = Member::start(dir, &b, "b2", group, topic, &["--instance-id", "inst-b"]);
    wait_for(
        "the restarted static member b2 to get b's partitions",
        Duration::from_secs(30),
        &[&a2, &b2],
        || (b2.owned() == Some(b_parts.clone())).then_some(()),
    );
    assert_eq!(
        a2.rebalance_events().len(),
        a2_rebalances,
        "a2 saw a rebalance when the static member b restarted after SIGKILL: {:#?}",
        a2.rebalance_events()
    );
    assert_eq!(
        owners,
        wait_owners(&[&a2, &b2], 4)
            .into_iter()
            .map(|(p, n)| (p, n.trim_end_matches('2').to_string()))
            .collect(),
        "the assignment is the one before the restarts"
    );

    acked.extend(produce(&b, topic, 100, 100));
    wait_consumed(&[&a, &m_b, &a2, &b2], &acked);
    assert_exactly_once(member_records(&[&a, &m_b, &a2, &b2]), &acked);
    assert_eq!(
        committed(&b, group, topic),
        ends(&acked),
        "committed offsets"
    );
    for m in [&a, &m_b, &a2, &b2] {
        m.assert_clean();
    }

    // b2 closes for good: a2 keeps its own partitions until b2's session
    // expires, then owns all of them.
    let t0 = now_s();
    b2.terminate();
    thread::sleep(Duration::from_secs_f64(SESSION_S / 2.0));
    assert_eq!(
        a2.rebalance_events().len(),
        a2_rebalances,
        "a static member's close must not rebalance before its session timeout"
    );
    wait_owners(&[&a2], 4);
    let took = a2.last_assign_t() - t0;
    assert!(
        (SESSION_S / 2.0..SESSION_S + 10.0).contains(&took),
        "a2 took over {took:.2}s after the static member b2 closed (session {SESSION_S}s)"
    );
}

/// Error codes of the group APIs, as Kafka returns them, with raw requests:
/// INVALID_SESSION_TIMEOUT, INVALID_GROUP_ID, MEMBER_ID_REQUIRED,
/// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
/// INCONSISTENT_GROUP_PROTOCOL, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND,
/// GROUP_SUBSCRIBED_TO_TOPIC; and the generation / leader / assignment flow of
/// two members.
#[test]
fn group_api_error_codes_match_kafka() {
    let config = format!("{FAST_GROUPS}group.max.session.timeout.ms = 60000\n");
    let broker = Broker::start(BrokerOpts::default().config(&config));
    let b = broker.bootstrap();
    create_topic(&b, "raw-t", 1);
    create_topic(&b, "raw-other", 1);
    let group = "raw-g";
    let topics: &[&str] = &["raw-t"];
    let mut conn = Conn::open(&b);

    // Session timeouts outside [min, max].
    for session_ms in [500, 120_000] {
        let mut join = Join::new(group, "", topics);
        join.session_ms = session_ms;
        let r = join.send(&mut conn);
        assert_eq!(
            r.error_code, INVALID_SESSION_TIMEOUT,
            "session {session_ms}: {r:?}"
        );
    }
    // Empty group id.
    let r = Join::new("", "", topics).send(&mut conn);
    assert_eq!(r.error_code, INVALID_GROUP_ID, "{r:?}");

    // v4+: a first JoinGroup gets a member id to join with.
    let r = Join::new(group, "", topics).send(&mut conn);
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "{r:?}");
    let a = r.member_id.to_string();
    assert!(
        !a.is_empty(),
        "MEMBER_ID_REQUIRED carries the member id: {r:?}"
    );
    let r = Join::new(group, &a, topics).send(&mut conn);
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(r.generation_id, 1, "first generation: {r:?}");
    assert_eq!(r.leader.to_string(), a, "the only member leads: {r:?}");
    assert_eq!(r.member_id.to_string(), a, "{r:?}");
    assert_eq!(r.protocol_name.as_deref(), Some("range"), "{r:?}");
    assert_eq!(r.members.len(), 1, "the leader gets the members: {r:?}");
    assert_eq!(r.members[0].metadata, subscription(topics), "{r:?}");
    let gen1 = r.generation_id;
    let mine = assignment("raw-t", &[0]);
    let r = sync(&mut conn, group, gen1, &a, &[(&a, mine.clone())]);
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(
        r.assignment, mine,
        "the leader gets its own assignment: {r:?}"
    );

    // Heartbeats and commits.
    assert_eq!(heartbeat(&mut conn, group, gen1, &a), 0);
    assert_eq!(
        heartbeat(&mut conn, group, gen1, "nobody"),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        heartbeat(&mut conn, group, gen1 + 1, &a),
        ILLEGAL_GENERATION
    );
    let unknown_group = heartbeat(&mut conn, "no-such-group", 1, "nobody");
    assert!(
        [UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND].contains(&unknown_group),
        "heartbeat to an unknown group: {unknown_group}"
    );
    assert_eq!(
        commit(&mut conn, group, gen1 + 5, &a, "raw-t", 10),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut conn, group, gen1, "nobody", "raw-t", 10),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(commit(&mut conn, group, gen1, &a, "raw-t", 42), 0);
    assert_eq!(commit(&mut conn, group, gen1, &a, "raw-other", 7), 0);
    assert_eq!(
        commit(&mut conn, group, gen1, &a, "no-such-topic", 1),
        UNKNOWN_TOPIC_OR_PARTITION,
        "commit of a topic that does not exist"
    );
    assert_eq!(
        commit_with(&mut conn, group, gen1, &a, "raw-t", 43, &"m".repeat(4097)),
        OFFSET_METADATA_TOO_LARGE,
        "metadata above offset.metadata.max.bytes (4096)"
    );
    assert_eq!(
        fetch_offset(&mut conn, group, "raw-t"),
        (0, 0, 42, Some("raw".to_string()))
    );
    let (top, part, offset, metadata) = fetch_offset(&mut conn, "never-used", "raw-t");
    assert_eq!(
        (top, part, offset),
        (0, 0, -1),
        "OffsetFetch of a group without commits"
    );
    assert!(
        metadata.is_none_or(|m| m.is_empty()),
        "no metadata without a commit"
    );
    let r = sync(&mut conn, group, gen1 + 1, &a, &[]);
    assert_eq!(
        r.error_code, ILLEGAL_GENERATION,
        "SyncGroup, wrong generation: {r:?}"
    );
    let r = sync(&mut conn, group, gen1, "nobody", &[]);
    assert_eq!(
        r.error_code, UNKNOWN_MEMBER_ID,
        "SyncGroup, unknown member: {r:?}"
    );

    // A member of another protocol type cannot join.
    let mut other = Join::new(group, "", topics);
    other.protocol_type = "connect";
    let r = other.send(&mut conn);
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL, "{r:?}");
    // Nor one without a protocol in common.
    let mut other = Join::new(group, "", topics);
    other.protocols = &["roundrobin"];
    let r = other.send(&mut conn);
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL, "{r:?}");

    // Admin operations on the active group.
    let mut admin = Conn::open(&b);
    let deleted = delete_groups(&mut admin, &[group, "no-such-group"]);
    assert_eq!(deleted[group], NON_EMPTY_GROUP, "{deleted:?}");
    assert_eq!(deleted["no-such-group"], GROUP_ID_NOT_FOUND, "{deleted:?}");
    assert_eq!(
        offset_delete(&mut admin, group, "raw-t"),
        (0, Some(GROUP_SUBSCRIBED_TO_TOPIC)),
        "OffsetDelete of a topic the active group subscribes to"
    );
    assert_eq!(
        offset_delete(&mut admin, group, "raw-other"),
        (0, Some(0)),
        "OffsetDelete of a topic the group does not subscribe to"
    );
    assert_eq!(
        fetch_offset(&mut admin, group, "raw-other").2,
        -1,
        "the deleted offset is gone"
    );
    let (top, _) = offset_delete(&mut admin, "no-such-group", "raw-t");
    assert_eq!(top, GROUP_ID_NOT_FOUND, "OffsetDelete of an unknown group");
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(s(group)), GroupId(s("no-such-group"))];
    let d: DescribeGroupsResponse = admin.call(ApiKey::DescribeGroups, 5, &describe);
    assert_eq!(d.groups.len(), 2, "{d:?}");
    let g = &d.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.protocol_type.as_str(),
            g.protocol_data.as_str()
        ),
        (0, "Stable", "consumer", "range"),
        "{d:?}"
    );
    assert_eq!(g.members.len(), 1, "{d:?}");
    assert_eq!(g.members[0].member_id.as_str(), a, "{d:?}");
    assert_eq!(
        g.members[0].client_id.as_str(),
        "strom-groups-test",
        "{d:?}"
    );
    assert_eq!(g.members[0].member_assignment, mine, "{d:?}");
    assert_eq!(g.members[0].member_metadata, subscription(topics), "{d:?}");
    let unknown = &d.groups[1];
    assert_eq!(
        (unknown.error_code, unknown.group_state.as_str()),
        (0, "Dead"),
        "DescribeGroups v5 of an unknown group: {d:?}"
    );

    // A second member: its join starts a rebalance that waits for a.
    let r = Join::new(group, "", topics).send(&mut admin);
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "{r:?}");
    let m2 = r.member_id.to_string();
    let b2 = b.clone();
    let m2c = m2.clone();
    let joiner = thread::spawn(move || {
        let mut conn = Conn::open(&b2);
        let r = Join::new("raw-g", &m2c, &["raw-t"]).send(&mut conn);
        (conn, r)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = heartbeat(&mut conn, group, gen1, &a);
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, 0, "heartbeat while the second member joins");
        assert!(
            Instant::now() < deadline,
            "no REBALANCE_IN_PROGRESS within 10 s of a second member joining"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let mut listing = ListGroupsRequest::default();
    listing.states_filter = vec![s("PreparingRebalance")];
    let l: ListGroupsResponse = admin.call(ApiKey::ListGroups, 4, &listing);
    assert!(
        l.groups.iter().any(|g| g.group_id.0.as_str() == group),
        "ListGroups with state PreparingRebalance: {l:?}"
    );
    let r = Join::new(group, &a, topics).send(&mut conn);
    let (mut conn2, r2) = joiner.join().expect("second member");
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(r2.error_code, 0, "{r2:?}");
    let gen2 = r.generation_id;
    assert_eq!(gen2, gen1 + 1, "{r:?}");
    assert_eq!(r2.generation_id, gen2, "{r2:?}");
    assert_eq!(r.leader.as_str(), a, "the old leader stays leader: {r:?}");
    assert_eq!(r2.leader.as_str(), a, "{r2:?}");
    assert_eq!(r.members.len(), 2, "the leader sees both members: {r:?}");
    assert!(
        r2.members.is_empty(),
        "followers get no member list: {r2:?}"
    );
    // CompletingRebalance (joined, not synced): heartbeats are fine, commits
    // wait for the assignment.
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(s(group))];
    let d: DescribeGroupsResponse = admin.call(ApiKey::DescribeGroups, 5, &describe);
    assert_eq!(
        d.groups[0].group_state.as_str(),
        "CompletingRebalance",
        "{d:?}"
    );
    assert_eq!(
        heartbeat(&mut conn2, group, gen2, &m2),
        0,
        "heartbeat before SyncGroup"
    );
    assert_eq!(
        commit(&mut conn, group, gen2, &a, "raw-t", 43),
        REBALANCE_IN_PROGRESS,
        "commit before SyncGroup"
    );
    // The follower's SyncGroup waits for the leader's.
    let theirs = assignment("raw-t", &[]);
    let m2c = m2.clone();
    let follower = thread::spawn(move || {
        let r = sync(&mut conn2, "raw-g", gen2, &m2c, &[]);
        (conn2, r)
    });
    thread::sleep(Duration::from_millis(300));
    let r = sync(
        &mut conn,
        group,
        gen2,
        &a,
        &[(&a, mine.clone()), (&m2, theirs.clone())],
    );
    assert_eq!((r.error_code, &r.assignment), (0, &mine), "{r:?}");
    let (mut conn2, r2) = follower.join().expect("follower sync");
    assert_eq!((r2.error_code, &r2.assignment), (0, &theirs), "{r2:?}");
    assert_eq!(heartbeat(&mut conn, group, gen1, &a), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut conn, group, gen2, &a), 0);
    assert_eq!(heartbeat(&mut conn2, group, gen2, &m2), 0);

    // LeaveGroup: unknown members are refused one by one; m2 leaves and a is
    // told to rejoin.
    let (top, each) = leave(&mut admin, group, &["nobody"]);
    assert_eq!(
        (top, each),
        (0, vec![UNKNOWN_MEMBER_ID]),
        "leave of an unknown member"
    );
    let (top, each) = leave(&mut conn2, group, &[&m2]);
    assert_eq!((top, each), (0, vec![0]), "leave of m2");
    assert_eq!(heartbeat(&mut conn, group, gen2, &a), REBALANCE_IN_PROGRESS);
    let r = Join::new(group, &a, topics).send(&mut conn);
    assert_eq!(
        (r.error_code, r.generation_id, r.members.len()),
        (0, gen2 + 1, 1),
        "{r:?}"
    );
    let r = sync(&mut conn, group, gen2 + 1, &a, &[(&a, mine.clone())]);
    assert_eq!(r.error_code, 0, "{r:?}");
    // a leaves: the group is empty and can be deleted, its offsets with it.
    let (top, each) = leave(&mut conn, group, &[&a]);
    assert_eq!((top, each), (0, vec![0]), "leave of a");
    assert_eq!(fetch_offset(&mut admin, group, "raw-t").2, 42);
    let deleted = delete_groups(&mut admin, &[group]);
    assert_eq!(deleted[group], 0, "{deleted:?}");
    assert_eq!(
        fetch_offset(&mut admin, group, "raw-t").2,
        -1,
        "offsets of a deleted group are gone"
    );

    // JoinGroup v1 (before MEMBER_ID_REQUIRED) joins at once with a new id;
    // LeaveGroup v1 names the member directly.
    let mut old = Join::new("raw-v1", "", topics);
    old.version = 1;
    let r = old.send(&mut conn);
    assert_eq!(r.error_code, 0, "{r:?}");
    assert!(!r.member_id.is_empty(), "{r:?}");
    let mut l = LeaveGroupRequest::default();
    l.group_id = GroupId(s("raw-v1"));
    l.member_id = r.member_id.clone();
    let resp: LeaveGroupResponse = conn.call(ApiKey::LeaveGroup, 1, &l);
    assert_eq!(resp.error_code, 0, "{resp:?}");

    // A commit with generation -1 and no member to a group without members
    // (how admin tools reset offsets) is accepted.
    assert_eq!(commit(&mut conn, "raw-simple", -1, "", "raw-t", 5), 0);
    assert_eq!(fetch_offset(&mut conn, "raw-simple", "raw-t").2, 5);

    // Static members (v5, group.instance.id) join without MEMBER_ID_REQUIRED; a
    // second join with the same instance id replaces the first incarnation
    // without a rebalance, hands it the old assignment, and fences the old one.
    let sg = "raw-static";
    let mut join = Join::new(sg, "", topics);
    join.instance_id = Some("i1");
    let r = join.send(&mut conn);
    assert_eq!(r.error_code, 0, "static join: {r:?}");
    let (x, gen) = (r.member_id.to_string(), r.generation_id);
    let theirs = assignment("raw-t", &[0]);
    let r = sync(&mut conn, sg, gen, &x, &[(&x, theirs.clone())]);
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(heartbeat_as(&mut conn, sg, gen, &x, Some("i1")), 0);
    let mut again = Conn::open(&b);
    let r = join.send(&mut again);
    assert_eq!(r.error_code, 0, "static rejoin: {r:?}");
    let y = r.member_id.to_string();
    assert_ne!(y, x, "the new incarnation gets a new member id: {r:?}");
    assert_eq!(
        r.generation_id, gen,
        "no rebalance for a static rejoin: {r:?}"
    );
    let r = sync(&mut again, sg, gen, &y, &[]);
    assert_eq!(
        (r.error_code, &r.assignment),
        (0, &theirs),
        "the new incarnation gets the old assignment: {r:?}"
    );
    assert_eq!(
        heartbeat_as(&mut conn, sg, gen, &x, Some("i1")),
        FENCED_INSTANCE_ID,
        "the old incarnation is fenced"
    );
    assert_eq!(heartbeat_as(&mut again, sg, gen, &y, Some("i1")), 0);
}

/// The admin API through confluent's AdminClient (2 shards, so the groups
/// live on different coordinator shards): ListGroups (with a state
/// filter), DescribeGroups, DeleteGroups (refused while the group has members,
/// NON_EMPTY_GROUP) and OffsetDelete through kafka-python (refused with
/// GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to the topic).
#[test]
fn admin_lists_describes_and_deletes_groups_and_offsets() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(FAST_GROUPS));
    let b = broker.bootstrap();
    let dir = broker.work_dir();
    let topic = "adm";
    create_topic(&b, topic, 3);
    let mut m = Member::start(dir, &b, "adm-1", "active", topic, &[]);
    wait_owners(&[&m], 3);
    let acked = produce(&b, topic, 30, 0);
    wait_consumed(&[&m], &acked);
    let idle = consume(&b, "idle", topic, 30);
    assert_exactly_once(idle.iter().map(|r| ("idle", *r)), &acked);
    assert_eq!(committed(&b, "idle", topic), ends(&acked));

    let all = groups(&b, &["list-groups"]);
    assert_eq!(all["errors"], serde_json::json!([]), "{all}");
    assert_eq!(all["groups"]["active"]["state"], "STABLE", "{all}");
    assert_eq!(all["groups"]["idle"]["state"], "EMPTY", "{all}");
    assert_eq!(all["groups"]["active"]["simple"], false, "{all}");
    for g in ["active", "idle"] {
        assert!(
            all["kafka_python"].get(g).is_some(),
            "kafka-python list_groups has {g}: {all}"
        );
    }
    let stable = groups(&b, &["list-groups", "--state", "STABLE"]);
    assert!(
        stable["groups"].get("active").is_some() && stable["groups"].get("idle").is_none(),
        "states=STABLE: {stable}"
    );
    let empty = groups(&b, &["list-groups", "--state", "EMPTY"]);
    assert!(
        empty["groups"].get("idle").is_some() && empty["groups"].get("active").is_none(),
        "states=EMPTY: {empty}"
    );

    let d = groups(&b, &["describe", "--group", "active", "--group", "idle"]);
    let active = &d["groups"]["active"];
    assert!(active["error"].is_null(), "{d}");
    assert_eq!(active["state"], "STABLE", "{d}");
    assert_eq!(active["assignor"], "range", "{d}");
    let members = active["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{d}");
    assert_eq!(members[0]["client_id"], "adm-1", "{d}");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([[topic, 0], [topic, 1], [topic, 2]]),
        "{d}"
    );
    assert_eq!(d["groups"]["idle"]["state"], "EMPTY", "{d}");
    assert_eq!(d["groups"]["idle"]["members"], serde_json::json!([]), "{d}");

    // OffsetDelete (kafka-python).
    let r = groups(
        &b,
        &[
            "delete-offsets",
            "--group",
            "active",
            "--topic",
            topic,
            "--partition",
            "0",
        ],
    );
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(
        r["partitions"]["0"][0], GROUP_SUBSCRIBED_TO_TOPIC,
        "OffsetDelete while a member subscribes to the topic: {r}"
    );
    assert_eq!(
        committed(&b, "active", topic),
        ends(&acked),
        "nothing deleted"
    );
    let r = groups(
        &b,
        &[
            "delete-offsets",
            "--group",
            "idle",
            "--topic",
            topic,
            "--partition",
            "0",
        ],
    );
    assert!(
        r["error"].is_null() && r["partitions"]["0"].is_null(),
        "{r}"
    );
    let mut left = ends(&acked);
    left.remove(&0);
    assert_eq!(
        committed(&b, "idle", topic),
        left,
        "partition 0's offset deleted"
    );

    // DeleteGroups.
    let r = groups(
        &b,
        &[
            "delete-groups",
            "--group",
            "active",
            "--group",
            "idle",
            "--group",
            "nope",
        ],
    );
    assert_eq!(r["results"]["active"][0], NON_EMPTY_GROUP, "{r}");
    assert!(r["results"]["idle"].is_null(), "{r}");
    assert_eq!(r["results"]["nope"][0], GROUP_ID_NOT_FOUND, "{r}");
    assert_eq!(
        committed(&b, "idle", topic),
        BTreeMap::new(),
        "idle's offsets"
    );
    let all = groups(&b, &["list-groups"]);
    assert!(
        all["groups"].get("idle").is_none(),
        "deleted group listed: {all}"
    );
    // A new member of the deleted group starts from the beginning again.
    let again = consume(&b, "idle", topic, 30);
    assert_exactly_once(again.iter().map(|r| ("idle again", *r)), &acked);

    // Once its member left, "active" is empty and can be deleted.
    m.terminate();
    m.assert_clean();
    let d = groups(&b, &["describe", "--group", "active"]);
    assert_eq!(d["groups"]["active"]["state"], "EMPTY", "{d}");
    let r = groups(&b, &["delete-groups", "--group", "active"]);
    assert!(r["results"]["active"].is_null(), "{r}");
    assert_eq!(committed(&b, "active", topic), BTreeMap::new());
}

/// kafka-python's KafkaConsumer with a group id: subscribes, gets every
/// partition, consumes, commits; a second consumer of the group resumes at
/// the committed offsets.
#[test]
fn kafka_python_group_consumer_commits_and_resumes() {
    require_kafka_python();
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    let (topic, group) = ("kp", "kp-g");
    create_topic(&b, topic, 3);
    let acked = produce(&b, topic, 200, 0);
    let run = |count: &str| {
        python(
            "groups_kp.py",
            &[
                "--bootstrap",
                &b,
                "--topic",
                topic,
                "--group",
                group,
                "--count",
                count,
            ],
        )
        .json()
    };

    let first = run("120");
    assert_eq!(first["assignment"], serde_json::json!([0, 1, 2]), "{first}");
    let r1 = recs(&first["records"]);
    assert_eq!(offsets_map(&first["committed"]), ends_of(&r1), "{first}");
    assert_eq!(committed(&b, group, topic), ends_of(&r1));

    let second = run("80");
    let r2 = recs(&second["records"]);
    let c1 = ends_of(&r1);
    for &(p, o, _) in &r2 {
        assert!(
            o >= c1.get(&p).copied().unwrap_or(0),
            "{p}/{o} consumed again after its commit: {second}"
        );
    }
    let all: Vec<(&str, Rec)> = r1
        .iter()
        .map(|r| ("first", *r))
        .chain(r2.iter().map(|r| ("second", *r)))
        .collect();
    assert_exactly_once(all, &acked);
    assert_eq!(committed(&b, group, topic), ends(&acked));
}

/// librdkafka's cooperative-sticky assignor (incremental rebalancing over the
/// classic protocol): when a member leaves, the others keep their partitions
/// (nothing is revoked from them) and take the leaver's; a member that joins
/// gets partitions revoked from the others in a first rebalance and assigned
/// to it in a second; every record is consumed exactly once throughout.
#[test]
fn cooperative_sticky_members_keep_their_partitions() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    let dir = broker.work_dir();
    let (topic, group) = ("coop", "coop-g");
    create_topic(&b, topic, 6);
    let coop: &[&str] = &["--strategy", "cooperative-sticky"];
    let a = Member::start(dir, &b, "a", group, topic, coop);
    let m_b = Member::start(dir, &b, "b", group, topic, coop);
    let mut c = Member::start(dir, &b, "c", group, topic, coop);
    wait_owners(&[&a, &m_b, &c], 6);
    thread::sleep(Duration::from_secs(1));
    wait_owners(&[&a, &m_b, &c], 6);
    let mut acked = produce(&b, topic, 300, 0);
    wait_consumed(&[&a, &m_b, &c], &acked);

    let (a_had, b_had) = (a.owned().expect("a"), m_b.owned().expect("b"));
    let revokes = |m: &Member| {
        m.events()
            .iter()
            .filter(|e| e["ev"] == "revoke" && e["partitions"] != serde_json::json!([]))
            .count()
    };
    let (a_revokes, b_revokes) = (revokes(&a), revokes(&m_b));
    c.terminate();
    wait_owners(&[&a, &m_b], 6);
    assert!(
        a.owned().expect("a").is_superset(&a_had) && m_b.owned().expect("b").is_superset(&b_had),
        "a and b keep their partitions when c leaves: a {a_had:?} -> {:?}, b {b_had:?} -> {:?}",
        a.owned(),
        m_b.owned()
    );
    assert_eq!(
        (revokes(&a), revokes(&m_b)),
        (a_revokes, b_revokes),
        "nothing revoked from a or b when c left"
    );
    acked.extend(produce(&b, topic, 200, 300));
    wait_consumed(&[&a, &m_b, &c], &acked);

    let d = Member::start(dir, &b, "d", group, topic, coop);
    let owners = wait_owners(&[&a, &m_b, &d], 6);
    for m in [&a, &m_b, &d] {
        assert_eq!(
            m.owned().map(|o| o.len()),
            Some(2),
            "balanced again after d joined: {owners:?}"
        );
    }
    acked.extend(produce(&b, topic, 200, 500));
    wait_consumed(&[&a, &m_b, &c, &d], &acked);
    assert_exactly_once(member_records(&[&a, &m_b, &c, &d]), &acked);
    assert_eq!(
        committed(&b, group, topic),
        ends(&acked),
        "committed offsets"
    );
    for m in [&a, &m_b, &c, &d] {
        m.assert_clean();
    }
}

/// offsets.retention.minutes: the offsets of a group that has been empty for
/// the retention period are deleted (not earlier), and so are a standalone
/// (simple) committer's; a group with a member keeps its offsets; the
/// deletion survives a restart.
#[test]
fn offsets_of_empty_groups_expire_after_the_retention() {
    let config = format!(
        "{FAST_GROUPS}offsets.retention.minutes = 1\noffsets.retention.check.interval.ms = 500\n"
    );
    let mut broker = Broker::start(BrokerOpts::default().config(&config));
    let b = broker.bootstrap();
    let dir = broker.work_dir().to_path_buf();
    let topic = "ret";
    create_topic(&b, topic, 2);
    let acked = produce(&b, topic, 40, 0);
    let stays = Member::start(&dir, &b, "stays", "stays", topic, &[]);
    wait_consumed(&[&stays], &acked);
    let goes = consume(&b, "goes", topic, 40);
    let empty_at = Instant::now();
    assert_eq!(committed(&b, "goes", topic), ends_of(&goes));
    let mut conn = Conn::open(&b);
    assert_eq!(commit(&mut conn, "simple", -1, "", topic, 3), 0);
    assert_eq!(fetch_offset(&mut conn, "goes", topic).2, ends_of(&goes)[&0]);

    let gone_after = wait_for(
        "the offsets of the empty group to expire",
        Duration::from_secs(120),
        &[&stays],
        // One raw OffsetFetch per poll: two admin clients could read on
        // either side of the expiry.
        || (fetch_offset(&mut conn, "goes", topic).2 == -1).then(|| empty_at.elapsed()),
    );
    assert_eq!(committed(&b, "goes", topic), BTreeMap::new(), "expired");
    eprintln!("offsets of the empty group expired after {gone_after:?}");
    assert!(
        gone_after >= Duration::from_secs(55),
        "offsets expired {gone_after:?} after the group became empty, before the 1 minute retention"
    );
    wait_for(
        "the simple committer's offset to expire",
        Duration::from_secs(10),
        &[&stays],
        || (fetch_offset(&mut conn, "simple", topic).2 == -1).then_some(()),
    );
    assert_eq!(
        committed(&b, "stays", topic),
        ends(&acked),
        "a group with a member keeps its offsets"
    );
    stays.assert_clean();
    drop(stays);
    drop(conn);

    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(
        committed(&b, "goes", topic),
        BTreeMap::new(),
        "after a restart"
    );
    let mut conn = Conn::open(&b);
    assert_eq!(
        fetch_offset(&mut conn, "simple", topic).2,
        -1,
        "after a restart"
    );
    // Members are not kept over a restart, so "stays" is empty now: its
    // retention starts over, it did not run out while it had a member.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        committed(&b, "stays", topic),
        ends(&acked),
        "the offsets of the group that had a member until the restart, 3 s after it"
    );
}

/// Rebalance corner cases with raw requests: a member that does not rejoin
/// within the rebalance timeout is dropped from the new generation (and then
/// unknown); a follower that sends JoinGroup again with unchanged metadata to
/// a stable group gets the current generation back without a rebalance.
#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    create_topic(&b, "rt-t", 1);
    let (group, topics): (&str, &[&str]) = ("rt-g", &["rt-t"]);
    let join = |conn: &mut Conn, member: &str| {
        let mut j = Join::new(group, member, topics);
        j.rebalance_ms = 2_000;
        j.send(conn)
    };
    let new_member = |conn: &mut Conn| {
        let r = join(conn, "");
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "{r:?}");
        r.member_id.to_string()
    };
    let mine = assignment("rt-t", &[0]);
    let none = assignment("rt-t", &[]);

    // a alone.
    let mut ca = Conn::open(&b);
    let a = new_member(&mut ca);
    let r = join(&mut ca, &a);
    assert_eq!((r.error_code, r.leader.as_str()), (0, a.as_str()), "{r:?}");
    let gen1 = r.generation_id;
    assert_eq!(
        sync(&mut ca, group, gen1, &a, &[(&a, mine.clone())]).error_code,
        0
    );

    // b joins; a rejoins when its heartbeat says so.
    let mut cb = Conn::open(&b);
    let bm = new_member(&mut cb);
    let b_join = {
        let bm = bm.clone();
        thread::spawn(move || {
            let mut j = Join::new("rt-g", &bm, &["rt-t"]);
            j.rebalance_ms = 2_000;
            let r = j.send(&mut cb);
            (cb, r)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut ca, group, gen1, &a) != REBALANCE_IN_PROGRESS {
        assert!(Instant::now() < deadline, "no rebalance after b joined");
        thread::sleep(Duration::from_millis(50));
    }
    let r = join(&mut ca, &a);
    let (mut cb, rb) = b_join.join().expect("b joins");
    let gen2 = r.generation_id;
    assert_eq!(
        (r.error_code, rb.error_code, rb.generation_id),
        (0, 0, gen2),
        "{r:?} {rb:?}"
    );
    let follower = thread::spawn(move || {
        let r = sync(&mut cb, "rt-g", gen2, &rb.member_id, &[]);
        (cb, r)
    });
    thread::sleep(Duration::from_millis(200));
    let r = sync(
        &mut ca,
        group,
        gen2,
        &a,
        &[(&a, mine.clone()), (&bm, none.clone())],
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    let (mut cb, r) = follower.join().expect("b syncs");
    assert_eq!((r.error_code, &r.assignment), (0, &none), "{r:?}");

    // A follower re-sending JoinGroup with the same metadata to a stable group
    // is answered at once with the current generation: no rebalance.
    let r = join(&mut cb, &bm);
    assert_eq!(
        (r.error_code, r.generation_id),
        (0, gen2),
        "follower rejoin: {r:?}"
    );
    assert_eq!(r.leader.as_str(), a, "{r:?}");
    assert_eq!(heartbeat(&mut ca, group, gen2, &a), 0, "no rebalance for a");

    // c joins; a rejoins, b only heartbeats: after the rebalance timeout (2 s)
    // the new generation has a and c, and b is unknown.
    let mut cc = Conn::open(&b);
    let cm = new_member(&mut cc);
    let t0 = Instant::now();
    let c_join = {
        let cm = cm.clone();
        thread::spawn(move || {
            let mut j = Join::new("rt-g", &cm, &["rt-t"]);
            j.rebalance_ms = 2_000;
            let r = j.send(&mut cc);
            (cc, r)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut ca, group, gen2, &a) != REBALANCE_IN_PROGRESS {
        assert!(Instant::now() < deadline, "no rebalance after c joined");
        thread::sleep(Duration::from_millis(50));
    }
    let a_join = {
        let a = a.clone();
        thread::spawn(move || {
            let mut j = Join::new("rt-g", &a, &["rt-t"]);
            j.rebalance_ms = 2_000;
            let r = j.send(&mut ca);
            (ca, r)
        })
    };
    // b keeps heartbeating (so its session does not expire) but never rejoins.
    let mut b_codes = BTreeSet::new();
    while !a_join.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the rebalance never completed"
        );
        b_codes.insert(heartbeat(&mut cb, group, gen2, &bm));
        thread::sleep(Duration::from_millis(200));
    }
    let (mut ca, r) = a_join.join().expect("a rejoins");
    let (_cc, rc) = c_join.join().expect("c joins");
    let took = t0.elapsed();
    eprintln!("rebalance without b completed after {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "the rebalance completed after {took:?}, before the 2 s rebalance timeout, without b"
    );
    assert_eq!(
        b_codes,
        BTreeSet::from([REBALANCE_IN_PROGRESS]),
        "b's heartbeats meanwhile"
    );
    assert_eq!((r.error_code, rc.error_code), (0, 0), "{r:?} {rc:?}");
    assert_eq!(
        (r.generation_id, rc.generation_id),
        (gen2 + 1, gen2 + 1),
        "{r:?} {rc:?}"
    );
    let mut ids: Vec<String> = r.members.iter().map(|m| m.member_id.to_string()).collect();
    ids.sort();
    let mut want = vec![a.clone(), cm.clone()];
    want.sort();
    assert_eq!(ids, want, "the new generation has a and c, not b: {r:?}");
    assert_eq!(
        heartbeat(&mut cb, group, gen2 + 1, &bm),
        UNKNOWN_MEMBER_ID,
        "b was removed"
    );
    assert_eq!(heartbeat(&mut ca, group, gen2 + 1, &a), 0);
}

/// Offsets of many groups (spread over both shards and many partitions of
/// `__consumer_offsets`), each committed twice, survive kill -9: every group
/// reads back its last commit, through raw OffsetFetch and both admin clients.
#[test]
fn offsets_of_many_groups_survive_kill_9() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(FAST_GROUPS));
    let b = broker.bootstrap();
    create_topic(&b, "many", 1);
    let groups_n = 200;
    let mut conn = Conn::open(&b);
    for g in 0..groups_n {
        let group = format!("many-{g}");
        assert_eq!(commit(&mut conn, &group, -1, "", "many", 1000 + g), 0);
        assert_eq!(commit(&mut conn, &group, -1, "", "many", 2000 + g), 0);
    }
    drop(conn);
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    let mut conn = Conn::open(&b);
    let wrong: Vec<(i64, Fetched)> = (0..groups_n)
        .map(|g| (g, fetch_offset(&mut conn, &format!("many-{g}"), "many")))
        .filter(|(g, got)| (got.0, got.1, got.2) != (0, 0, 2000 + g))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {groups_n} groups lost their last commit, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(committed(&b, "many-7", "many"), BTreeMap::from([(0, 2007)]));
    let listed = groups(&b, &["list-groups"]);
    let names = listed["groups"].as_object().expect("groups");
    assert_eq!(
        (0..groups_n)
            .filter(|g| names.contains_key(&format!("many-{g}")))
            .count(),
        groups_n as usize,
        "every group is listed after the restart"
    );
}

/// Deleting a topic deletes the offsets groups committed for it (Kafka's
/// coordinator does so in onPartitionsDeleted): a group that consumes a
/// re-created topic of the same name starts from the beginning, not at the
/// old topic's committed offset, which would skip the new topic's records.
#[test]
fn deleting_a_topic_deletes_its_committed_offsets() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    let (topic, group) = ("recreated", "recreated-g");
    create_topic(&b, topic, 1);
    let old = produce(&b, topic, 50, 0);
    let first = consume(&b, group, topic, 50);
    assert_exactly_once(first.iter().map(|r| ("first", *r)), &old);
    assert_eq!(committed(&b, group, topic), BTreeMap::from([(0, 50)]));

    let r = python("admin.py", &["--bootstrap", &b, "delete", topic]).json();
    assert_eq!(r["error_code"], 0, "deleting {topic}: {r}");
    wait_for(
        "the offsets committed for the deleted topic to go",
        Duration::from_secs(10),
        &[],
        || committed(&b, group, topic).is_empty().then_some(()),
    );
    create_topic(&b, topic, 1);
    let new = produce(&b, topic, 80, 1000);
    let again = consume(&b, group, topic, 80);
    assert_exactly_once(again.iter().map(|r| ("again", *r)), &new);
}
