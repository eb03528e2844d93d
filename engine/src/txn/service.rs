//! The transaction coordinator on its shard (KIP-98): each shard's
//! [`Txns`], the requests for one transactional id ([`TxnCall`]), ending a
//! transaction with its markers, loading a `__transaction_state` partition
//! this shard comes to lead, and the timer that aborts transactions open past
//! their timeout. The Kafka APIs that drive it are in `kafka/` (one file
//! each); its state machine and records are in [`super::state`].
//!
//! Every request for an id goes to the shard coordinating it (one
//! `Txns::serve`); a broker not leading the id's `__transaction_state`
//! partition answers NOT_COORDINATOR, and the client asks FindCoordinator
//! again. A change is answered only once its record is in the in-sync
//! replicas of that partition. Ending a transaction writes
//! `PrepareCommit`/`PrepareAbort`, then a marker (a control batch) to every
//! partition of the transaction — through the owner shard when this broker
//! leads the partition, WriteTxnMarkers to the leader otherwise, again
//! until every leader took it — then `CompleteCommit`/`CompleteAbort`; EndTxn
//! is answered after that, so a client's next transaction never finds the
//! last one still ending. A new InitProducerId for an id with an open
//! transaction aborts it with a bumped epoch first (the old producer is
//! fenced), and so does the timer for a transaction open longer than its
//! timeout.

use super::state::{self as txn, TxnEntry, TxnMeta, TxnState, TXN_TOPIC};
use crate::clock::now_ms;
use crate::errors::KafkaCode;
use crate::group::service::{ensure_internal_topic, persist_to, wait_all};
use crate::group::{Persist, OFFSETS_TOPIC};
use crate::ids::NodeId;
use crate::messages::{AppendItem, TopicPartition};
use crate::metrics::ShardMetrics;
use crate::metrics::ShardSnapshot;
use crate::partition::role::Transition;
use crate::shard::{PartitionWatcher, Shard};
use bytes::BytesMut;
use kafka_protocol::messages::{
    write_txn_markers_request, ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use strom_net::client::Connection;
use strom_net::response::str_bytes;
use strom_storage::batch;
use strom_storage::producers::MarkerRefused;
use tracing::{debug, info, warn};

/// A request for the coordinator of one transactional id.
#[derive(Debug)]
pub enum TxnCall {
    Init {
        id: String,
        timeout_ms: i32,
        /// KIP-360: the producer's current id and epoch, if it has them.
        producer: Option<(i64, i16)>,
    },
    Add {
        id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    },
    End {
        id: String,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    },
    Describe(Vec<String>),
    List,
}

#[derive(Debug)]
pub enum TxnAnswer {
    Init(Result<(i64, i16), KafkaCode>),
    Code(KafkaCode),
    /// Per id: its state, or None (not known here).
    Described(Vec<(String, Option<TxnMeta>)>),
    Listed(Vec<(String, TxnMeta)>),
}

/// One marker for one partition (WriteTxnMarkers, or the coordinator).
#[derive(Debug, Clone)]
pub struct MarkerItem {
    pub tp: TopicPartition,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// How long a marker append waits for the in-sync replicas before it is
/// tried again.
const MARKER_WAIT: Duration = Duration::from_secs(10);
/// Pause between two rounds of markers some leader did not take.
const MARKER_RETRY_MAX: Duration = Duration::from_millis(1000);

/// Creates `__transaction_state` if needed; its partition count.
async fn ensure_txn_topic(shard: &Rc<Shard>) -> Result<i32, KafkaCode> {
    ensure_internal_topic(
        shard,
        TXN_TOPIC,
        shard.broker.transaction_state_log_num_partitions,
    )
    .await
}

/// The shard coordinating `id` on this broker, or NOT_COORDINATOR.
pub async fn coordinator_shard(shard: &Rc<Shard>, id: &str) -> Result<usize, KafkaCode> {
    let partitions = ensure_txn_topic(shard).await?;
    let p = txn::txn_partition(id, partitions);
    crate::group::service::coordinating_shard(shard, TXN_TOPIC, p)
}

/// Sends `call` to the shard coordinating `id` on this broker.
pub(crate) async fn call_coordinator(
    shard: &Rc<Shard>,
    id: &str,
    call: TxnCall,
) -> Result<TxnAnswer, KafkaCode> {
    let owner = coordinator_shard(shard, id).await?;
    shard
        .call_detached(owner, move |s| async move { txns().serve(&s, call).await })
        .await
        .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE)
}

/// The code of an answer that carries only one.
pub(crate) fn code_of(answer: Result<TxnAnswer, KafkaCode>) -> KafkaCode {
    match answer {
        Ok(TxnAnswer::Code(code)) => code,
        Ok(_) => KafkaCode::UNKNOWN_SERVER_ERROR,
        Err(code) => code,
    }
}

/// The versions this broker sends to another one's WriteTxnMarkers.
fn marker_versions(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::WriteTxnMarkers => 1,
        ApiKey::ApiVersions => 3,
        _ => 0,
    }
}

/// This shard's transaction coordinator state. Per shard (one per core
/// thread, like seastar's `sharded<T>::local()`), installed by
/// [`Txns::install`] before the shard serves; the shard itself does not hold
/// it.
pub struct Txns {
    coordinator: RefCell<txn::TxnCoordinator>,
}

thread_local! {
    static LOCAL: OnceCell<Rc<Txns>> = const { OnceCell::new() };
}

impl Txns {
    /// Creates this shard's transaction coordinator, has the shard tell it
    /// about `__transaction_state` role changes, and starts its timer.
    pub fn install(shard: &Rc<Shard>) {
        let txns = Rc::new(Txns {
            coordinator: RefCell::new(txn::TxnCoordinator::default()),
        });
        LOCAL.with(|local| {
            assert!(
                local.set(txns.clone()).is_ok(),
                "one transaction coordinator per shard"
            )
        });
        shard.watch(txns.clone());
        glommio::spawn_local(txns.run_timer(shard.clone())).detach();
    }
}

impl std::ops::Deref for Txns {
    type Target = RefCell<txn::TxnCoordinator>;
    fn deref(&self) -> &RefCell<txn::TxnCoordinator> {
        &self.coordinator
    }
}

/// This shard's transaction coordinator state (see [`Txns`]).
pub(crate) fn txns() -> Rc<Txns> {
    LOCAL
        .with(|local| local.get().cloned())
        .expect("Txns::install ran at shard start")
}

impl PartitionWatcher for Txns {
    fn role_changed(&self, shard: &Rc<Shard>, tp: &TopicPartition, transition: &Transition) {
        if &*tp.topic != TXN_TOPIC {
            return;
        }
        if matches!(transition, Transition::Unchanged | Transition::IsrChanged) {
            return;
        }
        self.coordinator.borrow_mut().unload(tp.partition);
        if let Transition::BecameLeader { leader_epoch } = transition {
            // The partitions are not borrowed past the read: loading starts
            // the transactions left preparing, and glommio runs a new task
            // at once, up to its first wait (their records are appended).
            let records = {
                let partitions = shard.partitions.borrow();
                partitions
                    .get(tp)
                    .map(|partition| crate::group::service::read_records(&partition.log))
            };
            if let Some(records) = records {
                self.load_partition(shard, tp.partition, leader_epoch.0, records);
            }
        }
    }

    fn snapshot(&self, snapshot: &mut ShardSnapshot) {
        snapshot.transactional_ids = self
            .coordinator
            .borrow()
            .txns
            .values()
            .filter(|e| e.meta.producer_id >= 0)
            .count() as u64;
    }
}

impl Txns {
    /// Serves a call on the shard coordinating the id.
    pub(crate) async fn serve(&self, shard: &Rc<Shard>, call: TxnCall) -> TxnAnswer {
        match call {
            TxnCall::Init {
                id,
                timeout_ms,
                producer,
            } => TxnAnswer::Init(self.init(shard, &id, timeout_ms, producer).await),
            TxnCall::Add {
                id,
                producer_id,
                epoch,
                partitions,
            } => TxnAnswer::Code(self.add(shard, &id, producer_id, epoch, partitions).await),
            TxnCall::End {
                id,
                producer_id,
                epoch,
                commit,
            } => TxnAnswer::Code(self.end(shard, &id, producer_id, epoch, commit).await),
            TxnCall::Describe(ids) => {
                let local = txns();
                let coordinator = local.borrow();
                TxnAnswer::Described(
                    ids.into_iter()
                        .map(|id| {
                            let meta = coordinator.txns.get(&id).map(|e| e.meta.clone());
                            (id, meta.filter(|m| m.producer_id >= 0))
                        })
                        .collect(),
                )
            }
            TxnCall::List => TxnAnswer::Listed(
                txns()
                    .borrow()
                    .txns
                    .iter()
                    .filter(|(_, e)| e.meta.producer_id >= 0)
                    .map(|(id, e)| (id.clone(), e.meta.clone()))
                    .collect(),
            ),
        }
    }

    /// The `__transaction_state` partition of `id` and the coordinator
    /// epoch it is loaded at here (NOT_COORDINATOR if it is not).
    fn home(&self, shard: &Shard, id: &str) -> Result<(i32, i32), KafkaCode> {
        let partitions = shard
            .table()
            .topics
            .get(TXN_TOPIC)
            .map(|t| t.partitions)
            .ok_or(KafkaCode::NOT_COORDINATOR)?;
        let p = txn::txn_partition(id, partitions);
        let epoch = txns()
            .borrow()
            .loaded
            .get(&p)
            .copied()
            .ok_or(KafkaCode::NOT_COORDINATOR)?;
        Ok((p, epoch))
    }

    /// Writes one id's record to `__transaction_state` and waits for the
    /// in-sync replicas.
    async fn persist(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        partition: i32,
        meta: Option<&TxnMeta>,
    ) -> KafkaCode {
        let record = Persist {
            partition,
            key: txn::key(id),
            value: meta.map(txn::value),
        };
        wait_all(persist_to(shard, TXN_TOPIC, vec![record], None)).await
    }

    /// Marks `id` busy (or not); false if it is gone (the partition moved).
    fn set_busy(&self, id: &str, busy: bool) -> bool {
        match txns().borrow_mut().txns.get_mut(id) {
            Some(e) => {
                e.busy = busy;
                true
            }
            None => false,
        }
    }

    async fn init(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        timeout_ms: i32,
        producer: Option<(i64, i16)>,
    ) -> Result<(i64, i16), KafkaCode> {
        let (partition, coordinator_epoch) = self.home(shard, id)?;
        // At most twice: an open transaction is aborted first.
        for _ in 0..2 {
            let entry = txns().borrow().txns.get(id).cloned();
            let Some(entry) = entry else {
                return self
                    .init_new(
                        shard,
                        id,
                        partition,
                        coordinator_epoch,
                        timeout_ms,
                        producer,
                    )
                    .await;
            };
            if entry.busy || entry.meta.state.is_preparing() {
                return Err(KafkaCode::CONCURRENT_TRANSACTIONS);
            }
            let meta = &entry.meta;
            if let Some((producer_id, epoch)) = producer {
                if producer_id != meta.producer_id {
                    return Err(KafkaCode::INVALID_PRODUCER_ID_MAPPING);
                }
                if epoch != meta.epoch {
                    return Err(KafkaCode::PRODUCER_FENCED);
                }
            }
            if meta.state == TxnState::Ongoing {
                info!(
                    shard = shard.id,
                    transactional_id = id,
                    producer_id = meta.producer_id,
                    "a new producer fences the open transaction: aborting it"
                );
                self.finish(shard, id, false, true).await?;
                ShardMetrics::add(&shard.metrics.txn_fenced, 1);
                continue;
            }
            let mut next = meta.clone();
            if next.epoch >= i16::MAX - 1 {
                // Epochs ran out: a new producer id, as Kafka does.
                next.producer_id = new_producer_id(shard).await?;
                next.epoch = 0;
            } else {
                next.epoch += 1;
            }
            next.state = TxnState::Empty;
            next.partitions.clear();
            next.start_ms = -1;
            next.timeout_ms = timeout_ms;
            next.update_ms = now_ms();
            return self
                .write(shard, id, partition, coordinator_epoch, next)
                .await;
        }
        Err(KafkaCode::CONCURRENT_TRANSACTIONS)
    }

    async fn init_new(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        partition: i32,
        coordinator_epoch: i32,
        timeout_ms: i32,
        producer: Option<(i64, i16)>,
    ) -> Result<(i64, i16), KafkaCode> {
        if producer.is_some() {
            // It names a producer id this coordinator never gave the id.
            return Err(KafkaCode::INVALID_PRODUCER_ID_MAPPING);
        }
        // A placeholder, so a second InitProducerId meanwhile waits.
        txns().borrow_mut().txns.insert(
            id.to_string(),
            TxnEntry {
                partition,
                meta: TxnMeta::new(-1, timeout_ms, now_ms()),
                busy: true,
            },
        );
        let meta = match new_producer_id(shard).await {
            Ok(producer_id) => TxnMeta::new(producer_id, timeout_ms, now_ms()),
            Err(code) => {
                txns().borrow_mut().txns.remove(id);
                return Err(code);
            }
        };
        let result = self
            .write(shard, id, partition, coordinator_epoch, meta)
            .await;
        if result.is_err() && txns().borrow().coordinates(partition, coordinator_epoch) {
            txns().borrow_mut().txns.remove(id);
        }
        result
    }

    /// Persists `next` for `id` (marked busy meanwhile) and, once written,
    /// makes it the state; the producer id and epoch it holds.
    async fn write(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        partition: i32,
        coordinator_epoch: i32,
        next: TxnMeta,
    ) -> Result<(i64, i16), KafkaCode> {
        self.set_busy(id, true);
        let code = self.persist(shard, id, partition, Some(&next)).await;
        let local = txns();
        let mut coordinator = local.borrow_mut();
        if !coordinator.coordinates(partition, coordinator_epoch) {
            return Err(KafkaCode::NOT_COORDINATOR);
        }
        let Some(entry) = coordinator.txns.get_mut(id) else {
            return Err(KafkaCode::NOT_COORDINATOR);
        };
        entry.busy = false;
        if !code.is_ok() {
            return Err(code);
        }
        let answer = (next.producer_id, next.epoch);
        entry.meta = next;
        Ok(answer)
    }

    /// Checks a request's producer id and epoch against the id's state.
    fn check(&self, id: &str, producer_id: i64, epoch: i16) -> Result<TxnEntry, KafkaCode> {
        let local = txns();
        let coordinator = local.borrow();
        let Some(entry) = coordinator.txns.get(id) else {
            return Err(KafkaCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if entry.meta.producer_id != producer_id {
            return Err(KafkaCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch != entry.meta.epoch {
            return Err(KafkaCode::PRODUCER_FENCED);
        }
        if entry.busy || entry.meta.state.is_preparing() {
            return Err(KafkaCode::CONCURRENT_TRANSACTIONS);
        }
        Ok(entry.clone())
    }

    async fn add(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> KafkaCode {
        let (partition, coordinator_epoch) = match self.home(shard, id) {
            Ok(home) => home,
            Err(code) => return code,
        };
        let entry = match self.check(id, producer_id, epoch) {
            Ok(entry) => entry,
            Err(code) => return code,
        };
        let mut next = entry.meta;
        if next.state == TxnState::Ongoing && partitions.iter().all(|p| next.partitions.contains(p))
        {
            return KafkaCode::NONE;
        }
        let now = now_ms();
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now;
            next.partitions.clear();
        }
        next.partitions.extend(partitions);
        next.update_ms = now;
        match self
            .write(shard, id, partition, coordinator_epoch, next)
            .await
        {
            Ok(_) => KafkaCode::NONE,
            Err(code) => code,
        }
    }

    async fn end(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> KafkaCode {
        if let Err(code) = self.home(shard, id) {
            return code;
        }
        let entry = match self.check(id, producer_id, epoch) {
            Ok(entry) => entry,
            Err(code) => return code,
        };
        match (entry.meta.state, commit) {
            (TxnState::Ongoing, _) => match self.finish(shard, id, commit, false).await {
                Ok(()) => {
                    let counter = if commit {
                        &shard.metrics.txn_commits
                    } else {
                        &shard.metrics.txn_aborts
                    };
                    ShardMetrics::add(counter, 1);
                    KafkaCode::NONE
                }
                Err(code) => code,
            },
            // A retry of an EndTxn that already ended the transaction.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => KafkaCode::NONE,
            _ => KafkaCode::INVALID_TXN_STATE,
        }
    }

    /// Ends the open transaction of `id`: PrepareCommit/PrepareAbort (with a
    /// bumped epoch when `bump`: the producer is fenced), the markers, then
    /// CompleteCommit/CompleteAbort.
    async fn finish(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        commit: bool,
        bump: bool,
    ) -> Result<(), KafkaCode> {
        let (partition, coordinator_epoch) = self.home(shard, id)?;
        let mut next = {
            let local = txns();
            let mut coordinator = local.borrow_mut();
            let entry = coordinator
                .txns
                .get_mut(id)
                .ok_or(KafkaCode::NOT_COORDINATOR)?;
            // The timer's abort may come after a client request started to
            // change the id: that one goes first.
            if entry.busy {
                return Err(KafkaCode::CONCURRENT_TRANSACTIONS);
            }
            if entry.meta.state != TxnState::Ongoing {
                return Err(KafkaCode::INVALID_TXN_STATE);
            }
            entry.busy = true;
            entry.meta.clone()
        };
        if bump {
            next.epoch = next.epoch.saturating_add(1);
        }
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        next.update_ms = now_ms();
        let code = self.persist(shard, id, partition, Some(&next)).await;
        {
            let local = txns();
            let mut coordinator = local.borrow_mut();
            if !coordinator.coordinates(partition, coordinator_epoch) {
                return Err(KafkaCode::NOT_COORDINATOR);
            }
            let entry = coordinator
                .txns
                .get_mut(id)
                .ok_or(KafkaCode::NOT_COORDINATOR)?;
            if !code.is_ok() {
                entry.busy = false;
                return Err(code);
            }
            entry.meta = next.clone();
        }
        self.complete(shard, id, partition, coordinator_epoch, next)
            .await
    }

    /// Writes the markers of a transaction in PrepareCommit/PrepareAbort,
    /// then its Complete state; the id is busy until then.
    async fn complete(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        partition: i32,
        coordinator_epoch: i32,
        mut meta: TxnMeta,
    ) -> Result<(), KafkaCode> {
        let commit = meta.state == TxnState::PrepareCommit;
        self.write_markers(shard, &meta, commit, partition, coordinator_epoch)
            .await?;
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        meta.partitions.clear();
        meta.start_ms = -1;
        meta.update_ms = now_ms();
        // Appended now, not waited for: every marker is durable already, so
        // the record only saves a later coordinator from writing them again
        // (which changes nothing), and whatever this id writes next comes
        // after it in the same log and is waited for (a sync covers what
        // precedes it). This saves one sync round per transaction.
        let record = Persist {
            partition,
            key: txn::key(id),
            value: Some(txn::value(&meta)),
        };
        let waits = persist_to(shard, TXN_TOPIC, vec![record], None);
        let shard = shard.clone();
        let name = id.to_string();
        glommio::spawn_local(async move {
            let code = wait_all(waits).await;
            if !code.is_ok() {
                warn!(shard = shard.id, transactional_id = %name, "the end of a transaction was not recorded ({code:?}); a new coordinator would write its markers again");
            }
        })
        .detach();
        let local = txns();
        let mut coordinator = local.borrow_mut();
        if !coordinator.coordinates(partition, coordinator_epoch) {
            return Err(KafkaCode::NOT_COORDINATOR);
        }
        if let Some(entry) = coordinator.txns.get_mut(id) {
            entry.meta = meta;
            entry.busy = false;
        }
        Ok(())
    }

    /// Writes a marker to every partition of the transaction, through the
    /// owner shards for partitions this broker leads and WriteTxnMarkers to
    /// the other leaders, again until each took it. Stops (NOT_COORDINATOR)
    /// if this shard stops coordinating the id meanwhile.
    async fn write_markers(
        &self,
        shard: &Rc<Shard>,
        meta: &TxnMeta,
        commit: bool,
        partition: i32,
        coordinator_epoch: i32,
    ) -> Result<(), KafkaCode> {
        let mut left: Vec<(String, i32)> = meta.partitions.iter().cloned().collect();
        let mut pause = Duration::from_millis(50);
        loop {
            if !txns().borrow().coordinates(partition, coordinator_epoch) {
                return Err(KafkaCode::NOT_COORDINATOR);
            }
            let table = shard.table();
            let me = shard.node_id();
            let mut local: BTreeMap<usize, Vec<MarkerItem>> = BTreeMap::new();
            let mut remote: BTreeMap<NodeId, Vec<MarkerItem>> = BTreeMap::new();
            let mut failed = Vec::new();
            for (topic, p) in left {
                let Some(state) = table.partition(&topic, p) else {
                    debug!(
                        topic,
                        partition = p,
                        "no marker for a partition that no longer exists"
                    );
                    continue;
                };
                let tp = TopicPartition {
                    topic: Arc::from(topic.as_str()),
                    partition: p,
                };
                let item = MarkerItem {
                    tp: tp.clone(),
                    producer_id: meta.producer_id,
                    epoch: meta.epoch,
                    commit,
                    coordinator_epoch,
                };
                if state.leader == me {
                    local.entry(shard.owner_of(&tp)).or_default().push(item);
                } else if state.leader.is_some() {
                    remote.entry(state.leader).or_default().push(item);
                } else {
                    failed.push((topic, p));
                }
            }
            let locals = local.into_iter().map(|(owner, items)| {
                let shard = shard.clone();
                async move {
                    let sent = items.clone();
                    let codes = shard
                        .call(owner, move |s| async move {
                            write_markers_local(&s, sent).await
                        })
                        .await
                        .unwrap_or_default();
                    pair_codes(items, codes)
                }
            });
            let remotes = remote.into_iter().map(|(broker, items)| {
                let shard = shard.clone();
                async move {
                    let codes = send_markers(&shard, broker, &items).await;
                    pair_codes(items, codes)
                }
            });
            let (a, b) = futures::join!(
                futures::future::join_all(locals),
                futures::future::join_all(remotes)
            );
            for (item, code) in a.into_iter().chain(b).flatten() {
                let gone = code == KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                    && !shard.table().topics.contains_key(&*item.tp.topic);
                // A newer producer epoch or coordinator took over the
                // partition's transaction: nothing left for this marker.
                let superseded = matches!(
                    code,
                    KafkaCode::INVALID_PRODUCER_EPOCH | KafkaCode::TRANSACTION_COORDINATOR_FENCED
                );
                if !code.is_ok() && !gone && !superseded {
                    debug!(topic = %item.tp.topic, partition = item.tp.partition, "marker not written ({code:?}), trying again");
                    failed.push((item.tp.topic.to_string(), item.tp.partition));
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            left = failed;
            glommio::timer::sleep(pause).await;
            pause = (pause * 2).min(MARKER_RETRY_MAX);
        }
    }

    /// Loads the records of a `__transaction_state` partition this shard
    /// now leads into the coordinator, and finishes the transactions left
    /// preparing. The caller holds no borrow of the shard's state: each of
    /// those runs at once in a task of its own.
    pub(crate) fn load_partition(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        leader_epoch: i32,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) {
        let count = records.len();
        let preparing = txns().borrow_mut().load(partition, leader_epoch, records);
        if count > 0 {
            info!(
                shard = shard.id,
                partition,
                records = count,
                "loaded transactional ids"
            );
        }
        for id in preparing {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let meta = {
                    let local = txns();
                    let mut coordinator = local.borrow_mut();
                    let Some(entry) = coordinator.txns.get_mut(&id) else {
                        return;
                    };
                    entry.busy = true;
                    entry.meta.clone()
                };
                info!(shard = shard.id, transactional_id = %id, state = meta.state.name(), "finishing a transaction the previous coordinator left");
                if let Err(code) = txns().complete(&shard, &id, partition, leader_epoch, meta).await {
                    debug!(shard = shard.id, transactional_id = %id, "not finished here ({code:?})");
                }
            })
            .detach();
        }
    }

    /// Aborts transactions open past their timeout (with a bumped epoch,
    /// so their producer is fenced) and forgets idle transactional ids.
    pub(crate) async fn run_timer(self: Rc<Self>, shard: Rc<Shard>) {
        let every = Duration::from_millis(shard.broker.transaction_abort_interval_ms.max(1) as u64);
        loop {
            glommio::timer::sleep(every).await;
            let now = now_ms();
            let timed_out = txns().borrow().timed_out(now);
            for id in timed_out {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    info!(shard = shard.id, transactional_id = %id, "aborting a transaction open longer than its timeout");
                    match txns().finish(&shard, &id, false, true).await {
                        Ok(()) => ShardMetrics::add(&shard.metrics.txn_timeouts, 1),
                        Err(code) => debug!(shard = shard.id, transactional_id = %id, "timed-out transaction not aborted ({code:?})"),
                    }
                })
                .detach();
            }
            let expired = txns()
                .borrow()
                .expired(now, shard.broker.transactional_id_expiration_ms);
            for (id, partition) in expired {
                // Checked again: an earlier tombstone's wait may have let a
                // request for this id in.
                let still_idle = txns().borrow().is_expired(
                    &id,
                    now_ms(),
                    shard.broker.transactional_id_expiration_ms,
                );
                if !still_idle {
                    continue;
                }
                self.set_busy(&id, true);
                let code = self.persist(&shard, &id, partition, None).await;
                let local = txns();
                let mut coordinator = local.borrow_mut();
                if code.is_ok() {
                    info!(shard = shard.id, transactional_id = %id, "forgot an idle transactional id");
                    coordinator.txns.remove(&id);
                } else if let Some(entry) = coordinator.txns.get_mut(&id) {
                    entry.busy = false;
                }
            }
        }
    }
}

async fn new_producer_id(shard: &Rc<Shard>) -> Result<i64, KafkaCode> {
    shard
        .call(0, |zero| async move {
            crate::cluster::client::allocate_producer_id(&zero).await
        })
        .await
        .unwrap_or(Err(KafkaCode::COORDINATOR_NOT_AVAILABLE))
}

/// WriteTxnMarkers to another broker; a code per item (a connection
/// failure fails them all).
async fn send_markers(shard: &Rc<Shard>, broker: NodeId, items: &[MarkerItem]) -> Vec<KafkaCode> {
    let failed = vec![KafkaCode::NOT_LEADER_OR_FOLLOWER; items.len()];
    let Some(address) = shard
        .table()
        .brokers
        .get(&broker)
        .map(|b| format!("{}:{}", b.host, b.port))
    else {
        return failed;
    };
    let options = crate::replication::fetcher::broker_client_options(
        shard,
        "strom-txn-coordinator",
        marker_versions,
        MARKER_WAIT + Duration::from_secs(5),
    );
    let mut request = WriteTxnMarkersRequest::default();
    let first = &items[0];
    let mut marker = write_txn_markers_request::WritableTxnMarker::default();
    marker.producer_id = ProducerId(first.producer_id);
    marker.producer_epoch = first.epoch;
    marker.transaction_result = first.commit;
    marker.coordinator_epoch = first.coordinator_epoch;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for item in items {
        by_topic
            .entry(&item.tp.topic)
            .or_default()
            .push(item.tp.partition);
    }
    for (topic, partitions) in by_topic {
        let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
        t.name = TopicName(str_bytes(topic));
        t.partition_indexes = partitions;
        marker.topics.push(t);
    }
    request.markers.push(marker);
    let answer: Result<WriteTxnMarkersResponse, _> =
        match Connection::connect(&address, options).await {
            Ok(mut conn) => conn.call(ApiKey::WriteTxnMarkers, &request).await,
            Err(err) => Err(err),
        };
    let response = match answer {
        Ok(r) => r,
        Err(err) => {
            debug!(shard = shard.id, %broker, "WriteTxnMarkers failed: {err}");
            return failed;
        }
    };
    let mut codes: BTreeMap<(String, i32), KafkaCode> = BTreeMap::new();
    for result in response.markers {
        for topic in result.topics {
            for p in topic.partitions {
                codes.insert(
                    (topic.name.0.to_string(), p.partition_index),
                    KafkaCode(p.error_code),
                );
            }
        }
    }
    items
        .iter()
        .map(|item| {
            codes
                .get(&(item.tp.topic.to_string(), item.tp.partition))
                .copied()
                .unwrap_or(KafkaCode::UNKNOWN_SERVER_ERROR)
        })
        .collect()
}

/// Appends markers to partitions this shard owns and leads, and waits
/// until the in-sync replicas have them; a code per item. A marker on
/// `__consumer_offsets` also ends the transaction's pending offsets.
pub(crate) async fn write_markers_local(
    shard: &Rc<Shard>,
    items: Vec<MarkerItem>,
) -> Vec<KafkaCode> {
    let now = now_ms();
    // A marker of an older producer epoch or coordinator would end a
    // transaction it does not belong to: refused before anything is
    // appended.
    let refused: Vec<Option<KafkaCode>> = {
        let partitions = shard.partitions.borrow();
        items
            .iter()
            .map(|m| {
                let log = &partitions.get(&m.tp)?.log;
                match log.producers().check_marker(m.producer_id, m.epoch, m.coordinator_epoch) {
                    Ok(()) => None,
                    Err(MarkerRefused::StaleEpoch { current }) => {
                        warn!(topic = %m.tp.topic, partition = m.tp.partition, producer_id = m.producer_id, epoch = m.epoch, current, "refusing a marker of an old producer epoch");
                        Some(KafkaCode::INVALID_PRODUCER_EPOCH)
                    }
                    Err(MarkerRefused::StaleCoordinator { current }) => {
                        warn!(topic = %m.tp.topic, partition = m.tp.partition, producer_id = m.producer_id, coordinator_epoch = m.coordinator_epoch, current, "refusing a marker of an old coordinator");
                        Some(KafkaCode::TRANSACTION_COORDINATOR_FENCED)
                    }
                }
            })
            .collect()
    };
    let (accepted, places): (Vec<&MarkerItem>, Vec<usize>) = items
        .iter()
        .enumerate()
        .filter(|(i, _)| refused[*i].is_none())
        .map(|(i, m)| (m, i))
        .unzip();
    let appends = accepted
        .into_iter()
        .map(|m| {
            let kind = if m.commit {
                batch::Marker::Commit
            } else {
                batch::Marker::Abort
            };
            let bytes =
                batch::encode_marker(m.producer_id, m.epoch, kind, m.coordinator_epoch, now);
            let headers = batch::validate_batches(&bytes).unwrap_or_default();
            AppendItem {
                tp: m.tp.clone(),
                records: BytesMut::from(&bytes[..]),
                headers,
            }
        })
        .collect();
    let (outcomes, waits) = shard.append_local(appends, true);
    let mut codes: Vec<KafkaCode> = refused
        .iter()
        .map(|r| r.unwrap_or(KafkaCode::NONE))
        .collect();
    for (place, outcome) in places.iter().zip(&outcomes) {
        codes[*place] = outcome.error;
    }
    let deadline = std::time::Instant::now() + MARKER_WAIT;
    for (index, rx) in waits {
        let gone = KafkaCode::NOT_LEADER_OR_FOLLOWER;
        codes[places[index]] = crate::shard::ack_by(rx, deadline, gone).await;
    }
    let ms = now_ms();
    for (m, code) in items.iter().zip(&codes) {
        if code.is_ok() && &*m.tp.topic == OFFSETS_TOPIC {
            crate::group::service::groups().borrow_mut().complete_txn(
                m.tp.partition,
                m.producer_id,
                m.epoch,
                m.commit,
                ms,
            );
        }
    }
    codes
}

fn pair_codes(items: Vec<MarkerItem>, codes: Vec<KafkaCode>) -> Vec<(MarkerItem, KafkaCode)> {
    let mut codes = codes.into_iter();
    items
        .into_iter()
        .map(|item| {
            let code = codes.next().unwrap_or(KafkaCode::NOT_LEADER_OR_FOLLOWER);
            (item, code)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{partition_dir, PartitionState, TopicMeta, TopicTable};
    use crate::runtime::mesh::Task;
    use glommio::channels::channel_mesh::MeshBuilder;
    use strom_tuning::config::{BrokerConfig, TopicConfig};
    use uuid::Uuid;

    fn topic(name: &str) -> (String, Arc<TopicMeta>) {
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: 1,
            configs: BTreeMap::new(),
            assignments: vec![PartitionState::new(vec![NodeId(1)])],
        };
        (name.to_string(), Arc::new(meta))
    }

    /// A broker restarting (or taking over) with a transaction its
    /// coordinator left in PrepareCommit: the new coordinator writes the
    /// commit markers and records CompleteCommit. It once stopped the broker
    /// instead (a partition borrow held while the finishing task ran at
    /// once), and would have skipped the markers of partitions missing from
    /// the table the shard had before.
    #[test]
    fn a_coordinator_taking_over_finishes_a_transaction_left_preparing() {
        let data = tempfile::tempdir().unwrap();
        let mut config = BrokerConfig {
            node_id: 1,
            ..BrokerConfig::default()
        };
        config.log_dirs = vec![data.path().to_path_buf()];
        let table = TopicTable {
            revision: 1,
            cluster_id: "test".to_string(),
            topics: [topic(TXN_TOPIC), topic("t")].into_iter().collect(),
            ..TopicTable::default()
        };
        // What the previous coordinator wrote before it stopped.
        let state = &table.topics[TXN_TOPIC];
        let dir = partition_dir(data.path(), TXN_TOPIC, 0);
        crate::shard::claim_partition_dir(&dir, state.id).unwrap();
        let log_config = crate::partition::log_config(&TopicConfig::defaults_from(&config));
        let (mut log, _) = strom_storage::log::PartitionLog::open(&dir, log_config, 0).unwrap();
        let meta = TxnMeta {
            producer_id: 7,
            epoch: 0,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: [("t".to_string(), 0)].into_iter().collect(),
            start_ms: 1,
            update_ms: 1,
        };
        let (key, value) = (txn::key("tx"), txn::value(&meta));
        let mut bytes = batch::encode_batch(0, 1, &[(Some(&key), Some(&value))]);
        let headers = batch::validate_batches(&bytes).unwrap();
        log.append(&mut bytes, &headers, 0, None, 1).unwrap();
        log.close().unwrap();

        let config = Arc::new(config);
        let table = Arc::new(table);
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let mesh = MeshBuilder::<Task<Shard>, _>::full(1, 8);
                let (senders, _receivers) = mesh.join().await.unwrap();
                let shard = Shard::new(config, senders, Arc::new(TopicTable::default()));
                crate::replication::fetcher::Fetchers::install(&shard);
                crate::group::service::Groups::install(&shard);
                Txns::install(&shard);
                shard.apply_table(table);
                shard.start_storage_tasks();
                let mut state = None;
                for _ in 0..500 {
                    state = txns().borrow().txns.get("tx").map(|e| e.meta.state);
                    if state == Some(TxnState::CompleteCommit) {
                        break;
                    }
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                let tp = TopicPartition {
                    topic: Arc::from("t"),
                    partition: 0,
                };
                let mut markers = Vec::new();
                if let Some(partition) = shard.partitions.borrow().get(&tp) {
                    crate::group::service::read_batches(&partition.log, |header, bytes| {
                        if header.is_control() {
                            markers.push((header.producer_id, batch::marker_of(bytes)));
                        }
                    });
                }
                (state, markers)
            })
            .unwrap();
        let (state, markers) = handle.join().unwrap();
        assert_eq!(state, Some(TxnState::CompleteCommit));
        assert_eq!(markers.len(), 1, "one commit marker on t-0: {markers:?}");
        assert_eq!(markers[0].0, 7);
        assert!(matches!(markers[0].1, Some((batch::Marker::Commit, _))));
    }
}
