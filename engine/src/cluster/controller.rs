//! The active controller: the node whose quorum member leads raft decides
//! every change of the cluster metadata and proposes it as records.
//!
//! Who touches it: shard 0 of every voter holds one; it acts only while its
//! node is the ready raft leader ([`Quorum::is_ready_leader`]), else it
//! answers [`ControllerResponse::NotController`] so the caller retries at
//! the new leader. Decisions are made one at a time (a one-permit
//! semaphore): each plans on a copy of the current image with the same pure
//! functions a single node used (`topics::plan_topic`, `admin::*`, `elections::*`),
//! proposes `records::diff(old, new)` and answers once it is committed and
//! applied here, with the metadata offset the caller waits for before it
//! tells its client.
//!
//! Requests travel as JSON ([`ControllerRequest`] / [`ControllerResponse`])
//! over `transport`, or are handled here directly when this node leads.
//!
//! Every [`PERIODIC_MS`] the active controller fences brokers whose last
//! heartbeat is older than `broker.session.timeout.ms` (their partitions get
//! new leaders), elects leaders for leaderless partitions, and every
//! `leader.imbalance.check.interval.seconds` moves leadership back to
//! preferred replicas.

use super::elections::{self, IsrChange};
use super::quorum::{ProposeError, Quorum};
use super::records;
use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::messages::{
    AdminOutcome, ConfigAlteration, CreateOutcome, CreateSpec, DeleteOutcome, DeleteSpec,
    PartitionGrowth,
};
use crate::metadata::{BrokerMeta, PartitionState, TopicTable, NO_LEADER};
use glommio::sync::Semaphore;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strom_tuning::config::BrokerConfig;
use tracing::{info, warn};
use uuid::Uuid;

/// How often the active controller checks sessions and leaderless partitions.
pub const PERIODIC_MS: u64 = 200;
/// Free space the data directory must have for the controller to write to
/// the metadata log: a full disk refuses metadata changes (retriable)
/// instead of failing the write that raft relies on.
pub const METADATA_FREE_BYTES_MIN: u64 = 1 << 20;

/// Whether the file system holding `dir` has room for metadata entries.
fn room_for_metadata(dir: &std::path::Path) -> bool {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stat) => {
            stat.blocks_available().saturating_mul(stat.fragment_size()) >= METADATA_FREE_BYTES_MIN
        }
        // Cannot tell: let the write decide.
        Err(_) => true,
    }
}

/// A request to the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// A broker starting (Kafka's BrokerRegistration).
    RegisterBroker {
        id: NodeId,
        incarnation: String,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// A broker alive (Kafka's BrokerHeartbeat): `applied` is the metadata
    /// offset its image has reached; `want_shutdown` starts a controlled
    /// shutdown.
    Heartbeat {
        id: NodeId,
        epoch: i64,
        applied: u64,
        want_shutdown: bool,
    },
    CreateTopics {
        specs: Vec<CreateSpec>,
        validate_only: bool,
    },
    DeleteTopics {
        specs: Vec<DeleteSpec>,
    },
    AlterConfigs {
        alterations: Vec<ConfigAlteration>,
        validate_only: bool,
    },
    CreatePartitions {
        growths: Vec<PartitionGrowth>,
        validate_only: bool,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition).
    AlterIsr(IsrChange),
    /// Kafka's ElectLeaders: type 0 preferred, 1 unclean; `None` = all.
    ElectLeaders {
        election: i8,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// The quorum as the active controller sees it (DescribeQuorum).
    DescribeQuorum,
    /// A block of producer ids for a broker (Kafka's AllocateProducerIds).
    AllocateProducerIds {
        broker: NodeId,
    },
}

/// Producer ids a broker takes from the controller at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// The voters as the active controller sees them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumInfo {
    pub leader: NodeId,
    pub term: u64,
    pub commit: u64,
    /// (node id, last entry it is known to have)
    pub voters: Vec<(NodeId, u64)>,
}

/// The active controller's answer. `offset`: the metadata offset at which
/// the change (if any) is applied; the caller waits until its image has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// This node is not (or no longer) the active controller.
    NotController {
        leader: NodeId,
    },
    Registered {
        epoch: i64,
        offset: u64,
    },
    Heartbeat {
        error: KafkaCode,
        fenced: bool,
        should_shutdown: bool,
    },
    CreateTopics {
        outcomes: Vec<CreateOutcome>,
        offset: u64,
    },
    DeleteTopics {
        outcomes: Vec<DeleteOutcome>,
        offset: u64,
    },
    Admin {
        outcomes: Vec<AdminOutcome>,
        offset: u64,
    },
    AlterIsr {
        result: Result<PartitionState, KafkaCode>,
        offset: u64,
    },
    ElectLeaders {
        outcomes: Vec<((String, i32), KafkaCode)>,
        offset: u64,
    },
    Quorum(QuorumInfo),
    /// Producer ids `first .. first + count` belong to the asking broker.
    ProducerIds {
        first: i64,
        count: i64,
        offset: u64,
    },
    /// Refused before anything was written (the active controller's disk is
    /// full).
    Refused {
        error: KafkaCode,
        message: String,
    },
}

pub struct Controller {
    quorum: Rc<Quorum>,
    /// The static configuration (session timeouts, defaults).
    config: Arc<BrokerConfig>,
    lock: Semaphore,
    /// When each broker last heartbeat, as seen while this node leads.
    heartbeats: RefCell<HashMap<NodeId, Instant>>,
    leading_since: Cell<Option<Instant>>,
    last_rebalance: Cell<Instant>,
    /// A single node's topic table from before the metadata log: written
    /// into the log when the log is new.
    legacy: RefCell<Option<TopicTable>>,
}

impl Controller {
    pub fn new(
        quorum: Rc<Quorum>,
        config: Arc<BrokerConfig>,
        legacy: Option<TopicTable>,
    ) -> Rc<Controller> {
        Rc::new(Controller {
            quorum,
            config,
            lock: Semaphore::new(1),
            heartbeats: RefCell::new(HashMap::new()),
            leading_since: Cell::new(None),
            last_rebalance: Cell::new(Instant::now()),
            legacy: RefCell::new(legacy),
        })
    }

    fn not_controller(&self) -> ControllerResponse {
        ControllerResponse::NotController {
            leader: self.quorum.leader().unwrap_or(NO_LEADER),
        }
    }

    /// Decodes, handles and encodes a request that came over the network.
    pub async fn handle_bytes(&self, payload: &[u8]) -> Vec<u8> {
        let response = match serde_json::from_slice::<ControllerRequest>(payload) {
            Ok(request) => self.handle(request).await,
            Err(err) => {
                warn!("undecodable controller request: {err}");
                self.not_controller()
            }
        };
        serde_json::to_vec(&response).unwrap_or_default()
    }

    /// Handles one request (see the module docs).
    pub async fn handle(&self, request: ControllerRequest) -> ControllerResponse {
        if let ControllerRequest::DescribeQuorum = request {
            let status = self.quorum.status();
            if !status.is_leader {
                return self.not_controller();
            }
            return ControllerResponse::Quorum(QuorumInfo {
                leader: status.leader,
                term: status.term,
                commit: status.commit,
                voters: status.voters,
            });
        }
        if !self.quorum.is_ready_leader() {
            return self.not_controller();
        }
        let Ok(_permit) = self.lock.acquire_permit(1).await else {
            return self.not_controller();
        };
        if !self.quorum.is_ready_leader() {
            return self.not_controller();
        }
        let image = self.quorum.image();
        let mut next = (*image).clone();
        if next.cluster_id.is_empty() {
            self.bootstrap(&mut next);
        }
        let answer = self.decide(&image, &mut next, request);
        let records = records::diff(&image, &next);
        let offset = if records.is_empty() {
            image.metadata_offset
        } else if !room_for_metadata(self.config.data_dir()) {
            warn!("disk full: metadata change refused");
            return ControllerResponse::Refused {
                error: KafkaCode::KAFKA_STORAGE_ERROR,
                message: crate::errors::DISK_FULL_MESSAGE.to_string(),
            };
        } else {
            match self.quorum.propose(&records).await {
                Ok(index) => index,
                Err(ProposeError::NotLeader | ProposeError::LeadershipLost) => {
                    return self.not_controller()
                }
            }
        };
        answer(offset)
    }

    /// Plans one request on `next` (a copy of `image`); returns how to answer
    /// once the change is at `offset`.
    fn decide(
        &self,
        image: &TopicTable,
        next: &mut TopicTable,
        request: ControllerRequest,
    ) -> Box<dyn FnOnce(u64) -> ControllerResponse> {
        match request {
            ControllerRequest::RegisterBroker {
                id,
                incarnation,
                host,
                port,
                rack,
            } => {
                if let Some(existing) = image.brokers.get(&id) {
                    if existing.incarnation == incarnation {
                        // A retry of a registration that already committed.
                        let epoch = existing.epoch;
                        return Box::new(move |offset| ControllerResponse::Registered {
                            epoch,
                            offset,
                        });
                    }
                    // A new start of a known broker: whatever it led moves
                    // on until it has caught up again.
                    elections::fence(next, id);
                }
                let epoch = image.metadata_offset as i64 + 1;
                next.brokers.insert(
                    id,
                    BrokerMeta {
                        id,
                        epoch,
                        incarnation,
                        host,
                        port,
                        rack,
                        fenced: true,
                        shutting_down: false,
                    },
                );
                self.heartbeats.borrow_mut().insert(id, Instant::now());
                info!(broker = %id, epoch, "broker registered");
                Box::new(move |offset| ControllerResponse::Registered { epoch, offset })
            }
            ControllerRequest::Heartbeat {
                id,
                epoch,
                applied,
                want_shutdown,
            } => {
                let Some(broker) = image.brokers.get(&id).cloned() else {
                    return Box::new(|_| ControllerResponse::Heartbeat {
                        error: KafkaCode::STALE_BROKER_EPOCH,
                        fenced: true,
                        should_shutdown: false,
                    });
                };
                if broker.epoch != epoch {
                    return Box::new(|_| ControllerResponse::Heartbeat {
                        error: KafkaCode::STALE_BROKER_EPOCH,
                        fenced: true,
                        should_shutdown: false,
                    });
                }
                self.heartbeats.borrow_mut().insert(id, Instant::now());
                let unclean = unclean_policy(&self.config, image);
                if want_shutdown {
                    if !broker.shutting_down {
                        info!(broker = %id, "controlled shutdown: moving leaderships away");
                    }
                    elections::begin_shutdown(next, id);
                } else if broker.fenced && applied >= epoch as u64 {
                    info!(broker = %id, "broker caught up with the metadata: unfenced");
                    elections::unfence(next, id, &unclean);
                }
                let should_shutdown =
                    want_shutdown && elections::movable_leaderships(next, id) == 0;
                if should_shutdown {
                    // It stops now: out of every ISR at once, no waiting for
                    // its session to expire.
                    elections::fence(next, id);
                    if let Some(b) = next.brokers.get_mut(&id) {
                        b.shutting_down = true;
                    }
                }
                let fenced = next.brokers.get(&id).is_none_or(|b| b.fenced);
                Box::new(move |_| ControllerResponse::Heartbeat {
                    error: KafkaCode::NONE,
                    fenced,
                    should_shutdown,
                })
            }
            ControllerRequest::CreateTopics {
                specs,
                validate_only,
            } => {
                let outcomes = self.create_topics(next, specs, validate_only);
                Box::new(move |offset| ControllerResponse::CreateTopics { outcomes, offset })
            }
            ControllerRequest::DeleteTopics { specs } => {
                let outcomes = delete_topics(next, specs);
                Box::new(move |offset| ControllerResponse::DeleteTopics { outcomes, offset })
            }
            ControllerRequest::AlterConfigs {
                alterations,
                validate_only,
            } => {
                let mut copy = next.clone();
                let outcomes = alterations
                    .iter()
                    .map(|a| crate::cluster::admin::alter_configs(&self.config, &mut copy, a))
                    .collect();
                if !validate_only {
                    *next = copy;
                }
                Box::new(move |offset| ControllerResponse::Admin { outcomes, offset })
            }
            ControllerRequest::CreatePartitions {
                growths,
                validate_only,
            } => {
                let mut copy = next.clone();
                let mut seen = std::collections::HashSet::new();
                let duplicates: std::collections::HashSet<String> = growths
                    .iter()
                    .filter(|g| !seen.insert(g.topic.clone()))
                    .map(|g| g.topic.clone())
                    .collect();
                let outcomes = growths
                    .iter()
                    .map(|g| {
                        let duplicate = duplicates.contains(&g.topic);
                        crate::cluster::admin::grow_partitions(&mut copy, g, duplicate)
                    })
                    .collect();
                if !validate_only {
                    *next = copy;
                }
                Box::new(move |offset| ControllerResponse::Admin { outcomes, offset })
            }
            ControllerRequest::AlterIsr(change) => {
                let result = elections::alter_isr(next, &change);
                if let Err(code) = &result {
                    info!(topic = %change.topic, partition = change.partition, ?code, "ISR change refused");
                }
                Box::new(move |offset| ControllerResponse::AlterIsr { result, offset })
            }
            ControllerRequest::ElectLeaders {
                election,
                partitions,
            } => {
                let outcomes = if election == 1 {
                    let all: Vec<(String, i32)> =
                        partitions.unwrap_or_else(|| all_partitions(image));
                    elections::elect_unclean(next, &all)
                } else {
                    elections::elect_preferred(next, partitions.as_deref())
                };
                Box::new(move |offset| ControllerResponse::ElectLeaders { outcomes, offset })
            }
            ControllerRequest::AllocateProducerIds { broker } => {
                // The first block starts at PRODUCER_ID_BLOCK: id 0 is
                // valid in Kafka, but a non-zero start makes a mix-up with
                // "no producer id" (-1) or a zeroed field easy to spot.
                let first = next.next_producer_id.max(PRODUCER_ID_BLOCK);
                next.next_producer_id = first + PRODUCER_ID_BLOCK;
                info!(
                    %broker,
                    first,
                    count = PRODUCER_ID_BLOCK,
                    "producer id block handed out"
                );
                Box::new(move |offset| ControllerResponse::ProducerIds {
                    first,
                    count: PRODUCER_ID_BLOCK,
                    offset,
                })
            }
            ControllerRequest::DescribeQuorum => {
                Box::new(|_| ControllerResponse::NotController { leader: NO_LEADER })
            }
        }
    }

    fn create_topics(
        &self,
        next: &mut TopicTable,
        specs: Vec<CreateSpec>,
        validate_only: bool,
    ) -> Vec<CreateOutcome> {
        let broker = crate::metadata::layers_of(&self.config, next)
            .effective()
            .unwrap_or_else(|_| (*self.config).clone());
        let mut outcomes = Vec::with_capacity(specs.len());
        let mut names_seen = std::collections::HashSet::new();
        for mut spec in specs {
            let duplicate = !names_seen.insert(spec.name.clone());
            if spec.name == crate::metadata::OFFSETS_TOPIC && spec.replication_factor == -1 {
                // Kafka's offsets.topic.replication.factor, but never more
                // than the brokers alive now (a single node gets one copy).
                let live = next.live_brokers().len().max(1) as i16;
                spec.replication_factor = broker.offsets_topic_replication_factor.min(live);
            }
            match crate::cluster::topics::plan_topic(&broker, next, spec, duplicate) {
                Ok((meta, outcome)) => {
                    if !validate_only {
                        next.topics.insert(meta.name.clone(), Arc::new(meta));
                    }
                    outcomes.push(outcome);
                }
                Err(outcome) => outcomes.push(outcome),
            }
        }
        outcomes
    }

    /// The periodic duties of the active controller (see the module docs).
    pub async fn run_periodic(self: Rc<Self>) {
        loop {
            let changed = self.quorum.changed();
            let sleep = glommio::timer::sleep(Duration::from_millis(PERIODIC_MS));
            futures::pin_mut!(sleep);
            // Wake early when leadership changes, so a new controller
            // bootstraps and elects without waiting a whole period.
            let _ = futures::future::select(changed, sleep).await;
            if !self.quorum.is_ready_leader() {
                self.leading_since.set(None);
                self.heartbeats.borrow_mut().clear();
                continue;
            }
            let Ok(_permit) = self.lock.acquire_permit(1).await else {
                return;
            };
            if !self.quorum.is_ready_leader() {
                continue;
            }
            let now = Instant::now();
            let since = match self.leading_since.get() {
                Some(since) => since,
                None => {
                    // New at the helm: every broker gets a full session to
                    // find us before it is fenced.
                    self.leading_since.set(Some(now));
                    self.last_rebalance.set(now);
                    now
                }
            };
            let image = self.quorum.image();
            let mut next = (*image).clone();
            if next.cluster_id.is_empty() {
                self.bootstrap(&mut next);
            }
            let session = Duration::from_millis(u64::from(self.config.broker_session_timeout_ms));
            let expired: Vec<NodeId> = next
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter(|b| {
                    let last = self
                        .heartbeats
                        .borrow()
                        .get(&b.id)
                        .copied()
                        .unwrap_or(since);
                    now.duration_since(last.max(since)) > session
                })
                .map(|b| b.id)
                .collect();
            for broker in expired {
                let moved = elections::fence(&mut next, broker);
                warn!(
                    %broker,
                    partitions = moved,
                    "broker missed its session timeout: fenced"
                );
            }
            let unclean = unclean_policy(&self.config, &next);
            elections::elect_offline(&mut next, &unclean);
            let interval = Duration::from_secs(u64::from(
                self.config.leader_imbalance_check_interval_seconds,
            ));
            if self.config.auto_leader_rebalance_enable
                && now.duration_since(self.last_rebalance.get()) >= interval
            {
                self.last_rebalance.set(now);
                let moved = elections::elect_preferred(&mut next, None);
                if !moved.is_empty() {
                    info!(
                        partitions = moved.len(),
                        "moved leadership back to preferred replicas"
                    );
                }
            }
            let records = records::diff(&image, &next);
            if !records.is_empty() && room_for_metadata(self.config.data_dir()) {
                if let Err(err) = self.quorum.propose(&records).await {
                    info!("periodic metadata change not committed: {err}");
                }
            }
        }
    }

    /// A new metadata log: the cluster id and, when this node ran alone
    /// before the log existed, its topics and dynamic configs.
    fn bootstrap(&self, next: &mut TopicTable) {
        match self.legacy.borrow_mut().take() {
            Some(legacy) => {
                info!(
                    topics = legacy.topics.len(),
                    "writing the topics of meta/topics.json into the new metadata log"
                );
                next.cluster_id = legacy.cluster_id;
                next.topics = legacy.topics;
                next.broker_defaults = legacy.broker_defaults;
                next.node_configs = legacy.node_configs;
            }
            None => next.cluster_id = TopicTable::new_cluster_id(),
        }
        info!(cluster_id = %next.cluster_id, "new cluster");
    }
}

/// Whether a topic allows unclean leader election (its override, else the
/// broker default).
fn unclean_policy(config: &BrokerConfig, table: &TopicTable) -> impl Fn(&str) -> bool {
    let default = config.unclean_leader_election_enable;
    let overrides: HashMap<String, bool> = table
        .topics
        .values()
        .filter_map(|t| {
            t.configs
                .get("unclean.leader.election.enable")
                .map(|v| (t.name.clone(), v == "true"))
        })
        .collect();
    move |topic: &str| overrides.get(topic).copied().unwrap_or(default)
}

fn all_partitions(table: &TopicTable) -> Vec<(String, i32)> {
    table
        .topics
        .values()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
        .collect()
}

fn delete_topics(next: &mut TopicTable, specs: Vec<DeleteSpec>) -> Vec<DeleteOutcome> {
    specs
        .into_iter()
        .map(|spec| {
            let found = match &spec {
                DeleteSpec::Name(name) => next.topics.get(name).cloned(),
                DeleteSpec::Id(id) => next.by_id(*id).cloned(),
            };
            match (found, spec) {
                (Some(meta), _) => {
                    next.topics.remove(&meta.name);
                    DeleteOutcome {
                        name: Some(meta.name.clone()),
                        id: meta.id,
                        error: KafkaCode::NONE,
                        message: None,
                    }
                }
                (None, DeleteSpec::Name(name)) => DeleteOutcome {
                    name: Some(name),
                    id: Uuid::nil(),
                    error: KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    message: Some("This server does not host this topic".into()),
                },
                (None, DeleteSpec::Id(id)) => DeleteOutcome {
                    name: None,
                    id,
                    error: KafkaCode::UNKNOWN_TOPIC_ID,
                    message: Some("This server does not host a topic with this id".into()),
                },
            }
        })
        .collect()
}
