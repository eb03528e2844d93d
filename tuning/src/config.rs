//! Broker and topic configuration.
//!
//! # Broker configuration file
//!
//! The broker reads a TOML file whose keys are Kafka's `server.properties`
//! names. All of these spellings mean the same thing:
//!
//! ```toml
//! log.segment.bytes = 1073741824        # dotted bare key (TOML nests it)
//! "log.segment.bytes" = 1073741824      # quoted key
//!
//! [log]
//! segment.bytes = 1073741824            # inside a table
//! ```
//!
//! (Giving the same key twice in different spellings is an error.) Values
//! may be TOML integers, strings or booleans; a string is accepted where a
//! number or boolean is expected if it parses (`"1073741824"`, `"true"`).
//! Lists (`log.dirs`) may be a TOML array or a comma-separated string.
//! Unknown keys are rejected. Every problem in a file is reported at once
//! ([`ConfigError::Invalid`]).
//!
//! Any key can also be set from the environment as `STROM_` followed by the
//! key upper-cased with dots turned into underscores: `STROM_LOG_DIRS`,
//! `STROM_LOG_SEGMENT_BYTES`, `STROM_STROM_SMP` (keys that already start with
//! `strom.` may drop the doubled prefix: `STROM_SMP`,
//! `STROM_FETCH_MAX_WAIT_MS_CAP`). Environment values are strings and are
//! parsed like strings in the file. Environment variables starting with
//! `STROM_` that name no key are ignored (other tools may use the prefix).
//! See [`BrokerConfig::apply_env`].
//!
//! ## Supported broker keys
//!
//! | Key | Type | Default | Accepted values | Meaning |
//! |-----|------|---------|-----------------|---------|
//! | `log.dirs` (alias `log.dir`) | list of paths | `./strom-data` | non-empty list of non-empty paths | Directories holding the log data. Only the first is used for now. If both keys are given, `log.dirs` wins (as in Kafka). |
//! | `listeners` | `PLAINTEXT://host:port[,CONTROLLER://host:port]` | `PLAINTEXT://127.0.0.1:9092` | exactly one `PLAINTEXT` listener and at most one `CONTROLLER` listener; host an IP address, `localhost`, or empty (= `0.0.0.0`); port 0..=65535 (0 = any free port). The `PLAINTEXT://` prefix may be omitted. | Addresses the broker listens on: Kafka clients and other brokers on `PLAINTEXT` (the `--listen` flag sets it), the controller quorum on `CONTROLLER` (needed with `controller.quorum.voters`). |
//! | `advertised.listeners` | `PLAINTEXT://host:port` | same as `listeners` | one `PLAINTEXT` listener (a `CONTROLLER` entry is accepted and ignored); host a name or IP address, not empty or `0.0.0.0`; port 1..=65535 | Address given to clients and other brokers in Metadata responses. |
//! | `controller.quorum.voters` | list of `id@host:port` | empty | 1..=9 voters, distinct ids; host an IP address or name | The controller quorum (KRaft's key). Empty: a single node, a quorum of itself. Otherwise this node's `node.id` must be one of the voters and its `CONTROLLER` listener port must be its entry's port: every node is broker and controller. |
//! | `controller.listener.names` | string | `CONTROLLER` | `CONTROLLER` | Name of the controller listener in `listeners`. |
//! | `process.roles` | list | `broker,controller` | `broker,controller` | Kafka's key; every Strom node is both (broker-only nodes are not supported yet). |
//! | `controller.quorum.election.timeout.ms` | integer, ms | `1000` | 200..=60000 | How long a voter waits without hearing from the active controller before it calls an election (raft, ticks of 100 ms). |
//! | `broker.heartbeat.interval.ms` | integer, ms | `500` | 50..=60000 | How often a broker heartbeats the active controller. Kafka's default is 2000; Strom's is lower so a dead broker is noticed sooner. |
//! | `broker.session.timeout.ms` | integer, ms | `3000` | 100..=600000 | A broker whose last heartbeat is older is fenced: it leaves every ISR and the partitions it led get new leaders. Kafka's default is 9000. |
//! | `offsets.topic.replication.factor` | integer | `3` | 1..=32767 | Replicas of each `__consumer_offsets` partition, capped at the number of live brokers when the topic is created. |
//! | `replica.lag.time.max.ms` | integer, ms | `30000` | 1..=9223372036854775807 | A follower that has not caught up with the leader's log end for this long leaves the ISR. |
//! | `replica.fetch.max.bytes` | integer, bytes | `1048576` | 1..=2147483647 | Bytes a follower asks for per partition in one fetch (a larger first batch still comes whole). |
//! | `replica.fetch.response.max.bytes` | integer, bytes | `10485760` | 1..=2147483647 | Bytes a follower asks for per fetch. |
//! | `replica.fetch.wait.max.ms` | integer, ms | `500` | 0..=2147483647 | How long a follower's fetch waits at the leader for new records. |
//! | `replica.fetch.backoff.ms` | integer, ms | `1000` | 0..=2147483647 | Pause of a follower after a failed fetch before it retries. |
//! | `unclean.leader.election.enable` | boolean | `false` | `true` / `false` | Default of the topic key: elect a replica outside the ISR when no ISR member is alive (availability over durability: acknowledged records can be lost). |
//! | `auto.leader.rebalance.enable` | boolean | `true` | `true` / `false` | Move leadership back to each partition's preferred replica (the first) when it is in sync, every `leader.imbalance.check.interval.seconds`. |
//! | `leader.imbalance.check.interval.seconds` | integer, s | `300` | 1..=2147483647 | How often preferred leaders are restored. |
//! | `controlled.shutdown.enable` | boolean | `true` | `true` / `false` | On SIGTERM/SIGINT a broker first asks the controller to move its leaderships away, then stops. |
//! | `strom.controlled.shutdown.timeout.ms` | integer, ms | `30000` | 0..=2147483647 | Longest a controlled shutdown waits for the controller before the broker stops anyway (it stops sooner when no controller answered for `broker.session.timeout.ms`). |
//! | `node.id` (alias `broker.id`) | integer | `1` | 0..=2147483647 | This broker's id. If both keys are given they must agree. |
//! | `strom.smp` | integer | every usable core | 1..=4096 | Number of shards (one thread pinned per core). The `--smp` flag sets this key. |
//! | `num.partitions` | integer | `1` | 1..=10000 | Partitions of an automatically created topic, and of CreateTopics requests that leave the count to the broker. |
//! | `default.replication.factor` | integer | `1` | 1..=32767 | Replication factor of topics created without one (auto-created topics, CreateTopics with -1). |
//! | `auto.create.topics.enable` | boolean | `true` | `true` / `false` | Create a topic on Metadata/Produce for a topic that does not exist. |
//! | `log.segment.bytes` | integer, bytes | `1073741824` (1 GiB) | 14..=2147483647 | Size at which a log segment is closed and a new one started. |
//! | `log.roll.ms` | integer, ms | `604800000` (7 days) | 1..=9223372036854775807 | Age after which a segment is rolled even if not full. |
//! | `log.roll.hours` | integer, hours | `168` | 1..=2147483647 | Same as `log.roll.ms` in hours; `log.roll.ms` wins if both are given. |
//! | `log.index.interval.bytes` | integer, bytes | `4096` | 0..=2147483647 | Log bytes between two entries of the offset index. |
//! | `message.max.bytes` | integer, bytes | `1048588` | 0..=2147483647 | Largest record batch the broker accepts (topic default for `max.message.bytes`). |
//! | `socket.request.max.bytes` | integer, bytes | `104857600` (100 MiB) | 1..=2147483647 | Largest request (size prefix) accepted on a connection. |
//! | `log.retention.ms` | integer, ms | `604800000` (168 h) | -1..=9223372036854775807; -1 = keep forever | How long log data is kept: a sealed segment whose newest record is older is deleted (checked every `log.retention.check.interval.ms`). |
//! | `log.retention.minutes` | integer, minutes | — | -1..=2147483647; negative = keep forever | As `log.retention.ms`; used only if that is not given. |
//! | `log.retention.hours` | integer, hours | `168` | -1..=2147483647; negative = keep forever | As `log.retention.ms`; used only if neither ms nor minutes is given. |
//! | `log.retention.bytes` | integer, bytes | `-1` | -1..=9223372036854775807; -1 = no size limit | Size per partition above which the oldest sealed segments are deleted. |
//! | `log.message.timestamp.type` | string | `CreateTime` | `CreateTime`, `LogAppendTime` | Whether record timestamps are the producer's or the broker's append time. |
//! | `strom.fetch.max.wait.ms.cap` | integer, ms | `30000` | 0..=2147483647 | Upper bound applied to a Fetch request's `max_wait_ms`. |
//! | `log.retention.check.interval.ms` | integer, ms | `300000` (5 min) | 1..=9223372036854775807 | How often each shard applies retention to its partitions. |
//! | `producer.id.expiration.ms` | integer, ms | `86400000` (1 day) | 1..=2147483647 | How long a partition keeps an idempotent producer's sequences after its last batch; expired producers are forgotten at the next retention check. |
//! | `strom.write.caching.default` | boolean | `false` | `true` / `false` | Default of the topic key `write.caching`. `false`: a record is acknowledged to acks=all producers, and shown to consumers, only after it is synced to disk (`fdatasync`, group commit per shard). `true`: acknowledged and shown once in the page cache (Kafka's default), synced per `flush.messages` / `flush.ms`. |
//! | `log.flush.interval.messages` | integer | `9223372036854775807` | 1..=9223372036854775807 | Default of `flush.messages`: sync a partition once this many records are unsynced (matters with write caching). |
//! | `log.flush.interval.ms` | integer, ms | `9223372036854775807` | 0..=9223372036854775807 | Default of `flush.ms`: sync a partition's unsynced records at least this often (matters with write caching). |
//! | `log.flush.offset.checkpoint.interval.ms` | integer, ms | `60000` | 1..=2147483647 | How often changed partition checkpoints (recovery point, log start offset, high watermark) are written. |
//! | `offsets.topic.num.partitions` | integer | `50` | 1..=10000 | Partitions of the internal `__consumer_offsets` topic (created on first use; fixed afterwards). A group is coordinated by the shard owning partition `abs(javaHash(group)) % N`. |
//! | `group.initial.rebalance.delay.ms` | integer, ms | `3000` | 0..=2147483647 | How long the first rebalance of an empty group waits for more members to join. |
//! | `group.min.session.timeout.ms` | integer, ms | `6000` | 1..=2147483647 | Smallest session timeout a member may ask for (INVALID_SESSION_TIMEOUT below). |
//! | `group.max.session.timeout.ms` | integer, ms | `1800000` | 1..=2147483647 | Largest session timeout a member may ask for. |
//! | `offsets.retention.minutes` | integer, minutes | `10080` (7 days) | 1..=2147483647 | Committed offsets of a group that has been empty this long are deleted. |
//! | `offsets.retention.check.interval.ms` | integer, ms | `600000` | 1..=9223372036854775807 | How often expired offsets are looked for. |
//! | `transaction.state.log.num.partitions` | integer | `50` | 1..=10000 | Partitions of the internal `__transaction_state` topic (created on first use; fixed afterwards). A `transactional.id` is coordinated by the shard owning partition `abs(javaHash(id)) % N`. |
//! | `transaction.max.timeout.ms` | integer, ms | `900000` (15 min) | 1..=2147483647 | Largest `transaction.timeout.ms` a producer may ask for (INVALID_TRANSACTION_TIMEOUT above it). |
//! | `transaction.abort.timed.out.transaction.cleanup.interval.ms` | integer, ms | `10000` | 1..=2147483647 | How often the coordinator looks for transactions open longer than their timeout, and aborts them. |
//! | `transactional.id.expiration.ms` | integer, ms | `604800000` (7 days) | 1..=2147483647 | How long a coordinator keeps an idle `transactional.id` (no transaction open) before forgetting it. |
//! | `admin.listeners` | `http://host:port` | the Kafka listener's host, port 9644 (0 if the Kafka port is 0) | host an IP address, `localhost` or empty; the `http://` prefix may be omitted | Address of the admin HTTP API (`/metrics`, `/v1/health`, `/v1/ready`, `/v1/status`); the `--admin-listen` flag sets this key. |
//! | `strom.log.level` | string | `info` | tracing filter directives, e.g. `info,strom_engine::group=debug` | Log level, per module if wanted. The `STROM_LOG` environment variable wins when set. |
//! | `strom.log.format` | string | `text` | `text`, `json` | Log line format (the `--log-format` flag sets this key). |
//! | `log.cleanup.policy` | list | `delete` | `delete`, `compact`, `compact,delete` | Default `cleanup.policy` of topics. |
//! | `min.insync.replicas` | integer | `1` | 1..=2147483647 | Default `min.insync.replicas` of topics: acks=all produce is refused (NOT_ENOUGH_REPLICAS) while fewer replicas are in sync. |
//! | `compression.type` | string | `producer` | `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd` | Default `compression.type` of topics. |
//! | `strom.log.dir.min.free.bytes` | integer, bytes | `1073741824` (1 GiB) | 0..=9223372036854775807 | Produce requests get KAFKA_STORAGE_ERROR while the data directory's file system has less free space than this; they succeed again by themselves once space is freed. |
//!
//! # Topic configuration
//!
//! [`TopicConfig`] holds a topic's settings: broker defaults
//! ([`TopicConfig::defaults_from`]) overridden by the `configs` of a
//! CreateTopics request ([`TopicConfig::apply`]). Its keys are Kafka's
//! topic-level names:
//!
//! | Key | Type | Default (broker key) | Accepted values |
//! |-----|------|----------------------|-----------------|
//! | `segment.bytes` | integer, bytes | `log.segment.bytes` | 14..=2147483647 |
//! | `segment.ms` | integer, ms | `log.roll.ms` | 1..=9223372036854775807 |
//! | `max.message.bytes` | integer, bytes | `message.max.bytes` | 0..=2147483647 |
//! | `retention.ms` | integer, ms | `log.retention.ms` | -1..=9223372036854775807 |
//! | `retention.bytes` | integer, bytes | `log.retention.bytes` | -1..=9223372036854775807 |
//! | `cleanup.policy` | list | `delete` | `delete`, `compact`, `compact,delete` |
//! | `message.timestamp.type` | string | `log.message.timestamp.type` | `CreateTime`, `LogAppendTime` |
//! | `index.interval.bytes` | integer, bytes | `log.index.interval.bytes` | 0..=2147483647 |
//! | `write.caching` | boolean | `strom.write.caching.default` | `true` / `false` (Redpanda's key) |
//! | `flush.messages` | integer | `log.flush.interval.messages` | 1..=9223372036854775807 |
//! | `flush.ms` | integer, ms | `log.flush.interval.ms` | 0..=9223372036854775807 |
//! | `min.insync.replicas` | integer | `min.insync.replicas` | 1..=2147483647 |
//! | `compression.type` | string | `compression.type` | `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd` |
//! | `unclean.leader.election.enable` | boolean | `unclean.leader.election.enable` | `true` / `false` |
//!
//! Other topic keys Kafka knows (`preallocate`, `segment.jitter.ms`, ...;
//! see [`TOPIC_EXTRA_KEYS`]) are validated and kept in
//! [`TopicConfig::extra`] without effect, so clients that send them work.
//! Any other key is rejected. What DescribeConfigs shows, and which broker
//! keys may change at run time, is in the `catalog` module.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::limits::PARTITIONS_PER_TOPIC_MAX;

const I32_MAX: i64 = i32::MAX as i64;
/// Default port of the admin HTTP API (Redpanda's).
pub const ADMIN_PORT_DEFAULT: u16 = 9644;
const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_MINUTE: i64 = 60_000;

/// Every broker key accepted in the configuration file, the environment or
/// [`BrokerConfig::apply_overrides`], aliases included.
pub const BROKER_KEYS: &[&str] = &[
    "log.dirs",
    "log.dir",
    "listeners",
    "advertised.listeners",
    "node.id",
    "broker.id",
    "strom.smp",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.index.interval.bytes",
    "message.max.bytes",
    "socket.request.max.bytes",
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.message.timestamp.type",
    "strom.fetch.max.wait.ms.cap",
    "log.retention.check.interval.ms",
    "producer.id.expiration.ms",
    "strom.write.caching.default",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "strom.log.dir.min.free.bytes",
    "offsets.topic.num.partitions",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "transaction.state.log.num.partitions",
    "transaction.max.timeout.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transactional.id.expiration.ms",
    "log.cleanup.policy",
    "min.insync.replicas",
    "compression.type",
    "admin.listeners",
    "strom.log.level",
    "strom.log.format",
    "controller.quorum.voters",
    "controller.listener.names",
    "process.roles",
    "controller.quorum.election.timeout.ms",
    "offsets.topic.replication.factor",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.backoff.ms",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "controlled.shutdown.enable",
    "strom.controlled.shutdown.timeout.ms",
];

/// The environment variable that sets a broker key: `STROM_` followed by the
/// key upper-cased with dots replaced by underscores (`log.dirs` →
/// `STROM_LOG_DIRS`).
pub fn env_var_name(key: &str) -> String {
    format!("STROM_{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// Which timestamp a record batch carries: the producer's (`CreateTime`) or
/// the broker's clock at append (`LogAppendTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Keep the timestamp set by the producer. Kafka's default.
    #[default]
    CreateTime,
    /// Overwrite the batch's max timestamp with the broker's time at append.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name for the value: `CreateTime` or `LogAppendTime`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimestampType {
    type Err = String;

    /// Parse Kafka's spelling exactly (`CreateTime`, `LogAppendTime`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            other => Err(format!(
                "expected one of 'CreateTime', 'LogAppendTime', got '{other}'"
            )),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML. `origin` is the file path, or `<string>`.
    #[error("{origin}: invalid TOML: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The values are wrong: one message per problem (unknown keys, wrong
    /// types, values out of range, keys given twice), each naming its key.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<String>),
}

fn list_problems(problems: &[String]) -> String {
    let mut out = format!(
        "invalid configuration ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(p);
    }
    out
}

/// Broker-wide settings. See the [module documentation](self) for the table
/// of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `log.dirs` (alias `log.dir`): directories holding log data; only the
    /// first is used for now. Default `["./strom-data"]`. Non-empty.
    pub log_dirs: Vec<PathBuf>,
    /// `listeners` (flag `--listen`): the address to listen on, written
    /// `PLAINTEXT://127.0.0.1:9092`. Default `127.0.0.1:9092`. One PLAINTEXT
    /// listener only; host must be an IP address, `localhost` or empty.
    pub listen: SocketAddr,
    /// Host part of `advertised.listeners`: the host clients are told to
    /// connect to. `None` = derived from `listen` (see [`Self::advertised`]).
    /// An IPv6 address is stored without brackets.
    pub advertised_host: Option<String>,
    /// Port part of `advertised.listeners`. `None` = the `listen` port.
    pub advertised_port: Option<u16>,
    /// `node.id` (alias `broker.id`): this broker's id. Default 1; range
    /// 0..=2147483647.
    pub node_id: i32,
    /// `strom.smp` (flag `--smp`): number of shards (threads, one per core).
    /// `None` (default) = every usable core. Range 1..=4096.
    pub smp: Option<usize>,
    /// `num.partitions`: partition count of topics created without one.
    /// Default 1; range 1..=[`PARTITIONS_PER_TOPIC_MAX`].
    pub num_partitions: i32,
    /// `default.replication.factor`: replication factor of new topics.
    /// Default 1; only 1 is accepted until replication exists.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`: create unknown topics on first use.
    /// Default `true`.
    pub auto_create_topics_enable: bool,
    /// `log.segment.bytes`: bytes at which a segment is rolled. Default
    /// 1073741824 (1 GiB); range 14..=2147483647 as in Kafka.
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (or `log.roll.hours` × 3600000; ms wins): age in
    /// milliseconds after which a segment is rolled. Default 604800000
    /// (7 days); at least 1.
    pub log_roll_ms: i64,
    /// `log.index.interval.bytes`: bytes of log between offset-index
    /// entries. Default 4096; range 0..=2147483647.
    pub log_index_interval_bytes: u32,
    /// `message.max.bytes`: largest record batch accepted, in bytes.
    /// Default 1048588 (Kafka's); range 0..=2147483647.
    pub message_max_bytes: u32,
    /// `socket.request.max.bytes`: largest request accepted, in bytes.
    /// Default 104857600 (100 MiB); range 1..=2147483647.
    pub socket_request_max_bytes: u32,
    /// `log.retention.ms` / `.minutes` / `.hours` (ms wins, then minutes,
    /// then hours): how long data is kept, in ms; -1 = forever. Default
    /// 604800000 (168 h).
    pub log_retention_ms: i64,
    /// `log.retention.bytes`: per-partition size limit in bytes; -1 = none.
    /// Default -1.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`: how often retention runs. Default
    /// 300000.
    pub log_retention_check_interval_ms: i64,
    /// `producer.id.expiration.ms`: idle time after which a partition
    /// forgets an idempotent producer. Default 86400000 (1 day).
    pub producer_id_expiration_ms: i64,
    /// `strom.write.caching.default`: default of the topic's
    /// `write.caching`. Default false (acks=all waits for the sync).
    pub write_caching_default: bool,
    /// `log.flush.interval.messages`: default `flush.messages`.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`: default `flush.ms`.
    pub log_flush_interval_ms: i64,
    /// `log.flush.offset.checkpoint.interval.ms`: how often changed
    /// checkpoints are written. Default 60000.
    pub log_flush_offset_checkpoint_interval_ms: i64,
    /// `strom.log.dir.min.free.bytes`: produce is refused below this much
    /// free space. Default 1 GiB.
    pub log_dir_min_free_bytes: u64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    /// Default 50.
    pub offsets_topic_num_partitions: i32,
    /// `group.initial.rebalance.delay.ms`: first-rebalance delay of an
    /// empty group. Default 3000.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`. Default 6000.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`. Default 1800000.
    pub group_max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`: offsets of groups empty this long are
    /// deleted. Default 10080 (7 days).
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`. Default 600000.
    pub offsets_retention_check_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of
    /// `__transaction_state`. Default 50.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.max.timeout.ms`. Default 900000.
    pub transaction_max_timeout_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    /// Default 10000.
    pub transaction_abort_interval_ms: i64,
    /// `transactional.id.expiration.ms`. Default 604800000.
    pub transactional_id_expiration_ms: i64,
    /// `strom.fetch.max.wait.ms.cap`: upper bound, in ms, on a Fetch
    /// request's `max_wait_ms`. Default 30000; range 0..=2147483647.
    pub fetch_max_wait_ms_cap: u32,
    /// `log.message.timestamp.type`: `CreateTime` (default) or
    /// `LogAppendTime`.
    pub log_message_timestamp_type: TimestampType,
    /// `log.cleanup.policy`: default `cleanup.policy` of topics (`delete`).
    pub log_cleanup_policy: String,
    /// `min.insync.replicas`: default of the topic key. Default 1.
    pub min_insync_replicas: i32,
    /// `compression.type`: default of the topic key (`producer`).
    pub compression_type: String,
    /// `admin.listeners` (flag `--admin-listen`): the admin HTTP API
    /// (`/metrics`, `/v1/...`). `None` = the Kafka listener's host, port
    /// 9644 (port 0 when the Kafka listener asks for port 0); see
    /// [`Self::admin_listen`].
    pub admin_listen: Option<SocketAddr>,
    /// `strom.log.level`: tracing filter directives, e.g.
    /// `info,strom_engine::group=debug` (levels per module). Default `info`.
    /// The `STROM_LOG` environment variable, when set, wins.
    pub log_level: String,
    /// `strom.log.format` (flag `--log-format`): `text` (default; colours
    /// on a terminal) or `json` (one object per line).
    pub log_format: LogFormat,
    /// The `CONTROLLER` listener of `listeners`: where the controller
    /// quorum's traffic arrives. `None`: no controller listener (a single
    /// node, whose quorum is itself).
    pub controller_listen: Option<SocketAddr>,
    /// `controller.quorum.voters`. Empty (default): a single node.
    pub quorum_voters: Vec<QuorumVoter>,
    /// `process.roles` as given (checked by [`Self::check_cluster`]).
    pub process_roles: Option<String>,
    /// `controller.quorum.election.timeout.ms`. Default 1000.
    pub controller_quorum_election_timeout_ms: u32,
    /// `broker.heartbeat.interval.ms`. Default 500.
    pub broker_heartbeat_interval_ms: u32,
    /// `broker.session.timeout.ms`. Default 3000.
    pub broker_session_timeout_ms: u32,
    /// `offsets.topic.replication.factor`. Default 3.
    pub offsets_topic_replication_factor: i16,
    /// `replica.lag.time.max.ms`. Default 30000.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes`. Default 1 MiB.
    pub replica_fetch_max_bytes: u32,
    /// `replica.fetch.response.max.bytes`. Default 10 MiB.
    pub replica_fetch_response_max_bytes: u32,
    /// `replica.fetch.wait.max.ms`. Default 500.
    pub replica_fetch_wait_max_ms: u32,
    /// `replica.fetch.backoff.ms`. Default 1000.
    pub replica_fetch_backoff_ms: u32,
    /// `unclean.leader.election.enable`: default of the topic key. Default false.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`. Default true.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`. Default 300.
    pub leader_imbalance_check_interval_seconds: u32,
    /// `controlled.shutdown.enable`. Default true.
    pub controlled_shutdown_enable: bool,
    /// `strom.controlled.shutdown.timeout.ms`. Default 30000.
    pub controlled_shutdown_timeout_ms: u32,
    /// Keys given explicitly (file, environment, overrides), for
    /// DescribeConfigs' STATIC_BROKER_CONFIG source.
    pub explicit: BTreeSet<String>,
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for QuorumVoter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.id, self.host, self.port)
        }
    }
}

/// Most voters in `controller.quorum.voters`.
pub const QUORUM_VOTERS_MAX: usize = 9;

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            log_dirs: vec![PathBuf::from("./strom-data")],
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9092),
            advertised_host: None,
            advertised_port: None,
            node_id: 1,
            smp: None,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            log_segment_bytes: 1_073_741_824,
            log_roll_ms: 168 * MS_PER_HOUR,
            log_index_interval_bytes: 4096,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            log_retention_ms: 168 * MS_PER_HOUR,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            producer_id_expiration_ms: 86_400_000,
            write_caching_default: false,
            log_flush_interval_messages: i64::MAX,
            log_flush_interval_ms: i64::MAX,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            log_dir_min_free_bytes: 1 << 30,
            offsets_topic_num_partitions: 50,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            transaction_state_log_num_partitions: 50,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_interval_ms: 10_000,
            transactional_id_expiration_ms: 604_800_000,
            fetch_max_wait_ms_cap: 30_000,
            log_message_timestamp_type: TimestampType::CreateTime,
            log_cleanup_policy: "delete".to_string(),
            min_insync_replicas: 1,
            compression_type: "producer".to_string(),
            admin_listen: None,
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
            controller_listen: None,
            quorum_voters: Vec::new(),
            process_roles: None,
            controller_quorum_election_timeout_ms: 1000,
            broker_heartbeat_interval_ms: 500,
            broker_session_timeout_ms: 3000,
            offsets_topic_replication_factor: 3,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1 << 20,
            replica_fetch_response_max_bytes: 10 << 20,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 1000,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            controlled_shutdown_enable: true,
            controlled_shutdown_timeout_ms: 30_000,
            explicit: BTreeSet::new(),
        }
    }
}

impl BrokerConfig {
    /// Parse a TOML configuration (defaults for keys not given). Reports
    /// every problem at once in [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str) -> Result<BrokerConfig, ConfigError> {
        Self::parse_toml(text, "<string>", "")
    }

    /// Read and parse a TOML configuration file. Errors name the path.
    pub fn from_file(path: &Path) -> Result<BrokerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let shown = path.display().to_string();
        let prefix = format!("{shown}: ");
        Self::parse_toml(&text, &shown, &prefix)
    }

    fn parse_toml(text: &str, origin: &str, prefix: &str) -> Result<BrokerConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut flat = Vec::new();
        flatten("", &table, &mut flat);
        let mut problems = Vec::new();
        let mut items = Vec::new();
        for (key, raw) in flat {
            match known_key(&key) {
                Some(k) => items.push(Item {
                    key: k,
                    label: k.to_string(),
                    raw,
                }),
                None => problems.push(format!("unknown key '{key}'")),
            }
        }
        match BrokerConfig::default().with_layer(items) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(mut more) => problems.append(&mut more),
        }
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|p| format!("{prefix}{p}"))
                .collect(),
        ))
    }

    /// Apply `STROM_*` environment overrides on top of this configuration.
    ///
    /// A variable named [`env_var_name`]`(key)` sets `key`; keys starting
    /// with `strom.` may also drop the doubled prefix (`STROM_SMP` for
    /// `strom.smp`). Values are parsed like TOML strings (lists
    /// comma-separated). Variables starting with `STROM_` that name no key
    /// are ignored. Precedence rules (e.g. `log.retention.ms` over
    /// `log.retention.hours`) apply among the variables; any value set here
    /// replaces the current one. On error nothing is changed and every
    /// problem is reported.
    ///
    /// Pass `std::env::vars()` in production; tests inject their own pairs.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut items = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("STROM_") {
                continue;
            }
            let key = BROKER_KEYS.iter().copied().find(|k| {
                env_var_name(k) == name
                    || k.strip_prefix("strom.")
                        .is_some_and(|rest| env_var_name(rest) == name)
            });
            if let Some(key) = key {
                items.push(Item {
                    key,
                    label: format!("{name} ({key})"),
                    raw: Raw::Str(value),
                });
            }
        }
        *self = self.with_layer(items).map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Set keys from `(key, value)` string pairs, e.g. command-line flags
    /// (`--listen 0.0.0.0:9092` → `("listeners", "0.0.0.0:9092")`,
    /// `--smp 4` → `("strom.smp", "4")`). Same rules as [`Self::apply_env`]
    /// except that unknown keys are errors.
    pub fn apply_overrides(
        &mut self,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut items = Vec::new();
        for (key, value) in pairs {
            match known_key(&key) {
                Some(k) => items.push(Item {
                    key: k,
                    label: k.to_string(),
                    raw: Raw::Str(value),
                }),
                None => problems.push(format!("unknown key '{key}'")),
            }
        }
        match self.with_layer(items) {
            Ok(next) if problems.is_empty() => {
                *self = next;
                Ok(())
            }
            Ok(_) => Err(ConfigError::Invalid(problems)),
            Err(mut more) => {
                problems.append(&mut more);
                Err(ConfigError::Invalid(problems))
            }
        }
    }

    /// The current value of a broker key as Kafka would show it
    /// (DescribeConfigs), or `None` for a key that is not set and has no
    /// default (`strom.smp` without a value, `log.retention.minutes`).
    pub fn value_of(&self, key: &str) -> Option<String> {
        let text = |v: &dyn fmt::Display| Some(v.to_string());
        match key {
            "log.dirs" | "log.dir" => Some(
                self.log_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "listeners" => Some(match self.controller_listen {
                Some(controller) => {
                    format!("PLAINTEXT://{},CONTROLLER://{controller}", self.listen)
                }
                None => format!("PLAINTEXT://{}", self.listen),
            }),
            "controller.quorum.voters" => Some(
                self.quorum_voters
                    .iter()
                    .map(QuorumVoter::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            "controller.listener.names" => Some(CONTROLLER_LISTENER.to_string()),
            "process.roles" => Some(
                self.process_roles
                    .clone()
                    .unwrap_or_else(|| "broker,controller".to_string()),
            ),
            "controller.quorum.election.timeout.ms" => {
                text(&self.controller_quorum_election_timeout_ms)
            }
            "broker.heartbeat.interval.ms" => text(&self.broker_heartbeat_interval_ms),
            "broker.session.timeout.ms" => text(&self.broker_session_timeout_ms),
            "offsets.topic.replication.factor" => text(&self.offsets_topic_replication_factor),
            "replica.lag.time.max.ms" => text(&self.replica_lag_time_max_ms),
            "replica.fetch.max.bytes" => text(&self.replica_fetch_max_bytes),
            "replica.fetch.response.max.bytes" => text(&self.replica_fetch_response_max_bytes),
            "replica.fetch.wait.max.ms" => text(&self.replica_fetch_wait_max_ms),
            "replica.fetch.backoff.ms" => text(&self.replica_fetch_backoff_ms),
            "unclean.leader.election.enable" => text(&self.unclean_leader_election_enable),
            "auto.leader.rebalance.enable" => text(&self.auto_leader_rebalance_enable),
            "leader.imbalance.check.interval.seconds" => {
                text(&self.leader_imbalance_check_interval_seconds)
            }
            "controlled.shutdown.enable" => text(&self.controlled_shutdown_enable),
            "strom.controlled.shutdown.timeout.ms" => text(&self.controlled_shutdown_timeout_ms),
            "advertised.listeners" => {
                let (host, port) = self.advertised();
                if host.contains(':') {
                    Some(format!("PLAINTEXT://[{host}]:{port}"))
                } else {
                    Some(format!("PLAINTEXT://{host}:{port}"))
                }
            }
            "node.id" | "broker.id" => text(&self.node_id),
            "strom.smp" => self.smp.map(|n| n.to_string()),
            "num.partitions" => text(&self.num_partitions),
            "default.replication.factor" => text(&self.default_replication_factor),
            "auto.create.topics.enable" => text(&self.auto_create_topics_enable),
            "log.segment.bytes" => text(&self.log_segment_bytes),
            "log.roll.ms" => text(&self.log_roll_ms),
            "log.roll.hours" => text(&(self.log_roll_ms / MS_PER_HOUR)),
            "log.index.interval.bytes" => text(&self.log_index_interval_bytes),
            "message.max.bytes" => text(&self.message_max_bytes),
            "socket.request.max.bytes" => text(&self.socket_request_max_bytes),
            "log.retention.ms" => text(&self.log_retention_ms),
            "log.retention.minutes" => None,
            "log.retention.hours" => {
                if self.log_retention_ms < 0 {
                    text(&-1)
                } else {
                    text(&(self.log_retention_ms / MS_PER_HOUR))
                }
            }
            "log.retention.bytes" => text(&self.log_retention_bytes),
            "log.message.timestamp.type" => text(&self.log_message_timestamp_type),
            "strom.fetch.max.wait.ms.cap" => text(&self.fetch_max_wait_ms_cap),
            "log.retention.check.interval.ms" => text(&self.log_retention_check_interval_ms),
            "producer.id.expiration.ms" => text(&self.producer_id_expiration_ms),
            "strom.write.caching.default" => text(&self.write_caching_default),
            "log.flush.interval.messages" => text(&self.log_flush_interval_messages),
            "log.flush.interval.ms" => text(&self.log_flush_interval_ms),
            "log.flush.offset.checkpoint.interval.ms" => {
                text(&self.log_flush_offset_checkpoint_interval_ms)
            }
            "strom.log.dir.min.free.bytes" => text(&self.log_dir_min_free_bytes),
            "offsets.topic.num.partitions" => text(&self.offsets_topic_num_partitions),
            "group.initial.rebalance.delay.ms" => text(&self.group_initial_rebalance_delay_ms),
            "group.min.session.timeout.ms" => text(&self.group_min_session_timeout_ms),
            "group.max.session.timeout.ms" => text(&self.group_max_session_timeout_ms),
            "offsets.retention.minutes" => text(&self.offsets_retention_minutes),
            "transaction.state.log.num.partitions" => {
                text(&self.transaction_state_log_num_partitions)
            }
            "transaction.max.timeout.ms" => text(&self.transaction_max_timeout_ms),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                text(&self.transaction_abort_interval_ms)
            }
            "transactional.id.expiration.ms" => text(&self.transactional_id_expiration_ms),
            "offsets.retention.check.interval.ms" => {
                text(&self.offsets_retention_check_interval_ms)
            }
            "log.cleanup.policy" => text(&self.log_cleanup_policy),
            "min.insync.replicas" => text(&self.min_insync_replicas),
            "compression.type" => text(&self.compression_type),
            "admin.listeners" => Some(format!("http://{}", self.admin_listen())),
            "strom.log.level" => text(&self.log_level),
            "strom.log.format" => text(&self.log_format.as_str()),
            _ => None,
        }
    }

    /// Where the admin HTTP API listens: `admin.listeners`, or the Kafka
    /// listener's host with port 9644 (0 when the Kafka port is 0, so
    /// brokers started on free ports do not collide on 9644).
    pub fn admin_listen(&self) -> SocketAddr {
        self.admin_listen.unwrap_or_else(|| {
            let port = if self.listen.port() == 0 {
                0
            } else {
                ADMIN_PORT_DEFAULT
            };
            SocketAddr::new(self.listen.ip(), port)
        })
    }

    /// The data directory: the first of `log.dirs`.
    pub fn data_dir(&self) -> &Path {
        self.log_dirs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("./strom-data"))
    }

    /// Host and port to give clients: `advertised.listeners` if set, else the
    /// listen address. If listening on every interface (`0.0.0.0` / `::`)
    /// with no advertised host, `127.0.0.1` is advertised (only local clients
    /// can follow it; set `advertised.listeners` for remote ones).
    pub fn advertised(&self) -> (String, u16) {
        let host = match &self.advertised_host {
            Some(h) => h.clone(),
            None if self.listen.ip().is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            None => self.listen.ip().to_string(),
        };
        (host, self.advertised_port.unwrap_or(self.listen.port()))
    }

    /// Checks that the cluster keys agree with each other, once every layer
    /// (file, environment, flags) is applied: with `controller.quorum.voters`
    /// this node must be a voter and have a `CONTROLLER` listener on its
    /// voter port; without voters there must be no `CONTROLLER` listener.
    pub fn check_cluster(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.quorum_voters.is_empty() {
            if self.controller_listen.is_some() {
                problems.push(
                    "listeners has a CONTROLLER listener but controller.quorum.voters is empty; \
                     give the voters (e.g. '1@127.0.0.1:9093') or drop the CONTROLLER listener"
                        .to_string(),
                );
            }
        } else {
            match self.quorum_voters.iter().find(|v| v.id == self.node_id) {
                None => problems.push(format!(
                    "node.id {} is not one of controller.quorum.voters ({}); every node must be \
                     a voter (broker-only nodes are not supported yet)",
                    self.node_id,
                    self.value_of("controller.quorum.voters")
                        .unwrap_or_default()
                )),
                Some(me) => match self.controller_listen {
                    None => problems.push(format!(
                        "controller.quorum.voters is set but listeners has no CONTROLLER \
                         listener; add one, e.g. 'PLAINTEXT://{},CONTROLLER://{}:{}'",
                        self.listen, me.host, me.port
                    )),
                    Some(addr) if addr.port() != me.port => problems.push(format!(
                        "the CONTROLLER listener {addr} does not use this node's voter port \
                         {} ({me})",
                        me.port
                    )),
                    Some(_) => {}
                },
            }
        }
        if self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms {
            problems.push(format!(
                "broker.session.timeout.ms ({}) must be larger than broker.heartbeat.interval.ms ({})",
                self.broker_session_timeout_ms, self.broker_heartbeat_interval_ms
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// A copy of `self` with one layer of settings applied, or every problem.
    fn with_layer(&self, items: Vec<Item>) -> Result<BrokerConfig, Vec<String>> {
        let mut c = self.clone();
        c.explicit
            .extend(items.iter().map(|item| item.key.to_string()));
        let mut layer = Layer::new(items);

        let dirs = layer.get("log.dirs", parse_dirs);
        let dir = layer.get("log.dir", parse_dirs);
        if let Some(d) = dirs.or(dir) {
            c.log_dirs = d;
        }

        if let Some((kafka, controller)) = layer.get("listeners", |r| {
            parse_str(r).and_then(|s| parse_listeners(&s))
        }) {
            c.listen = kafka;
            c.controller_listen = controller;
        }
        if let Some(voters) = layer.get("controller.quorum.voters", parse_voters) {
            c.quorum_voters = voters;
        }
        // Only checked: the name is fixed.
        layer.get("controller.listener.names", |r| {
            let name = parse_str(r)?;
            if name.trim().eq_ignore_ascii_case(CONTROLLER_LISTENER) {
                Ok(())
            } else {
                Err(format!(
                    "only the listener name CONTROLLER is supported, got '{name}'"
                ))
            }
        });
        if let Some(roles) = layer.get("process.roles", parse_roles) {
            c.process_roles = Some(roles);
        }
        if let Some(ms) = layer.int("controller.quorum.election.timeout.ms", 200, 60_000) {
            c.controller_quorum_election_timeout_ms = ms as u32;
        }
        if let Some(ms) = layer.int("broker.heartbeat.interval.ms", 50, 60_000) {
            c.broker_heartbeat_interval_ms = ms as u32;
        }
        if let Some(ms) = layer.int("broker.session.timeout.ms", 100, 600_000) {
            c.broker_session_timeout_ms = ms as u32;
        }
        if let Some(n) = layer.int("offsets.topic.replication.factor", 1, i64::from(i16::MAX)) {
            c.offsets_topic_replication_factor = n as i16;
        }
        if let Some(ms) = layer.int("replica.lag.time.max.ms", 1, i64::MAX) {
            c.replica_lag_time_max_ms = ms;
        }
        if let Some(n) = layer.int("replica.fetch.max.bytes", 1, I32_MAX) {
            c.replica_fetch_max_bytes = n as u32;
        }
        if let Some(n) = layer.int("replica.fetch.response.max.bytes", 1, I32_MAX) {
            c.replica_fetch_response_max_bytes = n as u32;
        }
        if let Some(ms) = layer.int("replica.fetch.wait.max.ms", 0, I32_MAX) {
            c.replica_fetch_wait_max_ms = ms as u32;
        }
        if let Some(ms) = layer.int("replica.fetch.backoff.ms", 0, I32_MAX) {
            c.replica_fetch_backoff_ms = ms as u32;
        }
        if let Some(b) = layer.get("unclean.leader.election.enable", parse_bool) {
            c.unclean_leader_election_enable = b;
        }
        if let Some(b) = layer.get("auto.leader.rebalance.enable", parse_bool) {
            c.auto_leader_rebalance_enable = b;
        }
        if let Some(s) = layer.int("leader.imbalance.check.interval.seconds", 1, I32_MAX) {
            c.leader_imbalance_check_interval_seconds = s as u32;
        }
        if let Some(b) = layer.get("controlled.shutdown.enable", parse_bool) {
            c.controlled_shutdown_enable = b;
        }
        if let Some(ms) = layer.int("strom.controlled.shutdown.timeout.ms", 0, I32_MAX) {
            c.controlled_shutdown_timeout_ms = ms as u32;
        }
        if let Some((host, port)) = layer.get("advertised.listeners", |r| {
            parse_str(r).and_then(|s| parse_advertised(&s))
        }) {
            c.advertised_host = Some(host);
            c.advertised_port = Some(port);
        }

        let node = layer.int("node.id", 0, I32_MAX);
        let broker = layer.int("broker.id", 0, I32_MAX);
        match (node, broker) {
            (Some(n), Some(b)) if n != b => layer.problems.push(format!(
                "node.id ({n}) and broker.id ({b}) disagree; give only one of them"
            )),
            _ => {
                if let Some(id) = node.or(broker) {
                    c.node_id = id as i32;
                }
            }
        }

        if let Some(n) = layer.int("strom.smp", 1, 4096) {
            c.smp = Some(n as usize);
        }
        if let Some(n) = layer.int("num.partitions", 1, PARTITIONS_PER_TOPIC_MAX as i64) {
            c.num_partitions = n as i32;
        }
        if let Some(rf) = layer.int("default.replication.factor", 1, i64::from(i16::MAX)) {
            c.default_replication_factor = rf as i16;
        }
        if let Some(b) = layer.get("auto.create.topics.enable", parse_bool) {
            c.auto_create_topics_enable = b;
        }
        if let Some(n) = layer.int("log.segment.bytes", 14, I32_MAX) {
            c.log_segment_bytes = n as u64;
        }

        let roll_ms = layer.int("log.roll.ms", 1, i64::MAX);
        let roll_hours = layer.int("log.roll.hours", 1, I32_MAX);
        if let Some(ms) = roll_ms.or(roll_hours.map(|h| h * MS_PER_HOUR)) {
            c.log_roll_ms = ms;
        }

        if let Some(n) = layer.int("log.index.interval.bytes", 0, I32_MAX) {
            c.log_index_interval_bytes = n as u32;
        }
        if let Some(n) = layer.int("message.max.bytes", 0, I32_MAX) {
            c.message_max_bytes = n as u32;
        }
        if let Some(n) = layer.int("socket.request.max.bytes", 1, I32_MAX) {
            c.socket_request_max_bytes = n as u32;
        }

        let ret_ms = layer.int("log.retention.ms", -1, i64::MAX);
        let ret_min = layer.int("log.retention.minutes", -1, I32_MAX);
        let ret_hours = layer.int("log.retention.hours", -1, I32_MAX);
        let scaled = |v: i64, unit: i64| if v < 0 { -1 } else { v * unit };
        if let Some(ms) = ret_ms
            .or(ret_min.map(|m| scaled(m, MS_PER_MINUTE)))
            .or(ret_hours.map(|h| scaled(h, MS_PER_HOUR)))
        {
            c.log_retention_ms = ms;
        }
        if let Some(n) = layer.int("log.retention.bytes", -1, i64::MAX) {
            c.log_retention_bytes = n;
        }
        if let Some(n) = layer.int("strom.fetch.max.wait.ms.cap", 0, I32_MAX) {
            c.fetch_max_wait_ms_cap = n as u32;
        }
        if let Some(n) = layer.int("log.retention.check.interval.ms", 1, i64::MAX) {
            c.log_retention_check_interval_ms = n;
        }
        if let Some(n) = layer.int("producer.id.expiration.ms", 1, I32_MAX) {
            c.producer_id_expiration_ms = n;
        }
        if let Some(b) = layer.get("strom.write.caching.default", parse_bool) {
            c.write_caching_default = b;
        }
        if let Some(n) = layer.int("log.flush.interval.messages", 1, i64::MAX) {
            c.log_flush_interval_messages = n;
        }
        if let Some(n) = layer.int("log.flush.interval.ms", 0, i64::MAX) {
            c.log_flush_interval_ms = n;
        }
        if let Some(n) = layer.int("log.flush.offset.checkpoint.interval.ms", 1, I32_MAX) {
            c.log_flush_offset_checkpoint_interval_ms = n;
        }
        if let Some(n) = layer.int("strom.log.dir.min.free.bytes", 0, i64::MAX) {
            c.log_dir_min_free_bytes = n as u64;
        }
        if let Some(n) = layer.int(
            "offsets.topic.num.partitions",
            1,
            PARTITIONS_PER_TOPIC_MAX as i64,
        ) {
            c.offsets_topic_num_partitions = n as i32;
        }
        if let Some(n) = layer.int("group.initial.rebalance.delay.ms", 0, I32_MAX) {
            c.group_initial_rebalance_delay_ms = n;
        }
        if let Some(n) = layer.int("group.min.session.timeout.ms", 1, I32_MAX) {
            c.group_min_session_timeout_ms = n as i32;
        }
        if let Some(n) = layer.int("group.max.session.timeout.ms", 1, I32_MAX) {
            c.group_max_session_timeout_ms = n as i32;
        }
        if let Some(n) = layer.int("offsets.retention.minutes", 1, I32_MAX) {
            c.offsets_retention_minutes = n;
        }
        if let Some(n) = layer.int("offsets.retention.check.interval.ms", 1, i64::MAX) {
            c.offsets_retention_check_interval_ms = n;
        }
        if let Some(n) = layer.int(
            "transaction.state.log.num.partitions",
            1,
            PARTITIONS_PER_TOPIC_MAX as i64,
        ) {
            c.transaction_state_log_num_partitions = n as i32;
        }
        if let Some(n) = layer.int("transaction.max.timeout.ms", 1, I32_MAX) {
            c.transaction_max_timeout_ms = n;
        }
        if let Some(n) = layer.int(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            1,
            I32_MAX,
        ) {
            c.transaction_abort_interval_ms = n;
        }
        if let Some(n) = layer.int("transactional.id.expiration.ms", 1, I32_MAX) {
            c.transactional_id_expiration_ms = n;
        }
        if c.group_min_session_timeout_ms > c.group_max_session_timeout_ms {
            layer.problems.push(format!(
                "group.min.session.timeout.ms ({}) is above group.max.session.timeout.ms ({})",
                c.group_min_session_timeout_ms, c.group_max_session_timeout_ms
            ));
        }
        if let Some(t) = layer.get("log.message.timestamp.type", |r| {
            parse_str(r).and_then(|s| s.parse::<TimestampType>())
        }) {
            c.log_message_timestamp_type = t;
        }
        if let Some(p) = layer.get("log.cleanup.policy", |r| {
            check_topic_value(Kind::CleanupPolicy, &parse_str(r)?)
        }) {
            c.log_cleanup_policy = p;
        }
        if let Some(addr) = layer.get("admin.listeners", |r| {
            let text = parse_str(r)?;
            let address = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("HTTP://"))
                .unwrap_or(&text);
            parse_listen(address).map_err(|e| e.replace("PLAINTEXT://", "http://"))
        }) {
            c.admin_listen = Some(addr);
        }
        if let Some(level) = layer.get("strom.log.level", |r| {
            let text = parse_str(r)?;
            if text.is_empty() {
                return Err("expected filter directives like 'info' or 'info,strom_engine::group=debug', got ''".into());
            }
            Ok(text)
        }) {
            c.log_level = level;
        }
        if let Some(format) = layer.get("strom.log.format", |r| {
            match parse_str(r)?.to_ascii_lowercase().as_str() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("expected 'text' or 'json', got {r}")),
            }
        }) {
            c.log_format = format;
        }
        if let Some(n) = layer.int("min.insync.replicas", 1, I32_MAX) {
            c.min_insync_replicas = n as i32;
        }
        if let Some(t) = layer.get("compression.type", |r| {
            check_topic_value(Kind::OneOf(COMPRESSION_TYPES), &parse_str(r)?)
        }) {
            c.compression_type = t;
        }

        if layer.problems.is_empty() {
            Ok(c)
        } else {
            Err(layer.problems)
        }
    }
}

fn known_key(key: &str) -> Option<&'static str> {
    BROKER_KEYS.iter().copied().find(|k| *k == key)
}

/// A value as written, before it is checked against its key's type.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Int(i64),
    Str(String),
    Bool(bool),
    List(Vec<Raw>),
    /// A TOML value of a type no key takes (float, date, table in an
    /// array); the string describes it for error messages.
    Other(String),
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Int(n) => write!(f, "{n}"),
            Raw::Str(s) => write!(f, "'{s}'"),
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Raw::Other(what) => f.write_str(what),
        }
    }
}

fn to_raw(value: &toml::Value) -> Raw {
    match value {
        toml::Value::Integer(n) => Raw::Int(*n),
        toml::Value::String(s) => Raw::Str(s.clone()),
        toml::Value::Boolean(b) => Raw::Bool(*b),
        toml::Value::Array(items) => Raw::List(items.iter().map(to_raw).collect()),
        toml::Value::Float(x) => Raw::Other(format!("the float {x}")),
        toml::Value::Datetime(d) => Raw::Other(format!("the date-time {d}")),
        toml::Value::Table(_) => Raw::Other("a table".to_string()),
    }
}

/// Turn nested tables into dotted keys: `log = { segment = { bytes = 1 } }`
/// and `"log.segment.bytes" = 1` both become `("log.segment.bytes", 1)`.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, Raw)>) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            other => out.push((full, to_raw(other))),
        }
    }
}

struct Item {
    key: &'static str,
    /// How to name the setting in errors: the key, or `VAR (key)`.
    label: String,
    raw: Raw,
}

/// The settings of one layer (file, environment, flags) by key, and the
/// problems found so far.
struct Layer {
    given: HashMap<&'static str, (String, Raw)>,
    problems: Vec<String>,
}

impl Layer {
    fn new(items: Vec<Item>) -> Layer {
        let mut given: HashMap<&'static str, (String, Raw)> = HashMap::new();
        let mut problems = Vec::new();
        for item in items {
            if let Some((first, _)) = given.get(item.key) {
                if *first == item.label {
                    problems.push(format!(
                        "{}: given more than once (the same key written in two spellings, \
                         e.g. dotted and quoted, or in a [table] too)",
                        item.label
                    ));
                } else {
                    problems.push(format!(
                        "{}: given more than once (also as {first})",
                        item.label
                    ));
                }
            } else {
                given.insert(item.key, (item.label, item.raw));
            }
        }
        Layer { given, problems }
    }

    /// The key's value checked by `parse`, or `None` if absent or invalid
    /// (the problem is recorded).
    fn get<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&Raw) -> Result<T, String>,
    ) -> Option<T> {
        let (label, raw) = self.given.get(key)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{label}: {e}"));
                None
            }
        }
    }

    fn int(&mut self, key: &'static str, lo: i64, hi: i64) -> Option<i64> {
        self.get(key, |r| parse_int(r, lo, hi))
    }
}

fn describe_range(lo: i64, hi: i64) -> String {
    if hi == i64::MAX {
        format!("an integer >= {lo}")
    } else {
        format!("an integer in {lo}..={hi}")
    }
}

/// An integer in `lo..=hi`, from a TOML integer or a string that parses.
fn parse_int(raw: &Raw, lo: i64, hi: i64) -> Result<i64, String> {
    let n = match raw {
        Raw::Int(n) => Some(*n),
        Raw::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("expected {}, got {raw}", describe_range(lo, hi))),
    }
}

/// A boolean, from a TOML boolean or `true`/`false` in any case.
fn parse_bool(raw: &Raw) -> Result<bool, String> {
    match raw {
        Raw::Bool(b) => Ok(*b),
        Raw::Str(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Raw::Str(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("expected true or false, got {raw}")),
    }
}

fn parse_str(raw: &Raw) -> Result<String, String> {
    match raw {
        Raw::Str(s) => Ok(s.trim().to_string()),
        _ => Err(format!("expected a string, got {raw}")),
    }
}

/// A non-empty list of non-empty strings: a TOML array of strings or a
/// comma-separated string.
fn parse_list(raw: &Raw) -> Result<Vec<String>, String> {
    let items: Vec<String> = match raw {
        Raw::Str(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        Raw::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Raw::Str(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                    _ => return Err(format!("expected a list of non-empty strings, got {raw}")),
                }
            }
            out
        }
        _ => {
            return Err(format!(
                "expected a list (array or comma-separated string), got {raw}"
            ))
        }
    };
    if items.is_empty() {
        return Err(format!("expected a non-empty list, got {raw}"));
    }
    Ok(items)
}

fn parse_dirs(raw: &Raw) -> Result<Vec<PathBuf>, String> {
    Ok(parse_list(raw)?.into_iter().map(PathBuf::from).collect())
}

/// Split `PLAINTEXT://host:port` (prefix optional; one listener only) into
/// host (brackets removed from IPv6) and port.
fn split_listener(text: &str) -> Result<(String, u16), String> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let one = match parts.as_slice() {
        [one] => *one,
        [] => return Err("expected a listener like 'PLAINTEXT://127.0.0.1:9092', got ''".into()),
        _ => {
            return Err(format!(
                "only one PLAINTEXT listener is supported for now, got {} in '{text}'",
                parts.len()
            ))
        }
    };
    let address = match one.split_once("://") {
        Some((proto, rest)) if proto.eq_ignore_ascii_case("PLAINTEXT") => rest,
        Some((proto, _)) => {
            return Err(format!(
                "listener '{one}': only PLAINTEXT is supported for now, got '{proto}'"
            ))
        }
        None => one,
    };
    let bad = || format!("expected a listener like 'PLAINTEXT://127.0.0.1:9092', got '{one}'");
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            // Unbracketed IPv6: ambiguous.
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = split_listener(text)?;
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| {
            format!(
                "host '{host}' must be an IP address, 'localhost' or empty (all interfaces); \
                 host names are not resolved"
            )
        })?
    };
    Ok(SocketAddr::new(ip, port))
}

/// The listener name of the controller quorum (`controller.listener.names`).
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// `listeners`: one `PLAINTEXT` listener (prefix optional) and at most one
/// `CONTROLLER` listener, comma-separated, in any order.
fn parse_listeners(text: &str) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let mut kafka = None;
    let mut controller = None;
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let is_controller = part
            .split_once("://")
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case(CONTROLLER_LISTENER));
        if is_controller {
            if controller.is_some() {
                return Err(format!("more than one CONTROLLER listener in '{text}'"));
            }
            let rest = &part[part.find("://").map_or(0, |i| i + 3)..];
            controller = Some(parse_listen(&format!("PLAINTEXT://{rest}"))?);
        } else {
            if kafka.is_some() {
                return Err(format!(
                    "only one PLAINTEXT listener (and one CONTROLLER listener) is supported, got '{text}'"
                ));
            }
            kafka = Some(parse_listen(part)?);
        }
    }
    match kafka {
        Some(kafka) => Ok((kafka, controller)),
        None => Err(format!(
            "expected a listener like 'PLAINTEXT://127.0.0.1:9092' in '{text}'"
        )),
    }
}

/// `controller.quorum.voters`: `id@host:port` entries, comma-separated.
fn parse_voters(raw: &Raw) -> Result<Vec<QuorumVoter>, String> {
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in parse_list(raw)? {
        let bad = || format!("expected voters like '1@127.0.0.1:9093', got '{entry}'");
        let (id, address) = entry.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        if id < 0 {
            return Err(bad());
        }
        let (host, port) = split_listener(address.trim()).map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(format!("voter id {id} appears twice"));
        }
        voters.push(QuorumVoter { id, host, port });
    }
    if voters.len() > QUORUM_VOTERS_MAX {
        return Err(format!(
            "at most {QUORUM_VOTERS_MAX} voters are supported, got {}",
            voters.len()
        ));
    }
    Ok(voters)
}

/// `process.roles`: only `broker,controller` (any order).
fn parse_roles(raw: &Raw) -> Result<String, String> {
    let roles: BTreeSet<String> = parse_list(raw)?
        .into_iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .collect();
    let both: BTreeSet<String> = ["broker".to_string(), "controller".to_string()].into();
    if roles == both {
        Ok("broker,controller".to_string())
    } else {
        Err(format!(
            "only 'broker,controller' is supported (every node is both), got {raw}"
        ))
    }
}

fn parse_advertised(text: &str) -> Result<(String, u16), String> {
    // A CONTROLLER entry (Kafka 4.0 lets controllers advertise one) is
    // accepted and ignored: voters are found through controller.quorum.voters.
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|part| {
            !part
                .split_once("://")
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case(CONTROLLER_LISTENER))
        })
        .collect();
    let text = &kept.join(",");
    let (host, port) = split_listener(text)?;
    if host.is_empty() {
        return Err(format!(
            "'{text}' has no host; clients need one to connect to"
        ));
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
        return Err(format!(
            "cannot advertise the unspecified address '{host}'; give a host clients can reach"
        ));
    }
    if host.parse::<IpAddr>().is_err()
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(format!("'{host}' is not a valid host name or IP address"));
    }
    if port == 0 {
        return Err(format!("'{text}': the advertised port cannot be 0"));
    }
    Ok((host, port))
}

/// Format of the broker's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// How a topic-level value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Integer in `lo..=hi`.
    Int(i64, i64),
    Bool,
    /// One of these strings, exactly.
    OneOf(&'static [&'static str]),
    /// A number in 0.0..=1.0.
    Ratio,
    /// Any string.
    Text,
    /// `delete`, `compact` or both, comma-separated.
    CleanupPolicy,
}

/// Values of `compression.type` (topic and broker).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Topic keys Strom implements, with their checks.
const TOPIC_KEYS: &[(&str, Kind)] = &[
    ("segment.bytes", Kind::Int(14, I32_MAX)),
    ("segment.ms", Kind::Int(1, i64::MAX)),
    ("max.message.bytes", Kind::Int(0, I32_MAX)),
    ("retention.ms", Kind::Int(-1, i64::MAX)),
    ("retention.bytes", Kind::Int(-1, i64::MAX)),
    ("cleanup.policy", Kind::CleanupPolicy),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("index.interval.bytes", Kind::Int(0, I32_MAX)),
    ("write.caching", Kind::Bool),
    ("flush.messages", Kind::Int(1, i64::MAX)),
    ("flush.ms", Kind::Int(0, i64::MAX)),
    ("min.insync.replicas", Kind::Int(1, I32_MAX)),
    ("compression.type", Kind::OneOf(COMPRESSION_TYPES)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Topic keys Kafka knows that Strom accepts (with the same basic checks as
/// Kafka) and stores in [`TopicConfig::extra`] without acting on them yet.
pub const TOPIC_EXTRA_KEYS: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
];

/// Whether `key` is a topic-level key Strom accepts.
pub fn is_known_topic_key(key: &str) -> bool {
    TOPIC_KEYS.iter().any(|(k, _)| *k == key) || extra_kind(key).is_some()
}

fn extra_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "compression.gzip.level" => Kind::Int(-1, 9),
        "compression.lz4.level" => Kind::Int(1, 17),
        "compression.zstd.level" => Kind::Int(-131_072, 22),
        "delete.retention.ms"
        | "file.delete.delay.ms"
        | "min.compaction.lag.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms"
        | "segment.jitter.ms" => Kind::Int(0, i64::MAX),
        "max.compaction.lag.ms" => Kind::Int(1, i64::MAX),
        "local.retention.bytes" | "local.retention.ms" => Kind::Int(-2, i64::MAX),
        "segment.index.bytes" => Kind::Int(4, I32_MAX),
        "message.downconversion.enable"
        | "preallocate"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "remote.storage.enable"
        | "unclean.leader.election.enable" => Kind::Bool,
        "min.cleanable.dirty.ratio" => Kind::Ratio,
        "follower.replication.throttled.replicas"
        | "leader.replication.throttled.replicas"
        | "message.format.version" => Kind::Text,
        _ => return None,
    })
}

/// Check `value` against `kind`; return it normalized (trimmed, numbers in
/// canonical form, booleans lower-case, cleanup policy ordered).
fn check_topic_value(kind: Kind, value: &str) -> Result<String, String> {
    let raw = Raw::Str(value.to_string());
    match kind {
        Kind::Int(lo, hi) => parse_int(&raw, lo, hi).map(|n| n.to_string()),
        Kind::Bool => parse_bool(&raw).map(|b| b.to_string()),
        Kind::OneOf(allowed) => {
            let v = value.trim();
            if allowed.contains(&v) {
                Ok(v.to_string())
            } else {
                let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
                Err(format!("expected one of {}, got {raw}", list.join(", ")))
            }
        }
        Kind::Ratio => match value.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(value.trim().to_string()),
            _ => Err(format!("expected a number in 0.0..=1.0, got {raw}")),
        },
        Kind::Text => Ok(value.trim().to_string()),
        Kind::CleanupPolicy => {
            let parts: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if parts.is_empty() || parts.iter().any(|p| *p != "compact" && *p != "delete") {
                return Err(format!(
                    "expected 'delete', 'compact' or both comma-separated, got {raw}"
                ));
            }
            // Kept in the order given (as Kafka stores it), repeats dropped,
            // so the value described is the value set.
            let mut list: Vec<&str> = Vec::with_capacity(2);
            for part in parts {
                if !list.contains(&part) {
                    list.push(part);
                }
            }
            Ok(list.join(","))
        }
    }
}

/// A topic's settings: broker defaults plus the topic's own overrides
/// (Kafka topic-level key names; see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `segment.bytes`: bytes at which a segment is rolled. Default
    /// `log.segment.bytes`; range 14..=2147483647.
    pub segment_bytes: u64,
    /// `segment.ms`: age in ms after which a segment is rolled. Default
    /// `log.roll.ms`; at least 1.
    pub segment_ms: i64,
    /// `max.message.bytes`: largest record batch accepted, in bytes.
    /// Default `message.max.bytes`; range 0..=2147483647.
    pub max_message_bytes: u32,
    /// `retention.ms`: how long data is kept, in ms; -1 = forever. Default
    /// `log.retention.ms`. Applies when `cleanup.policy` contains `delete`.
    pub retention_ms: i64,
    /// `retention.bytes`: per-partition size limit in bytes; -1 = none.
    /// Default `log.retention.bytes`. Applies when `cleanup.policy`
    /// contains `delete`.
    pub retention_bytes: i64,
    /// `cleanup.policy`: `delete` (default), `compact`, or both (kept in the
    /// order given). Compaction is not implemented yet; a
    /// `compact`-only topic keeps everything.
    pub cleanup_policy: String,
    /// `write.caching`: false = acknowledge acks=all and show records to
    /// consumers only once synced. Default `strom.write.caching.default`.
    pub write_caching: bool,
    /// `flush.messages`: sync once this many records are unsynced.
    pub flush_messages: i64,
    /// `flush.ms`: sync unsynced records at least this often.
    pub flush_ms: i64,
    /// `message.timestamp.type`: `CreateTime` or `LogAppendTime`. Default
    /// `log.message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `index.interval.bytes`: bytes of log between offset-index entries.
    /// Default `log.index.interval.bytes`; range 0..=2147483647.
    pub index_interval_bytes: u32,
    /// `min.insync.replicas`: acks=all produce is refused with
    /// NOT_ENOUGH_REPLICAS while fewer replicas are in sync (a single node
    /// has one). Default `min.insync.replicas` of the broker.
    pub min_insync_replicas: i32,
    /// `compression.type`: `producer` keeps batches as produced; a codec
    /// name (or `uncompressed`) makes the broker re-compress batches.
    pub compression_type: String,
    /// `unclean.leader.election.enable`: elect a replica outside the ISR when
    /// no ISR member is alive.
    pub unclean_leader_election_enable: bool,
    /// Accepted keys from [`TOPIC_EXTRA_KEYS`] that have no effect yet, with
    /// their normalized values.
    pub extra: BTreeMap<String, String>,
    overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// The settings of a topic with no overrides on this broker.
    pub fn defaults_from(broker: &BrokerConfig) -> TopicConfig {
        TopicConfig {
            segment_bytes: broker.log_segment_bytes,
            segment_ms: broker.log_roll_ms,
            max_message_bytes: broker.message_max_bytes,
            retention_ms: broker.log_retention_ms,
            retention_bytes: broker.log_retention_bytes,
            cleanup_policy: broker.log_cleanup_policy.clone(),
            min_insync_replicas: broker.min_insync_replicas,
            compression_type: broker.compression_type.clone(),
            message_timestamp_type: broker.log_message_timestamp_type,
            index_interval_bytes: broker.log_index_interval_bytes,
            write_caching: broker.write_caching_default,
            flush_messages: broker.log_flush_interval_messages,
            flush_ms: broker.log_flush_interval_ms,
            unclean_leader_election_enable: broker.unclean_leader_election_enable,
            extra: BTreeMap::new(),
            overrides: BTreeMap::new(),
        }
    }

    /// Broker defaults plus previously persisted [`Self::overrides`].
    pub fn from_overrides(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, ConfigError> {
        let mut config = TopicConfig::defaults_from(broker);
        let pairs: Vec<(String, Option<String>)> = overrides
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        config.apply(&pairs)?;
        Ok(config)
    }

    /// Apply topic overrides, e.g. the `configs` of a CreateTopics request.
    ///
    /// Keys are Kafka topic-level names. Implemented keys change the fields;
    /// keys in [`TOPIC_EXTRA_KEYS`] are checked and kept in [`Self::extra`];
    /// anything else is rejected. A `None` value (Kafka's null) is rejected,
    /// as Kafka does for CreateTopics, and so is a key given twice. Every
    /// problem is reported, each naming the key and the bad value, e.g.
    /// `segment.bytes: expected an integer in 14..=2147483647, got 'abc'`.
    /// On error nothing is changed.
    pub fn apply(&mut self, overrides: &[(String, Option<String>)]) -> Result<(), ConfigError> {
        let mut next = self.clone();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in overrides {
            if !seen.insert(key.as_str()) {
                problems.push(format!("{key}: given more than once"));
                continue;
            }
            let implemented = TOPIC_KEYS
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, kind)| *kind);
            let Some(kind) = implemented.or_else(|| extra_kind(key)) else {
                problems.push(format!("unknown topic config key '{key}'"));
                continue;
            };
            let Some(value) = value else {
                problems.push(format!("{key}: null value not supported for topic configs"));
                continue;
            };
            let norm = match check_topic_value(kind, value) {
                Ok(norm) => norm,
                Err(e) => {
                    problems.push(format!("{key}: {e}"));
                    continue;
                }
            };
            if implemented.is_some() {
                next.set_implemented(key, &norm);
            } else {
                next.extra.insert(key.clone(), norm.clone());
            }
            next.overrides.insert(key.clone(), norm);
        }
        if problems.is_empty() {
            *self = next;
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Store an already checked value of an implemented key.
    fn set_implemented(&mut self, key: &str, norm: &str) {
        let int = || norm.parse::<i64>().unwrap_or_default();
        match key {
            "segment.bytes" => self.segment_bytes = int() as u64,
            "segment.ms" => self.segment_ms = int(),
            "max.message.bytes" => self.max_message_bytes = int() as u32,
            "retention.ms" => self.retention_ms = int(),
            "retention.bytes" => self.retention_bytes = int(),
            "cleanup.policy" => self.cleanup_policy = norm.to_string(),
            "message.timestamp.type" => {
                if let Ok(t) = norm.parse() {
                    self.message_timestamp_type = t;
                }
            }
            "index.interval.bytes" => self.index_interval_bytes = int() as u32,
            "write.caching" => self.write_caching = norm == "true",
            "flush.messages" => self.flush_messages = int(),
            "flush.ms" => self.flush_ms = int(),
            "min.insync.replicas" => self.min_insync_replicas = int() as i32,
            "compression.type" => self.compression_type = norm.to_string(),
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = norm == "true"
            }
            _ => {}
        }
    }

    /// The overrides applied to this topic (and only those, whether or not
    /// they equal the broker default), key → normalized value, for
    /// persisting. Rebuild with [`Self::from_overrides`].
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Every setting's effective value, key → value (implemented keys plus
    /// [`Self::extra`]), e.g. for DescribeConfigs.
    pub fn describe(&self) -> BTreeMap<String, String> {
        let mut out = self.extra.clone();
        let fields = [
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("cleanup.policy", self.cleanup_policy.clone()),
            (
                "message.timestamp.type",
                self.message_timestamp_type.to_string(),
            ),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("write.caching", self.write_caching.to_string()),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("compression.type", self.compression_type.clone()),
        ];
        for (k, v) in fields {
            out.insert(k.to_string(), v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(err: ConfigError) -> Vec<String> {
        match err {
            ConfigError::Invalid(problems) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = BrokerConfig::from_toml_str("").unwrap();
        assert_eq!(c, BrokerConfig::default());
        assert_eq!(c.data_dir(), Path::new("./strom-data"));
        assert_eq!(c.advertised(), ("127.0.0.1".to_string(), 9092));
        assert_eq!(c.log_roll_ms, 604_800_000);
        assert_eq!(c.log_retention_ms, 604_800_000);
    }

    #[test]
    fn three_spellings_are_equal() {
        let dotted = "log.segment.bytes = 1048576\nlog.retention.ms = 5000\nnum.partitions = 3\n";
        let quoted =
            "\"log.segment.bytes\" = 1048576\n\"log.retention.ms\" = 5000\n\"num.partitions\" = 3\n";
        let table = "num.partitions = 3\n[log]\nsegment.bytes = 1048576\nretention.ms = 5000\n";
        let mixed = "[log]\n\"segment.bytes\" = \"1048576\"\nretention = { ms = 5000 }\n\
                     [num]\npartitions = \"3\"\n";
        let a = BrokerConfig::from_toml_str(dotted).unwrap();
        assert_eq!(a.log_segment_bytes, 1_048_576);
        assert_eq!(a.log_retention_ms, 5000);
        assert_eq!(a.num_partitions, 3);
        assert_eq!(a, BrokerConfig::from_toml_str(quoted).unwrap());
        assert_eq!(a, BrokerConfig::from_toml_str(table).unwrap());
        assert_eq!(a, BrokerConfig::from_toml_str(mixed).unwrap());
    }

    #[test]
    fn all_keys_parse() {
        let text = r#"
            log.dirs = ["/a", "/b"]
            listeners = "PLAINTEXT://0.0.0.0:19092"
            advertised.listeners = "PLAINTEXT://broker1.example.com:29092"
            node.id = 7
            strom.smp = 4
            num.partitions = 6
            default.replication.factor = 1
            auto.create.topics.enable = false
            log.segment.bytes = 14
            log.roll.hours = 2
            log.index.interval.bytes = 0
            message.max.bytes = 2000000
            socket.request.max.bytes = "1000"
            log.retention.bytes = 123
            log.message.timestamp.type = "LogAppendTime"
            strom.fetch.max.wait.ms.cap = 500
        "#;
        let c = BrokerConfig::from_toml_str(text).unwrap();
        assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.data_dir(), Path::new("/a"));
        assert_eq!(c.listen, "0.0.0.0:19092".parse().unwrap());
        assert_eq!(c.advertised(), ("broker1.example.com".to_string(), 29092));
        assert_eq!(c.node_id, 7);
        assert_eq!(c.smp, Some(4));
        assert_eq!(c.num_partitions, 6);
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.log_segment_bytes, 14);
        assert_eq!(c.log_roll_ms, 7_200_000);
        assert_eq!(c.log_index_interval_bytes, 0);
        assert_eq!(c.message_max_bytes, 2_000_000);
        assert_eq!(c.socket_request_max_bytes, 1000);
        assert_eq!(c.log_retention_bytes, 123);
        assert_eq!(c.log_message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.fetch_max_wait_ms_cap, 500);
    }

    #[test]
    fn every_documented_key_is_accepted_via_overrides() {
        for key in BROKER_KEYS {
            let mut c = BrokerConfig::default();
            let value = match *key {
                "log.dirs" | "log.dir" => "/x",
                "listeners" => "PLAINTEXT://127.0.0.1:1",
                "advertised.listeners" => "PLAINTEXT://h:1",
                "auto.create.topics.enable" | "strom.write.caching.default" => "true",
                "group.max.session.timeout.ms" => "10000",
                "log.message.timestamp.type" => "CreateTime",
                "log.cleanup.policy" => "compact",
                "compression.type" => "zstd",
                "admin.listeners" => "http://127.0.0.1:9645",
                "strom.log.level" => "debug",
                "strom.log.format" => "json",
                "controller.quorum.voters" => "1@127.0.0.1:9093,2@127.0.0.2:9093",
                "controller.listener.names" => "CONTROLLER",
                "process.roles" => "broker,controller",
                "unclean.leader.election.enable"
                | "auto.leader.rebalance.enable"
                | "controlled.shutdown.enable" => "true",
                "controller.quorum.election.timeout.ms" => "1000",
                _ => "100",
            };
            let result = c.apply_overrides([(key.to_string(), value.to_string())]);
            result.unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn cluster_keys_parse_and_agree() {
        let text = r#"
            node.id = 2
            listeners = "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
            advertised.listeners = "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
            controller.quorum.voters = "1@127.0.0.11:9093,2@127.0.0.12:9093,3@localhost:9093"
            process.roles = "controller,broker"
            default.replication.factor = 3
        "#;
        let c = BrokerConfig::from_toml_str(text).unwrap();
        c.check_cluster().unwrap();
        assert_eq!(c.listen, "127.0.0.12:9092".parse().unwrap());
        assert_eq!(
            c.controller_listen,
            Some("127.0.0.12:9093".parse().unwrap())
        );
        assert_eq!(c.advertised(), ("127.0.0.12".to_string(), 9092));
        assert_eq!(c.quorum_voters.len(), 3);
        assert_eq!(c.quorum_voters[2].host, "localhost");
        assert_eq!(c.default_replication_factor, 3);
        assert_eq!(
            c.value_of("controller.quorum.voters").unwrap(),
            "1@127.0.0.11:9093,2@127.0.0.12:9093,3@localhost:9093"
        );
        assert_eq!(
            c.value_of("listeners").unwrap(),
            "PLAINTEXT://127.0.0.12:9092,CONTROLLER://127.0.0.12:9093"
        );
        // The single-node default needs no controller listener.
        BrokerConfig::default().check_cluster().unwrap();
    }

    #[test]
    fn cluster_keys_that_disagree_are_refused_by_name() {
        let problems = |text: &str| {
            let c = BrokerConfig::from_toml_str(text).unwrap();
            invalid(c.check_cluster().unwrap_err())
        };
        let p = problems(
            r#"node.id = 4
               listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
               controller.quorum.voters = "1@127.0.0.1:9093""#,
        );
        assert!(
            p[0].contains("node.id 4 is not one of controller.quorum.voters"),
            "{p:?}"
        );
        let p = problems(r#"controller.quorum.voters = "1@127.0.0.1:9093""#);
        assert!(p[0].contains("no CONTROLLER listener"), "{p:?}");
        let p = problems(
            r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094"
               controller.quorum.voters = "1@127.0.0.1:9093""#,
        );
        assert!(
            p[0].contains("does not use this node's voter port 9093"),
            "{p:?}"
        );
        let p = problems(r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093""#);
        assert!(p[0].contains("controller.quorum.voters is empty"), "{p:?}");
        let p = problems("broker.heartbeat.interval.ms = 3000");
        assert!(
            p[0].contains("must be larger than broker.heartbeat.interval.ms"),
            "{p:?}"
        );

        let bad = |text: &str| invalid(BrokerConfig::from_toml_str(text).unwrap_err());
        assert!(
            bad(r#"controller.quorum.voters = "1@127.0.0.1:9093,1@127.0.0.2:9093""#)[0]
                .contains("voter id 1 appears twice")
        );
        assert!(bad(r#"controller.quorum.voters = "one@127.0.0.1:9093""#)[0]
            .contains("expected voters like '1@127.0.0.1:9093'"));
        assert!(bad(r#"process.roles = "broker""#)[0].contains("only 'broker,controller'"));
        assert!(bad(r#"controller.listener.names = "CTRL""#)[0]
            .contains("only the listener name CONTROLLER"));
        assert!(bad(
            r#"listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:1,CONTROLLER://127.0.0.1:2""#
        )[0]
        .contains("more than one CONTROLLER listener"));
    }

    #[test]
    fn log_dirs_forms_and_alias() {
        let c = BrokerConfig::from_toml_str("log.dirs = \"/a, /b ,\"").unwrap();
        assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        let c = BrokerConfig::from_toml_str("log.dir = \"/only\"").unwrap();
        assert_eq!(c.data_dir(), Path::new("/only"));
        let c = BrokerConfig::from_toml_str("log.dir = \"/x\"\nlog.dirs = \"/y\"").unwrap();
        assert_eq!(c.data_dir(), Path::new("/y"));
        let problems = invalid(BrokerConfig::from_toml_str("log.dirs = []").unwrap_err());
        assert!(
            problems[0].starts_with("log.dirs: expected a non-empty list"),
            "{problems:?}"
        );
        let problems = invalid(BrokerConfig::from_toml_str("log.dirs = [1]").unwrap_err());
        assert!(problems[0].starts_with("log.dirs:"), "{problems:?}");
    }

    #[test]
    fn unknown_key_is_named() {
        let problems = invalid(BrokerConfig::from_toml_str("num.network.threads = 3").unwrap_err());
        assert_eq!(
            problems,
            vec!["unknown key 'num.network.threads'".to_string()]
        );
        let problems = invalid(BrokerConfig::from_toml_str("[log]\nsegmnt.bytes = 3").unwrap_err());
        assert_eq!(problems, vec!["unknown key 'log.segmnt.bytes'".to_string()]);
    }

    #[test]
    fn all_problems_reported_together() {
        let text = r#"
            "log.segment.bytes" = 5
            log.segment.bytes = 1000
            bogus = 1
            num.partitions = "many"
            auto.create.topics.enable = "yes"
            message.max.bytes = 1.5
            default.replication.factor = 0
            listeners = "SSL://127.0.0.1:9093"
            log.message.timestamp.type = "createtime"
            node.id = -1
        "#;
        let err = BrokerConfig::from_toml_str(text).unwrap_err();
        let shown = err.to_string();
        let problems = invalid(err);
        assert_eq!(problems.len(), 9, "{problems:#?}");
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("unknown key 'bogus'"));
        assert!(has("log.segment.bytes: given more than once"));
        assert!(has(
            "num.partitions: expected an integer in 1..=10000, got 'many'"
        ));
        assert!(has(
            "auto.create.topics.enable: expected true or false, got 'yes'"
        ));
        assert!(has(
            "message.max.bytes: expected an integer in 0..=2147483647, got the float 1.5"
        ));
        assert!(has(
            "default.replication.factor: expected an integer in 1..=32767, got 0"
        ));
        assert!(has(
            "listeners: listener 'SSL://127.0.0.1:9093': only PLAINTEXT"
        ));
        assert!(has("log.message.timestamp.type: expected one of"));
        assert!(has(
            "node.id: expected an integer in 0..=2147483647, got -1"
        ));
        assert!(shown.starts_with("invalid configuration (9 problems):\n  "));
        assert_eq!(shown.lines().count(), 10);
    }

    #[test]
    fn out_of_range_values() {
        let problems = invalid(
            BrokerConfig::from_toml_str(
                "log.segment.bytes = 13\nsocket.request.max.bytes = 0\nstrom.smp = 0\n\
                 log.roll.ms = 0\nlog.retention.bytes = -2",
            )
            .unwrap_err(),
        );
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems
            .iter()
            .any(|p| p == "log.segment.bytes: expected an integer in 14..=2147483647, got 13"));
        assert!(problems
            .iter()
            .any(|p| p == "log.retention.bytes: expected an integer >= -1, got -2"));
        let problems =
            invalid(BrokerConfig::from_toml_str("log.segment.bytes = \"2147483648\"").unwrap_err());
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn toml_syntax_error() {
        match BrokerConfig::from_toml_str("log.segment.bytes = ").unwrap_err() {
            ConfigError::Parse { origin, .. } => assert_eq!(origin, "<string>"),
            other => panic!("{other:?}"),
        }
        // A dotted key and a [table] of the same name collide in TOML itself.
        assert!(matches!(
            BrokerConfig::from_toml_str("log.segment.bytes = 1\n[log]\nroll.ms = 5"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn from_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strom.toml");
        std::fs::write(&path, "[log]\nsegment.bytes = 4096\ndirs = \"/data\"\n").unwrap();
        let c = BrokerConfig::from_file(&path).unwrap();
        assert_eq!(c.log_segment_bytes, 4096);
        assert_eq!(c.data_dir(), Path::new("/data"));

        std::fs::write(&path, "wat = 1\n").unwrap();
        let problems = invalid(BrokerConfig::from_file(&path).unwrap_err());
        assert_eq!(
            problems,
            vec![format!("{}: unknown key 'wat'", path.display())]
        );

        std::fs::write(&path, "wat = \n").unwrap();
        let err = BrokerConfig::from_file(&path).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        let missing = dir.path().join("missing.toml");
        let err = BrokerConfig::from_file(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn env_overrides() {
        let mut c = BrokerConfig::from_toml_str("log.segment.bytes = 4096\nnode.id = 3").unwrap();
        c.apply_env(env(&[
            ("STROM_LOG_DIRS", "/env/a,/env/b"),
            ("STROM_LOG_SEGMENT_BYTES", "8192"),
            ("STROM_SMP", "2"),
            ("STROM_AUTO_CREATE_TOPICS_ENABLE", "FALSE"),
            ("STROM_LISTENERS", "PLAINTEXT://:9999"),
            ("STROM_UNRELATED_THING", "ignored"),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
        assert_eq!(c.data_dir(), Path::new("/env/a"));
        assert_eq!(c.log_segment_bytes, 8192);
        assert_eq!(c.smp, Some(2));
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(c.advertised(), ("127.0.0.1".to_string(), 9999));
        assert_eq!(c.node_id, 3);

        c.apply_env(env(&[("STROM_STROM_FETCH_MAX_WAIT_MS_CAP", "7")]))
            .unwrap();
        assert_eq!(c.fetch_max_wait_ms_cap, 7);
    }

    #[test]
    fn env_errors_leave_config_unchanged() {
        let mut c = BrokerConfig::default();
        let err = c
            .apply_env(env(&[
                ("STROM_LOG_SEGMENT_BYTES", "big"),
                ("STROM_NODE_ID", "5"),
                ("STROM_SMP", "2"),
                ("STROM_STROM_SMP", "3"),
            ]))
            .unwrap_err();
        let problems = invalid(err);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems
            .iter()
            .any(|p| p
                .starts_with("STROM_LOG_SEGMENT_BYTES (log.segment.bytes): expected an integer")));
        assert!(problems.iter().any(|p| p.contains("given more than once")));
        assert_eq!(c, BrokerConfig::default());
    }

    #[test]
    fn retention_precedence() {
        let ms = |text: &str| BrokerConfig::from_toml_str(text).unwrap().log_retention_ms;
        assert_eq!(ms("log.retention.hours = 1"), 3_600_000);
        assert_eq!(
            ms("log.retention.minutes = 2\nlog.retention.hours = 1"),
            120_000
        );
        assert_eq!(
            ms("log.retention.ms = 5\nlog.retention.minutes = 2\nlog.retention.hours = 1"),
            5
        );
        assert_eq!(ms("log.retention.ms = -1"), -1);
        assert_eq!(ms("log.retention.hours = -1"), -1);
        // A bad lower-precedence value is still reported.
        assert!(
            BrokerConfig::from_toml_str("log.retention.ms = 5\nlog.retention.hours = \"x\"")
                .is_err()
        );
        // Roll: ms wins over hours.
        let c = BrokerConfig::from_toml_str("log.roll.ms = 10\nlog.roll.hours = 1").unwrap();
        assert_eq!(c.log_roll_ms, 10);
        // The environment layer replaces the file's value.
        let mut c = BrokerConfig::from_toml_str("log.retention.ms = 5").unwrap();
        c.apply_env(env(&[("STROM_LOG_RETENTION_HOURS", "2")]))
            .unwrap();
        assert_eq!(c.log_retention_ms, 7_200_000);
    }

    #[test]
    fn node_id_alias() {
        assert_eq!(
            BrokerConfig::from_toml_str("broker.id = 4")
                .unwrap()
                .node_id,
            4
        );
        assert_eq!(
            BrokerConfig::from_toml_str("broker.id = 4\nnode.id = 4")
                .unwrap()
                .node_id,
            4
        );
        let problems =
            invalid(BrokerConfig::from_toml_str("broker.id = 4\nnode.id = 5").unwrap_err());
        assert!(problems[0].contains("disagree"), "{problems:?}");
    }

    #[test]
    fn listeners_parsing() {
        let listen = |s: &str| parse_listen(s);
        assert_eq!(
            listen("PLAINTEXT://127.0.0.1:9092").unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        );
        assert_eq!(
            listen("plaintext://:9092").unwrap(),
            "0.0.0.0:9092".parse().unwrap()
        );
        assert_eq!(
            listen("PLAINTEXT://localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            listen("PLAINTEXT://[::1]:9092").unwrap(),
            "[::1]:9092".parse().unwrap()
        );
        assert_eq!(
            listen("10.0.0.1:9092").unwrap(),
            "10.0.0.1:9092".parse().unwrap()
        );
        assert_eq!(
            listen(" PLAINTEXT://127.0.0.1:9092 ,").unwrap().port(),
            9092
        );
        assert!(
            listen("PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093")
                .unwrap_err()
                .contains("only one")
        );
        assert!(listen("SASL_PLAINTEXT://127.0.0.1:9092")
            .unwrap_err()
            .contains("PLAINTEXT"));
        assert!(listen("PLAINTEXT://broker.example.com:9092")
            .unwrap_err()
            .contains("IP address"));
        assert!(listen("PLAINTEXT://127.0.0.1").is_err());
        assert!(listen("PLAINTEXT://127.0.0.1:70000").is_err());
        assert!(listen("PLAINTEXT://::1:9092").is_err());
        assert!(listen("").is_err());

        assert_eq!(
            parse_advertised("PLAINTEXT://[::1]:9092").unwrap(),
            ("::1".to_string(), 9092)
        );
        assert!(parse_advertised("PLAINTEXT://0.0.0.0:9092").is_err());
        assert!(parse_advertised("PLAINTEXT://:9092").is_err());
        assert!(parse_advertised("PLAINTEXT://h:0").is_err());
        assert!(parse_advertised("PLAINTEXT://bad host:1").is_err());

        let problems =
            invalid(BrokerConfig::from_toml_str("listeners = \"SSL://1.2.3.4:1\"").unwrap_err());
        assert!(problems[0].starts_with("listeners: "), "{problems:?}");
        let problems =
            invalid(BrokerConfig::from_toml_str("advertised.listeners = 9092").unwrap_err());
        assert!(
            problems[0].starts_with("advertised.listeners: expected a string"),
            "{problems:?}"
        );

        let c = BrokerConfig::from_toml_str(
            "listeners = \"PLAINTEXT://10.1.2.3:9092\"\n\
             advertised.listeners = \"PLAINTEXT://public.example:443\"",
        )
        .unwrap();
        assert_eq!(c.listen, "10.1.2.3:9092".parse().unwrap());
        assert_eq!(c.advertised(), ("public.example".to_string(), 443));
        let c = BrokerConfig::from_toml_str("listeners = \"PLAINTEXT://10.1.2.3:9093\"").unwrap();
        assert_eq!(c.advertised(), ("10.1.2.3".to_string(), 9093));
    }

    #[test]
    fn flag_style_overrides() {
        let mut c = BrokerConfig::default();
        c.apply_overrides([
            ("listeners".to_string(), "0.0.0.0:9000".to_string()),
            ("strom.smp".to_string(), "3".to_string()),
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.smp, Some(3));
        let problems = invalid(
            c.apply_overrides([("nope".to_string(), "1".to_string())])
                .unwrap_err(),
        );
        assert_eq!(problems, vec!["unknown key 'nope'".to_string()]);
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn topic_defaults_follow_broker() {
        let broker = BrokerConfig::from_toml_str(
            "log.segment.bytes = 1000\nlog.roll.ms = 20\nmessage.max.bytes = 30\n\
             log.retention.ms = 40\nlog.retention.bytes = 50\n\
             log.message.timestamp.type = \"LogAppendTime\"\nlog.index.interval.bytes = 60",
        )
        .unwrap();
        let t = TopicConfig::defaults_from(&broker);
        assert_eq!(t.segment_bytes, 1000);
        assert_eq!(t.segment_ms, 20);
        assert_eq!(t.max_message_bytes, 30);
        assert_eq!(t.retention_ms, 40);
        assert_eq!(t.retention_bytes, 50);
        assert_eq!(t.cleanup_policy, "delete");
        assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(t.index_interval_bytes, 60);
        assert!(t.overrides().is_empty());
        assert!(t.extra.is_empty());
    }

    #[test]
    fn topic_overrides_valid() {
        let broker = BrokerConfig::default();
        let mut t = TopicConfig::defaults_from(&broker);
        t.apply(&pairs(&[
            ("segment.bytes", " 1048576 "),
            ("segment.ms", "60000"),
            ("max.message.bytes", "2000000"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000000000"),
            ("cleanup.policy", "delete, compact"),
            ("message.timestamp.type", "LogAppendTime"),
            ("index.interval.bytes", "1024"),
            ("min.insync.replicas", "2"),
            ("compression.type", "zstd"),
            ("unclean.leader.election.enable", "False"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("segment.index.bytes", "10485760"),
        ]))
        .unwrap();
        assert_eq!(t.segment_bytes, 1_048_576);
        assert_eq!(t.segment_ms, 60_000);
        assert_eq!(t.max_message_bytes, 2_000_000);
        assert_eq!(t.retention_ms, -1);
        assert_eq!(t.retention_bytes, 1_000_000_000);
        assert_eq!(t.cleanup_policy, "delete,compact");
        assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(t.index_interval_bytes, 1024);
        assert_eq!(t.min_insync_replicas, 2);
        assert_eq!(t.compression_type, "zstd");
        assert!(!t.unclean_leader_election_enable);
        assert_eq!(t.extra.len(), 2);
        assert_eq!(t.overrides().len(), 13);
        assert_eq!(t.overrides()["segment.bytes"], "1048576");
        assert_eq!(t.overrides()["cleanup.policy"], "delete,compact");
        assert_eq!(t.describe()["segment.ms"], "60000");
        assert_eq!(t.describe()["compression.type"], "zstd");

        // Persisted overrides rebuild the same config.
        let again = TopicConfig::from_overrides(&broker, t.overrides()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn topic_overrides_invalid() {
        let mut t = TopicConfig::defaults_from(&BrokerConfig::default());
        let before = t.clone();
        let mut overrides = pairs(&[
            ("segment.bytes", "abc"),
            ("segment.ms", "0"),
            ("cleanup.policy", "delete,shred"),
            ("message.timestamp.type", "Now"),
            ("segment.bytes", "1000"),
            ("no.such.key", "1"),
            ("min.insync.replicas", "0"),
            ("compression.type", "brotli"),
            ("preallocate", "maybe"),
            ("min.cleanable.dirty.ratio", "1.5"),
        ]);
        overrides.push(("retention.ms".to_string(), None));
        let problems = invalid(t.apply(&overrides).unwrap_err());
        assert_eq!(problems.len(), 11, "{problems:#?}");
        let has = |s: &str| problems.iter().any(|p| p == s);
        assert!(has(
            "segment.bytes: expected an integer in 14..=2147483647, got 'abc'"
        ));
        assert!(has("segment.ms: expected an integer >= 1, got '0'"));
        assert!(has(
            "cleanup.policy: expected 'delete', 'compact' or both comma-separated, got 'delete,shred'"
        ));
        assert!(has(
            "message.timestamp.type: expected one of 'CreateTime', 'LogAppendTime', got 'Now'"
        ));
        assert!(has("segment.bytes: given more than once"));
        assert!(has("unknown topic config key 'no.such.key'"));
        assert!(has(
            "min.insync.replicas: expected an integer in 1..=2147483647, got '0'"
        ));
        assert!(has(
            "retention.ms: null value not supported for topic configs"
        ));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("compression.type: expected one of")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("preallocate: expected true or false")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("min.cleanable.dirty.ratio: expected a number")));
        assert_eq!(t, before, "a failed apply changes nothing");
        assert!(t.apply(&pairs(&[("cleanup.policy", "")])).is_err());
        assert!(t.apply(&pairs(&[("cleanup.policy", "compact")])).is_ok());
        assert_eq!(t.cleanup_policy, "compact");
    }
}
