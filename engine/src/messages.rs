//! The values that cross shards: partition work items and their outcomes,
//! and the admin changes shard 0 makes through the controller.
//!
//! They travel inside closures over the mesh (`runtime::mesh`, `Shard::call`).
//! A request that touches partitions of several shards sends at most one call
//! per destination shard (callers group items by owner first).

use crate::errors::KafkaCode;
use crate::ids::{LeaderEpoch, NodeId};
use bytes::BytesMut;
use futures::channel::oneshot;
use std::sync::Arc;
use strom_net::FileSlice;
use strom_storage::batch::BatchHeader;
use uuid::Uuid;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

/// Validated batches for one partition, to be appended by its owner.
#[derive(Debug)]
pub struct AppendItem {
    pub tp: TopicPartition,
    pub records: BytesMut,
    pub headers: Vec<BatchHeader>,
}

/// Result of one append.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub error: KafkaCode,
    /// Shown to the client with the error (Produce v8+).
    pub message: Option<String>,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// The outcome of an `Append` message: one outcome per item, and the items
/// (by index) still waiting for their acknowledgement.
pub type Appended = (
    Vec<AppendOutcome>,
    Vec<(usize, oneshot::Receiver<KafkaCode>)>,
);

/// A fetch of one partition.
#[derive(Debug, Clone)]
pub struct ReadItem {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: u64,
    /// The leader epoch the fetcher believes current (UNKNOWN: not
    /// checked).
    pub current_leader_epoch: LeaderEpoch,
    /// A follower's broker id (reads up to the log end, reports its
    /// progress), or -1 for a consumer (reads up to the high watermark).
    pub replica_id: NodeId,
    /// A read_committed consumer: reads up to the last stable offset and is
    /// told the aborted transactions in what it reads.
    pub read_committed: bool,
}

/// What a long poll waits for on one partition: the high watermark
/// (consumers) or the log end (followers) past `seen`.
#[derive(Debug, Clone)]
pub struct WaitItem {
    pub tp: TopicPartition,
    pub seen: i64,
    pub replica: bool,
    /// Wait for the last stable offset (read_committed) instead of the high
    /// watermark.
    pub committed: bool,
}

/// What a fetch of one partition found.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub error: KafkaCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<FileSlice>,
    /// read_committed: the aborted transactions overlapping `records`, as
    /// (producer id, first offset).
    pub aborted: Vec<(i64, i64)>,
}

/// A ListOffsets query of one partition (timestamp -1 latest, -2 earliest, -3 max timestamp).
#[derive(Debug, Clone)]
pub struct OffsetQuery {
    pub tp: TopicPartition,
    pub timestamp: i64,
    /// read_committed: "latest" is the last stable offset.
    pub read_committed: bool,
}

/// The answer to an [`OffsetQuery`]; offset and timestamp are -1 when nothing matches.
#[derive(Debug, Clone, Copy)]
pub struct OffsetAnswer {
    pub error: KafkaCode,
    pub timestamp: i64,
    pub offset: i64,
}

/// An OffsetForLeaderEpoch query of one partition.
#[derive(Debug, Clone)]
pub struct EpochQuery {
    pub tp: TopicPartition,
    /// The epoch the client believes current (UNKNOWN: not checked).
    pub current_leader_epoch: LeaderEpoch,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: LeaderEpoch,
}

/// The answer to an [`EpochQuery`]: the largest epoch at most the one asked
/// for and its end offset (-1, -1 on error).
#[derive(Debug, Clone, Copy)]
pub struct EpochEnd {
    pub error: KafkaCode,
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// A DeleteRecords request for one partition: move its log start to
/// `offset` (-1: the high watermark).
#[derive(Debug, Clone)]
pub struct RecordsDeletion {
    pub tp: TopicPartition,
    pub offset: i64,
}

/// The answer to a [`RecordsDeletion`] (low watermark -1 on error).
#[derive(Debug, Clone, Copy)]
pub struct RecordsDeleted {
    pub low_watermark: i64,
    pub error: KafkaCode,
}

/// One producer of a partition: id, epoch, last sequence, last timestamp,
/// coordinator epoch of its last marker (-1: none) and first offset of its
/// open transaction (-1: none).
#[derive(Debug, Clone)]
pub struct ProducerRow {
    pub id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    pub txn_start: i64,
}

/// A topic to create (CreateTopics or auto-creation).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreateSpec {
    pub name: String,
    /// -1: the broker default.
    pub num_partitions: i32,
    /// -1: the broker default.
    pub replication_factor: i16,
    /// Manual assignment: (partition, broker ids).
    pub assignments: Vec<(i32, Vec<NodeId>)>,
    pub configs: Vec<(String, Option<String>)>,
}

/// The outcome of creating one topic.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreateOutcome {
    pub name: String,
    pub id: Uuid,
    pub error: KafkaCode,
    pub message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// (key, value, is_default) of every topic config, for CreateTopics v5+.
    pub configs: Vec<(String, String, bool)>,
}

/// A topic to delete, by name or by id (DeleteTopics v6).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum DeleteSpec {
    Name(String),
    Id(Uuid),
}

/// The outcome of deleting one topic.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeleteOutcome {
    pub name: Option<String>,
    pub id: Uuid,
    pub error: KafkaCode,
    pub message: Option<String>,
}

/// A config resource of DescribeConfigs / AlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// A broker by node id, or `""` for the cluster-wide default.
    Broker(String),
}

/// One change of an (Incremental)AlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigOp {
    Set(String, Option<String>),
    Delete(String),
    /// Add list items (comma-separated) not already present.
    Append(String, Option<String>),
    /// Remove list items.
    Subtract(String, Option<String>),
}

impl ConfigOp {
    pub fn key(&self) -> &str {
        match self {
            ConfigOp::Set(k, _)
            | ConfigOp::Delete(k)
            | ConfigOp::Append(k, _)
            | ConfigOp::Subtract(k, _) => k,
        }
    }
}

/// The changes to one resource. `replace` (legacy AlterConfigs): the ops
/// are the resource's whole new set of overrides.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConfigAlteration {
    pub resource: ConfigResource,
    pub replace: bool,
    pub ops: Vec<ConfigOp>,
}

/// Grow a topic to `count` partitions (CreatePartitions); `assignments`:
/// the broker ids of each new partition, when the client gives them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartitionGrowth {
    pub topic: String,
    pub count: i32,
    pub assignments: Option<Vec<Vec<NodeId>>>,
}

/// The answer for one resource of an admin request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdminOutcome {
    pub error: KafkaCode,
    pub message: Option<String>,
}

impl AdminOutcome {
    pub const OK: AdminOutcome = AdminOutcome {
        error: KafkaCode::NONE,
        message: None,
    };

    pub fn failed(error: KafkaCode, message: impl Into<String>) -> AdminOutcome {
        AdminOutcome {
            error,
            message: Some(message.into()),
        }
    }
}
