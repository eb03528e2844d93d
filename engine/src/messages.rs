//! Typed messages between shards.
//!
//! Every cross-shard interaction is one of these, sent over glommio's bounded
//! channel mesh (depth `CROSS_SHARD_CHANNEL_DEPTH`). A message carries a oneshot
//! sender for its reply; glommio wakes the waiting task on the origin shard.
//! A request that touches partitions of several shards sends at most one message
//! per destination shard (callers group items by owner first).

use crate::errors::KafkaCode;
use crate::metadata::TopicTable;
use bytes::BytesMut;
use futures::channel::oneshot;
use std::sync::Arc;
use std::time::Duration;
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
    /// The leader epoch the fetcher believes current (-1: not checked).
    pub current_leader_epoch: i32,
    /// A follower's broker id (reads up to the log end, reports its
    /// progress), or -1 for a consumer (reads up to the high watermark).
    pub replica_id: i32,
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

/// A topic to create (CreateTopics or auto-creation).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreateSpec {
    pub name: String,
    /// -1: the broker default.
    pub num_partitions: i32,
    /// -1: the broker default.
    pub replication_factor: i16,
    /// Manual assignment: (partition, broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
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
    pub assignments: Option<Vec<Vec<i32>>>,
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

/// Every message a shard can receive.
pub enum ShardMsg {
    /// Append; with `true` (acks=all) the reply also carries, per item that
    /// must wait, a receiver that fires once every in-sync replica has the
    /// records (and, without write caching, synced them): NONE, or the error
    /// that ended the wait (leadership moved).
    Append(Vec<AppendItem>, bool, oneshot::Sender<Appended>),
    /// To shard 0 only: any request for the active controller; answered once
    /// every shard applied its effect.
    Controller(
        crate::cluster::controller::ControllerRequest,
        oneshot::Sender<
            Result<crate::cluster::controller::ControllerResponse, (KafkaCode, String)>,
        >,
    ),
    /// OffsetForLeaderEpoch: (partition, current leader epoch the client
    /// knows, epoch asked about); answers (error, epoch, end offset).
    EpochEndOffsets(
        Vec<(TopicPartition, i32, i32)>,
        oneshot::Sender<Vec<(KafkaCode, i32, i64)>>,
    ),
    /// DescribeProducers: each partition's idempotent producers, where this
    /// broker leads it (NOT_LEADER_OR_FOLLOWER otherwise).
    DescribeProducers(
        Vec<TopicPartition>,
        oneshot::Sender<
            Vec<Result<Vec<crate::handlers::describe_producers::ProducerRow>, KafkaCode>>,
        >,
    ),
    /// To shard 0 only: a new producer id for an idempotent producer
    /// (InitProducerId), from the block the controller gave this broker.
    ProducerId(oneshot::Sender<Result<i64, KafkaCode>>),
    /// To shard 0 only: a partition leader's ISR change for the controller.
    AlterIsr(
        crate::cluster::elections::IsrChange,
        oneshot::Sender<Result<crate::metadata::PartitionState, KafkaCode>>,
    ),
    /// DeleteRecords: move each partition's log start offset up to the
    /// offset (-1 = the high watermark); replies (low watermark, error).
    DeleteRecords(
        Vec<(TopicPartition, i64)>,
        oneshot::Sender<Vec<(i64, KafkaCode)>>,
    ),
    Read(Vec<ReadItem>, oneshot::Sender<Vec<ReadOutcome>>),
    /// A whole long-poll on one shard (when a fetch touches only that shard): read,
    /// and while fewer than `min_bytes` are found and the timeout has not passed,
    /// wait for an append and read again; reply once.
    ReadWait(
        Vec<ReadItem>,
        u64,
        Duration,
        oneshot::Sender<Vec<ReadOutcome>>,
    ),
    /// Reply once any partition's high watermark exceeds the given one (the one
    /// the caller's last read saw), or after the timeout.
    Wait(Vec<WaitItem>, Duration, oneshot::Sender<()>),
    ListOffsets(Vec<OffsetQuery>, oneshot::Sender<Vec<OffsetAnswer>>),
    /// Install a new topic table: open owned partitions that are new, drop deleted ones.
    ApplyTable(Arc<TopicTable>, oneshot::Sender<()>),
    /// To the coordinator of a transactional id (or every shard, to list).
    Txn(
        crate::handlers::txn::TxnCall,
        oneshot::Sender<crate::handlers::txn::TxnAnswer>,
    ),
    /// Transaction markers for partitions this shard owns: a code per item,
    /// once the in-sync replicas have them.
    WriteMarkers(
        Vec<crate::handlers::txn::MarkerItem>,
        oneshot::Sender<Vec<KafkaCode>>,
    ),
    /// To the coordinator of a group (or every shard, for ListGroups).
    Group(
        crate::handlers::groups::GroupCall,
        oneshot::Sender<crate::handlers::groups::GroupAnswer>,
    ),
    /// To shard 0 only: the topic table's single writer.
    CreateTopics(Vec<CreateSpec>, bool, oneshot::Sender<Vec<CreateOutcome>>),
    /// To shard 0 only.
    DeleteTopics(Vec<DeleteSpec>, oneshot::Sender<Vec<DeleteOutcome>>),
    /// To shard 0 only: topic overrides and dynamic broker configs; `true`:
    /// validate only.
    AlterConfigs(
        Vec<ConfigAlteration>,
        bool,
        oneshot::Sender<Vec<AdminOutcome>>,
    ),
    /// To shard 0 only; `true`: validate only.
    CreatePartitions(
        Vec<PartitionGrowth>,
        bool,
        oneshot::Sender<Vec<AdminOutcome>>,
    ),
    /// The shard's counters, partitions and groups (a `/metrics` scrape).
    Metrics(oneshot::Sender<crate::metrics::ShardSnapshot>),
    /// Bytes on disk of every partition the shard owns (DescribeLogDirs).
    LogSizes(oneshot::Sender<Vec<(TopicPartition, u64)>>),
}
