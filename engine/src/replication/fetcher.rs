//! Followers copying their leaders' logs: one fetch task per (shard, leader
//! broker), for all the partitions this shard follows from that leader.
//!
//! Each task keeps one Kafka connection to the leader's listener (from this
//! broker's own listener address) and loops:
//!
//! 1. Partitions that just started following (a new leader or leader epoch)
//!    first find where their log diverges from the leader's with
//!    OffsetForLeaderEpoch (KIP-101/KIP-279): the follower sends its latest
//!    epoch; the leader answers the largest epoch it has up to that one and
//!    where that epoch ends in its log. If the follower has that epoch, it
//!    truncates to the smaller of the two end offsets; if not, it asks again
//!    for its own largest epoch below the answer. A follower without epochs
//!    truncates to its high watermark.
//! 2. Then Fetch (v12, `replica_id` = this broker) from each partition's log
//!    end offset, with the leader epoch it follows (the leader refuses an
//!    older one: FENCED_LEADER_EPOCH). Records are appended as they are
//!    (offsets and epochs kept), the high watermark follows the leader's
//!    (never past the local log end), and the log start offset too.
//! 3. Without write caching, the appended records are synced (the shard's
//!    group commit) before the next fetch: the offset a follower reports to
//!    its leader is always durable here, so an acks=all record is on disk on
//!    every in-sync replica.
//!
//! Who touches it: the shard owning the partitions; the task borrows the
//! partition map only between awaits.

use crate::clock::now_ms;
use crate::ids::{LeaderEpoch, NodeId};
use crate::messages::TopicPartition;
use crate::partition::role::{IsrRequest, Role, Transition};
use crate::shard::{PartitionWatcher, Shard};
use futures::channel::oneshot;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    TopicName,
};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};
use std::time::Duration;
use strom_net::client::{ClientOptions, Connection};
use strom_net::response::str_bytes;
use strom_storage::batch::{parse_header, validate_batches, BATCH_HEADER_BYTES};
use tracing::{debug, info, warn};

/// Rounds of OffsetForLeaderEpoch before a follower gives up matching
/// epochs and truncates to its high watermark.
const TRUNCATION_ROUNDS_MAX: u8 = 16;
/// Kafka error codes the fetcher reacts to.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// The versions a follower sends: Fetch v12 names topics (no topic ids) and
/// carries `replica_id`, `current_leader_epoch` and `last_fetched_epoch`.
fn replica_versions(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::Fetch => 12,
        ApiKey::OffsetForLeaderEpoch => 4,
        ApiKey::ApiVersions => 3,
        _ => 0,
    }
}

/// Where a followed partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchState {
    /// Find the divergence point, asking about this epoch (None: our latest).
    Truncate {
        leader_epoch: LeaderEpoch,
        ask_epoch: Option<LeaderEpoch>,
        rounds: u8,
    },
    Fetch {
        leader_epoch: LeaderEpoch,
    },
}

/// The partitions one task fetches from one leader.
pub struct FetcherTask {
    leader: NodeId,
    partitions: RefCell<BTreeMap<TopicPartition, FetchState>>,
    wake: RefCell<Option<oneshot::Sender<()>>>,
}

impl FetcherTask {
    fn poke(&self) {
        if let Some(wake) = self.wake.borrow_mut().take() {
            let _ = wake.send(());
        }
    }
}

/// A shard's fetch tasks by leader broker. Per shard (one per core thread,
/// like the coordinators), installed by [`Fetchers::install`]; the shard
/// tells it about role changes through `PartitionWatcher`.
#[derive(Default)]
pub struct Fetchers {
    by_leader: RefCell<HashMap<NodeId, Rc<FetcherTask>>>,
}

thread_local! {
    static LOCAL: OnceCell<Rc<Fetchers>> = const { OnceCell::new() };
}

/// This shard's fetch tasks (see [`Fetchers`]).
fn fetchers() -> Rc<Fetchers> {
    LOCAL
        .with(|local| local.get().cloned())
        .expect("Fetchers::install ran at shard start")
}

impl Fetchers {
    /// Creates this shard's fetchers, has the shard tell them about role
    /// changes, and starts the leaders' ISR timer.
    pub fn install(shard: &Rc<Shard>) {
        let fetchers = Rc::new(Fetchers::default());
        LOCAL.with(|local| {
            assert!(
                local.set(fetchers.clone()).is_ok(),
                "one set of fetchers per shard"
            )
        });
        shard.watch(fetchers);
        glommio::spawn_local(super::isr_timer(shard.clone())).detach();
    }

    /// Starts (or restarts, at a new epoch) following `leader` for `tp`.
    fn follow(
        &self,
        shard: &Rc<Shard>,
        tp: TopicPartition,
        leader: NodeId,
        leader_epoch: LeaderEpoch,
    ) {
        self.unfollow(&tp);
        // glommio may poll a new task at once: no borrow may be held when it
        // is spawned, and the partition must be in it already.
        let (task, new) = {
            let mut tasks = self.by_leader.borrow_mut();
            match tasks.get(&leader) {
                Some(task) => (task.clone(), false),
                None => {
                    let task = Rc::new(FetcherTask {
                        leader,
                        partitions: RefCell::new(BTreeMap::new()),
                        wake: RefCell::new(None),
                    });
                    tasks.insert(leader, task.clone());
                    (task, true)
                }
            }
        };
        task.partitions.borrow_mut().insert(
            tp,
            FetchState::Truncate {
                leader_epoch,
                ask_epoch: None,
                rounds: 0,
            },
        );
        if new {
            glommio::spawn_local(run(Rc::downgrade(shard), task)).detach();
        } else {
            task.poke();
        }
    }

    /// Stops following `tp` (it leads now, is offline, or went away).
    fn unfollow(&self, tp: &TopicPartition) {
        for task in self.by_leader.borrow().values() {
            if task.partitions.borrow_mut().remove(tp).is_some() {
                task.poke();
            }
        }
    }
}

impl PartitionWatcher for Fetchers {
    fn role_changed(&self, shard: &Rc<Shard>, tp: &TopicPartition, transition: &Transition) {
        match transition {
            Transition::Unchanged | Transition::IsrChanged => {}
            Transition::BecameLeader { .. } | Transition::WentOffline => self.unfollow(tp),
            Transition::BecameFollower {
                leader,
                leader_epoch,
            } => self.follow(shard, tp.clone(), *leader, *leader_epoch),
        }
    }

    fn partition_removed(&self, _shard: &Rc<Shard>, tp: &TopicPartition) {
        self.unfollow(tp);
    }

    fn isr_change_wanted(&self, shard: &Rc<Shard>, tp: &TopicPartition, request: &IsrRequest) {
        super::request_isr_change(shard, tp.clone(), request);
    }
}

fn options(shard: &Shard) -> ClientOptions {
    broker_client_options(
        shard,
        "strom-replica-fetcher",
        replica_versions,
        Duration::from_secs(10),
    )
}

/// Options of a connection from this broker to another one: from the
/// listener's address (so fault tests can tell brokers' traffic apart).
pub(crate) fn broker_client_options(
    shard: &Shard,
    client_id: &'static str,
    max_version: fn(kafka_protocol::messages::ApiKey) -> i16,
    io_timeout: Duration,
) -> ClientOptions {
    let bind = Some(shard.broker.listen.ip()).filter(|ip| !ip.is_unspecified());
    ClientOptions {
        client_id,
        max_version,
        io_timeout,
        bind,
    }
}

/// One fetch task; ends when it has no partitions left.
async fn run(shard: Weak<Shard>, task: Rc<FetcherTask>) {
    let mut connection: Option<Connection> = None;
    loop {
        let Some(shard) = shard.upgrade() else {
            return;
        };
        if task.partitions.borrow().is_empty() {
            // Nothing to follow from this leader any more: end, unless a
            // partition was added meanwhile (follow() found us registered).
            let fetchers = fetchers();
            let mut tasks = fetchers.by_leader.borrow_mut();
            if task.partitions.borrow().is_empty() {
                if tasks
                    .get(&task.leader)
                    .is_some_and(|t| Rc::ptr_eq(t, &task))
                {
                    tasks.remove(&task.leader);
                }
                return;
            }
        }
        let backoff =
            Duration::from_millis(u64::from(shard.broker.replica_fetch_backoff_ms).max(10));
        if connection.is_none() {
            let table = shard.table();
            let Some(broker) = table.brokers.get(&task.leader) else {
                pause(&task, backoff).await;
                continue;
            };
            let address = format!("{}:{}", broker.host, broker.port);
            match Connection::connect(&address, options(&shard)).await {
                Ok(conn) => {
                    info!(shard = shard.id, leader = %task.leader, %address, "replica fetcher connected");
                    connection = Some(conn);
                }
                Err(err) => {
                    debug!(
                        shard = shard.id,
                        leader = %task.leader,
                        "replica fetcher cannot connect: {err}"
                    );
                    pause(&task, backoff).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let result = match truncations(&task) {
            list if !list.is_empty() => truncate(&shard, &task, conn, list).await,
            _ => fetch(&shard, &task, conn).await,
        };
        match result {
            // Busy rounds may follow one another without I/O: let the
            // shard's other tasks (and its shutdown) run in between.
            Ok(Progress::Busy) => glommio::yield_if_needed().await,
            Ok(Progress::Idle) => pause(&task, backoff).await,
            Err(err) => {
                debug!(
                    shard = shard.id,
                    leader = %task.leader,
                    "replica fetch failed: {err}"
                );
                connection = None;
                pause(&task, backoff).await;
            }
        }
    }
}

/// Waits `pause`, or less if partitions are added or removed.
async fn pause(task: &FetcherTask, pause: Duration) {
    let (tx, rx) = oneshot::channel();
    *task.wake.borrow_mut() = Some(tx);
    let sleep = glommio::timer::sleep(pause);
    futures::pin_mut!(sleep);
    let _ = futures::future::select(rx, sleep).await;
}

enum Progress {
    /// Something happened; go on at once.
    Busy,
    /// Nothing to do or the leader refused: wait a little.
    Idle,
}

/// A partition looking for where its log diverges from the leader's.
struct Truncation {
    tp: TopicPartition,
    /// The epoch it follows at.
    leader_epoch: LeaderEpoch,
    /// The epoch to ask about (None: its latest).
    ask_epoch: Option<LeaderEpoch>,
    rounds: u8,
}

/// An OffsetForLeaderEpoch question for one partition.
#[derive(Debug, Clone, Copy)]
struct Asked {
    leader_epoch: LeaderEpoch,
    epoch: LeaderEpoch,
    rounds: u8,
}

fn truncations(task: &FetcherTask) -> Vec<Truncation> {
    task.partitions
        .borrow()
        .iter()
        .filter_map(|(tp, state)| match state {
            FetchState::Truncate {
                leader_epoch,
                ask_epoch,
                rounds,
            } => Some(Truncation {
                tp: tp.clone(),
                leader_epoch: *leader_epoch,
                ask_epoch: *ask_epoch,
                rounds: *rounds,
            }),
            FetchState::Fetch { .. } => None,
        })
        .collect()
}

/// Groups (tp, value) pairs by topic, in order.
fn by_topic<T>(items: Vec<(TopicPartition, T)>) -> BTreeMap<std::sync::Arc<str>, Vec<(i32, T)>> {
    let mut out: BTreeMap<std::sync::Arc<str>, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, value) in items {
        out.entry(tp.topic.clone())
            .or_default()
            .push((tp.partition, value));
    }
    out
}

/// The local half of a truncation round: partitions with no epoch of their
/// own are settled here; the rest are returned, to be asked of the leader
/// as (leader epoch, epoch asked, rounds). A partition this shard no longer
/// holds (deleted, or closed at shutdown) leaves the task: kept, it would
/// be planned again at once, forever, and the loop would never yield.
fn truncations_to_ask(
    shard_id: usize,
    partitions: &mut HashMap<TopicPartition, crate::partition::Partition>,
    task: &FetcherTask,
    list: Vec<Truncation>,
) -> Vec<(TopicPartition, Asked)> {
    let mut asked = Vec::new();
    for Truncation {
        tp,
        leader_epoch,
        ask_epoch,
        rounds,
    } in list
    {
        let Some(partition) = partitions.get_mut(&tp) else {
            task.partitions.borrow_mut().remove(&tp);
            continue;
        };
        let latest = ask_epoch.or(partition.log.latest_epoch().map(LeaderEpoch));
        let local_hw = partition.log.high_watermark();
        let done = match latest {
            // Nothing of ours to compare: keep what is committed.
            None if partition.log.log_end_offset() > local_hw
                || rounds >= TRUNCATION_ROUNDS_MAX =>
            {
                truncate_log(shard_id, &tp, partition, local_hw);
                true
            }
            None => true,
            Some(epoch) => {
                asked.push((
                    tp.clone(),
                    Asked {
                        leader_epoch,
                        epoch,
                        rounds,
                    },
                ));
                false
            }
        };
        if done {
            task.partitions
                .borrow_mut()
                .insert(tp, FetchState::Fetch { leader_epoch });
        }
    }
    asked
}

/// One OffsetForLeaderEpoch round for the partitions that need it.
async fn truncate(
    shard: &Rc<Shard>,
    task: &FetcherTask,
    conn: &mut Connection,
    list: Vec<Truncation>,
) -> Result<Progress, strom_net::client::ClientError> {
    let asked = truncations_to_ask(shard.id, &mut shard.partitions.borrow_mut(), task, list);
    if asked.is_empty() {
        return Ok(Progress::Busy);
    }
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = shard.node_id().into();
    let wanted: HashMap<TopicPartition, Asked> = asked.iter().cloned().collect();
    for (topic, partitions) in by_topic(asked) {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = TopicName(str_bytes(&topic));
        for (partition, question) in partitions {
            let mut p = OffsetForLeaderPartition::default();
            p.partition = partition;
            p.current_leader_epoch = question.leader_epoch.0;
            p.leader_epoch = question.epoch.0;
            t.partitions.push(p);
        }
        request.topics.push(t);
    }
    let response: OffsetForLeaderEpochResponse =
        conn.call(ApiKey::OffsetForLeaderEpoch, &request).await?;
    let mut refused = false;
    let mut partitions = shard.partitions.borrow_mut();
    for topic in response.topics {
        let name: std::sync::Arc<str> = std::sync::Arc::from(topic.topic.0.as_str());
        for answer in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: answer.partition,
            };
            let Some(Asked {
                leader_epoch,
                rounds,
                ..
            }) = wanted.get(&tp).copied()
            else {
                continue;
            };
            let Some(partition) = partitions.get_mut(&tp) else {
                continue;
            };
            if !still_following(task, &tp, leader_epoch) {
                continue;
            }
            if answer.error_code != NONE {
                debug!(topic = %tp.topic, partition = tp.partition, code = answer.error_code, "OffsetForLeaderEpoch refused; retrying");
                refused = true;
                continue;
            }
            let next_state = if answer.end_offset < 0 || answer.leader_epoch < 0 {
                // The leader has nothing for our epochs: keep what is committed.
                let hw = partition.log.high_watermark();
                truncate_log(shard.id, &tp, partition, hw);
                FetchState::Fetch { leader_epoch }
            } else {
                let (ours, our_end) = partition.log.end_offset_for_epoch(answer.leader_epoch);
                if ours == answer.leader_epoch || ours < 0 || rounds + 1 >= TRUNCATION_ROUNDS_MAX {
                    let target = if ours < 0 {
                        answer.end_offset.min(partition.log.high_watermark())
                    } else {
                        answer.end_offset.min(our_end)
                    };
                    truncate_log(shard.id, &tp, partition, target);
                    FetchState::Fetch { leader_epoch }
                } else {
                    // We lack the leader's epoch: ask about our own largest
                    // epoch below it.
                    FetchState::Truncate {
                        leader_epoch,
                        ask_epoch: Some(LeaderEpoch(ours)),
                        rounds: rounds + 1,
                    }
                }
            };
            task.partitions.borrow_mut().insert(tp, next_state);
        }
    }
    Ok(if refused {
        Progress::Idle
    } else {
        Progress::Busy
    })
}

fn still_following(task: &FetcherTask, tp: &TopicPartition, leader_epoch: LeaderEpoch) -> bool {
    task.partitions
        .borrow()
        .get(tp)
        .is_some_and(|state| match state {
            FetchState::Truncate {
                leader_epoch: e, ..
            }
            | FetchState::Fetch { leader_epoch: e } => *e == leader_epoch,
        })
}

/// Cuts a follower's log at `offset` (fail-stop if that fails).
fn truncate_log(
    shard_id: usize,
    tp: &TopicPartition,
    partition: &mut crate::partition::Partition,
    offset: i64,
) {
    let end = partition.log.log_end_offset();
    if offset >= end {
        return;
    }
    info!(shard = shard_id, topic = %tp.topic, partition = tp.partition, from = end, to = offset, "truncating a follower's log to match its leader");
    if let Err(err) = partition.truncate_to(offset) {
        tracing::error!(shard = shard_id, topic = %tp.topic, partition = tp.partition, "truncating the log failed, stopping the broker: {err}");
        crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
    }
}

/// Complete batches at the start of `records` (a response may end with part
/// of a batch, KIP-74).
fn complete_batches(records: &[u8]) -> &[u8] {
    let mut at = 0;
    while records.len() - at >= BATCH_HEADER_BYTES {
        let Ok(header) = parse_header(&records[at..]) else {
            break;
        };
        let total = header.total_bytes();
        if records.len() - at < total {
            break;
        }
        at += total;
    }
    &records[..at]
}

/// One Fetch round: appends what came, then waits for the syncs it needs.
async fn fetch(
    shard: &Rc<Shard>,
    task: &FetcherTask,
    conn: &mut Connection,
) -> Result<Progress, strom_net::client::ClientError> {
    let (request, wanted) = fetch_request(shard, task);
    if request.topics.is_empty() {
        return Ok(Progress::Idle);
    }
    let response: FetchResponse = conn.call(ApiKey::Fetch, &request).await?;
    if response.error_code != NONE {
        warn!(
            shard = shard.id,
            leader = %task.leader,
            code = response.error_code,
            "replica fetch refused"
        );
        return Ok(Progress::Idle);
    }
    let mut to_sync: Vec<(TopicPartition, i64)> = Vec::new();
    let mut refused = false;
    let mut appended = false;
    let now = now_ms();
    {
        let mut partitions = shard.partitions.borrow_mut();
        for topic in response.responses {
            let name: std::sync::Arc<str> = std::sync::Arc::from(topic.topic.0.as_str());
            for data in topic.partitions {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: data.partition_index,
                };
                let Some((leader_epoch, fetch_offset)) = wanted.get(&tp).copied() else {
                    continue;
                };
                if !still_following(task, &tp, leader_epoch) {
                    continue;
                }
                let Some(partition) = partitions.get_mut(&tp) else {
                    continue;
                };
                if !matches!(partition.role, Role::Follower { leader_epoch: e, .. } if e == leader_epoch)
                {
                    continue;
                }
                let fetched = Fetched {
                    tp: &tp,
                    leader_epoch,
                    fetch_offset,
                    now_ms: now,
                };
                let progress = follow_partition(shard, task, partition, &data, fetched);
                appended |= progress.appended;
                refused |= progress.refused;
                if let Some(end) = progress.unsynced_to {
                    to_sync.push((tp.clone(), end));
                }
            }
        }
    }
    wait_synced(shard, to_sync).await;
    Ok(if refused && !appended {
        Progress::Idle
    } else {
        Progress::Busy
    })
}

/// The next Fetch to the leader: every partition of `task` in its fetching
/// state, from its log end, and what was asked per partition (leader epoch,
/// fetch offset).
fn fetch_request(
    shard: &Shard,
    task: &FetcherTask,
) -> (FetchRequest, HashMap<TopicPartition, (LeaderEpoch, i64)>) {
    let config = &shard.broker;
    let mut request = FetchRequest::default();
    request.replica_id = shard.node_id().into();
    request.max_wait_ms = config.replica_fetch_wait_max_ms as i32;
    request.min_bytes = 1;
    request.max_bytes = config.replica_fetch_response_max_bytes as i32;
    request.session_id = 0;
    request.session_epoch = -1;
    let mut wanted: HashMap<TopicPartition, (LeaderEpoch, i64)> = HashMap::new();
    let partitions = shard.partitions.borrow();
    let states: Vec<(TopicPartition, LeaderEpoch)> = task
        .partitions
        .borrow()
        .iter()
        .filter_map(|(tp, s)| match s {
            FetchState::Fetch { leader_epoch } => Some((tp.clone(), *leader_epoch)),
            FetchState::Truncate { .. } => None,
        })
        .collect();
    let mut items = Vec::new();
    for (tp, leader_epoch) in states {
        let Some(partition) = partitions.get(&tp) else {
            continue;
        };
        let offset = partition.log.log_end_offset();
        let mut p = FetchPartition::default();
        p.partition = tp.partition;
        p.current_leader_epoch = leader_epoch.0;
        p.fetch_offset = offset;
        p.last_fetched_epoch = partition.log.latest_epoch().unwrap_or(-1);
        p.log_start_offset = partition.log.log_start_offset();
        p.partition_max_bytes = config.replica_fetch_max_bytes as i32;
        wanted.insert(tp.clone(), (leader_epoch, offset));
        items.push((tp, p));
    }
    for (topic, parts) in by_topic(items) {
        let mut t = FetchTopic::default();
        t.topic = TopicName(str_bytes(&topic));
        t.partitions = parts.into_iter().map(|(_, p)| p).collect();
        request.topics.push(t);
    }
    (request, wanted)
}

/// What was asked of one partition and when it was answered.
#[derive(Clone, Copy)]
struct Fetched<'a> {
    tp: &'a TopicPartition,
    leader_epoch: LeaderEpoch,
    fetch_offset: i64,
    now_ms: i64,
}

/// One partition's part of a fetch response, applied (all false when it
/// was sent back to truncation or restarted at the leader's log start).
#[derive(Default)]
struct PartitionProgress {
    appended: bool,
    /// The leader refused it, or its records could not be taken.
    refused: bool,
    /// Appended records not yet synced, up to this offset.
    unsynced_to: Option<i64>,
}

/// Applies the leader's answer for one partition this follower fetches:
/// its records (when they start at the log end), the leader's log start
/// offset and high watermark.
fn follow_partition(
    shard: &Shard,
    task: &FetcherTask,
    partition: &mut crate::partition::Partition,
    data: &kafka_protocol::messages::fetch_response::PartitionData,
    fetched: Fetched<'_>,
) -> PartitionProgress {
    let tp = fetched.tp;
    match data.error_code {
        NONE => {}
        OFFSET_OUT_OF_RANGE => {
            if data.log_start_offset > fetched.fetch_offset {
                info!(shard = shard.id, topic = %tp.topic, partition = tp.partition, start = data.log_start_offset, "follower behind the leader's log start: starting over there");
                if let Err(err) = partition.restart_at(data.log_start_offset) {
                    tracing::error!(
                        "resetting a follower's log failed, stopping the broker: {err}"
                    );
                    crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                }
            } else {
                task.partitions.borrow_mut().insert(
                    tp.clone(),
                    FetchState::Truncate {
                        leader_epoch: fetched.leader_epoch,
                        ask_epoch: None,
                        rounds: 0,
                    },
                );
            }
            return PartitionProgress::default();
        }
        code => {
            debug!(shard = shard.id, topic = %tp.topic, partition = tp.partition, code, "replica fetch refused for a partition");
            return PartitionProgress {
                refused: true,
                ..PartitionProgress::default()
            };
        }
    }
    let mut appended = false;
    let mut refused = false;
    if let Some(records) = data.records.as_ref() {
        let records = complete_batches(records);
        if !records.is_empty() {
            match validate_batches(records) {
                Ok(headers) if headers[0].base_offset == partition.log.log_end_offset() => {
                    match partition
                        .log
                        .append_replicated(records, &headers, fetched.now_ms)
                    {
                        Ok(_) => {
                            appended = true;
                            partition.counters.bytes_in += records.len() as u64;
                            partition.wake_replica_fetches();
                        }
                        Err(err) if err.is_no_space() => {
                            warn!(shard = shard.id, topic = %tp.topic, partition = tp.partition, "disk full: follower not appending ({err})");
                            shard.disk_full.set(true);
                            refused = true;
                        }
                        Err(err) => {
                            tracing::error!(shard = shard.id, topic = %tp.topic, partition = tp.partition, "follower append failed, stopping the broker: {err}");
                            crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                        }
                    }
                }
                Ok(headers) => {
                    warn!(shard = shard.id, topic = %tp.topic, partition = tp.partition, expected = partition.log.log_end_offset(), got = headers[0].base_offset, "leader sent records from another offset; fetching again");
                }
                Err(err) => {
                    warn!(shard = shard.id, topic = %tp.topic, partition = tp.partition, "leader sent invalid records ({err}); fetching again");
                    refused = true;
                }
            }
        }
    }
    if data.log_start_offset > partition.log.log_start_offset()
        && data.log_start_offset <= partition.log.log_end_offset()
    {
        if let Err(err) = partition.log.delete_records_before(data.log_start_offset) {
            warn!(shard = shard.id, topic = %tp.topic, partition = tp.partition, "cannot follow the leader's log start offset: {err}");
        }
    }
    let end = partition.log.log_end_offset();
    let hw = data.high_watermark.min(end);
    if hw >= 0 {
        partition.log.set_replicated_high_watermark(Some(hw));
    }
    let mut unsynced_to = None;
    if partition.config.write_caching {
        partition.on_progress();
    } else if partition.log.synced_offset() < end {
        unsynced_to = Some(end);
    } else {
        partition.on_progress();
    }
    PartitionProgress {
        appended,
        refused,
        unsynced_to,
    }
}

/// Syncs the followers' new records (group commit) and waits for them.
async fn wait_synced(shard: &Rc<Shard>, list: Vec<(TopicPartition, i64)>) {
    let mut waits = Vec::with_capacity(list.len());
    {
        let mut partitions = shard.partitions.borrow_mut();
        for (tp, offset) in list {
            let Some(partition) = partitions.get_mut(&tp) else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            partition.sync_waiters.push((offset, tx));
            if !partition.sync_queued {
                partition.sync_queued = true;
                waits.push((tp.clone(), rx));
                shard.request_sync(tp);
            } else {
                waits.push((tp, rx));
            }
        }
    }
    for (_, wait) in waits {
        let _ = wait.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_truncating(tps: &[TopicPartition]) -> FetcherTask {
        let partitions = tps
            .iter()
            .map(|tp| {
                let state = FetchState::Truncate {
                    leader_epoch: LeaderEpoch(1),
                    ask_epoch: None,
                    rounds: 0,
                };
                (tp.clone(), state)
            })
            .collect();
        FetcherTask {
            leader: NodeId(2),
            partitions: RefCell::new(partitions),
            wake: RefCell::new(None),
        }
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: std::sync::Arc::from("t"),
            partition,
        }
    }

    /// The shutdown hang of the rolling-restart fault test: the shard
    /// closed its partitions while one was still to be truncated; planned
    /// again and again without ever yielding, the fetcher starved the shard.
    #[test]
    fn a_partition_no_longer_on_the_shard_leaves_the_truncation_plan() {
        let tmp = tempfile::tempdir().unwrap();
        let mut partitions = HashMap::new();
        partitions.insert(
            tp(0),
            crate::partition::Partition::empty_for_test(tmp.path()),
        );
        let task = task_truncating(&[tp(0), tp(1)]);
        let list = truncations(&task);
        assert_eq!(list.len(), 2);
        let asked = truncations_to_ask(0, &mut partitions, &task, list);
        assert!(asked.is_empty(), "an empty log has no epoch to ask about");
        // Partition 0 (held, empty) fetches now; partition 1 (gone) is dropped.
        assert_eq!(
            task.partitions.borrow().get(&tp(0)),
            Some(&FetchState::Fetch {
                leader_epoch: LeaderEpoch(1)
            })
        );
        assert!(!task.partitions.borrow().contains_key(&tp(1)));
        assert!(truncations(&task).is_empty(), "nothing left to plan");
    }

    #[test]
    fn a_partial_batch_at_the_end_is_left_for_the_next_fetch() {
        let one = strom_storage::batch::encode_simple_batch(0, 1, &[b"a"]);
        let two = strom_storage::batch::encode_simple_batch(1, 1, &[b"bb"]);
        let mut buf = one.clone();
        buf.extend_from_slice(&two);
        assert_eq!(complete_batches(&buf).len(), buf.len());
        assert_eq!(complete_batches(&buf[..buf.len() - 3]).len(), one.len());
        assert_eq!(complete_batches(&buf[..10]).len(), 0);
        assert_eq!(complete_batches(&[]).len(), 0);
    }
}
