//! The group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.
//!
//! Each request about group G goes, as one [`GroupCall`] message, to the shard
//! that coordinates G (the owner of G's `__consumer_offsets` partition, see
//! [`crate::group`]); that shard's [`Coordinator`] answers. ListGroups asks
//! every shard. `__consumer_offsets` is created on first use.

use crate::clock::now_ms;
use crate::errors::KafkaCode;
use crate::group::{
    offset_key, offset_value, offsets_partition, Committed, GroupState, JoinOutcome, JoinRequest,
    Persist, Reply, SyncOutcome, OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES,
};
use crate::messages::{AppendItem, CreateSpec, TopicPartition};
use crate::metadata::shard_for;
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strom_net::response::str_bytes;
use strom_storage::batch;
use tracing::{info, warn};

/// How often each shard drives session timeouts and rebalance deadlines.
const GROUP_TICK: Duration = Duration::from_millis(50);

/// A group request for the coordinating shard.
pub enum GroupCall {
    Join(JoinRequest),
    Sync {
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        assignments: Vec<(String, Bytes)>,
    },
    Heartbeat {
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
    },
    Leave {
        group: String,
        members: Vec<(String, Option<String>)>,
    },
    Commit {
        group: String,
        member: String,
        instance: Option<String>,
        generation: i32,
        /// (topic, partition, offset, leader epoch, metadata)
        offsets: Vec<(String, i32, i64, i32, String)>,
        /// TxnOffsetCommit: the transactional producer (id, epoch); the
        /// offsets become visible when its transaction commits.
        producer: Option<(i64, i16)>,
    },
    /// None: every partition with a committed offset.
    Fetch {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
        /// OffsetFetch v7+ `require_stable`: a partition with an offset in
        /// a transaction not ended yet answers UNSTABLE_OFFSET_COMMIT.
        require_stable: bool,
    },
    Describe(String),
    List,
    Delete(String),
    OffsetDelete {
        group: String,
        topics: Vec<(String, Vec<i32>)>,
    },
}

/// A described group.
#[derive(Debug, Clone)]
pub struct Described {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    #[allow(clippy::type_complexity)]
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// The coordinator's answer.
pub enum GroupAnswer {
    Join(JoinOutcome),
    Sync(SyncOutcome),
    Code(KafkaCode),
    Codes(Vec<KafkaCode>),
    /// (topic, partition, offset, leader epoch, metadata) with -1 for none.
    /// (topic, partition, offset, leader epoch, metadata, error): the error
    /// is UNSTABLE_OFFSET_COMMIT where a transaction not ended yet holds an
    /// offset and the fetch required stable ones.
    Offsets(Vec<(String, i32, i64, i32, String, KafkaCode)>),
    Described(Described),
    /// (group, protocol type, state)
    Listed(Vec<(String, String, &'static str)>),
}

/// Creates `__consumer_offsets` if needed; its partition count.
pub async fn ensure_offsets_topic(shard: &Rc<Shard>) -> Result<i32, KafkaCode> {
    ensure_internal_topic(
        shard,
        OFFSETS_TOPIC,
        shard.broker.offsets_topic_num_partitions,
    )
    .await
}

/// Creates an internal topic (`__consumer_offsets`, `__transaction_state`:
/// compacted, 100 MiB segments, the default replication factor) if needed;
/// its partition count.
pub async fn ensure_internal_topic(
    shard: &Rc<Shard>,
    topic: &str,
    partitions: i32,
) -> Result<i32, KafkaCode> {
    if let Some(t) = shard.table().topics.get(topic) {
        return Ok(t.partitions);
    }
    let spec = CreateSpec {
        name: topic.to_string(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("segment.bytes".into(), Some("104857600".into())),
        ],
    };
    match shard
        .call(0, move |zero| async move {
            zero.create_topics_here(vec![spec], false).await
        })
        .await
    {
        Ok(outcomes) => {
            if outcomes.iter().any(|o| o.error.is_ok()) {
                info!("created the internal topic {topic}");
            }
        }
        Err(err) => warn!("creating {topic} failed: {err}"),
    }
    shard
        .table()
        .topics
        .get(topic)
        .map(|t| t.partitions)
        .ok_or(KafkaCode::COORDINATOR_NOT_AVAILABLE)
}

/// Calls `each` with every batch of an internal partition (header and
/// bytes), up to the log end: records past the high watermark are the
/// in-sync replicas' too and become committed (as Kafka loads them).
pub(crate) fn read_batches(
    log: &strom_storage::log::PartitionLog,
    mut each: impl FnMut(&batch::BatchHeader, &[u8]),
) {
    let mut offset = log.log_start_offset();
    while let Ok(Some(region)) = log.read_to_end(offset, 1 << 20) {
        let mut bytes = vec![0u8; region.len as usize];
        if region
            .file
            .read_exact_at(&mut bytes, region.position)
            .is_err()
        {
            warn!(dir = %log.dir().display(), "cannot read an internal partition past offset {offset}");
            return;
        }
        let Ok(headers) = batch::validate_batches(&bytes) else {
            return;
        };
        let mut at = 0;
        for header in &headers {
            let end = at + header.total_bytes();
            each(header, &bytes[at..end]);
            offset = header.last_offset() + 1;
            at = end;
        }
    }
}

/// The (key, value) records of an internal partition's plain batches, in
/// log order.
pub(crate) fn read_records(
    log: &strom_storage::log::PartitionLog,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    read_batches(log, |header, bytes| {
        if header.is_control() {
            return;
        }
        for record in batch::records(bytes).unwrap_or_default() {
            if let Some(key) = record.key {
                out.push((key, record.value));
            }
        }
    });
    out
}

/// The shard coordinating `group`: the owner of its `__consumer_offsets`
/// partition, which this broker must lead (NOT_COORDINATOR otherwise, so
/// the client asks FindCoordinator again).
pub async fn coordinator_shard(shard: &Rc<Shard>, group: &str) -> Result<usize, KafkaCode> {
    let partitions = ensure_offsets_topic(shard).await?;
    let p = offsets_partition(group, partitions);
    let leader = shard
        .table()
        .partition(OFFSETS_TOPIC, p)
        .map_or(crate::metadata::NO_LEADER, |s| s.leader);
    if leader != shard.broker.node_id {
        return Err(KafkaCode::NOT_COORDINATOR);
    }
    Ok(shard_for(OFFSETS_TOPIC, p, shard.count))
}

async fn call(shard: &Rc<Shard>, group: &str, call: GroupCall) -> Result<GroupAnswer, KafkaCode> {
    let owner = coordinator_shard(shard, group).await?;
    shard
        .call(owner, move |s| async move { s.group_call(call).await })
        .await
        .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE)
}

impl Shard {
    /// Serves a group call on the coordinating shard.
    pub(crate) async fn group_call(self: &Rc<Self>, call: GroupCall) -> GroupAnswer {
        let now = Instant::now();
        let ms = now_ms();
        match call {
            GroupCall::Join(request) => {
                let reply = self.coordinator.borrow_mut().join(request, now, ms);
                self.persist_pending();
                GroupAnswer::Join(match reply {
                    Reply::Now(outcome) => outcome,
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| JoinOutcome {
                        skip_assignment: false,
                        error: KafkaCode::COORDINATOR_NOT_AVAILABLE,
                        generation: -1,
                        protocol_type: None,
                        protocol: None,
                        leader: String::new(),
                        member_id: String::new(),
                        members: Vec::new(),
                    }),
                })
            }
            GroupCall::Sync {
                group,
                member,
                instance,
                generation,
                protocol_type,
                protocol,
                assignments,
            } => {
                let reply = self.coordinator.borrow_mut().sync(
                    &group,
                    &member,
                    instance.as_deref(),
                    generation,
                    protocol_type.as_deref(),
                    protocol.as_deref(),
                    assignments,
                    now,
                    ms,
                );
                self.persist_pending();
                GroupAnswer::Sync(match reply {
                    Reply::Now(outcome) => outcome,
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| SyncOutcome {
                        error: KafkaCode::COORDINATOR_NOT_AVAILABLE,
                        protocol_type: None,
                        protocol: None,
                        assignment: Bytes::new(),
                    }),
                })
            }
            GroupCall::Heartbeat {
                group,
                member,
                instance,
                generation,
            } => GroupAnswer::Code(self.coordinator.borrow_mut().heartbeat(
                &group,
                &member,
                instance.as_deref(),
                generation,
                now,
            )),
            GroupCall::Leave { group, members } => {
                let codes = members
                    .iter()
                    .map(|(member, instance)| {
                        self.coordinator.borrow_mut().leave(
                            &group,
                            member,
                            instance.as_deref(),
                            now,
                            ms,
                        )
                    })
                    .collect();
                self.persist_pending();
                GroupAnswer::Codes(codes)
            }
            GroupCall::Commit {
                group,
                member,
                instance,
                generation,
                offsets,
                producer,
            } => GroupAnswer::Codes(
                self.commit(
                    &group,
                    &member,
                    instance.as_deref(),
                    generation,
                    offsets,
                    producer,
                )
                .await,
            ),
            GroupCall::Fetch {
                group,
                topics,
                require_stable,
            } => {
                let coordinator = self.coordinator.borrow();
                let stored = coordinator.groups.get(&group);
                let lookup = |topic: &str, p: i32| {
                    stored
                        .and_then(|g| g.offsets.get(&(topic.to_string(), p)))
                        .map_or((-1, -1, String::new()), |c| {
                            (c.offset, c.leader_epoch, c.metadata.clone())
                        })
                };
                let unstable = |topic: &str, p: i32| {
                    if require_stable && coordinator.has_pending_offset(&group, topic, p) {
                        KafkaCode::UNSTABLE_OFFSET_COMMIT
                    } else {
                        KafkaCode::NONE
                    }
                };
                let rows = match topics {
                    Some(topics) => topics
                        .into_iter()
                        .flat_map(|(topic, partitions)| {
                            partitions
                                .into_iter()
                                .map(|p| {
                                    let (o, e, m) = lookup(&topic, p);
                                    (topic.clone(), p, o, e, m, unstable(&topic, p))
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    None => stored
                        .map(|g| {
                            g.offsets
                                .iter()
                                .map(|((t, p), c)| {
                                    let code = unstable(t, *p);
                                    (
                                        t.clone(),
                                        *p,
                                        c.offset,
                                        c.leader_epoch,
                                        c.metadata.clone(),
                                        code,
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                GroupAnswer::Offsets(rows)
            }
            GroupCall::Describe(group) => {
                let coordinator = self.coordinator.borrow();
                GroupAnswer::Described(match coordinator.groups.get(&group) {
                    Some(g) => Described {
                        state: g.state.name(),
                        protocol_type: g.protocol_type.clone().unwrap_or_default(),
                        protocol: if g.state == GroupState::Stable {
                            g.protocol.clone().unwrap_or_default()
                        } else {
                            String::new()
                        },
                        members: g.describe_members(),
                    },
                    None => Described {
                        state: GroupState::Dead.name(),
                        protocol_type: String::new(),
                        protocol: String::new(),
                        members: Vec::new(),
                    },
                })
            }
            GroupCall::List => GroupAnswer::Listed(
                self.coordinator
                    .borrow()
                    .groups
                    .values()
                    .map(|g| {
                        (
                            g.id.clone(),
                            g.protocol_type.clone().unwrap_or_default(),
                            g.state.name(),
                        )
                    })
                    .collect(),
            ),
            GroupCall::Delete(group) => {
                let result = self.coordinator.borrow_mut().delete(&group);
                match result {
                    Ok(tombstones) => {
                        let waits = self.persist(tombstones);
                        GroupAnswer::Code(wait_all(waits).await)
                    }
                    Err(code) => GroupAnswer::Code(code),
                }
            }
            GroupCall::OffsetDelete { group, topics } => self.offset_delete(&group, topics).await,
        }
    }

    async fn commit(
        self: &Rc<Self>,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, i64, i32, String)>,
        producer: Option<(i64, i16)>,
    ) -> Vec<KafkaCode> {
        let ms = now_ms();
        // A transactional commit without a member (clients before KIP-447)
        // is not checked against the membership, as in Kafka.
        let partition = self.coordinator.borrow().partition_of(group);
        let fenced = producer
            .is_some_and(|(id, epoch)| self.coordinator.borrow().txn_fenced(partition, id, epoch));
        let check = if fenced {
            KafkaCode::PRODUCER_FENCED
        } else if producer.is_some() && generation < 0 && member.is_empty() {
            if group.is_empty() {
                KafkaCode::INVALID_GROUP_ID
            } else {
                KafkaCode::NONE
            }
        } else {
            self.coordinator
                .borrow_mut()
                .check_commit(group, member, instance, generation, ms)
        };
        if !check.is_ok() {
            return vec![check; offsets.len()];
        }
        let table = self.table();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (topic, p, offset, epoch, metadata) in offsets {
            let known = table
                .topics
                .get(&topic)
                .is_some_and(|t| p >= 0 && p < t.partitions);
            if !known {
                codes.push(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                codes.push(KafkaCode::OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            let committed = Committed {
                offset,
                leader_epoch: epoch,
                metadata,
                commit_ms: ms,
            };
            records.push(Persist {
                partition,
                key: offset_key(group, &topic, p),
                value: Some(offset_value(&committed)),
            });
            accepted.push(((topic, p), committed));
            codes.push(KafkaCode::NONE);
        }
        if records.is_empty() {
            return codes;
        }
        let result = wait_all(self.persist_to(OFFSETS_TOPIC, records, producer)).await;
        if !result.is_ok() {
            return codes
                .into_iter()
                .map(|c| if c.is_ok() { result } else { c })
                .collect();
        }
        let mut coordinator = self.coordinator.borrow_mut();
        match producer {
            Some((producer_id, _)) => {
                let pending = accepted
                    .into_iter()
                    .map(|(key, committed)| (group.to_string(), key, committed))
                    .collect();
                coordinator.add_pending_txn(partition, producer_id, pending);
            }
            None => coordinator.committed(group, accepted, now_ms()),
        }
        codes
    }

    async fn offset_delete(
        self: &Rc<Self>,
        group: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> GroupAnswer {
        let (subscribed, partition) = {
            let coordinator = self.coordinator.borrow();
            let Some(g) = coordinator.groups.get(group) else {
                return GroupAnswer::Codes(vec![KafkaCode::GROUP_ID_NOT_FOUND]);
            };
            let subscribed: HashSet<String> = if g.state == GroupState::Empty {
                HashSet::new()
            } else {
                g.subscribed_topics()
            };
            (subscribed, coordinator.partition_of(group))
        };
        let mut codes = vec![KafkaCode::NONE];
        let mut tombstones = Vec::new();
        let mut removed = Vec::new();
        for (topic, partitions) in topics {
            for p in partitions {
                if subscribed.contains(&topic) {
                    codes.push(KafkaCode::GROUP_SUBSCRIBED_TO_TOPIC);
                    continue;
                }
                tombstones.push(Persist {
                    partition,
                    key: offset_key(group, &topic, p),
                    value: None,
                });
                removed.push((topic.clone(), p));
                codes.push(KafkaCode::NONE);
            }
        }
        if !tombstones.is_empty() {
            let result = wait_all(self.persist(tombstones)).await;
            if !result.is_ok() {
                return GroupAnswer::Codes(vec![result]);
            }
            if let Some(g) = self.coordinator.borrow_mut().groups.get_mut(group) {
                for key in removed {
                    g.offsets.remove(&key);
                }
            }
        }
        GroupAnswer::Codes(codes)
    }

    /// Appends records to this shard's `__consumer_offsets` partitions; one
    /// receiver per partition, firing once synced.
    fn persist(&self, records: Vec<Persist>) -> Vec<oneshot_rx::Receiver> {
        self.persist_to(OFFSETS_TOPIC, records, None)
    }

    /// Appends records to this shard's partitions of an internal topic
    /// (`__consumer_offsets`, `__transaction_state`), one batch per
    /// partition, as a transactional producer's batches when `producer`
    /// (id, epoch) is given; one receiver per partition, firing once the
    /// in-sync replicas have the records (and, without write caching,
    /// synced them).
    pub(crate) fn persist_to(
        &self,
        topic: &str,
        records: Vec<Persist>,
        producer: Option<(i64, i16)>,
    ) -> Vec<oneshot_rx::Receiver> {
        type Owned = (Vec<u8>, Option<Vec<u8>>);
        let mut by_partition: std::collections::BTreeMap<i32, Vec<Owned>> =
            std::collections::BTreeMap::new();
        for record in records {
            by_partition
                .entry(record.partition)
                .or_default()
                .push((record.key, record.value));
        }
        let ms = now_ms();
        let items: Vec<AppendItem> = by_partition
            .into_iter()
            .map(|(p, recs)| {
                let refs: Vec<batch::KeyValue> = recs
                    .iter()
                    .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
                    .collect();
                let mut bytes = batch::encode_batch(0, ms, &refs);
                if let Some((producer_id, epoch)) = producer {
                    batch::set_producer(&mut bytes, producer_id, epoch, -1);
                }
                let headers = batch::validate_batches(&bytes).unwrap_or_default();
                AppendItem {
                    tp: TopicPartition {
                        topic: Arc::from(topic),
                        partition: p,
                    },
                    records: BytesMut::from(&bytes[..]),
                    headers,
                }
            })
            .collect();
        let (outcomes, waits) = self.append_local(items, true);
        let mut out: Vec<oneshot_rx::Receiver> = outcomes
            .iter()
            .filter(|o| !o.error.is_ok())
            .map(|o| oneshot_rx::Receiver::Failed(o.error))
            .collect();
        out.extend(
            waits
                .into_iter()
                .map(|(_, rx)| oneshot_rx::Receiver::Wait(rx)),
        );
        out
    }

    /// Appends records without waiting for their sync (tombstones, group
    /// metadata). A storage fault already stopped the broker inside the
    /// append; an append refused (disk full) is logged, never ignored: the
    /// in-memory change stands, and only a restart before it is written
    /// again would bring the old record back.
    pub(crate) fn persist_offsets(&self, records: Vec<Persist>) {
        for wait in self.persist(records) {
            if let oneshot_rx::Receiver::Failed(code) = wait {
                warn!(shard = self.id, "{OFFSETS_TOPIC} record not written ({code:?}); it is lost if the broker restarts before the next write");
            }
        }
    }

    /// Appends the group metadata records the coordinator queued (not
    /// waited for: a lost one only costs a generation number after a crash).
    fn persist_pending(&self) {
        let records = std::mem::take(&mut self.coordinator.borrow_mut().to_persist);
        if !records.is_empty() {
            self.persist_offsets(records);
        }
    }

    /// Reads a `__consumer_offsets` partition this shard just opened into the
    /// coordinator (start-up, or the topic's creation).
    pub(crate) fn load_offsets_partition(
        &self,
        partition: i32,
        log: &strom_storage::log::PartitionLog,
    ) {
        let ms = now_ms();
        let mut loaded = 0u64;
        let mut coordinator = self.coordinator.borrow_mut();
        read_batches(log, |header, bytes| {
            if header.is_control() {
                // A transaction marker: offsets committed inside the
                // transaction become visible, or are dropped.
                if let Some((marker, _)) = batch::marker_of(bytes) {
                    let commit = marker == batch::Marker::Commit;
                    coordinator.complete_txn(
                        partition,
                        header.producer_id,
                        header.producer_epoch,
                        commit,
                        ms,
                    );
                }
                return;
            }
            for record in batch::records(bytes).unwrap_or_default() {
                let Some(key) = &record.key else { continue };
                if header.is_transactional() {
                    coordinator.load_txn_record(
                        partition,
                        header.producer_id,
                        key,
                        record.value.as_deref(),
                    );
                } else {
                    coordinator.load(key, record.value.as_deref(), ms);
                }
                loaded += 1;
            }
        });
        coordinator.finish_load();
        if loaded > 0 {
            info!(shard = self.id, dir = %log.dir().display(), records = loaded, "loaded consumer groups");
        }
    }

    /// Drives session timeouts, rebalance deadlines and offset retention.
    pub(crate) async fn group_timer(self: Rc<Self>) {
        let retention_ms = self.broker.offsets_retention_minutes.saturating_mul(60_000);
        let retention_every =
            Duration::from_millis(self.broker.offsets_retention_check_interval_ms as u64);
        let mut next_retention = Instant::now() + retention_every;
        loop {
            glommio::timer::sleep(GROUP_TICK).await;
            let now = Instant::now();
            self.coordinator.borrow_mut().tick(now, now_ms());
            if now >= next_retention {
                next_retention = now + retention_every;
                let tombstones = self
                    .coordinator
                    .borrow_mut()
                    .expire_offsets(now_ms(), retention_ms);
                if !tombstones.is_empty() {
                    self.persist_offsets(tombstones);
                }
            }
            self.persist_pending();
        }
    }
}

/// A persist result to await.
pub(crate) mod oneshot_rx {
    use crate::errors::KafkaCode;
    pub enum Receiver {
        Wait(futures::channel::oneshot::Receiver<KafkaCode>),
        Failed(KafkaCode),
    }
}

/// How long an offset commit waits for the in-sync replicas of its
/// `__consumer_offsets` partition (Kafka's `offsets.commit.timeout.ms`).
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// Waits for `__consumer_offsets` appends; errors as a group client sees them
/// (a partition no longer led here: NOT_COORDINATOR).
pub(crate) async fn wait_all(waits: Vec<oneshot_rx::Receiver>) -> KafkaCode {
    let deadline = Instant::now() + OFFSETS_COMMIT_TIMEOUT;
    let mut result = KafkaCode::NONE;
    for wait in waits {
        let code = match wait {
            oneshot_rx::Receiver::Wait(rx) => {
                crate::shard::ack_by(rx, deadline, KafkaCode::COORDINATOR_NOT_AVAILABLE).await
            }
            oneshot_rx::Receiver::Failed(code) => code,
        };
        if !code.is_ok() {
            result = match code {
                KafkaCode::NOT_LEADER_OR_FOLLOWER => KafkaCode::NOT_COORDINATOR,
                KafkaCode::NOT_ENOUGH_REPLICAS => KafkaCode::COORDINATOR_NOT_AVAILABLE,
                other => other,
            };
        }
    }
    result
}

fn opt(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

fn opt_bytes(s: Option<String>) -> Option<StrBytes> {
    s.map(|s| str_bytes(&s))
}

// ------------------------------------------------------------------ handlers

pub async fn join_group(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = JoinGroupResponse::default();
    let join = JoinRequest {
        group: group.clone(),
        member_id: request.member_id.to_string(),
        instance_id: opt(&request.group_instance_id),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    response.generation_id = -1;
    match call(shard, &group, GroupCall::Join(join)).await {
        Ok(GroupAnswer::Join(outcome)) => {
            response.error_code = outcome.error.0;
            response.generation_id = outcome.generation;
            response.protocol_type = opt_bytes(outcome.protocol_type);
            response.protocol_name = opt_bytes(outcome.protocol);
            if version < 7 && response.protocol_name.is_none() {
                response.protocol_name = Some(StrBytes::default());
            }
            response.leader = str_bytes(&outcome.leader);
            response.skip_assignment = outcome.skip_assignment;
            response.member_id = str_bytes(&outcome.member_id);
            response.members = outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let mut m = join_group_response::JoinGroupResponseMember::default();
                    m.member_id = str_bytes(&id);
                    m.group_instance_id = opt_bytes(instance);
                    m.metadata = metadata;
                    m
                })
                .collect();
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => {
            response.error_code = code.0;
            response.member_id = request.member_id;
        }
    }
    response
}

pub async fn sync_group(shard: &Rc<Shard>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = SyncGroupResponse::default();
    let sync = GroupCall::Sync {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id,
        protocol_type: opt(&request.protocol_type),
        protocol: opt(&request.protocol_name),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    match call(shard, &group, sync).await {
        Ok(GroupAnswer::Sync(outcome)) => {
            response.error_code = outcome.error.0;
            response.protocol_type = opt_bytes(outcome.protocol_type);
            response.protocol_name = opt_bytes(outcome.protocol);
            response.assignment = outcome.assignment;
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => response.error_code = code.0,
    }
    response
}

pub async fn heartbeat(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group = request.group_id.0.to_string();
    let mut response = HeartbeatResponse::default();
    let beat = GroupCall::Heartbeat {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id,
    };
    response.error_code = match call(shard, &group, beat).await {
        Ok(GroupAnswer::Code(code)) => code.0,
        Ok(_) => KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => code.0,
    };
    response
}

pub async fn leave_group(
    shard: &Rc<Shard>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = LeaveGroupResponse::default();
    let members: Vec<(String, Option<String>)> = if version <= 2 {
        vec![(request.member_id.to_string(), None)]
    } else {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), opt(&m.group_instance_id)))
            .collect()
    };
    let leave = GroupCall::Leave {
        group: group.clone(),
        members: members.clone(),
    };
    match call(shard, &group, leave).await {
        Ok(GroupAnswer::Codes(codes)) => {
            if version <= 2 {
                response.error_code = codes.first().copied().unwrap_or(KafkaCode::NONE).0;
            } else {
                response.members = members
                    .into_iter()
                    .zip(codes)
                    .map(|((member, instance), code)| {
                        let mut m = leave_group_response::MemberResponse::default();
                        m.member_id = str_bytes(&member);
                        m.group_instance_id = opt_bytes(instance);
                        m.error_code = code.0;
                        m
                    })
                    .collect();
            }
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => response.error_code = code.0,
    }
    response
}

/// The offsets of an OffsetCommit or TxnOffsetCommit request, as
/// [`offset_row`]s (kafka-protocol gives the two requests distinct topic and
/// partition types with the same fields).
macro_rules! offsets_of {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let metadata = p.committed_metadata.as_ref();
                    offset_row(
                        &t.name,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        metadata,
                    )
                })
            })
            .collect::<Vec<_>>()
    };
}

/// The response topics of an OffsetCommit or TxnOffsetCommit: the request's
/// partitions in order, each with the next code.
macro_rules! commit_response_topics {
    ($topics:expr, $codes:expr, $topic:ty, $partition:ty) => {{
        let mut codes = $codes;
        $topics
            .into_iter()
            .map(|topic| {
                let mut t = <$topic>::default();
                t.name = topic.name;
                t.partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut r = <$partition>::default();
                        r.partition_index = p.partition_index;
                        r.error_code = codes.next().unwrap_or(KafkaCode::UNKNOWN_SERVER_ERROR).0;
                        r
                    })
                    .collect();
                t
            })
            .collect()
    }};
}

/// One offset of a commit: (topic, partition, offset, leader epoch, metadata).
fn offset_row(
    topic: &TopicName,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&StrBytes>,
) -> (String, i32, i64, i32, String) {
    let metadata = metadata.map(|m| m.to_string()).unwrap_or_default();
    (
        topic.0.to_string(),
        partition,
        offset,
        leader_epoch,
        metadata,
    )
}

/// The codes of a commit call, one per offset (the call's error for all).
async fn commit_codes(
    shard: &Rc<Shard>,
    group: &str,
    commit: GroupCall,
    count: usize,
) -> Vec<KafkaCode> {
    // Served in a task of its own: once written, an offset is applied even
    // if the client went away meanwhile.
    let answer = match coordinator_shard(shard, group).await {
        Ok(owner) => shard
            .call_detached(owner, move |s| async move { s.group_call(commit).await })
            .await
            .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE),
        Err(code) => Err(code),
    };
    match answer {
        Ok(GroupAnswer::Codes(codes)) => codes,
        Ok(_) => Vec::new(),
        Err(code) => vec![code; count],
    }
}

pub async fn offset_commit(
    shard: &Rc<Shard>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets = offsets_of!(request.topics);
    let commit = GroupCall::Commit {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id_or_member_epoch,
        offsets,
        producer: None,
    };
    let count = request.topics.iter().map(|t| t.partitions.len()).sum();
    let codes = commit_codes(shard, &group, commit, count).await;
    let mut response = OffsetCommitResponse::default();
    response.topics = commit_response_topics!(
        request.topics,
        codes.into_iter(),
        offset_commit_response::OffsetCommitResponseTopic,
        offset_commit_response::OffsetCommitResponsePartition
    );
    response
}

async fn fetch_offsets(
    shard: &Rc<Shard>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(String, i32, i64, i32, String, KafkaCode)>, KafkaCode> {
    let fetch = GroupCall::Fetch {
        group: group.to_string(),
        topics,
        require_stable,
    };
    match call(shard, group, fetch).await? {
        GroupAnswer::Offsets(rows) => Ok(rows),
        _ => Err(KafkaCode::UNKNOWN_SERVER_ERROR),
    }
}

pub async fn offset_fetch(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version <= 7 {
        let topics = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let stable = version >= 7 && request.require_stable;
        match fetch_offsets(shard, &request.group_id.0, topics, stable).await {
            Ok(rows) => {
                for (topic, p, offset, epoch, metadata, code) in rows {
                    let idx = match response
                        .topics
                        .iter()
                        .position(|t| t.name.0.as_str() == topic)
                    {
                        Some(i) => i,
                        None => {
                            let mut t = offset_fetch_response::OffsetFetchResponseTopic::default();
                            t.name = TopicName(str_bytes(&topic));
                            response.topics.push(t);
                            response.topics.len() - 1
                        }
                    };
                    let mut r = offset_fetch_response::OffsetFetchResponsePartition::default();
                    r.partition_index = p;
                    r.error_code = code.0;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(str_bytes(&metadata));
                    response.topics[idx].partitions.push(r);
                }
            }
            Err(code) => response.error_code = code.0,
        }
        return response;
    }
    for g in request.groups {
        let mut out = offset_fetch_response::OffsetFetchResponseGroup::default();
        out.group_id = g.group_id.clone();
        let topics = g.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        match fetch_offsets(shard, &g.group_id.0, topics, request.require_stable).await {
            Ok(rows) => {
                for (topic, p, offset, epoch, metadata, code) in rows {
                    let idx = match out.topics.iter().position(|t| t.name.0.as_str() == topic) {
                        Some(i) => i,
                        None => {
                            let mut t = offset_fetch_response::OffsetFetchResponseTopics::default();
                            t.name = TopicName(str_bytes(&topic));
                            out.topics.push(t);
                            out.topics.len() - 1
                        }
                    };
                    let mut r = offset_fetch_response::OffsetFetchResponsePartitions::default();
                    r.partition_index = p;
                    r.error_code = code.0;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(str_bytes(&metadata));
                    out.topics[idx].partitions.push(r);
                }
            }
            Err(code) => out.error_code = code.0,
        }
        response.groups.push(out);
    }
    response
}

pub async fn describe_groups(
    shard: &Rc<Shard>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group in request.groups {
        let mut d = describe_groups_response::DescribedGroup::default();
        d.group_id = group.clone();
        d.authorized_operations = i32::MIN;
        match call(shard, &group.0, GroupCall::Describe(group.0.to_string())).await {
            Ok(GroupAnswer::Described(described)) => {
                d.group_state = str_bytes(described.state);
                d.protocol_type = str_bytes(&described.protocol_type);
                d.protocol_data = str_bytes(&described.protocol);
                d.members = described
                    .members
                    .into_iter()
                    .map(|(id, instance, client, host, metadata, assignment)| {
                        let mut m = describe_groups_response::DescribedGroupMember::default();
                        m.member_id = str_bytes(&id);
                        m.group_instance_id = opt_bytes(instance);
                        m.client_id = str_bytes(&client);
                        m.client_host = str_bytes(&host);
                        m.member_metadata = metadata;
                        m.member_assignment = assignment;
                        m
                    })
                    .collect();
            }
            Ok(_) => d.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
            Err(code) => d.error_code = code.0,
        }
        response.groups.push(d);
    }
    response
}

pub async fn list_groups(shard: &Rc<Shard>, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return response;
    }
    let calls = (0..shard.count).map(|s| {
        let shard = shard.clone();
        async move {
            shard
                .call(s, |s| async move { s.group_call(GroupCall::List).await })
                .await
        }
    });
    for answer in join_all(calls).await {
        match answer {
            Ok(GroupAnswer::Listed(groups)) => {
                for (id, protocol_type, state) in groups {
                    if !states.is_empty() && !states.contains(&state.to_ascii_lowercase()) {
                        continue;
                    }
                    let mut g = list_groups_response::ListedGroup::default();
                    g.group_id = GroupId(str_bytes(&id));
                    g.protocol_type = str_bytes(&protocol_type);
                    g.group_state = str_bytes(state);
                    g.group_type = str_bytes("classic");
                    response.groups.push(g);
                }
            }
            Ok(_) => {}
            Err(_) => response.error_code = KafkaCode::COORDINATOR_NOT_AVAILABLE.0,
        }
    }
    response
        .groups
        .sort_by(|a, b| a.group_id.0.as_str().cmp(b.group_id.0.as_str()));
    response
}

pub async fn delete_groups(
    shard: &Rc<Shard>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group in request.groups_names {
        let mut r = delete_groups_response::DeletableGroupResult::default();
        r.group_id = group.clone();
        r.error_code = match call(shard, &group.0, GroupCall::Delete(group.0.to_string())).await {
            Ok(GroupAnswer::Code(code)) => code.0,
            Ok(_) => KafkaCode::UNKNOWN_SERVER_ERROR.0,
            Err(code) => code.0,
        };
        response.results.push(r);
    }
    response
}

pub async fn offset_delete(
    shard: &Rc<Shard>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let mut response = OffsetDeleteResponse::default();
    let topics: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let codes = match call(
        shard,
        &group,
        GroupCall::OffsetDelete {
            group: group.clone(),
            topics,
        },
    )
    .await
    {
        Ok(GroupAnswer::Codes(codes)) => codes,
        Ok(_) => vec![KafkaCode::UNKNOWN_SERVER_ERROR],
        Err(code) => vec![code],
    };
    let mut codes = codes.into_iter();
    response.error_code = codes.next().unwrap_or(KafkaCode::NONE).0;
    if response.error_code != 0 {
        return response;
    }
    for topic in request.topics {
        let mut t = offset_delete_response::OffsetDeleteResponseTopic::default();
        t.name = topic.name;
        for p in topic.partitions {
            let mut r = offset_delete_response::OffsetDeleteResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = codes.next().unwrap_or(KafkaCode::NONE).0;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

/// TxnOffsetCommit: offsets a transactional producer commits for a group,
/// written to the group's `__consumer_offsets` partition as the producer's
/// transactional batch; they become the group's offsets only when the
/// transaction commits (its marker lands there), and an abort drops them.
pub async fn txn_offset_commit(
    shard: &Rc<Shard>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets = offsets_of!(request.topics);
    let count = offsets.len();
    let codes = if request.transactional_id.0.is_empty() {
        vec![KafkaCode::INVALID_REQUEST; count]
    } else {
        let commit = GroupCall::Commit {
            group: group.clone(),
            member: request.member_id.to_string(),
            instance: opt(&request.group_instance_id),
            generation: request.generation_id,
            offsets,
            producer: Some((request.producer_id.0, request.producer_epoch)),
        };
        commit_codes(shard, &group, commit, count).await
    };
    let codes = codes.into_iter().map(|c| {
        // Clients before v2 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
        if c == KafkaCode::PRODUCER_FENCED && version < 2 {
            KafkaCode::INVALID_PRODUCER_EPOCH
        } else {
            c
        }
    });
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = commit_response_topics!(
        request.topics,
        codes,
        txn_offset_commit_response::TxnOffsetCommitResponseTopic,
        txn_offset_commit_response::TxnOffsetCommitResponsePartition
    );
    response
}
