//! The topic table: the cluster metadata image. Which brokers exist, which
//! topics, their ids, config overrides and partitions (replicas, ISR, leader,
//! epochs), and which shard owns each partition.
//!
//! Who touches it: the controller quorum's driver on shard 0 builds it from the
//! committed metadata log (`cluster::records::apply`), then sends an immutable
//! copy (`Arc<TopicTable>`, with a higher revision) to every shard, which applies
//! it by opening or removing the partitions it hosts and taking up the leader
//! or follower role of each. Readers never lock anything.
//!
//! Before the metadata log existed, a single node kept this table in
//! `<data_dir>/meta/topics.json`; such a file is read once, when the metadata
//! log is still empty, and its topics are written into the log
//! ([`TopicTable::load_legacy`]). Its format:
//! ```json
//! {"revision": 3, "cluster_id": "…", "topics": [
//!   {"name": "orders", "id": "uuid", "partitions": 8, "configs": {"segment.bytes": "1048576"}}],
//!  "broker_defaults": {"log.retention.ms": "3600000"},
//!  "node_configs": {"1": {"message.max.bytes": "2000000"}}}
//! ```
//! Topic `configs` are the topic's overrides; `broker_defaults` and
//! `node_configs` are the broker configs changed at run time (AlterConfigs on
//! resource BROKER), layered over the static configuration (see
//! `strom_tuning::catalog`).

use crate::ids::{LeaderEpoch, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    /// Partition count; always `assignments.len()`.
    pub partitions: i32,
    /// Topic-level config overrides, by Kafka key name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Replica state of each partition (index = partition number).
    #[serde(default)]
    pub assignments: Vec<PartitionState>,
}

impl TopicMeta {
    /// The replica state of partition `p`, if it exists.
    pub fn partition(&self, p: i32) -> Option<&PartitionState> {
        usize::try_from(p)
            .ok()
            .and_then(|p| self.assignments.get(p))
    }
}

/// No leader (offline partition), or no broker (unknown controller).
pub const NO_LEADER: NodeId = NodeId::NONE;

/// Where a partition's replicas live and who leads it (Kafka's
/// PartitionRecord): `leader` is [`NO_LEADER`] while no in-sync replica is
/// alive. `leader_epoch` grows with every leader change; `partition_epoch`
/// with every change of this state (ISR changes included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
}

impl PartitionState {
    /// A new partition: every replica in sync, the first one leads.
    pub fn new(replicas: Vec<NodeId>) -> PartitionState {
        PartitionState {
            isr: replicas.clone(),
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            replicas,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
        }
    }
}

/// A registered broker (Kafka's BrokerRegistration plus its state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMeta {
    pub id: NodeId,
    /// Raft index of its latest registration.
    pub epoch: i64,
    /// Chosen by the broker at each start.
    pub incarnation: String,
    /// Its `PLAINTEXT` listener as advertised.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Not heartbeating (or not yet caught up): leads nothing, in no ISR.
    pub fenced: bool,
    /// In a controlled shutdown: gets no new leaderships.
    pub shutting_down: bool,
}

impl BrokerMeta {
    /// Can lead partitions and join ISRs.
    pub fn is_live(&self) -> bool {
        !self.fenced && !self.shutting_down
    }
}

/// The internal topic of committed offsets and group metadata (the group
/// coordinator's log, see `group`).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The internal topic of transaction coordinator state (see `txn`).
pub const TXN_TOPIC: &str = "__transaction_state";

/// An immutable, revisioned snapshot of the cluster metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopicTable {
    /// Grows with every table a node publishes to its shards.
    pub revision: u64,
    pub cluster_id: String,
    #[serde(with = "topics_as_list")]
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    /// Broker configs set at run time for every broker (resource BROKER
    /// with the empty name), by Kafka key name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_defaults: BTreeMap<String, String>,
    /// Broker configs set at run time for one broker, by node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Registered brokers by node id.
    #[serde(default)]
    pub brokers: BTreeMap<NodeId, BrokerMeta>,
    /// Raft index of the last metadata entry applied to this table.
    #[serde(default)]
    pub metadata_offset: u64,
    /// The active controller as this node last heard ([`NO_LEADER`] when
    /// there is none), not part of the replicated log.
    #[serde(default)]
    pub controller_id: NodeId,
    /// The first producer id of the next block the controller hands out.
    #[serde(default)]
    pub next_producer_id: i64,
}

mod topics_as_list {
    use super::TopicMeta;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(
        topics: &BTreeMap<String, Arc<TopicMeta>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<&TopicMeta> = topics.values().map(|t| t.as_ref()).collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Arc<TopicMeta>>, D::Error> {
        let list = Vec::<TopicMeta>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|t| (t.name.clone(), Arc::new(t)))
            .collect())
    }
}

/// Errors loading or saving the table.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid topic table: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl TopicTable {
    pub fn by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    /// The replica state of a partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic)?.partition(partition)
    }

    /// Brokers that can lead partitions and join ISRs, by id.
    pub fn live_brokers(&self) -> Vec<NodeId> {
        self.brokers
            .values()
            .filter(|b| b.is_live())
            .map(|b| b.id)
            .collect()
    }

    /// Whether broker `id` is registered and not fenced.
    pub fn is_unfenced(&self, id: NodeId) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// Path of the legacy table file under a data dir.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("meta").join("topics.json")
    }

    /// The table of a single node from before the metadata log, if the data
    /// directory has one. Partitions get this node as their only replica.
    pub fn load_legacy(data_dir: &Path, node_id: i32) -> Result<Option<TopicTable>, MetadataError> {
        let path = Self::path(data_dir);
        let mut table: TopicTable = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| MetadataError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MetadataError::Io { path, source }),
        };
        for topic in table.topics.values_mut() {
            let topic = Arc::make_mut(topic);
            if topic.assignments.len() != topic.partitions.max(0) as usize {
                topic.assignments = (0..topic.partitions)
                    .map(|_| PartitionState::new(vec![NodeId(node_id)]))
                    .collect();
            }
        }
        Ok(Some(table))
    }

    /// A fresh cluster id, Kafka style.
    pub fn new_cluster_id() -> String {
        cluster_id_from(Uuid::new_v4())
    }

    /// Atomically replaces the legacy table file (tests of the migration).
    pub fn save(&self, data_dir: &Path) -> Result<(), MetadataError> {
        let path = Self::path(data_dir);
        let dir = data_dir.join("meta");
        let io = |source| MetadataError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let temp = dir.join("topics.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = fs::File::create(&temp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, &path).map_err(io)?;
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }
}

/// Replicas of a partition whose broker is fenced or unknown.
pub fn offline_replicas(state: &PartitionState, table: &TopicTable) -> Vec<NodeId> {
    state
        .replicas
        .iter()
        .copied()
        .filter(|r| !table.is_unfenced(*r))
        .collect()
}

/// Kafka cluster ids are 22-character URL-safe base64 of a UUID.
fn cluster_id_from(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = id.as_u128();
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let index = if shift >= 0 {
                (bits >> shift) & 63
            } else {
                (bits << -shift) & 63
            };
            ALPHABET[index as usize] as char
        })
        .collect()
}

/// Which shard owns a partition: partitions of one topic are spread round-robin,
/// starting at a shard derived from the topic name so that many small topics do
/// not all start on shard 0. Pure function of (name, partition, shard count):
/// every shard computes the same answer without asking anyone.
pub fn shard_for(topic: &str, partition: i32, shard_count: usize) -> usize {
    // FNV-1a: stable across runs and platforms (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ((hash.wrapping_add(partition as u64)) % shard_count as u64) as usize
}

/// Directory of one partition: Kafka's `<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// The static configuration with the dynamic broker configs of a table.
pub fn layers_of(
    broker: &strom_tuning::config::BrokerConfig,
    table: &TopicTable,
) -> strom_tuning::catalog::BrokerLayers {
    strom_tuning::catalog::BrokerLayers {
        static_config: broker.clone(),
        cluster_default: table.broker_defaults.clone(),
        node: table
            .node_configs
            .get(&broker.node_id)
            .cloned()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_a_topic_spread_over_shards() {
        let mut counts = [0usize; 4];
        for p in 0..8 {
            counts[shard_for("orders", p, 4)] += 1;
        }
        assert_eq!(counts, [2, 2, 2, 2]);
        assert_eq!(shard_for("x", 3, 1), 0);
    }

    #[test]
    fn a_legacy_table_file_is_read_with_this_node_as_every_replica() {
        let dir = tempfile::tempdir().unwrap();
        assert!(TopicTable::load_legacy(dir.path(), 1).unwrap().is_none());
        // The file as the single-node versions wrote it (no assignments).
        let legacy = r#"{"revision": 3, "cluster_id": "abcdefghijklmnopqrstuv", "topics": [
            {"name": "a", "id": "6f1c0a1e-0000-4000-8000-000000000001", "partitions": 3,
             "configs": {"segment.bytes": "1000"}}],
            "broker_defaults": {"log.retention.ms": "5"}}"#;
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(TopicTable::path(dir.path()), legacy).unwrap();
        let table = TopicTable::load_legacy(dir.path(), 7).unwrap().unwrap();
        assert_eq!(table.cluster_id, "abcdefghijklmnopqrstuv");
        let a = &table.topics["a"];
        assert_eq!(a.partitions, 3);
        assert_eq!(a.configs["segment.bytes"], "1000");
        assert_eq!(a.assignments, vec![PartitionState::new(vec![NodeId(7)]); 3]);
        assert_eq!(a.assignments[0].leader, NodeId(7));
        assert_eq!(table.broker_defaults["log.retention.ms"], "5");
        assert_eq!(TopicTable::new_cluster_id().len(), 22);
    }
}
