//! The consumer group coordinator (Kafka's classic group protocol).
//!
//! Group G is coordinated by the shard that owns partition
//! `abs(javaHash(G)) % offsets.topic.num.partitions` of `__consumer_offsets`
//! (Kafka's rule, so tools that compute it agree). Each shard keeps the
//! groups it coordinates in one [`Coordinator`]; nothing is shared between
//! shards. Committed offsets and group metadata are records in that
//! partition (Kafka's key/value layouts, below) appended with the synced
//! policy, and are read back when the partition is opened at start.
//!
//! State machine, as in Kafka: `Empty` → (a member joins) `PreparingRebalance`
//! → (every member rejoined, or the rebalance timeout passed; for a group
//! that was empty, after `group.initial.rebalance.delay.ms`)
//! `CompletingRebalance` → (the leader sent the assignment in SyncGroup)
//! `Stable` → (a member joins, leaves, changes its protocols or misses its
//! session timeout) `PreparingRebalance` … and back to `Empty` when the last
//! member is gone. Static members (`group.instance.id`, KIP-345) that rejoin
//! a stable group with unchanged protocols get their old assignment back
//! without a rebalance.
//!
//! # Records in `__consumer_offsets` (big-endian, strings i16 length + UTF-8)
//!
//! * offset commit: key `[i16 1][group][topic][i32 partition]`, value
//!   `[i16 3][i64 offset][i32 leader epoch][metadata][i64 commit time ms]`;
//! * group metadata: key `[i16 2][group]`, value `[i16 3][protocol type]
//!   [i32 generation][protocol or -1][leader or -1][i64 time ms][i32 0]`
//!   (Kafka's layout with an empty member list: members are not persisted,
//!   so after a restart a group is `Empty` with its generation kept and its
//!   members rejoin);
//! * a null value (tombstone) deletes the key.

use bytes::Bytes;
use futures::channel::oneshot;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::errors::KafkaCode;

pub use crate::metadata::OFFSETS_TOPIC;
/// Kafka's `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of a group.
pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    (java_hash(group) & 0x7fff_ffff) % partitions.max(1)
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    pub error: KafkaCode,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader: (member id, instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// KIP-814 (JoinGroup v9): a static leader that rejoined a stable group
    /// gets the member list but must not compute a new assignment.
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub(crate) fn error(error: KafkaCode, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            skip_assignment: false,
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup gets back.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub error: KafkaCode,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    fn error(error: KafkaCode) -> SyncOutcome {
        SyncOutcome {
            error,
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

/// Either an answer now, or one that comes when the rebalance moves on.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// A JoinGroup as the coordinator needs it.
pub struct JoinRequest {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the client understands `skip_assignment`.
    pub supports_skip_assignment: bool,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heard: Instant,
    joined_seq: u64,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

/// One group, on its coordinator shard.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// instance id → member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits for the whole delay.
    initial_delay: bool,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Wall clock when the group last became empty (offset retention).
    empty_since_ms: i64,
}

impl Group {
    fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: false,
            offsets: BTreeMap::new(),
            empty_since_ms: now_ms,
        }
    }

    /// A sign of life from a member (checked to exist): its session restarts.
    fn heard_from(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_heard = now;
        }
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    pub fn leader(&self) -> &str {
        self.leader.as_deref().unwrap_or("")
    }

    /// Topics the members subscribed to (consumer protocol metadata).
    pub fn subscribed_topics(&self) -> HashSet<String> {
        let mut topics = HashSet::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        for member in self.members.values() {
            let chosen = member
                .protocols
                .iter()
                .find(|(name, _)| Some(name) == self.protocol.as_ref())
                .or(member.protocols.first());
            if let Some((_, metadata)) = chosen {
                topics.extend(consumer_subscription_topics(metadata));
            }
        }
        topics
    }

    /// (member id, instance id, client id, host, metadata, assignment) for
    /// DescribeGroups; metadata and assignment only once stable, as Kafka.
    #[allow(clippy::type_complexity)]
    pub fn describe_members(&self) -> Vec<(String, Option<String>, String, String, Bytes, Bytes)> {
        let stable = self.state == GroupState::Stable;
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.joined_seq);
        members
            .into_iter()
            .map(|m| {
                let metadata = if stable {
                    m.protocols
                        .iter()
                        .find(|(name, _)| Some(name) == self.protocol.as_ref())
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default()
                } else {
                    Bytes::new()
                };
                let assignment = if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                };
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    metadata,
                    assignment,
                )
            })
            .collect()
    }

    /// (member id, instance id, metadata of the chosen protocol) in join
    /// order: what the leader gets to compute the assignment.
    fn member_list(&self) -> Vec<(String, Option<String>, Bytes)> {
        let mut ordered: Vec<&Member> = self.members.values().collect();
        ordered.sort_by_key(|m| m.joined_seq);
        ordered
            .iter()
            .map(|m| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == self.protocol.as_ref())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                (m.id.clone(), m.instance_id.clone(), metadata)
            })
            .collect()
    }

    fn select_protocol(&self) -> Option<String> {
        let mut candidates: Option<Vec<String>> = None;
        for member in self.members.values() {
            let names: Vec<String> = member.protocols.iter().map(|(n, _)| n.clone()).collect();
            candidates = Some(match candidates {
                None => names,
                Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
            });
        }
        let candidates = candidates?;
        // Each member votes for its most preferred candidate.
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(n))
            {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    /// Whether `protocols` share one with every current member (other than
    /// `except`).
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)], except: &str) -> bool {
        if self.members.is_empty() || self.members.keys().all(|k| k == except) {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.id != except)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }
}

/// The topics of a ConsumerProtocolSubscription (`[i16 version][i32 n]
/// [string topic]*...`); empty when it does not parse.
pub fn consumer_subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut r = Reader(metadata);
    let parse = |r: &mut Reader| -> Option<Vec<String>> {
        r.i16()?;
        let n = r.i32()?;
        let mut topics = Vec::new();
        for _ in 0..n.max(0) {
            topics.push(r.string()?);
        }
        Some(topics)
    };
    parse(&mut r).unwrap_or_default()
}

/// Settings the coordinator needs from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay: Duration,
    pub offsets_partitions: i32,
}

impl Limits {
    /// The group settings of a broker config.
    pub fn of(broker: &strom_tuning::config::BrokerConfig) -> Limits {
        Limits {
            min_session_timeout_ms: broker.group_min_session_timeout_ms,
            max_session_timeout_ms: broker.group_max_session_timeout_ms,
            initial_rebalance_delay: Duration::from_millis(
                broker.group_initial_rebalance_delay_ms.max(0) as u64,
            ),
            offsets_partitions: broker.offsets_topic_num_partitions,
        }
    }
}

/// A record to append to a `__consumer_offsets` partition.
pub struct Persist {
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// The groups one shard coordinates.
pub struct Coordinator {
    pub groups: HashMap<String, Group>,
    limits: Limits,
    seq: u64,
    /// Group metadata records to append (drained by the shard).
    pub to_persist: Vec<Persist>,
    /// Offsets committed inside transactions not ended yet (TxnOffsetCommit),
    /// per (`__consumer_offsets` partition, producer id): they become the
    /// groups' offsets when the commit marker is written, and are dropped
    /// by an abort marker.
    pub pending_txn: HashMap<(i32, i64), Vec<PendingOffset>>,
    /// The newest epoch a marker named per (partition, producer id): a
    /// TxnOffsetCommit from an older epoch is a fenced producer's.
    pub txn_epochs: HashMap<(i32, i64), i16>,
}

/// An offset committed inside a transaction: (group, (topic, partition),
/// the offset).
pub type PendingOffset = (String, (String, i32), Committed);

impl Coordinator {
    pub fn new(limits: Limits) -> Coordinator {
        Coordinator {
            groups: HashMap::new(),
            limits,
            seq: 0,
            to_persist: Vec::new(),
            pending_txn: HashMap::new(),
            txn_epochs: HashMap::new(),
        }
    }

    /// Offsets a transactional producer committed (written, not yet visible).
    pub fn add_pending_txn(
        &mut self,
        partition: i32,
        producer_id: i64,
        offsets: Vec<PendingOffset>,
    ) {
        self.pending_txn
            .entry((partition, producer_id))
            .or_default()
            .extend(offsets);
    }

    /// A marker for `producer_id` was written to `partition`: its pending
    /// offsets become the groups' committed offsets (commit) or are dropped
    /// (abort). Returns how many were applied.
    pub fn complete_txn(
        &mut self,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> usize {
        let newest = self
            .txn_epochs
            .entry((partition, producer_id))
            .or_insert(epoch);
        *newest = (*newest).max(epoch);
        let Some(offsets) = self.pending_txn.remove(&(partition, producer_id)) else {
            return 0;
        };
        if !commit {
            return 0;
        }
        let applied = offsets.len();
        for (group, key, committed) in offsets {
            let entry = self
                .groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now_ms));
            entry.empty_since_ms = entry.empty_since_ms.max(committed.commit_ms);
            entry.offsets.insert(key, committed);
        }
        applied
    }

    /// Whether `epoch` of a producer is older than one a marker named on
    /// this partition (the producer was fenced).
    pub fn txn_fenced(&self, partition: i32, producer_id: i64, epoch: i16) -> bool {
        self.txn_epochs
            .get(&(partition, producer_id))
            .is_some_and(|newest| epoch < *newest)
    }

    /// Whether a transaction not ended yet holds an offset for this group
    /// and partition (OffsetFetch with `require_stable` waits for it).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .values()
            .flatten()
            .any(|(g, (t, p), _)| g == group && t == topic && *p == partition)
    }

    /// Loads one record of a transactional batch of `__consumer_offsets`
    /// (start-up or failover): an offset commit waits for its marker.
    pub fn load_txn_record(
        &mut self,
        partition: i32,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) {
        if let (
            Some(Key::Offset {
                group,
                topic,
                partition: p,
            }),
            Some(committed),
        ) = (parse_key(key), value.and_then(parse_offset_value))
        {
            self.add_pending_txn(partition, producer_id, vec![(group, (topic, p), committed)]);
        }
    }

    pub fn partition_of(&self, group: &str) -> i32 {
        offsets_partition(group, self.limits.offsets_partitions)
    }

    fn persist_group(&mut self, group_id: &str, now_ms: i64) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        let value = group_value(group, now_ms);
        self.to_persist.push(Persist {
            partition: self.partition_of(group_id),
            key: group_key(group_id),
            value: Some(value),
        });
    }

    pub fn join(&mut self, req: JoinRequest, now: Instant, now_ms: i64) -> Reply<JoinOutcome> {
        let limits = self.limits;
        if req.group.is_empty() {
            return Reply::Now(JoinOutcome::error(
                KafkaCode::INVALID_GROUP_ID,
                &req.member_id,
            ));
        }
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return Reply::Now(JoinOutcome::error(
                KafkaCode::INVALID_SESSION_TIMEOUT,
                &req.member_id,
            ));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Reply::Now(JoinOutcome::error(
                KafkaCode::INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            ));
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group) {
            // A member id for a group that does not exist: nothing to join
            // (and no group is created for it).
            return Reply::Now(JoinOutcome::error(
                KafkaCode::UNKNOWN_MEMBER_ID,
                &req.member_id,
            ));
        }
        let group = self
            .groups
            .entry(req.group.clone())
            .or_insert_with(|| Group::new(&req.group, now_ms));
        if group.state == GroupState::Dead {
            return Reply::Now(JoinOutcome::error(
                KafkaCode::COORDINATOR_NOT_AVAILABLE,
                &req.member_id,
            ));
        }
        if !group.supports(&req.protocol_type, &req.protocols, &req.member_id) {
            return Reply::Now(JoinOutcome::error(
                KafkaCode::INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            ));
        }

        if req.member_id.is_empty() {
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if let Some(instance) = &req.instance_id {
                if let Some(old_id) = group.static_members.get(instance).cloned() {
                    return self.rejoin_static(req, old_id, new_id, now, now_ms);
                }
            } else if req.require_known_member_id {
                group.pending.insert(new_id.clone(), now);
                return Reply::Now(JoinOutcome::error(KafkaCode::MEMBER_ID_REQUIRED, &new_id));
            }
            return self.add_member(req, new_id, now, now_ms);
        }

        // A known member id.
        if let Some(instance) = &req.instance_id {
            match group.static_members.get(instance) {
                Some(id) if *id == req.member_id => {}
                Some(_) => {
                    return Reply::Now(JoinOutcome::error(
                        KafkaCode::FENCED_INSTANCE_ID,
                        &req.member_id,
                    ))
                }
                None => {}
            }
        }
        if !group.members.contains_key(&req.member_id) {
            if group.pending.remove(&req.member_id).is_some() {
                let id = req.member_id.clone();
                return self.add_member(req, id, now, now_ms);
            }
            return Reply::Now(JoinOutcome::error(
                KafkaCode::UNKNOWN_MEMBER_ID,
                &req.member_id,
            ));
        }
        let (tx, rx) = oneshot::channel();
        let group_id = req.group.clone();
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        let current = JoinOutcome {
            skip_assignment: false,
            error: KafkaCode::NONE,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol: group.protocol.clone(),
            leader: group.leader().to_string(),
            member_id: req.member_id.clone(),
            members: Vec::new(),
        };
        let member = group
            .members
            .get_mut(&req.member_id)
            .expect("checked above");
        let changed = member.protocols != req.protocols;
        member.protocols = req.protocols;
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        member.last_heard = now;
        match state {
            GroupState::Stable if !changed && !is_leader => {
                // A follower that lost its answer: the current generation.
                return Reply::Now(current);
            }
            _ => {
                member.join_waiter = Some(tx);
            }
        }
        if state != GroupState::PreparingRebalance {
            self.prepare_rebalance(&group_id, now);
        }
        self.try_complete_join(&group_id, now, now_ms, false);
        Reply::Later(rx)
    }

    fn add_member(
        &mut self,
        req: JoinRequest,
        id: String,
        now: Instant,
        now_ms: i64,
    ) -> Reply<JoinOutcome> {
        self.seq += 1;
        let seq = self.seq;
        let group = self.groups.get_mut(&req.group).expect("group exists");
        let (tx, rx) = oneshot::channel();
        if let Some(instance) = &req.instance_id {
            group.static_members.insert(instance.clone(), id.clone());
        }
        if group.protocol_type.is_none() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        group.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_heard: now,
                joined_seq: seq,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(&req.group, now);
        }
        self.try_complete_join(&req.group, now, now_ms, false);
        Reply::Later(rx)
    }

    /// A static member rejoining with a new member id (KIP-345).
    fn rejoin_static(
        &mut self,
        req: JoinRequest,
        old_id: String,
        new_id: String,
        now: Instant,
        now_ms: i64,
    ) -> Reply<JoinOutcome> {
        let group_id = req.group.clone();
        let group = self.groups.get_mut(&group_id).expect("group exists");
        let Some(mut member) = group.members.remove(&old_id) else {
            // The mapping outlived the member: join as new.
            group
                .static_members
                .remove(req.instance_id.as_deref().unwrap_or_default());
            return self.add_member(req, new_id, now, now_ms);
        };
        // The old incarnation is fenced: answer anything it waits for.
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::error(KafkaCode::FENCED_INSTANCE_ID, &old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::error(KafkaCode::FENCED_INSTANCE_ID));
        }
        let old_leader = group.leader.clone().unwrap_or_default();
        if group.leader.as_deref() == Some(old_id.as_str()) {
            group.leader = Some(new_id.clone());
        }
        let unchanged = member.protocols == req.protocols;
        member.id = new_id.clone();
        member.protocols = req.protocols;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        member.last_heard = now;
        if let Some(instance) = &req.instance_id {
            group
                .static_members
                .insert(instance.clone(), new_id.clone());
        }
        if group.state == GroupState::Stable && unchanged {
            // Same generation, same assignment, nobody else disturbed. A
            // returning leader must not run a pointless assignment: with
            // JoinGroup v9 (KIP-814) it is told it leads but should skip the
            // assignment; older clients get the old leader id, so they act
            // as followers (Kafka does both).
            let was_leader = old_leader == old_id;
            if was_leader && req.supports_skip_assignment {
                group.members.insert(new_id.clone(), member);
                let members = group.member_list();
                let outcome = JoinOutcome {
                    skip_assignment: true,
                    error: KafkaCode::NONE,
                    generation: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol: group.protocol.clone(),
                    leader: new_id.clone(),
                    member_id: new_id,
                    members,
                };
                self.persist_group(&group_id, now_ms);
                return Reply::Now(outcome);
            }
            let outcome = JoinOutcome {
                skip_assignment: false,
                error: KafkaCode::NONE,
                generation: group.generation,
                protocol_type: group.protocol_type.clone(),
                protocol: group.protocol.clone(),
                leader: old_leader,
                member_id: new_id.clone(),
                members: Vec::new(),
            };
            group.members.insert(new_id, member);
            self.persist_group(&group_id, now_ms);
            return Reply::Now(outcome);
        }
        let (tx, rx) = oneshot::channel();
        member.join_waiter = Some(tx);
        group.members.insert(new_id, member);
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(&group_id, now);
        }
        self.try_complete_join(&group_id, now, now_ms, false);
        Reply::Later(rx)
    }

    fn prepare_rebalance(&mut self, group_id: &str, now: Instant) {
        let initial_delay = self.limits.initial_rebalance_delay;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncOutcome::error(KafkaCode::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let was_empty = group.state == GroupState::Empty;
        group.state = GroupState::PreparingRebalance;
        let timeout = group
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        if was_empty {
            group.initial_delay = true;
            group.rebalance_deadline = Some(now + initial_delay.min(timeout.max(initial_delay)));
        } else {
            group.initial_delay = false;
            group.rebalance_deadline = Some(now + timeout);
        }
    }

    /// Completes the join phase when every member has rejoined (or, with
    /// `deadline_passed`, drops those that did not).
    fn try_complete_join(
        &mut self,
        group_id: &str,
        now: Instant,
        now_ms: i64,
        deadline_passed: bool,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined =
            group.members.values().all(|m| m.join_waiter.is_some()) && group.pending.is_empty();
        if !deadline_passed && (group.initial_delay || !all_joined) {
            return;
        }
        // Members that did not rejoin are out.
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            remove_member(group, &id);
        }
        group.pending.clear();
        group.generation += 1;
        group.rebalance_deadline = None;
        group.initial_delay = false;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol = None;
            group.leader = None;
            group.empty_since_ms = now_ms;
            self.persist_group(group_id, now_ms);
            return;
        }
        group.protocol = group.select_protocol();
        let leader_alive = group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l));
        if !leader_alive {
            group.leader = group
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        group.state = GroupState::CompletingRebalance;
        let leader = group.leader().to_string();
        let member_list = group.member_list();
        let (generation, protocol_type, protocol) = (
            group.generation,
            group.protocol_type.clone(),
            group.protocol.clone(),
        );
        for member in group.members.values_mut() {
            member.last_heard = now;
            if let Some(waiter) = member.join_waiter.take() {
                let members = if member.id == leader {
                    member_list.clone()
                } else {
                    Vec::new()
                };
                let _ = waiter.send(JoinOutcome {
                    skip_assignment: false,
                    error: KafkaCode::NONE,
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: member.id.clone(),
                    members,
                });
            }
        }
        self.persist_group(group_id, now_ms);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
        now_ms: i64,
    ) -> Reply<SyncOutcome> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Reply::Now(SyncOutcome::error(KafkaCode::UNKNOWN_MEMBER_ID));
        };
        if let Err(code) = check_member(group, member_id, instance_id) {
            return Reply::Now(SyncOutcome::error(code));
        }
        if generation != group.generation {
            return Reply::Now(SyncOutcome::error(KafkaCode::ILLEGAL_GENERATION));
        }
        if protocol_type.is_some_and(|t| Some(t) != group.protocol_type.as_deref())
            || protocol.is_some_and(|p| Some(p) != group.protocol.as_deref())
        {
            return Reply::Now(SyncOutcome::error(KafkaCode::INCONSISTENT_GROUP_PROTOCOL));
        }
        let answer = |group: &Group, assignment: Bytes| SyncOutcome {
            error: KafkaCode::NONE,
            protocol_type: group.protocol_type.clone(),
            protocol: group.protocol.clone(),
            assignment,
        };
        match group.state {
            GroupState::PreparingRebalance => {
                Reply::Now(SyncOutcome::error(KafkaCode::REBALANCE_IN_PROGRESS))
            }
            GroupState::Stable => {
                let member = group.members.get_mut(member_id).expect("checked");
                member.last_heard = now;
                let assignment = member.assignment.clone();
                Reply::Now(answer(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let is_leader = group.leader.as_deref() == Some(member_id);
                {
                    let member = group.members.get_mut(member_id).expect("checked");
                    member.last_heard = now;
                    member.sync_waiter = Some(tx);
                }
                if is_leader {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in group.members.values_mut() {
                        member.assignment = given.remove(&member.id).unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    let (pt, p) = (group.protocol_type.clone(), group.protocol.clone());
                    for member in group.members.values_mut() {
                        if let Some(waiter) = member.sync_waiter.take() {
                            let _ = waiter.send(SyncOutcome {
                                error: KafkaCode::NONE,
                                protocol_type: pt.clone(),
                                protocol: p.clone(),
                                assignment: member.assignment.clone(),
                            });
                        }
                    }
                    self.persist_group(group_id, now_ms);
                }
                Reply::Later(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(SyncOutcome::error(KafkaCode::UNKNOWN_MEMBER_ID))
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> KafkaCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return KafkaCode::UNKNOWN_MEMBER_ID;
        };
        if let Err(code) = check_member(group, member_id, instance_id) {
            return code;
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => KafkaCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => {
                group.heard_from(member_id, now);
                KafkaCode::REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                if generation != group.generation {
                    return KafkaCode::ILLEGAL_GENERATION;
                }
                group.heard_from(member_id, now);
                KafkaCode::NONE
            }
        }
    }

    /// LeaveGroup for one member identity; its error.
    pub fn leave(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
    ) -> KafkaCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return KafkaCode::UNKNOWN_MEMBER_ID;
        };
        let id = match instance_id {
            Some(instance) => match group.static_members.get(instance) {
                Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                Some(_) => return KafkaCode::FENCED_INSTANCE_ID,
                None => return KafkaCode::UNKNOWN_MEMBER_ID,
            },
            None => member_id.to_string(),
        };
        if !group.members.contains_key(&id) {
            return if group.pending.remove(&id).is_some() {
                KafkaCode::NONE
            } else {
                KafkaCode::UNKNOWN_MEMBER_ID
            };
        }
        remove_member(group, &id);
        self.after_removal(group_id, now, now_ms);
        KafkaCode::NONE
    }

    fn after_removal(&mut self, group_id: &str, now: Instant, now_ms: i64) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if group.members.is_empty() {
                    group.state = GroupState::Empty;
                    group.generation += 1;
                    group.protocol = None;
                    group.leader = None;
                    group.empty_since_ms = now_ms;
                    self.persist_group(group_id, now_ms);
                } else {
                    self.prepare_rebalance(group_id, now);
                }
            }
            GroupState::PreparingRebalance => self.try_complete_join(group_id, now, now_ms, false),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Session expiry and rebalance deadlines; call every few tens of ms.
    pub fn tick(&mut self, now: Instant, now_ms: i64) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in ids {
            let Some(group) = self.groups.get_mut(&group_id) else {
                continue;
            };
            // Members waiting in a join are alive; the others must heartbeat.
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.join_waiter.is_none() && now.duration_since(m.last_heard) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect();
            group
                .pending
                .retain(|_, since| now.duration_since(*since) < Duration::from_secs(300));
            let deadline_passed = group.rebalance_deadline.is_some_and(|d| now >= d);
            if !expired.is_empty() {
                for id in &expired {
                    tracing::info!(group = %group_id, member = %id, "member session expired, removing it");
                    remove_member(group, id);
                }
                self.after_removal(&group_id, now, now_ms);
            }
            if deadline_passed {
                self.try_complete_join(&group_id, now, now_ms, true);
            }
        }
    }

    /// Checks an OffsetCommit against the group's membership (before any
    /// record is written); creates the group for a simple (generation -1)
    /// commit.
    pub fn check_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> KafkaCode {
        if group_id.is_empty() {
            return KafkaCode::INVALID_GROUP_ID;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            if generation < 0 {
                self.groups
                    .insert(group_id.to_string(), Group::new(group_id, now_ms));
                return KafkaCode::NONE;
            }
            return KafkaCode::ILLEGAL_GENERATION;
        };
        if group.state == GroupState::Dead {
            return KafkaCode::COORDINATOR_NOT_AVAILABLE;
        }
        if generation < 0 && group.members.is_empty() {
            return KafkaCode::NONE;
        }
        if let Err(code) = check_member(group, member_id, instance_id) {
            return code;
        }
        if generation != group.generation {
            return KafkaCode::ILLEGAL_GENERATION;
        }
        if group.state == GroupState::CompletingRebalance {
            return KafkaCode::REBALANCE_IN_PROGRESS;
        }
        group.heard_from(member_id, Instant::now());
        KafkaCode::NONE
    }

    /// Records committed offsets in memory (after they were persisted).
    pub fn committed(
        &mut self,
        group_id: &str,
        offsets: Vec<((String, i32), Committed)>,
        now_ms: i64,
    ) {
        let group = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now_ms));
        for (key, committed) in offsets {
            group.offsets.insert(key, committed);
        }
    }

    /// Loads one record of `__consumer_offsets` (start-up).
    pub fn load(&mut self, key: &[u8], value: Option<&[u8]>, now_ms: i64) {
        match parse_key(key) {
            Some(Key::Offset {
                group,
                topic,
                partition,
            }) => {
                let entry = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, now_ms));
                match value.and_then(parse_offset_value) {
                    Some(committed) => {
                        entry.empty_since_ms = entry.empty_since_ms.max(committed.commit_ms);
                        entry.offsets.insert((topic, partition), committed);
                    }
                    None => {
                        entry.offsets.remove(&(topic, partition));
                    }
                }
            }
            Some(Key::Group { group }) => match value.and_then(parse_group_value) {
                Some((protocol_type, generation, time_ms)) => {
                    let entry = self
                        .groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group, now_ms));
                    entry.generation = entry.generation.max(generation);
                    entry.protocol_type = Some(protocol_type).filter(|t| !t.is_empty());
                    entry.empty_since_ms = entry.empty_since_ms.max(time_ms);
                }
                None => {
                    self.groups.remove(&group);
                }
            },
            None => {}
        }
    }

    /// Drops the groups of `__consumer_offsets` partition `partition`: this
    /// shard no longer leads it. Members waiting in a rebalance are let go
    /// (their requests fail; they find the new coordinator).
    pub fn unload_partition(&mut self, partition: i32) {
        self.pending_txn.retain(|(p, _), _| *p != partition);
        self.txn_epochs.retain(|(p, _), _| *p != partition);
        let partitions = self.limits.offsets_partitions;
        self.groups
            .retain(|id, _| offsets_partition(id, partitions) != partition);
    }

    /// After loading: groups without members start Empty, generation kept.
    pub fn finish_load(&mut self) {
        self.groups
            .retain(|_, g| g.generation > 0 || !g.offsets.is_empty());
    }

    /// Forgets the committed offsets of deleted topics (as Kafka does), so
    /// a topic re-created with the same name starts without them; returns
    /// the tombstones to write.
    pub fn forget_topics(&mut self, deleted: &HashSet<String>) -> Vec<Persist> {
        let mut out = Vec::new();
        let partitions = self.limits.offsets_partitions;
        for group in self.groups.values_mut() {
            let gone: Vec<(String, i32)> = group
                .offsets
                .keys()
                .filter(|(topic, _)| deleted.contains(topic))
                .cloned()
                .collect();
            for (topic, p) in gone {
                group.offsets.remove(&(topic.clone(), p));
                out.push(Persist {
                    partition: offsets_partition(&group.id, partitions),
                    key: offset_key(&group.id, &topic, p),
                    value: None,
                });
            }
        }
        out
    }

    /// Removes a group (DeleteGroups) and returns the tombstones to write.
    pub fn delete(&mut self, group_id: &str) -> Result<Vec<Persist>, KafkaCode> {
        let partition = self.partition_of(group_id);
        let Some(group) = self.groups.get(group_id) else {
            return Err(KafkaCode::GROUP_ID_NOT_FOUND);
        };
        if group.has_members() || group.state != GroupState::Empty {
            return Err(KafkaCode::NON_EMPTY_GROUP);
        }
        let mut out: Vec<Persist> = group
            .offsets
            .keys()
            .map(|(topic, p)| Persist {
                partition,
                key: offset_key(group_id, topic, *p),
                value: None,
            })
            .collect();
        out.push(Persist {
            partition,
            key: group_key(group_id),
            value: None,
        });
        self.groups.remove(group_id);
        Ok(out)
    }

    /// Groups that have been empty longer than `retention_ms`: their offsets
    /// and metadata are removed; returns the tombstones.
    pub fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64) -> Vec<Persist> {
        let expired: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.state == GroupState::Empty && now_ms - g.empty_since_ms > retention_ms)
            .map(|g| g.id.clone())
            .collect();
        let mut out = Vec::new();
        for group in expired {
            tracing::info!(%group, "offsets expired (offsets.retention.minutes): removing the empty group");
            if let Ok(tombstones) = self.delete(&group) {
                out.extend(tombstones);
            }
        }
        out
    }
}

fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), KafkaCode> {
    if let Some(instance) = instance_id {
        match group.static_members.get(instance) {
            Some(id) if id == member_id => {}
            Some(_) => return Err(KafkaCode::FENCED_INSTANCE_ID),
            None => {}
        }
    }
    if !group.members.contains_key(member_id) {
        return Err(KafkaCode::UNKNOWN_MEMBER_ID);
    }
    Ok(())
}

fn remove_member(group: &mut Group, id: &str) {
    if let Some(mut member) = group.members.remove(id) {
        if let Some(instance) = &member.instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(id) {
                group.static_members.remove(instance);
            }
        }
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::error(KafkaCode::UNKNOWN_MEMBER_ID, id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::error(KafkaCode::UNKNOWN_MEMBER_ID));
        }
    }
    if group.leader.as_deref() == Some(id) {
        group.leader = None;
    }
}

// ---------------------------------------------------------------- records

pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_nullable(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = 1i16.to_be_bytes().to_vec();
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn offset_value(c: &Committed) -> Vec<u8> {
    let mut out = 3i16.to_be_bytes().to_vec();
    out.extend_from_slice(&c.offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_string(&mut out, &c.metadata);
    out.extend_from_slice(&c.commit_ms.to_be_bytes());
    out
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = 2i16.to_be_bytes().to_vec();
    put_string(&mut out, group);
    out
}

fn group_value(group: &Group, now_ms: i64) -> Vec<u8> {
    let mut out = 3i16.to_be_bytes().to_vec();
    put_string(&mut out, group.protocol_type.as_deref().unwrap_or(""));
    out.extend_from_slice(&group.generation.to_be_bytes());
    put_nullable(&mut out, group.protocol.as_deref());
    put_nullable(&mut out, group.leader.as_deref());
    out.extend_from_slice(&now_ms.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // members are not persisted
    out
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(i64::from_be_bytes(a))
    }
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = self.i16()?;
        if len < 0 {
            return Some(String::new());
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

fn parse_key(key: &[u8]) -> Option<Key> {
    let mut r = Reader(key);
    match r.i16()? {
        0 | 1 => Some(Key::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        2 => Some(Key::Group { group: r.string()? }),
        _ => None,
    }
}

fn parse_offset_value(value: &[u8]) -> Option<Committed> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_ms = r.i64()?;
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_ms,
    })
}

/// (protocol type, generation, time ms) of a group metadata value.
fn parse_group_value(value: &[u8]) -> Option<(String, i32, i64)> {
    let mut r = Reader(value);
    let version = r.i16()?;
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    r.string()?; // protocol
    r.string()?; // leader
    let time_ms = if version >= 2 { r.i64()? } else { 0 };
    Some((protocol_type, generation, time_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min_session_timeout_ms: 10,
            max_session_timeout_ms: 60_000,
            initial_rebalance_delay: Duration::ZERO,
            offsets_partitions: 50,
        }
    }

    fn join(
        c: &mut Coordinator,
        member: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        c.join(
            JoinRequest {
                group: "g".into(),
                member_id: member.into(),
                instance_id: instance.map(str::to_string),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 1000,
                rebalance_timeout_ms: 1000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"m"))],
                require_known_member_id: true,
                supports_skip_assignment: false,
            },
            now,
            0,
        )
    }

    /// Static members "a" and "b" joined and through the first rebalance.
    fn two_static_members(c: &mut Coordinator, t: Instant) -> (JoinOutcome, JoinOutcome) {
        let a = join(c, "", Some("a"), t);
        let b = join(c, "", Some("b"), t);
        c.tick(t, 0);
        (now_or_later(a), now_or_later(b))
    }

    fn now_or_later<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(mut rx) => rx.try_recv().ok().flatten().expect("answered"),
        }
    }

    #[test]
    fn java_hash_matches_java() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("hello"), 99_162_322);
        // Java's well-known collision, and a negative hash.
        assert_eq!(java_hash("Aa"), 2112);
        assert_eq!(java_hash("BB"), 2112);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(offsets_partition("polygenelubricants", 50), 0);
    }

    #[test]
    fn member_id_handshake_join_sync_and_heartbeat() {
        let mut c = Coordinator::new(limits());
        let t = Instant::now();
        let first = now_or_later(join(&mut c, "", None, t));
        assert_eq!(first.error, KafkaCode::MEMBER_ID_REQUIRED);
        let id = first.member_id.clone();
        let joined = join(&mut c, &id, None, t);
        // Initial delay of zero: completes at the next tick.
        c.tick(t, 0);
        let joined = now_or_later(joined);
        assert_eq!(joined.error, KafkaCode::NONE);
        assert_eq!(joined.generation, 1);
        assert_eq!(joined.leader, id);
        assert_eq!(joined.members.len(), 1);
        let synced = now_or_later(c.sync(
            "g",
            &id,
            None,
            1,
            None,
            None,
            vec![(id.clone(), Bytes::from_static(b"a"))],
            t,
            0,
        ));
        assert_eq!(synced.error, KafkaCode::NONE);
        assert_eq!(&synced.assignment[..], b"a");
        assert_eq!(c.heartbeat("g", &id, None, 1, t), KafkaCode::NONE);
        assert_eq!(
            c.heartbeat("g", &id, None, 7, t),
            KafkaCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            c.heartbeat("g", "nobody", None, 1, t),
            KafkaCode::UNKNOWN_MEMBER_ID
        );
        // A second member: the first must rejoin.
        let second = now_or_later(join(&mut c, "", None, t));
        let pending = join(&mut c, &second.member_id, None, t);
        assert_eq!(
            c.heartbeat("g", &id, None, 1, t),
            KafkaCode::REBALANCE_IN_PROGRESS
        );
        let first_again = join(&mut c, &id, None, t);
        let (a, b) = (now_or_later(first_again), now_or_later(pending));
        assert_eq!((a.generation, b.generation), (2, 2));
        assert_eq!(
            a.members.len() + b.members.len(),
            2,
            "only the leader gets the members"
        );
        // Session expiry of the second member after the first leaves.
        assert_eq!(c.leave("g", &id, None, t, 0), KafkaCode::NONE);
        c.tick(t + Duration::from_secs(5), 0);
        let g = &c.groups["g"];
        assert_eq!(g.state, GroupState::Empty, "{g:?}");
    }

    #[test]
    fn a_static_member_rejoining_a_stable_group_keeps_its_assignment() {
        let mut c = Coordinator::new(limits());
        let t = Instant::now();
        let (a, b) = two_static_members(&mut c, t);
        let leader = a.leader.clone();
        let assignments = vec![
            (a.member_id.clone(), Bytes::from_static(b"A")),
            (b.member_id.clone(), Bytes::from_static(b"B")),
        ];
        let (leader_instance, follower, follower_instance) = if leader == a.member_id {
            ("a", &b, "b")
        } else {
            ("b", &a, "a")
        };
        let leader_sync = c.sync(
            "g",
            &leader,
            Some(leader_instance),
            1,
            None,
            None,
            assignments,
            t,
            0,
        );
        assert_eq!(now_or_later(leader_sync).error, KafkaCode::NONE);
        let follower_sync = now_or_later(c.sync(
            "g",
            &follower.member_id,
            Some(follower_instance),
            1,
            None,
            None,
            vec![],
            t,
            0,
        ));
        assert_eq!(follower_sync.error, KafkaCode::NONE);
        // The follower restarts: new member id, same generation, no rebalance.
        let back = now_or_later(join(&mut c, "", Some(follower_instance), t));
        assert_eq!(back.error, KafkaCode::NONE);
        assert_eq!(back.generation, 1);
        assert_ne!(back.member_id, follower.member_id);
        assert_eq!(c.groups["g"].state, GroupState::Stable);
        let synced = now_or_later(c.sync(
            "g",
            &back.member_id,
            Some(follower_instance),
            1,
            None,
            None,
            vec![],
            t,
            0,
        ));
        assert_eq!(
            &synced.assignment[..],
            if follower_instance == "b" { b"B" } else { b"A" }
        );
        // The old incarnation is fenced.
        assert_eq!(
            c.heartbeat("g", &follower.member_id, Some(follower_instance), 1, t),
            KafkaCode::FENCED_INSTANCE_ID
        );
    }

    #[test]
    fn an_unknown_member_creates_no_group_and_deleted_topics_lose_their_offsets() {
        let mut c = Coordinator::new(limits());
        let t = Instant::now();
        let outcome = now_or_later(join(&mut c, "made-up", None, t));
        assert_eq!(outcome.error, KafkaCode::UNKNOWN_MEMBER_ID);
        assert!(c.groups.is_empty(), "phantom group created");
        let committed = Committed {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_ms: 0,
        };
        c.committed(
            "g",
            vec![
                (("gone".to_string(), 0), committed.clone()),
                (("kept".to_string(), 0), committed),
            ],
            0,
        );
        let deleted: HashSet<String> = ["gone".to_string()].into();
        let tombstones = c.forget_topics(&deleted);
        assert_eq!(tombstones.len(), 1);
        assert!(tombstones[0].value.is_none());
        assert_eq!(c.groups["g"].offsets.len(), 1);
    }

    #[test]
    fn a_static_leader_rejoining_with_v9_is_told_to_skip_the_assignment() {
        let mut c = Coordinator::new(limits());
        let t = Instant::now();
        let (a, b) = two_static_members(&mut c, t);
        let (leader, leader_instance) = if a.leader == a.member_id {
            (a.member_id.clone(), "a")
        } else {
            (b.member_id.clone(), "b")
        };
        let leader_sync = now_or_later(c.sync(
            "g",
            &leader,
            Some(leader_instance),
            1,
            None,
            None,
            vec![],
            t,
            0,
        ));
        assert_eq!(leader_sync.error, KafkaCode::NONE);
        let back = now_or_later(c.join(
            JoinRequest {
                group: "g".into(),
                member_id: String::new(),
                instance_id: Some(leader_instance.into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 1000,
                rebalance_timeout_ms: 1000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"m"))],
                require_known_member_id: true,
                supports_skip_assignment: true,
            },
            t,
            0,
        ));
        assert_eq!(back.error, KafkaCode::NONE);
        assert!(back.skip_assignment);
        assert_eq!(back.leader, back.member_id, "told it leads");
        assert_eq!(back.members.len(), 2);
        assert_eq!(back.generation, 1, "no rebalance");
        assert_eq!(c.groups["g"].state, GroupState::Stable);
    }

    #[test]
    fn records_round_trip() {
        let committed = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_ms: 1_700,
        };
        let mut c = Coordinator::new(limits());
        c.load(&offset_key("g", "t", 2), Some(&offset_value(&committed)), 0);
        assert_eq!(c.groups["g"].offsets[&("t".to_string(), 2)], committed);
        let mut g = Group::new("g2", 0);
        g.generation = 7;
        g.protocol_type = Some("consumer".into());
        c.load(&group_key("g2"), Some(&group_value(&g, 5)), 0);
        assert_eq!(c.groups["g2"].generation, 7);
        c.load(&offset_key("g", "t", 2), None, 0);
        assert!(c.groups["g"].offsets.is_empty());
        c.load(&group_key("g2"), None, 0);
        assert!(!c.groups.contains_key("g2"));
    }
}
