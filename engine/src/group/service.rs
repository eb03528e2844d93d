//! The group coordinator's service on a shard: the calls the group APIs
//! (`kafka/`, one file per API) send, persisting to `__consumer_offsets`,
//! loading a partition's groups when this shard starts leading it, and the
//! timer that drives session timeouts and rebalance deadlines.
//!
//! Each request about group G goes, as one [`GroupCall`], to the shard that
//! coordinates G (the owner of G's `__consumer_offsets` partition, see
//! [`super::state`]); that shard's `Coordinator` answers. ListGroups asks
//! every shard. `__consumer_offsets` is created on first use.

use crate::clock::now_ms;
use crate::errors::KafkaCode;
use crate::group::{
    offset_key, offset_value, offsets_partition, Committed, Coordinator, GroupState, JoinOutcome,
    JoinRequest, Limits, Persist, Reply, SyncOutcome, OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES,
};
use crate::messages::{AppendItem, CreateSpec, TopicPartition};
use crate::metadata::shard_for;
use crate::metrics::{GroupSnapshot, ShardSnapshot};
use crate::partition::role::Transition;
use crate::shard::{PartitionWatcher, Shard};
use bytes::{Bytes, BytesMut};
use std::cell::{OnceCell, RefCell};
use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strom_storage::batch;
use tracing::{info, warn};

/// How often each shard drives session timeouts and rebalance deadlines.
const GROUP_TICK: Duration = Duration::from_millis(50);

/// This shard's group coordinator state. Per shard (one per core thread,
/// like seastar's `sharded<T>::local()`), installed by [`Groups::install`]
/// before the shard serves; the shard itself does not hold it.
pub struct Groups {
    coordinator: RefCell<Coordinator>,
}

thread_local! {
    static LOCAL: OnceCell<Rc<Groups>> = const { OnceCell::new() };
}

impl Groups {
    /// Creates this shard's group coordinator, has the shard tell it about
    /// `__consumer_offsets` role changes and deleted topics, and starts its
    /// timer.
    pub fn install(shard: &Rc<Shard>) {
        let groups = Rc::new(Groups {
            coordinator: RefCell::new(Coordinator::new(Limits::of(&shard.broker))),
        });
        LOCAL.with(|local| {
            assert!(
                local.set(groups.clone()).is_ok(),
                "one group coordinator per shard"
            )
        });
        shard.watch(groups.clone());
        glommio::spawn_local(groups.run_timer(shard.clone())).detach();
    }
}

/// This shard's group coordinator state (see [`Groups`]).
pub(crate) fn groups() -> Rc<Groups> {
    LOCAL
        .with(|local| local.get().cloned())
        .expect("Groups::install ran at shard start")
}

impl std::ops::Deref for Groups {
    type Target = RefCell<Coordinator>;
    fn deref(&self) -> &RefCell<Coordinator> {
        &self.coordinator
    }
}

impl PartitionWatcher for Groups {
    fn role_changed(&self, shard: &Rc<Shard>, tp: &TopicPartition, transition: &Transition) {
        if &*tp.topic != OFFSETS_TOPIC {
            return;
        }
        match transition {
            Transition::Unchanged | Transition::IsrChanged => {}
            Transition::BecameLeader { .. } => {
                self.coordinator.borrow_mut().unload_partition(tp.partition);
                if let Some(partition) = shard.partitions.borrow().get(tp) {
                    self.load_partition(shard.id, tp.partition, &partition.log);
                }
            }
            Transition::BecameFollower { .. } | Transition::WentOffline => {
                self.coordinator.borrow_mut().unload_partition(tp.partition);
            }
        }
    }

    fn topics_deleted(&self, shard: &Rc<Shard>, names: &HashSet<String>) {
        let tombstones = self.coordinator.borrow_mut().forget_topics(names);
        if !tombstones.is_empty() {
            persist_offsets(shard, tombstones);
        }
    }

    fn snapshot(&self, snapshot: &mut ShardSnapshot) {
        snapshot.groups = self
            .coordinator
            .borrow()
            .groups
            .values()
            .map(|g| GroupSnapshot {
                group: g.id.clone(),
                state: g.state.name(),
                members: g.member_count() as u64,
                offsets: g
                    .offsets
                    .iter()
                    .map(|((topic, partition), c)| (topic.clone(), *partition, c.offset))
                    .collect(),
            })
            .collect();
    }
}

/// One partition's offset in an OffsetCommit or TxnOffsetCommit.
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

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
        offsets: Vec<OffsetToCommit>,
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
    Offsets(Vec<CommittedOffset>),
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
            crate::cluster::client::create_topics(&zero, vec![spec], false).await
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
    coordinating_shard(shard, OFFSETS_TOPIC, offsets_partition(group, partitions))
}

/// The owner shard of partition `p` of an internal topic, which this
/// broker must lead to coordinate what lives there (NOT_COORDINATOR
/// otherwise, so the client asks FindCoordinator again).
pub(crate) fn coordinating_shard(shard: &Shard, topic: &str, p: i32) -> Result<usize, KafkaCode> {
    let leader = shard
        .table()
        .partition(topic, p)
        .map_or(crate::metadata::NO_LEADER, |s| s.leader);
    if leader != shard.node_id() {
        return Err(KafkaCode::NOT_COORDINATOR);
    }
    Ok(shard_for(topic, p, shard.count))
}

/// Sends `call` to the shard coordinating `group`.
pub(crate) async fn call(
    shard: &Rc<Shard>,
    group: &str,
    call: GroupCall,
) -> Result<GroupAnswer, KafkaCode> {
    let owner = coordinator_shard(shard, group).await?;
    shard
        .call(
            owner,
            move |s| async move { groups().serve(&s, call).await },
        )
        .await
        .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE)
}

/// One partition's committed offset as OffsetFetch answers it (-1, -1 and
/// no metadata when none is committed).
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: KafkaCode,
}

/// The member an offset commit comes from, as the request names it.
struct Committer<'a> {
    member: &'a str,
    instance: Option<&'a str>,
    generation: i32,
}

impl Groups {
    /// Serves a group call on the coordinating shard.
    pub(crate) async fn serve(&self, shard: &Rc<Shard>, call: GroupCall) -> GroupAnswer {
        let now = Instant::now();
        let ms = now_ms();
        match call {
            GroupCall::Join(request) => {
                let reply = self.borrow_mut().join(request, now, ms);
                self.persist_pending(shard);
                GroupAnswer::Join(match reply {
                    Reply::Now(outcome) => outcome,
                    // The group left this shard while the member waited.
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
                        JoinOutcome::error(KafkaCode::COORDINATOR_NOT_AVAILABLE, "")
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
                let reply = self.borrow_mut().sync(
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
                self.persist_pending(shard);
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
            } => GroupAnswer::Code(self.borrow_mut().heartbeat(
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
                        groups()
                            .borrow_mut()
                            .leave(&group, member, instance.as_deref(), now, ms)
                    })
                    .collect();
                self.persist_pending(shard);
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
                    shard,
                    &group,
                    Committer {
                        member: &member,
                        instance: instance.as_deref(),
                        generation,
                    },
                    offsets,
                    producer,
                )
                .await,
            ),
            GroupCall::Fetch {
                group,
                topics,
                require_stable,
            } => GroupAnswer::Offsets(self.fetch_offsets(&group, topics, require_stable)),
            GroupCall::Describe(group) => GroupAnswer::Described(self.describe(&group)),
            GroupCall::List => GroupAnswer::Listed(
                groups()
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
                let result = self.borrow_mut().delete(&group);
                match result {
                    Ok(tombstones) => {
                        let waits = persist(shard, tombstones);
                        GroupAnswer::Code(wait_all(waits).await)
                    }
                    Err(code) => GroupAnswer::Code(code),
                }
            }
            GroupCall::OffsetDelete { group, topics } => {
                self.offset_delete(shard, &group, topics).await
            }
        }
    }

    /// What DescribeGroups says of `group` (Dead when it is not known).
    fn describe(&self, group: &str) -> Described {
        match self.borrow().groups.get(group) {
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
        }
    }

    /// The committed offsets of `group`'s `topics` (None: every partition
    /// with one).
    fn fetch_offsets(
        &self,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Vec<CommittedOffset> {
        let coordinator = self.borrow();
        let stored = coordinator.groups.get(group);
        let row = |topic: &str, partition: i32, committed: Option<&Committed>| {
            let error = if require_stable && coordinator.has_pending_offset(group, topic, partition)
            {
                KafkaCode::UNSTABLE_OFFSET_COMMIT
            } else {
                KafkaCode::NONE
            };
            CommittedOffset {
                topic: topic.to_string(),
                partition,
                offset: committed.map_or(-1, |c| c.offset),
                leader_epoch: committed.map_or(-1, |c| c.leader_epoch),
                metadata: committed.map(|c| c.metadata.clone()).unwrap_or_default(),
                error,
            }
        };
        match topics {
            Some(topics) => topics
                .iter()
                .flat_map(|(topic, partitions)| {
                    partitions.iter().map(|&p| {
                        let committed = stored.and_then(|g| g.offsets.get(&(topic.to_string(), p)));
                        row(topic, p, committed)
                    })
                })
                .collect(),
            None => stored
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((topic, p), c)| row(topic, *p, Some(c)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    async fn commit(
        &self,
        shard: &Rc<Shard>,
        group: &str,
        committer: Committer<'_>,
        offsets: Vec<OffsetToCommit>,
        producer: Option<(i64, i16)>,
    ) -> Vec<KafkaCode> {
        let Committer {
            member,
            instance,
            generation,
        } = committer;
        let ms = now_ms();
        // A transactional commit without a member (clients before KIP-447)
        // is not checked against the membership, as in Kafka.
        let partition = self.borrow().partition_of(group);
        let fenced =
            producer.is_some_and(|(id, epoch)| self.borrow().txn_fenced(partition, id, epoch));
        let check = if fenced {
            KafkaCode::PRODUCER_FENCED
        } else if producer.is_some() && generation < 0 && member.is_empty() {
            if group.is_empty() {
                KafkaCode::INVALID_GROUP_ID
            } else {
                KafkaCode::NONE
            }
        } else {
            groups()
                .borrow_mut()
                .check_commit(group, member, instance, generation, ms)
        };
        if !check.is_ok() {
            return vec![check; offsets.len()];
        }
        let table = shard.table();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for OffsetToCommit {
            topic,
            partition: p,
            offset,
            leader_epoch: epoch,
            metadata,
        } in offsets
        {
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
        let result = wait_all(persist_to(shard, OFFSETS_TOPIC, records, producer)).await;
        if !result.is_ok() {
            return codes
                .into_iter()
                .map(|c| if c.is_ok() { result } else { c })
                .collect();
        }
        let local = self;
        let mut coordinator = local.borrow_mut();
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
        &self,
        shard: &Rc<Shard>,
        group: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> GroupAnswer {
        let (subscribed, partition) = {
            let local = self;
            let coordinator = local.borrow();
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
            let result = wait_all(persist(shard, tombstones)).await;
            if !result.is_ok() {
                return GroupAnswer::Codes(vec![result]);
            }
            if let Some(g) = self.borrow_mut().groups.get_mut(group) {
                for key in removed {
                    g.offsets.remove(&key);
                }
            }
        }
        GroupAnswer::Codes(codes)
    }

    /// Appends the group metadata records the coordinator queued (not
    /// waited for: a lost one only costs a generation number after a crash).
    fn persist_pending(&self, shard: &Shard) {
        let records = std::mem::take(&mut self.borrow_mut().to_persist);
        if !records.is_empty() {
            persist_offsets(shard, records);
        }
    }

    /// Reads a `__consumer_offsets` partition this shard just opened into the
    /// coordinator (start-up, or the topic's creation).
    pub(crate) fn load_partition(
        &self,
        shard: usize,
        partition: i32,
        log: &strom_storage::log::PartitionLog,
    ) {
        let ms = now_ms();
        let mut loaded = 0u64;
        let local = self;
        let mut coordinator = local.borrow_mut();
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
            info!(shard, dir = %log.dir().display(), records = loaded, "loaded consumer groups");
        }
    }

    /// Drives session timeouts, rebalance deadlines and offset retention.
    pub(crate) async fn run_timer(self: Rc<Self>, shard: Rc<Shard>) {
        let retention_ms = shard
            .broker
            .offsets_retention_minutes
            .saturating_mul(60_000);
        let retention_every =
            Duration::from_millis(shard.broker.offsets_retention_check_interval_ms as u64);
        let mut next_retention = Instant::now() + retention_every;
        loop {
            glommio::timer::sleep(GROUP_TICK).await;
            let now = Instant::now();
            self.borrow_mut().tick(now, now_ms());
            if now >= next_retention {
                next_retention = now + retention_every;
                let tombstones = self.borrow_mut().expire_offsets(now_ms(), retention_ms);
                if !tombstones.is_empty() {
                    persist_offsets(&shard, tombstones);
                }
            }
            self.persist_pending(&shard);
        }
    }
}

/// Appends records to this shard's `__consumer_offsets` partitions; one
/// receiver per partition, firing once synced.
fn persist(shard: &Shard, records: Vec<Persist>) -> Vec<oneshot_rx::Receiver> {
    persist_to(shard, OFFSETS_TOPIC, records, None)
}

/// Appends records to this shard's partitions of an internal topic
/// (`__consumer_offsets`, `__transaction_state`), one batch per
/// partition, as a transactional producer's batches when `producer`
/// (id, epoch) is given; one receiver per partition, firing once the
/// in-sync replicas have the records (and, without write caching,
/// synced them).
pub(crate) fn persist_to(
    shard: &Shard,
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
    let (outcomes, waits) = shard.append_local(items, true);
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
pub(crate) fn persist_offsets(shard: &Shard, records: Vec<Persist>) {
    for wait in persist(shard, records) {
        if let oneshot_rx::Receiver::Failed(code) = wait {
            warn!(shard = shard.id, "{OFFSETS_TOPIC} record not written ({code:?}); it is lost if the broker restarts before the next write");
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
                // As Kafka's group coordinator: too few in-sync copies of
                // the record, before or after its append.
                KafkaCode::NOT_ENOUGH_REPLICAS | KafkaCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
                    KafkaCode::COORDINATOR_NOT_AVAILABLE
                }
                other => other,
            };
        }
    }
    result
}
