//! One shard: the state a single core owns, and the handling of cross-shard messages.
//!
//! A `Shard` lives on exactly one glommio executor (one pinned thread) behind an
//! `Rc`; nothing in it is shared with other threads. Other shards reach its
//! partitions only by sending it work ([`Shard::call`]). RefCell borrows are never held across
//! an `.await`.

pub mod durability;

use crate::clock::now_ms;
use crate::errors::{storage_error_code, KafkaCode};
use crate::ids::NodeId;
use crate::messages::*;
use crate::metadata::{layers_of, partition_dir, shard_for, TopicMeta, TopicTable};
pub use crate::partition::{log_config, Partition};
use crate::runtime::mesh;
use futures::channel::oneshot;
use futures::future::{select, select_all};
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use strom_net::versions::ApiSupport;
use strom_storage::log::PartitionLog;
use strom_tuning::catalog::BrokerLayers;
use strom_tuning::config::{BrokerConfig, TopicConfig};
use strom_tuning::limits::{MESH_DATA_TASKS_PER_SHARD_MAX, REQUEST_MEMORY_PER_SHARD_BYTES};
use tracing::{debug, error, info, warn};
use uuid::Uuid;

/// A service whose work follows the shard's partitions: the replica
/// fetchers, and the group and transaction coordinators, whose state lives
/// in internal topics. The shard tells its watchers in registration order
/// (the fetchers first).
///
/// Each call comes with none of the shard's state borrowed; role changes
/// and deleted topics are told once the topic table they follow from is in
/// place. A watcher that starts a task must not
/// hold a borrow of its own across the spawn either: glommio polls a new task
/// at once, up to its first wait.
pub trait PartitionWatcher {
    /// A partition this shard owns changed role.
    fn role_changed(
        &self,
        shard: &Rc<Shard>,
        tp: &TopicPartition,
        transition: &crate::partition::role::Transition,
    );
    /// A partition left this shard (its topic was deleted, or this broker no
    /// longer holds a replica); called before its data is removed.
    fn partition_removed(&self, _shard: &Rc<Shard>, _tp: &TopicPartition) {}
    /// A partition this shard leads wants its ISR changed (a follower
    /// caught up); the ISR arrives with the metadata once the controller
    /// agrees.
    fn isr_change_wanted(
        &self,
        _shard: &Rc<Shard>,
        _tp: &TopicPartition,
        _request: &crate::partition::role::IsrRequest,
    ) {
    }
    /// Topics were deleted (or deleted and created again).
    fn topics_deleted(&self, _shard: &Rc<Shard>, _names: &std::collections::HashSet<String>) {}
    /// Adds what it counts to a `/metrics` snapshot of the shard.
    fn snapshot(&self, _snapshot: &mut crate::metrics::ShardSnapshot) {}
}

/// Errors that stop a shard.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {shard} is gone (shutting down)")]
    ShardGone { shard: usize },
}

/// The per-core state. See the module docs for who may touch it.
pub struct Shard {
    pub id: usize,
    pub count: usize,
    /// The static configuration (file, environment, flags).
    pub broker: Arc<BrokerConfig>,
    /// `broker` with the dynamic broker configs of the table applied: what
    /// topic defaults come from. Rebuilt with the table.
    effective: RefCell<Arc<BrokerConfig>>,
    pub api_support: ApiSupport,
    table: RefCell<Arc<TopicTable>>,
    pub(crate) partitions: RefCell<HashMap<TopicPartition, Partition>>,
    /// Effective config per topic, rebuilt with the table.
    topic_configs: RefCell<HashMap<String, Arc<TopicConfig>>>,
    senders: Senders<mesh::Task<Shard>>,
    /// Bytes of request frames this shard may hold (`REQUEST_MEMORY_PER_SHARD_BYTES`).
    request_memory: Semaphore,
    pub connections: Cell<usize>,
    /// Partitions to sync in the next group-commit round (see `durability`).
    pub(crate) sync_queue: futures::channel::mpsc::UnboundedSender<TopicPartition>,
    pub(crate) sync_queue_rx:
        RefCell<Option<futures::channel::mpsc::UnboundedReceiver<TopicPartition>>>,
    /// Serializes checkpoint writes, so an older one never lands last.
    pub(crate) checkpoint_lock: Semaphore,
    /// Produce is refused while set: the data directory's file system is
    /// below `strom.log.dir.min.free.bytes`, or a write hit ENOSPC.
    pub(crate) disk_full: Cell<bool>,
    /// Some owned partition could not be opened for lack of space.
    missing_partitions: Cell<bool>,
    /// Services that keep state in internal topics (the group and
    /// transaction coordinators) and hear about partition role changes and
    /// deleted topics; registered once at start (see [`PartitionWatcher`]).
    watchers: RefCell<Vec<Rc<dyn PartitionWatcher>>>,
    /// This shard's counters (merged by a `/metrics` scrape).
    pub metrics: crate::metrics::ShardMetrics,
}

impl Shard {
    pub fn new(
        broker: Arc<BrokerConfig>,
        senders: Senders<mesh::Task<Shard>>,
        table: Arc<TopicTable>,
    ) -> Rc<Shard> {
        let (sync_queue, sync_queue_rx) = futures::channel::mpsc::unbounded();
        Rc::new(Shard {
            id: senders.peer_id(),
            count: senders.nr_consumers(),
            api_support: ApiSupport::kafka_4_0(),
            table: RefCell::new(Arc::new(TopicTable {
                cluster_id: table.cluster_id.clone(),
                ..TopicTable::default()
            })),
            partitions: RefCell::new(HashMap::new()),
            topic_configs: RefCell::new(HashMap::new()),
            senders,
            request_memory: Semaphore::new(REQUEST_MEMORY_PER_SHARD_BYTES as u64),
            connections: Cell::new(0),
            sync_queue,
            sync_queue_rx: RefCell::new(Some(sync_queue_rx)),
            checkpoint_lock: Semaphore::new(1),
            disk_full: Cell::new(false),
            missing_partitions: Cell::new(false),
            watchers: RefCell::new(Vec::new()),
            effective: RefCell::new(broker.clone()),
            metrics: crate::metrics::ShardMetrics::default(),
            broker,
        })
    }

    /// Waits until a frame of `size_bytes` fits in the shard's request memory and
    /// reserves it; the reservation ends when the returned permit is dropped. A
    /// frame larger than the whole budget reserves all of it (it runs alone).
    pub async fn reserve_request_memory(
        &self,
        size_bytes: usize,
    ) -> Option<glommio::sync::Permit<'_>> {
        let units = size_bytes.min(REQUEST_MEMORY_PER_SHARD_BYTES) as u64;
        self.request_memory.acquire_permit(units).await.ok()
    }

    /// This broker's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.broker.node_id)
    }

    /// The current topic table (cheap clone of an Arc).
    pub fn table(&self) -> Arc<TopicTable> {
        self.table.borrow().clone()
    }

    pub fn owner_of(&self, tp: &TopicPartition) -> usize {
        shard_for(&tp.topic, tp.partition, self.count)
    }

    /// Runs `work` on shard `shard` (here, inline, when it is this one) and
    /// awaits its result. Work for another shard travels as a closure over
    /// the bounded mesh (see `runtime::mesh`) and runs there in a task of its
    /// own; local work runs in the caller's task, so it stops if the caller
    /// is dropped (see [`Self::call_detached`]). This is control work: it
    /// may call other shards in turn. Leaf work on partitions goes through
    /// [`Self::call_data`].
    pub async fn call<R, F, Fut>(self: &Rc<Self>, shard: usize, work: F) -> Result<R, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        if shard == self.id {
            // Boxed: the work may itself call other shards (and this one).
            let local: futures::future::LocalBoxFuture<'static, R> = Box::pin(work(self.clone()));
            return Ok(local.await);
        }
        self.send(mesh::Class::Control, shard, work).await
    }

    /// [`Self::call`] for data work: a request's share of partitions that
    /// calls no other shard (append, read, offsets). The receiving shard runs
    /// a bounded number at once and pushes back on the rest. Local work runs
    /// inline, unboxed: it does not call back into `call`.
    pub async fn call_data<R, F, Fut>(
        self: &Rc<Self>,
        shard: usize,
        work: F,
    ) -> Result<R, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        if shard == self.id {
            return Ok(work(self.clone()).await);
        }
        self.send(mesh::Class::Data, shard, work).await
    }

    /// Sends `work` to another shard over the mesh and awaits its result.
    async fn send<R, F, Fut>(
        self: &Rc<Self>,
        class: mesh::Class,
        shard: usize,
        work: F,
    ) -> Result<R, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        let (tx, rx) = oneshot::channel();
        crate::metrics::ShardMetrics::add(&self.metrics.cross_shard_messages, 1);
        if self
            .senders
            .send_to(shard, mesh::task(class, work, tx))
            .await
            .is_err()
        {
            return Err(ShardError::ShardGone { shard });
        }
        rx.await.map_err(|_| ShardError::ShardGone { shard })
    }

    /// [`Self::call`] for work that must finish once started even if the
    /// caller goes away (a client's connection closes while its request is
    /// served): here too the work runs in a task of its own, as work from
    /// other shards always does. Transaction coordination and markers use
    /// it, so a half-done change never leaves an id busy or a marker's
    /// effects unapplied. A caller that went away gets no answer; the work is
    /// done either way, and storage faults inside it stop the broker.
    pub async fn call_detached<R, F, Fut>(
        self: &Rc<Self>,
        shard: usize,
        work: F,
    ) -> Result<R, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        if shard != self.id {
            return self.call(shard, work).await;
        }
        let (tx, rx) = oneshot::channel();
        glommio::spawn_local(mesh::task(mesh::Class::Control, work, tx).run(self.clone())).detach();
        rx.await.map_err(|_| ShardError::ShardGone { shard })
    }

    /// Runs work other shards sent (see `runtime::mesh`), each in a task of
    /// its own, data work within `MESH_DATA_TASKS_PER_SHARD_MAX` at once.
    pub fn serve_mesh(self: &Rc<Self>, receivers: Receivers<mesh::Task<Shard>>) {
        let permits = Rc::new(Semaphore::new(MESH_DATA_TASKS_PER_SHARD_MAX as u64));
        mesh::serve(self.clone(), receivers, permits);
    }

    /// Bytes on disk of every partition the shard owns (DescribeLogDirs).
    pub(crate) fn log_sizes(&self) -> Vec<(TopicPartition, u64)> {
        self.partitions
            .borrow()
            .iter()
            .map(|(tp, p)| (tp.clone(), p.log.size_bytes()))
            .collect()
    }

    /// Installs a topic table: opens the partitions this shard owns that are new
    /// (running recovery), and removes partitions of deleted topics from disk.
    pub fn apply_table(self: &Rc<Self>, table: Arc<TopicTable>) {
        if table.revision < self.table.borrow().revision {
            return;
        }
        let data_dir = self.broker.data_dir().to_path_buf();
        let me = self.node_id();
        // ISR bookkeeping runs on the monotonic clock (see replication).
        let now = crate::clock::monotonic_ms();
        let mut transitions = Vec::new();
        // Partitions of deleted topics, and ones no longer replicated here.
        let stale: Vec<TopicPartition> = self
            .partitions
            .borrow()
            .iter()
            .filter(|(tp, p)| {
                table.topics.get(&*tp.topic).is_none_or(|t| {
                    t.id != p.topic_id
                        || t.partition(tp.partition)
                            .is_none_or(|s| !s.replicas.contains(&me))
                })
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        let watchers = self.watchers();
        for tp in &stale {
            for watcher in &watchers {
                watcher.partition_removed(self, tp);
            }
        }
        let mut partitions = self.partitions.borrow_mut();
        for tp in stale {
            if let Some(partition) = partitions.remove(&tp) {
                info!(shard = self.id, topic = %tp.topic, partition = tp.partition, "deleting partition");
                if let Err(err) = partition.log.delete() {
                    // Fail-stop: the table no longer lists this partition, and a
                    // half-removed directory must not be served or reused silently.
                    error!(shard = self.id, topic = %tp.topic, partition = tp.partition, "deleting partition data failed, stopping the broker: {err}");
                    crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                }
            }
        }
        let effective = Arc::new(layers_of(&self.broker, &table).effective().unwrap_or_else(
            |err| {
                warn!("stored dynamic broker configs are invalid, using the static ones: {err}");
                (*self.broker).clone()
            },
        ));
        *self.effective.borrow_mut() = effective;
        let mut configs = HashMap::with_capacity(table.topics.len());
        for topic in table.topics.values() {
            let config = Arc::new(self.build_topic_config(topic));
            configs.insert(topic.name.clone(), config.clone());
            for p in 0..topic.partitions {
                let tp = TopicPartition {
                    topic: Arc::from(topic.name.as_str()),
                    partition: p,
                };
                if self.owner_of(&tp) != self.id {
                    continue;
                }
                let Some(state) = topic.partition(p) else {
                    continue;
                };
                if !state.replicas.contains(&me) {
                    continue;
                }
                if let Some(partition) = partitions.get_mut(&tp) {
                    if partition.config != config {
                        partition.log.set_config(log_config(&config));
                        partition.config = config.clone();
                    }
                    let transition = partition.apply_state(me, state, now);
                    transitions.push((tp, transition));
                    continue;
                }
                let dir = partition_dir(&data_dir, &topic.name, p);
                if let Err(err) = claim_partition_dir(&dir, topic.id) {
                    if strom_storage::error::is_no_space(&err) {
                        // Not opened; retried once space is back (see
                        // `reopen_missing_partitions`).
                        self.skip_for_lack_of_space(&dir, &err);
                        continue;
                    }
                    error!(
                        shard = self.id,
                        "cannot prepare partition directory {}: {err}",
                        dir.display()
                    );
                    crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                }
                match PartitionLog::open(&dir, log_config(&config), now_ms()) {
                    Ok((log, report)) => {
                        if report.truncated_bytes > 0 {
                            warn!(shard = self.id, topic = %topic.name, partition = p, ?report, "recovered partition: truncated an invalid tail");
                        } else if report.batches_scanned > 0 {
                            info!(shard = self.id, topic = %topic.name, partition = p, ?report, "recovered partition");
                        }
                        let mut partition = Partition::new(log, topic.id, config.clone());
                        let transition = partition.apply_state(me, state, now);
                        partitions.insert(tp.clone(), partition);
                        transitions.push((tp, transition));
                    }
                    Err(err) if err.is_no_space() => self.skip_for_lack_of_space(&dir, &err),
                    Err(err) => {
                        // Fail-stop: serving a topic with a partition missing would lose data silently.
                        error!(
                            shard = self.id,
                            "cannot open partition {}: {err}",
                            dir.display()
                        );
                        crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                    }
                }
            }
        }
        drop(partitions);
        // Committed offsets of deleted (or deleted and re-created) topics go
        // with them, as in Kafka: a new topic of the same name starts clean.
        let deleted: std::collections::HashSet<String> = self
            .table
            .borrow()
            .topics
            .values()
            .filter(|old| {
                table
                    .topics
                    .get(&old.name)
                    .is_none_or(|new| new.id != old.id)
            })
            .map(|old| old.name.clone())
            .collect();
        *self.topic_configs.borrow_mut() = configs;
        *self.table.borrow_mut() = table;
        // After the new table is in place: what the watchers start on a role
        // change (a coordinator finishing the transactions its predecessor
        // left, writing their markers to the partitions' leaders; a fetcher
        // reaching its leader) reads it, and glommio runs a new task at once.
        self.take_up_roles(transitions);
        if !deleted.is_empty() {
            for watcher in self.watchers() {
                watcher.topics_deleted(self, &deleted);
            }
        }
    }

    /// Registers a service that hears about role changes and deleted topics.
    pub fn watch(&self, watcher: Rc<dyn PartitionWatcher>) {
        self.watchers.borrow_mut().push(watcher);
    }

    /// The watchers, cloned out so none is borrowed while one runs.
    fn watchers(&self) -> Vec<Rc<dyn PartitionWatcher>> {
        self.watchers.borrow().clone()
    }

    /// Logs role changes and tells the watchers: the replica fetchers (a
    /// follower fetches from its new leader after truncating, a leader stops
    /// fetching), the coordinators (a shard leading a `__consumer_offsets`
    /// partition loads its groups, one that stops leading it drops them).
    fn take_up_roles(
        self: &Rc<Self>,
        transitions: Vec<(TopicPartition, crate::partition::role::Transition)>,
    ) {
        use crate::partition::role::Transition;
        let watchers = self.watchers();
        for (tp, transition) in transitions {
            match transition {
                Transition::Unchanged | Transition::IsrChanged => {}
                Transition::BecameLeader { leader_epoch } => {
                    info!(shard = self.id, topic = %tp.topic, partition = tp.partition, %leader_epoch, "leading");
                }
                Transition::BecameFollower {
                    leader,
                    leader_epoch,
                } => {
                    debug!(shard = self.id, topic = %tp.topic, partition = tp.partition, %leader, %leader_epoch, "following");
                }
                Transition::WentOffline => {
                    warn!(shard = self.id, topic = %tp.topic, partition = tp.partition, "no leader elected: offline");
                }
            }
            for watcher in &watchers {
                watcher.role_changed(self, &tp, &transition);
            }
        }
    }

    /// A partition that cannot be created or opened for lack of disk space
    /// stays closed (requests for it get UNKNOWN_TOPIC_OR_PARTITION, which
    /// clients retry) instead of stopping the broker; it is opened once
    /// space is back.
    fn skip_for_lack_of_space(&self, dir: &std::path::Path, err: &dyn std::fmt::Display) {
        self.missing_partitions.set(true);
        if !self.disk_full.replace(true) {
            warn!(shard = self.id, dir = %dir.display(), "disk full: partition not opened yet ({err}); refusing produce requests until space is freed");
        }
    }

    /// Opens the partitions a full disk kept closed (called by the disk
    /// space check while space is available).
    pub(crate) fn reopen_missing_partitions(self: &Rc<Self>) {
        if self.missing_partitions.replace(false) {
            info!(
                shard = self.id,
                "opening partitions the full disk kept closed"
            );
            self.apply_table(self.table());
        }
    }

    /// This shard's counters, partitions and groups for a `/metrics` scrape.
    pub(crate) fn metrics_snapshot(&self) -> crate::metrics::ShardSnapshot {
        let mut snapshot = self
            .metrics
            .snapshot(self.id, self.connections.get() as u64);
        snapshot.partitions = self
            .partitions
            .borrow()
            .iter()
            .map(|(tp, p)| crate::metrics::PartitionSnapshot {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                counters: p.counters,
                log_start_offset: p.log.log_start_offset(),
                log_end_offset: p.log.log_end_offset(),
                high_watermark: p.log.high_watermark(),
                segments: p.log.segment_count() as u64,
                size_bytes: p.log.size_bytes(),
                leader: p.role.is_leader(),
                replicas: p.replica_count as u64,
                in_sync_replicas: p.in_sync_replicas() as u64,
                producers: p.log.producers().len() as u64,
                last_stable_offset: p.log.last_stable_offset(),
                open_transactions: p.log.producers().open_transactions() as u64,
            })
            .collect();
        for watcher in self.watchers() {
            watcher.snapshot(&mut snapshot);
        }
        snapshot
    }

    /// The effective config of a topic (broker defaults plus its overrides),
    /// computed once per topic-table change, not per request.
    pub fn topic_config(&self, topic: &str) -> Option<Arc<TopicConfig>> {
        self.topic_configs.borrow().get(topic).cloned()
    }

    fn build_topic_config(&self, topic: &TopicMeta) -> TopicConfig {
        let broker = self.effective_broker();
        TopicConfig::from_overrides(&broker, &topic.configs).unwrap_or_else(|err| {
            warn!(topic = %topic.name, "stored topic config is invalid, using defaults: {err}");
            TopicConfig::defaults_from(&broker)
        })
    }

    /// The broker configuration in force (static plus dynamic broker configs).
    pub fn effective_broker(&self) -> Arc<BrokerConfig> {
        self.effective.borrow().clone()
    }

    /// The static configuration with the dynamic layers of the current table.
    pub fn config_layers(&self) -> BrokerLayers {
        layers_of(&self.broker, &self.table())
    }

    /// Appends each item to its partition. With `wait_synced` (acks=all),
    /// items of partitions without write caching also get a receiver that
    /// fires once their records are synced; the caller answers after it.
    #[allow(clippy::type_complexity)]
    pub(crate) fn append_local(
        &self,
        items: Vec<AppendItem>,
        wait_synced: bool,
    ) -> (
        Vec<AppendOutcome>,
        Vec<(usize, oneshot::Receiver<KafkaCode>)>,
    ) {
        use crate::partition::append::{AppendContext, AppendFailure, Appended};
        let mut context = AppendContext {
            now_ms: now_ms(),
            wait_synced,
            disk_full: self.disk_full.get(),
        };
        let mut waits = Vec::new();
        let mut to_sync = Vec::new();
        let mut partitions = self.partitions.borrow_mut();
        let mut outcomes = Vec::with_capacity(items.len());
        for (index, mut item) in items.into_iter().enumerate() {
            let appended = match partitions.get_mut(&item.tp) {
                Some(partition) => partition.append(&mut item, context),
                None => Appended::refused(
                    KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    "This server does not host this topic-partition",
                ),
            };
            match appended.failure {
                None => {}
                Some(AppendFailure::NoSpace { path, reason }) => {
                    context.disk_full = true;
                    if !self.disk_full.replace(true) {
                        warn!(shard = self.id, file = %path.display(), "disk full ({reason}): refusing produce requests until space is freed");
                    }
                }
                Some(AppendFailure::Fatal(err)) => {
                    // A failed write leaves the log in an unknown state: fail-stop.
                    error!(shard = self.id, topic = %item.tp.topic, partition = item.tp.partition, "append failed, stopping the broker: {err}");
                    crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                }
            }
            if appended.sync {
                to_sync.push(item.tp);
            }
            if let Some(wait) = appended.wait {
                waits.push((index, wait));
            }
            outcomes.push(appended.outcome);
        }
        drop(partitions);
        for tp in to_sync {
            self.request_sync(tp);
        }
        (outcomes, waits)
    }

    pub(crate) fn read_local(self: &Rc<Self>, items: &[ReadItem]) -> Vec<ReadOutcome> {
        use crate::partition::read::Read;
        let me = self.node_id();
        let now = crate::clock::monotonic_ms();
        let mut isr_requests = Vec::new();
        let mut partitions = self.partitions.borrow_mut();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let read = match partitions.get_mut(&item.tp) {
                Some(partition) => partition.read(item, me, now),
                None => Read::refused(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION, None),
            };
            if let Some(err) = read.failure {
                error!(shard = self.id, topic = %item.tp.topic, partition = item.tp.partition, "read failed: {err}");
            }
            if let Some(request) = read.isr_request {
                isr_requests.push((item.tp.clone(), request));
            }
            outcomes.push(read.outcome);
        }
        drop(partitions);
        if !isr_requests.is_empty() {
            let watchers = self.watchers();
            for (tp, request) in isr_requests {
                for watcher in &watchers {
                    watcher.isr_change_wanted(self, &tp, &request);
                }
            }
        }
        outcomes
    }

    /// A long-poll over partitions this shard owns: returns as soon as at least
    /// `min_bytes` are readable (or any partition has an error), else when the
    /// timeout passes, with a final read.
    pub(crate) async fn read_wait_local(
        self: &Rc<Self>,
        items: Vec<ReadItem>,
        min_bytes: u64,
        timeout: Duration,
    ) -> Vec<ReadOutcome> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let outcomes = self.read_local(&items);
            let available: u64 = outcomes
                .iter()
                .filter_map(|o| o.records.as_ref().map(|r| r.len))
                .sum();
            let any_error = outcomes.iter().any(|o| !o.error.is_ok());
            let now = std::time::Instant::now();
            if available >= min_bytes.max(1) || any_error || now >= deadline {
                return outcomes;
            }
            // Wake on an append past what this read saw (not past the fetch
            // offset: data below min_bytes would wake us at once, forever).
            let waits = items
                .iter()
                .zip(&outcomes)
                .map(|(i, o)| wait_item(i, o))
                .collect();
            self.wait_local(waits, deadline - now).await;
        }
    }

    /// Waits until one of the partitions' high watermark (consumers) or log
    /// end (followers) exceeds what the caller last saw, or the timeout.
    pub(crate) async fn wait_local(&self, items: Vec<WaitItem>, timeout: Duration) {
        let mut receivers = Vec::new();
        {
            let mut partitions = self.partitions.borrow_mut();
            for item in &items {
                let Some(partition) = partitions.get_mut(&item.tp) else {
                    return; // deleted meanwhile: let the fetch re-plan now
                };
                if !partition.role.is_leader() {
                    return; // leadership moved: answer now
                }
                let rx = if item.replica {
                    if partition.log.log_end_offset() > item.seen {
                        return;
                    }
                    partition.wait_for_append()
                } else {
                    let visible = if item.committed {
                        partition.log.last_stable_offset()
                    } else {
                        partition.log.high_watermark()
                    };
                    if visible > item.seen {
                        return;
                    }
                    partition.wait_for_high_watermark()
                };
                receivers.push(rx);
            }
        }
        if receivers.is_empty() {
            return;
        }
        let sleep = Box::pin(glommio::timer::sleep(timeout));
        let _ = select(select_all(receivers), sleep).await;
    }

    /// OffsetForLeaderEpoch on partitions this shard leads.
    pub(crate) fn epoch_end_offsets(&self, queries: &[EpochQuery]) -> Vec<EpochEnd> {
        use crate::partition::role::Role;
        let partitions = self.partitions.borrow();
        let refused = |error| EpochEnd {
            error,
            leader_epoch: -1,
            end_offset: -1,
        };
        queries
            .iter()
            .map(|query| {
                let Some(partition) = partitions.get(&query.tp) else {
                    return refused(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION);
                };
                let Role::Leader(leader) = &partition.role else {
                    return refused(KafkaCode::NOT_LEADER_OR_FOLLOWER);
                };
                let current = query.current_leader_epoch;
                if current.is_known() && current < leader.leader_epoch {
                    return refused(KafkaCode::FENCED_LEADER_EPOCH);
                }
                if current > leader.leader_epoch {
                    return refused(KafkaCode::UNKNOWN_LEADER_EPOCH);
                }
                let (leader_epoch, end_offset) =
                    partition.log.end_offset_for_epoch(query.leader_epoch.0);
                EpochEnd {
                    error: KafkaCode::NONE,
                    leader_epoch,
                    end_offset,
                }
            })
            .collect()
    }

    pub(crate) fn list_offsets_local(&self, queries: &[OffsetQuery]) -> Vec<OffsetAnswer> {
        let partitions = self.partitions.borrow();
        queries
            .iter()
            .map(|q| {
                let Some(partition) = partitions.get(&q.tp) else {
                    return OffsetAnswer {
                        error: KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                        timestamp: -1,
                        offset: -1,
                    };
                };
                if !partition.role.is_leader() {
                    return OffsetAnswer {
                        error: KafkaCode::NOT_LEADER_OR_FOLLOWER,
                        timestamp: -1,
                        offset: -1,
                    };
                }
                let log = &partition.log;
                let found = |timestamp, offset| OffsetAnswer {
                    error: KafkaCode::NONE,
                    timestamp,
                    offset,
                };
                match q.timestamp {
                    -2 => found(-1, log.log_start_offset()),
                    -1 if q.read_committed => found(-1, log.last_stable_offset()),
                    -1 => found(-1, log.high_watermark()),
                    -3 => match log.max_timestamp() {
                        Some((ts, offset)) => found(ts, offset),
                        None => found(-1, -1),
                    },
                    ts if ts < 0 => OffsetAnswer {
                        error: KafkaCode::INVALID_REQUEST,
                        timestamp: -1,
                        offset: -1,
                    },
                    ts => match log.offset_for_timestamp(ts) {
                        Ok(Some((offset, timestamp))) => found(timestamp, offset),
                        Ok(None) => found(-1, -1),
                        Err(err) => OffsetAnswer {
                            error: storage_error_code(&err),
                            timestamp: -1,
                            offset: -1,
                        },
                    },
                }
            })
            .collect()
    }

    /// Sends the new table to every shard (this one included) and waits for all.
    pub(crate) async fn broadcast_table(self: &Rc<Self>, table: Arc<TopicTable>) {
        for shard in 0..self.count {
            let table = table.clone();
            if let Err(err) = self
                .call(shard, move |s| async move { s.apply_table(table) })
                .await
            {
                warn!("topic table not delivered: {err}");
            }
        }
    }

    /// Closes every partition cleanly (flush + clean-shutdown marker).
    /// A failed flush here is a storage fault: the broker exits with
    /// `EXIT_STORAGE_FAILURE` (after trying the other partitions) instead of
    /// reporting a clean stop; the unclosed partitions are recovered at start.
    pub fn close_all(&self) {
        let partitions: Vec<(TopicPartition, Partition)> =
            self.partitions.borrow_mut().drain().collect();
        let mut failed = false;
        for (tp, partition) in partitions {
            if let Err(err) = partition.log.close() {
                error!(shard = self.id, topic = %tp.topic, partition = tp.partition, "closing partition failed: {err}");
                failed = true;
            }
        }
        if failed {
            error!(
                shard = self.id,
                "storage failure during shutdown, exiting with status {}",
                crate::EXIT_STORAGE_FAILURE
            );
            crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
        }
    }
}

impl Shard {
    /// The idempotent producers of partitions this shard owns and leads, as
    /// (id, epoch, last sequence, last timestamp), by producer id.
    pub(crate) fn describe_producers_local(
        &self,
        items: &[TopicPartition],
    ) -> Vec<Result<Vec<ProducerRow>, KafkaCode>> {
        let partitions = self.partitions.borrow();
        items
            .iter()
            .map(|tp| {
                let partition = partitions
                    .get(tp)
                    .ok_or(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)?;
                if !partition.role.is_leader() {
                    return Err(KafkaCode::NOT_LEADER_OR_FOLLOWER);
                }
                let mut rows: Vec<_> = partition
                    .log
                    .producers()
                    .iter()
                    .map(|(id, e)| ProducerRow {
                        id,
                        epoch: e.epoch,
                        last_sequence: e.last_seq().unwrap_or(-1),
                        last_timestamp: e.last_timestamp,
                        coordinator_epoch: e.coordinator_epoch,
                        txn_start: e.txn_first_offset.unwrap_or(-1),
                    })
                    .collect();
                rows.sort_unstable_by_key(|r| r.id);
                Ok(rows)
            })
            .collect()
    }
}

/// What a long poll waits for after reading `item` and finding `outcome`:
/// consumers a high watermark past the one seen, followers a log end past
/// their fetch offset.
pub fn wait_item(item: &ReadItem, outcome: &ReadOutcome) -> WaitItem {
    let replica = item.replica_id.is_some();
    let visible = if item.read_committed {
        outcome.last_stable_offset
    } else {
        outcome.high_watermark
    };
    WaitItem {
        tp: item.tp.clone(),
        seen: if replica {
            item.offset
        } else {
            visible.max(item.offset)
        },
        replica,
        committed: item.read_committed,
    }
}

/// Waits for an acks=all receiver ([`Partition::wait_for_ack`]) until
/// `deadline`: its code; `gone` if the waiter was dropped (the partition was
/// deleted or closed, or its leadership moved); REQUEST_TIMED_OUT if the
/// in-sync replicas did not all have the records in time.
pub async fn ack_by(
    acked: oneshot::Receiver<KafkaCode>,
    deadline: std::time::Instant,
    gone: KafkaCode,
) -> KafkaCode {
    let sleep =
        glommio::timer::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
    futures::pin_mut!(sleep);
    match select(acked, sleep).await {
        futures::future::Either::Left((Ok(code), _)) => code,
        futures::future::Either::Left((Err(_), _)) => gone,
        futures::future::Either::Right(_) => KafkaCode::REQUEST_TIMED_OUT,
    }
}

/// Kafka's `partition.metadata` file: which topic id a partition directory belongs to.
/// ```text
/// version: 0
/// topic_id: <uuid>
/// ```
const PARTITION_METADATA: &str = "partition.metadata";

/// Makes sure `dir` holds data of the topic with this id: a directory left behind by
/// a deleted topic of the same name (a crash between saving the topic table and
/// removing the data) is removed, so a re-created topic never shows old records.
pub(crate) fn claim_partition_dir(dir: &std::path::Path, topic_id: Uuid) -> std::io::Result<()> {
    let path = dir.join(PARTITION_METADATA);
    let expected = format!("version: 0\ntopic_id: {topic_id}\n");
    match std::fs::read_to_string(&path) {
        Ok(found) if found == expected => return Ok(()),
        Ok(found) => {
            warn!(
                "{} belongs to another topic ({}); removing the stale data",
                dir.display(),
                found.trim().replace('\n', ", ")
            );
            std::fs::remove_dir_all(dir)?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(dir)?;
    let temp = dir.join("partition.metadata.tmp");
    std::fs::write(&temp, expected)?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_partition_directory_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t-0");
        let old = Uuid::new_v4();
        claim_partition_dir(&dir, old).unwrap();
        std::fs::write(dir.join("00000000000000000000.log"), b"old data").unwrap();
        claim_partition_dir(&dir, old).unwrap();
        assert!(
            dir.join("00000000000000000000.log").exists(),
            "same topic keeps its data"
        );
        claim_partition_dir(&dir, Uuid::new_v4()).unwrap();
        assert!(
            !dir.join("00000000000000000000.log").exists(),
            "new topic must not see old data"
        );
        assert!(dir.join(PARTITION_METADATA).exists());
    }
}
