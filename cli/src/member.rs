//! A member of a classic consumer group for `strom consume --group`: Kafka's
//! consumer protocol (protocol type "consumer", the "range" assignor), so it
//! shares partitions with Java, librdkafka and other Kafka consumers of the
//! same group.
//!
//! Life of a member: FindCoordinator → JoinGroup (member id handshake, KIP-394)
//! → SyncGroup (the leader computes every member's assignment) → OffsetFetch
//! for the assigned partitions → Heartbeat while consuming; a heartbeat or a
//! commit answering REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION /
//! UNKNOWN_MEMBER_ID sends it back to JoinGroup → OffsetCommit after records
//! are written → LeaveGroup at the end.
//!
//! Wire formats (each prefixed by an int16 version, then the struct at that
//! version, as Kafka's `ConsumerProtocol` writes them):
//! - JoinGroup protocol metadata: `ConsumerProtocolSubscription` v0 (topics,
//!   user data). v0 because every consumer and every assignor can read it.
//! - SyncGroup assignment: `ConsumerProtocolAssignment` v0 (topic → partitions,
//!   user data).

use super::client::{Client, Session};
use super::group::decode_assignment;
use super::tools::{self, str_bytes, topic_name};
use super::{codes, is_coordinator_retriable, CliError, KafkaError};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The group's protocol type for consumers.
pub const PROTOCOL_TYPE: &str = "consumer";
/// The one assignor this member offers.
pub const RANGE: &str = "range";
/// The coordinator removes a member it has not heard from for this long.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;
/// How long the coordinator waits for members to rejoin during a rebalance.
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// How often a member heartbeats (Kafka's advice: under a third of the session).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Most JoinGroup/SyncGroup rounds in one rejoin before giving up.
const JOIN_ROUNDS_MAX: usize = 50;

const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

/// Encodes a subscription as JoinGroup protocol metadata (v0).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut subscription = ConsumerProtocolSubscription::default();
    subscription.topics = topics.iter().map(|t| str_bytes(t)).collect();
    subscription.user_data = None;
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    subscription
        .encode(&mut buf, 0)
        .expect("a v0 subscription always encodes");
    buf.freeze()
}

/// The topics of a member's subscription (any version; newer ones read as v3,
/// as Kafka does).
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>, String> {
    if bytes.len() < 2 {
        return Err("subscription shorter than its version".to_string());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("subscription has a negative version {version}"));
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version.min(3))
        .map_err(|e| format!("undecodable subscription (v{version}): {e}"))?;
    Ok(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// Encodes an assignment for SyncGroup (v0).
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut assignment = ConsumerProtocolAssignment::default();
    assignment.assigned_partitions = partitions
        .iter()
        .map(|(topic, ps)| {
            let mut tp = TopicPartition::default();
            tp.topic = topic_name(topic);
            tp.partitions = ps.clone();
            tp
        })
        .collect();
    assignment.user_data = None;
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    assignment
        .encode(&mut buf, 0)
        .expect("a v0 assignment always encodes");
    buf.freeze()
}

/// Kafka's RangeAssignor: per topic, the members subscribed to it in member id
/// order each get a contiguous range; the first `partitions % members` get one
/// extra. `members`: member id → subscribed topics; `partition_counts`: topic →
/// partitions (topics missing from it are not assigned). Every member gets an
/// entry, possibly empty.
pub fn range_assign(
    members: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, count) in partition_counts {
        // BTreeMap keys: already in member id order.
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribed.is_empty() || *count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let per_member = count / n;
        let extra = count % n;
        for (i, member) in subscribed.iter().enumerate() {
            let i = i as i32;
            let start = per_member * i + i.min(extra);
            let length = per_member + i32::from(i < extra);
            if length > 0 {
                out.get_mut(*member)
                    .expect("every member has an entry")
                    .insert(topic.clone(), (start..start + length).collect());
            }
        }
    }
    out
}

/// Why the member must rejoin instead of carrying on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Still a member of the current generation.
    Member,
    /// The group is rebalancing or forgot us: rejoin.
    MustRejoin,
}

/// This process's membership in one group, consuming one topic.
pub struct GroupMember {
    pub group: String,
    topic: String,
    member_id: String,
    generation: i32,
    protocol: Option<String>,
    last_heartbeat: Instant,
}

impl GroupMember {
    pub fn new(group: &str, topic: &str) -> GroupMember {
        GroupMember {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            protocol: None,
            last_heartbeat: Instant::now(),
        }
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    fn group_id(&self) -> GroupId {
        GroupId(str_bytes(&self.group))
    }

    /// Joins (or rejoins) the group; returns the partitions of our topic
    /// assigned to this member.
    pub fn join(&mut self, session: &mut Session) -> Result<Vec<i32>, CliError> {
        let mut backoff = Duration::from_millis(100);
        for _ in 0..JOIN_ROUNDS_MAX {
            let (code, leader, members) = self.join_group(session)?;
            match code {
                codes::NONE => {}
                MEMBER_ID_REQUIRED => continue, // member id taken from the answer
                codes::UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                    self.member_id.clear();
                    continue;
                }
                codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
                _ => return Err(self.error(code, "JoinGroup", None).into()),
            }
            let assignments = if leader == self.member_id {
                self.assign(session, &members)?
            } else {
                Vec::new()
            };
            let (code, assignment) = self.sync_group(session, assignments)?;
            match code {
                codes::NONE => {}
                codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION => continue,
                codes::UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                    self.member_id.clear();
                    continue;
                }
                _ => return Err(self.error(code, "SyncGroup", None).into()),
            }
            self.last_heartbeat = Instant::now();
            let decoded = decode_assignment(&assignment).map_err(|e| {
                CliError::Message(format!(
                    "group '{}': the leader's assignment is undecodable: {e}",
                    self.group
                ))
            })?;
            let mut partitions: Vec<i32> = decoded
                .into_iter()
                .filter(|a| a.topic == self.topic)
                .flat_map(|a| a.partitions)
                .collect();
            partitions.sort_unstable();
            partitions.dedup();
            return Ok(partitions);
        }
        Err(CliError::Message(format!(
            "group '{}': no stable assignment after {JOIN_ROUNDS_MAX} JoinGroup rounds",
            self.group
        )))
    }

    fn error(&self, code: i16, what: &str, message: Option<&str>) -> KafkaError {
        super::group::group_error(code, &self.group, what, message)
    }

    /// One JoinGroup; keeps the member id and generation it hands out.
    /// Returns the error code, the leader and (for the leader) the members'
    /// subscriptions.
    #[allow(clippy::type_complexity)]
    fn join_group(
        &mut self,
        session: &mut Session,
    ) -> Result<(i16, String, Vec<(String, Bytes)>), CliError> {
        let metadata = encode_subscription(std::slice::from_ref(&self.topic));
        let group_id = self.group_id();
        let member_id = self.member_id.clone();
        let normal = session.timeout();
        // The answer comes when the rebalance completes: up to the rebalance
        // timeout (plus the initial delay of a new group).
        let join_wait = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64) + normal;
        let (_, response) = session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            c.set_answer_timeout(join_wait)?;
            let result = c.send(|_version| {
                let mut protocol = JoinGroupRequestProtocol::default();
                protocol.name = str_bytes(RANGE);
                protocol.metadata = metadata.clone();
                let mut request = JoinGroupRequest::default();
                request.group_id = group_id.clone();
                request.session_timeout_ms = SESSION_TIMEOUT_MS;
                request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
                request.member_id = str_bytes(&member_id);
                request.group_instance_id = None;
                request.protocol_type = str_bytes(PROTOCOL_TYPE);
                request.protocols = vec![protocol];
                request
            });
            c.set_answer_timeout(normal)?;
            let (version, response) = result?;
            if is_coordinator_retriable(response.error_code) {
                return Err(KafkaError::new(response.error_code, "JoinGroup").into());
            }
            Ok((version, response))
        })?;
        if !response.member_id.is_empty() {
            self.member_id = response.member_id.to_string();
        }
        if response.error_code == codes::NONE {
            self.generation = response.generation_id;
            self.protocol = response.protocol_name.as_ref().map(|p| p.to_string());
        }
        let members = response
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.metadata.clone()))
            .collect();
        Ok((response.error_code, response.leader.to_string(), members))
    }

    /// The leader's work: the range assignment of every member.
    fn assign(
        &mut self,
        session: &mut Session,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Bytes)>, CliError> {
        let mut subscriptions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (member, metadata) in members {
            let topics = decode_subscription(metadata).unwrap_or_else(|e| {
                eprintln!(
                    "strom consume: group '{}': member {member}'s subscription is unreadable \
                     ({e}); it gets no partitions",
                    self.group
                );
                Vec::new()
            });
            subscriptions.insert(member.clone(), topics);
        }
        let mut topics: Vec<String> = subscriptions.values().flatten().cloned().collect();
        topics.sort();
        topics.dedup();
        let metadata = tools::metadata(session, Some(&topics), false)?;
        let counts: BTreeMap<String, i32> = metadata
            .topics
            .iter()
            .filter(|t| t.error_code == codes::NONE)
            .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), t.partitions.len() as i32)))
            .collect();
        Ok(range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, partitions)| (member, encode_assignment(&partitions)))
            .collect())
    }

    fn sync_group(
        &mut self,
        session: &mut Session,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<(i16, Bytes), CliError> {
        let group_id = self.group_id();
        let member_id = self.member_id.clone();
        let generation = self.generation;
        let protocol = self.protocol.clone().unwrap_or_else(|| RANGE.to_string());
        let (_, response) = session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            let (version, response) = c.send(|_version| {
                let mut request = SyncGroupRequest::default();
                request.group_id = group_id.clone();
                request.generation_id = generation;
                request.member_id = str_bytes(&member_id);
                request.group_instance_id = None;
                request.protocol_type = Some(str_bytes(PROTOCOL_TYPE));
                request.protocol_name = Some(str_bytes(&protocol));
                request.assignments = assignments
                    .iter()
                    .map(|(member, bytes)| {
                        let mut a = SyncGroupRequestAssignment::default();
                        a.member_id = str_bytes(member);
                        a.assignment = bytes.clone();
                        a
                    })
                    .collect();
                request
            })?;
            if is_coordinator_retriable(response.error_code) {
                return Err(KafkaError::new(response.error_code, "SyncGroup").into());
            }
            Ok((version, response))
        })?;
        Ok((response.error_code, response.assignment))
    }

    /// Heartbeats when one is due.
    pub fn heartbeat_if_due(&mut self, session: &mut Session) -> Result<Standing, CliError> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(Standing::Member);
        }
        let group_id = self.group_id();
        let member_id = self.member_id.clone();
        let generation = self.generation;
        let (_, response) = session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            let (version, response) = c.send(|_version| {
                let mut request = HeartbeatRequest::default();
                request.group_id = group_id.clone();
                request.generation_id = generation;
                request.member_id = str_bytes(&member_id);
                request
            })?;
            if is_coordinator_retriable(response.error_code) {
                return Err(KafkaError::new(response.error_code, "Heartbeat").into());
            }
            Ok((version, response))
        })?;
        self.last_heartbeat = Instant::now();
        self.standing(response.error_code, "Heartbeat")
    }

    fn standing(&mut self, code: i16, what: &str) -> Result<Standing, CliError> {
        match code {
            codes::NONE => Ok(Standing::Member),
            codes::REBALANCE_IN_PROGRESS | codes::ILLEGAL_GENERATION => Ok(Standing::MustRejoin),
            codes::UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                self.member_id.clear();
                Ok(Standing::MustRejoin)
            }
            _ => Err(self.error(code, what, None).into()),
        }
    }

    /// The group's committed offsets of our topic's `partitions` (those without
    /// one are left out).
    pub fn committed(
        &self,
        session: &mut Session,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, CliError> {
        let group_id = self.group_id();
        let topic = self.topic.clone();
        session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            let (version, response) = c.send(|version| {
                let mut request = OffsetFetchRequest::default();
                if version >= 8 {
                    let mut t = OffsetFetchRequestTopics::default();
                    t.name = topic_name(&topic);
                    t.partition_indexes = partitions.to_vec();
                    let mut g = OffsetFetchRequestGroup::default();
                    g.group_id = group_id.clone();
                    g.member_id = None;
                    g.member_epoch = -1;
                    g.topics = Some(vec![t]);
                    request.groups = vec![g];
                } else {
                    let mut t = OffsetFetchRequestTopic::default();
                    t.name = topic_name(&topic);
                    t.partition_indexes = partitions.to_vec();
                    request.group_id = group_id.clone();
                    request.topics = Some(vec![t]);
                }
                request
            })?;
            let mut found: Vec<(i32, i64, i16)> = Vec::new();
            let group_code = if version >= 8 {
                let mut code = codes::NONE;
                for g in &response.groups {
                    code = g.error_code;
                    for t in g.topics.iter().filter(|t| t.name.0.as_str() == topic) {
                        for p in &t.partitions {
                            found.push((p.partition_index, p.committed_offset, p.error_code));
                        }
                    }
                }
                code
            } else {
                for t in response
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == topic)
                {
                    for p in &t.partitions {
                        found.push((p.partition_index, p.committed_offset, p.error_code));
                    }
                }
                response.error_code
            };
            if group_code != codes::NONE {
                let err = super::group::group_error(group_code, &group_id.0, "OffsetFetch", None);
                return Err(err.into());
            }
            let mut offsets = BTreeMap::new();
            for (partition, offset, code) in found {
                if code != codes::NONE {
                    return Err(KafkaError::new(
                        code,
                        format!(
                            "OffsetFetch of {topic}-{partition} for group '{}' failed",
                            group_id.0.as_str()
                        ),
                    )
                    .into());
                }
                if offset >= 0 {
                    offsets.insert(partition, offset);
                }
            }
            Ok(offsets)
        })
    }

    /// Commits positions (the next offset to read) of our topic's partitions.
    pub fn commit(
        &mut self,
        session: &mut Session,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<Standing, CliError> {
        if positions.is_empty() {
            return Ok(Standing::Member);
        }
        let group_id = self.group_id();
        let member_id = self.member_id.clone();
        let generation = self.generation;
        let topic = self.topic.clone();
        let (_, response) = session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            let (version, response) = c.send(|_version| {
                let mut t = OffsetCommitRequestTopic::default();
                t.name = topic_name(&topic);
                t.partitions = positions
                    .iter()
                    .map(|(partition, offset)| {
                        let mut p = OffsetCommitRequestPartition::default();
                        p.partition_index = *partition;
                        p.committed_offset = *offset;
                        p.committed_leader_epoch = -1;
                        p.committed_metadata = Some(str_bytes(""));
                        p
                    })
                    .collect();
                let mut request = OffsetCommitRequest::default();
                request.group_id = group_id.clone();
                request.generation_id_or_member_epoch = generation;
                request.member_id = str_bytes(&member_id);
                request.group_instance_id = None;
                request.retention_time_ms = -1;
                request.topics = vec![t];
                request
            })?;
            let coordinator_moved = response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|p| is_coordinator_retriable(p.error_code));
            if let Some(p) = coordinator_moved {
                return Err(KafkaError::new(p.error_code, "OffsetCommit").into());
            }
            Ok((version, response))
        })?;
        for t in &response.topics {
            for p in &t.partitions {
                if p.error_code == codes::NONE {
                    continue;
                }
                return match self.standing(p.error_code, "OffsetCommit")? {
                    Standing::MustRejoin => Ok(Standing::MustRejoin),
                    Standing::Member => unreachable!("an error code is not membership"),
                };
            }
        }
        Ok(Standing::Member)
    }

    /// LeaveGroup, so the others get our partitions at once rather than after
    /// the session timeout. Best effort: the process is ending anyway.
    pub fn leave(&mut self, session: &mut Session) -> Result<(), CliError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let group_id = self.group_id();
        let member_id = self.member_id.clone();
        let (_, response) = session.with_coordinator(&self.group.clone(), |c: &mut Client| {
            c.send(|version| {
                let mut request = LeaveGroupRequest::default();
                request.group_id = group_id.clone();
                if version >= 3 {
                    let mut m = MemberIdentity::default();
                    m.member_id = str_bytes(&member_id);
                    m.reason = (version >= 5).then(|| str_bytes("strom consume is done"));
                    request.members = vec![m];
                } else {
                    request.member_id = str_bytes(&member_id);
                }
                request
            })
        })?;
        self.member_id.clear();
        let code = if response.error_code != codes::NONE {
            response.error_code
        } else {
            response
                .members
                .iter()
                .map(|m| m.error_code)
                .find(|c| *c != codes::NONE)
                .unwrap_or(codes::NONE)
        };
        match code {
            codes::NONE | codes::UNKNOWN_MEMBER_ID => Ok(()),
            _ => Err(self.error(code, "LeaveGroup", None).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::TopicAssignment;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_assigns_contiguous_ranges_extra_to_the_first() {
        // Kafka's RangeAssignor example: 2 consumers, 2 topics of 3 partitions.
        let out = range_assign(
            &members(&[("c0", &["t0", "t1"]), ("c1", &["t0", "t1"])]),
            &counts(&[("t0", 3), ("t1", 3)]),
        );
        assert_eq!(out["c0"]["t0"], vec![0, 1]);
        assert_eq!(out["c0"]["t1"], vec![0, 1]);
        assert_eq!(out["c1"]["t0"], vec![2]);
        assert_eq!(out["c1"]["t1"], vec![2]);
    }

    #[test]
    fn range_handles_more_members_than_partitions_and_partial_subscriptions() {
        let out = range_assign(
            &members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t", "u"])]),
            &counts(&[("t", 2), ("u", 4)]),
        );
        assert_eq!(out["a"]["t"], vec![0]);
        assert_eq!(out["b"]["t"], vec![1]);
        assert!(!out["c"].contains_key("t"));
        assert_eq!(out["c"]["u"], vec![0, 1, 2, 3]);
        // A topic nobody knows the size of is not assigned; members still get entries.
        let out = range_assign(&members(&[("a", &["gone"])]), &counts(&[]));
        assert!(out["a"].is_empty());
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let bytes = encode_subscription(&["orders".to_string()]);
        assert_eq!(&bytes[..2], &[0, 0], "version 0 prefix");
        assert_eq!(decode_subscription(&bytes), Ok(vec!["orders".to_string()]));
        let mut partitions = BTreeMap::new();
        partitions.insert("orders".to_string(), vec![0, 2]);
        let bytes = encode_assignment(&partitions);
        assert_eq!(
            decode_assignment(&bytes),
            Ok(vec![TopicAssignment {
                topic: "orders".to_string(),
                partitions: vec![0, 2]
            }])
        );
        assert!(decode_subscription(&[0]).is_err());
    }

    #[test]
    fn reads_a_v3_subscription_from_a_newer_client() {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![str_bytes("a"), str_bytes("b")];
        s.rack_id = Some(str_bytes("rack-1"));
        s.generation_id = 4;
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        s.encode(&mut buf, 3).unwrap();
        assert_eq!(
            decode_subscription(&buf),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
    }
}
