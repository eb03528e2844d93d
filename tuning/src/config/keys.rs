//! Every configuration key, declared once.
//!
//! A key's name, type, default, check, whether it can change at run time and
//! what it does are written here and nowhere else. Parsing (file,
//! environment, flags), [`BrokerConfig::value_of`], DescribeConfigs (the
//! `catalog` module), [`BROKER_KEYS`]-style lists and the README's tables
//! (`config/docs.rs`, checked by a test) are derived from these tables.
//!
//! - `broker_config!` declares the broker's settings. Keys whose value is
//!   one field checked by a [`Check`] are written in its `simple` section;
//!   the macro generates the field, its default, its parsing and how it is
//!   shown. Keys parsed by hand (listeners, paths, aliases, keys that share
//!   a field such as `log.retention.ms` / `.hours`) have their fields in the
//!   `custom` section and their facts in [`CUSTOM_KEYS`]; their parsing is
//!   in `BrokerConfig::with_layer`.
//! - `topic_config!` declares the topic keys Strom acts on, each with the
//!   broker key that gives its default; [`EXTRA_TOPIC_KEYS`] the keys Kafka
//!   knows that Strom accepts and stores without acting on them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::layer::Layer;
use super::value::{Check, Setting, COMPRESSION_TYPES};
use super::{LogFormat, QuorumVoter, TimestampType};
use crate::limits::PARTITIONS_PER_TOPIC_MAX;

const I32_MAX: i64 = i32::MAX as i64;
const I16_MAX: i64 = i16::MAX as i64;
const PARTITIONS_MAX: i64 = PARTITIONS_PER_TOPIC_MAX as i64;
pub(super) const MS_PER_HOUR: i64 = 3_600_000;
pub(super) const MS_PER_MINUTE: i64 = 60_000;

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

impl ConfigType {
    pub fn code(self) -> i8 {
        self as i8
    }

    /// The type's name in the documentation tables.
    pub fn doc_name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "boolean",
            ConfigType::String => "string",
            ConfigType::Int | ConfigType::Long => "integer",
            ConfigType::Double => "number",
            ConfigType::List => "list",
        }
    }
}

/// A broker key.
#[derive(Debug)]
pub struct BrokerKey {
    /// Kafka's name (`server.properties`), or a `strom.` name.
    pub name: &'static str,
    pub check: Check,
    /// Unit of an integer (`ms`, `bytes`, ...), empty if none.
    pub unit: &'static str,
    /// What DescribeConfigs calls its type.
    pub config_type: ConfigType,
    /// Whether IncrementalAlterConfigs may change it at run time.
    pub dynamic: bool,
    /// The key this one is another spelling of (`log.dir` → `log.dirs`).
    pub alias_of: Option<&'static str>,
    /// The default as documented, when the default value alone does not say
    /// it (`every usable core`); empty: the default value.
    pub default_doc: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// A topic key.
#[derive(Debug)]
pub struct TopicKey {
    pub name: &'static str,
    pub check: Check,
    pub unit: &'static str,
    pub config_type: ConfigType,
    /// The broker keys that give its default, highest precedence first;
    /// empty for keys Strom does not act on.
    pub synonyms: &'static [&'static str],
    /// Built-in default of a key no broker key backs (Kafka's); `None`: the
    /// key is shown only when a topic sets it.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

macro_rules! broker_config {
    (
        custom {
            $( $(#[$cmeta:meta])* $cfield:ident : $cty:ty = $cdefault:expr, )*
        }
        simple {
            $( $field:ident : $ty:ty = $default:expr =>
                $key:literal, $check:expr, $unit:literal, $ctype:ident, $dynamic:literal,
                $doc:literal; )*
        }
    ) => {
        /// Broker-wide settings. Every key is declared once, in
        /// `config/keys.rs`; the README's table is generated from there.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct BrokerConfig {
            $( $(#[$cmeta])* pub $cfield: $cty, )*
            $( #[doc = concat!("`", $key, "`: ", $doc)] pub $field: $ty, )*
            /// Keys given explicitly (file, environment, overrides), for
            /// DescribeConfigs' STATIC_BROKER_CONFIG source.
            pub explicit: BTreeSet<String>,
        }

        impl Default for BrokerConfig {
            fn default() -> Self {
                BrokerConfig {
                    $( $cfield: $cdefault, )*
                    $( $field: $default, )*
                    explicit: BTreeSet::new(),
                }
            }
        }

        /// The keys of one field each, checked by their [`Check`].
        pub(super) const SIMPLE_KEYS: &[BrokerKey] = &[
            $( BrokerKey {
                name: $key,
                check: $check,
                unit: $unit,
                config_type: ConfigType::$ctype,
                dynamic: $dynamic,
                alias_of: None,
                default_doc: "",
                doc: $doc,
            }, )*
        ];

        impl BrokerConfig {
            /// Set the simple keys `layer` gives.
            pub(super) fn apply_simple(&mut self, layer: &mut Layer) {
                $(
                    if let Some(value) = layer.get($key, |raw| $check.raw(raw)) {
                        self.$field = <$ty as Setting>::from_checked(&value);
                    }
                )*
            }

            /// A simple key's value as DescribeConfigs shows it.
            pub(super) fn show_simple(&self, key: &str) -> Option<String> {
                match key {
                    $( $key => Some(Setting::show(&self.$field)), )*
                    _ => None,
                }
            }
        }
    };
}

broker_config! {
    custom {
        /// `log.dirs` (alias `log.dir`): directories holding log data; only the
        /// first is used for now.
        log_dirs: Vec<PathBuf> = vec![PathBuf::from("./strom-data")],
        /// The `PLAINTEXT` listener of `listeners` (flag `--listen`).
        listen: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9092),
        /// The `CONTROLLER` listener of `listeners`: where the controller
        /// quorum's traffic arrives. `None`: no controller listener (a single
        /// node, whose quorum is itself).
        controller_listen: Option<SocketAddr> = None,
        /// Host part of `advertised.listeners`. `None` = derived from `listen`
        /// (see [`Self::advertised`]). An IPv6 address is stored without
        /// brackets.
        advertised_host: Option<String> = None,
        /// Port part of `advertised.listeners`. `None` = the `listen` port.
        advertised_port: Option<u16> = None,
        /// `node.id` (alias `broker.id`): this broker's id.
        node_id: i32 = 1,
        /// `strom.smp` (flag `--smp`): number of shards. `None` = every usable
        /// core.
        smp: Option<usize> = None,
        /// `log.roll.ms` (or `log.roll.hours`; ms wins).
        log_roll_ms: i64 = 168 * MS_PER_HOUR,
        /// `log.retention.ms` / `.minutes` / `.hours` (ms wins, then minutes,
        /// then hours), in ms; -1 = forever.
        log_retention_ms: i64 = 168 * MS_PER_HOUR,
        /// `admin.listeners` (flag `--admin-listen`). `None` = see
        /// [`Self::admin_listen`].
        admin_listen: Option<SocketAddr> = None,
        /// `strom.log.level`: tracing filter directives. The `STROM_LOG`
        /// environment variable, when set, wins.
        log_level: String = "info".to_string(),
        /// `strom.log.format` (flag `--log-format`).
        log_format: LogFormat = LogFormat::Text,
        /// `controller.quorum.voters`. Empty: a single node.
        quorum_voters: Vec<QuorumVoter> = Vec::new(),
        /// `process.roles` as given (checked by [`Self::check_cluster`]).
        process_roles: Option<String> = None,
    }
    simple {
        controller_quorum_election_timeout_ms: u32 = 1000 =>
            "controller.quorum.election.timeout.ms", Check::Int(200, 60_000), "ms", Long, false,
            "How long a voter waits without hearing from the active controller before it calls \
             an election (raft, ticks of 100 ms).";
        broker_heartbeat_interval_ms: u32 = 500 =>
            "broker.heartbeat.interval.ms", Check::Int(50, 60_000), "ms", Long, false,
            "How often a broker heartbeats the active controller. Kafka's default is 2000; \
             Strom's is lower so a dead broker is noticed sooner.";
        broker_session_timeout_ms: u32 = 3000 =>
            "broker.session.timeout.ms", Check::Int(100, 600_000), "ms", Long, false,
            "A broker whose last heartbeat is older is fenced: it leaves every ISR and the \
             partitions it led get new leaders. Must be larger than \
             `broker.heartbeat.interval.ms`. Kafka's default is 9000.";
        offsets_topic_replication_factor: i16 = 3 =>
            "offsets.topic.replication.factor", Check::Int(1, I16_MAX), "", Int, false,
            "Replicas of each `__consumer_offsets` partition, capped at the number of live \
             brokers when the topic is created.";
        replica_lag_time_max_ms: i64 = 30_000 =>
            "replica.lag.time.max.ms", Check::Int(1, i64::MAX), "ms", Long, false,
            "A follower that has not caught up with the leader's log end for this long leaves \
             the ISR.";
        replica_fetch_max_bytes: u32 = 1 << 20 =>
            "replica.fetch.max.bytes", Check::Int(1, I32_MAX), "bytes", Long, false,
            "Bytes a follower asks for per partition in one fetch (a larger first batch still \
             comes whole).";
        replica_fetch_response_max_bytes: u32 = 10 << 20 =>
            "replica.fetch.response.max.bytes", Check::Int(1, I32_MAX), "bytes", Long, false,
            "Bytes a follower asks for per fetch.";
        replica_fetch_wait_max_ms: u32 = 500 =>
            "replica.fetch.wait.max.ms", Check::Int(0, I32_MAX), "ms", Long, false,
            "How long a follower's fetch waits at the leader for new records.";
        replica_fetch_backoff_ms: u32 = 1000 =>
            "replica.fetch.backoff.ms", Check::Int(0, I32_MAX), "ms", Long, false,
            "Pause of a follower after a failed fetch before it retries.";
        unclean_leader_election_enable: bool = false =>
            "unclean.leader.election.enable", Check::Bool, "", Boolean, false,
            "Default of the topic key: elect a replica outside the ISR when no ISR member is \
             alive (availability over durability: acknowledged records can be lost).";
        auto_leader_rebalance_enable: bool = true =>
            "auto.leader.rebalance.enable", Check::Bool, "", Boolean, false,
            "Move leadership back to each partition's preferred replica (the first) when it is \
             in sync, every `leader.imbalance.check.interval.seconds`.";
        leader_imbalance_check_interval_seconds: u32 = 300 =>
            "leader.imbalance.check.interval.seconds", Check::Int(1, I32_MAX), "s", Int, false,
            "How often preferred leaders are restored.";
        controlled_shutdown_enable: bool = true =>
            "controlled.shutdown.enable", Check::Bool, "", Boolean, false,
            "On SIGTERM/SIGINT a broker first asks the controller to move its leaderships \
             away, then stops.";
        controlled_shutdown_timeout_ms: u32 = 30_000 =>
            "strom.controlled.shutdown.timeout.ms", Check::Int(0, I32_MAX), "ms", Long, false,
            "Longest a controlled shutdown waits for the controller before the broker stops \
             anyway (it stops sooner when no controller answered for \
             `broker.session.timeout.ms`).";
        num_partitions: i32 = 1 =>
            "num.partitions", Check::Int(1, PARTITIONS_MAX), "", Int, false,
            "Partitions of an automatically created topic, and of CreateTopics requests that \
             leave the count to the broker.";
        default_replication_factor: i16 = 1 =>
            "default.replication.factor", Check::Int(1, I16_MAX), "", Int, false,
            "Replication factor of topics created without one (auto-created topics, \
             CreateTopics with -1).";
        auto_create_topics_enable: bool = true =>
            "auto.create.topics.enable", Check::Bool, "", Boolean, false,
            "Create a topic on Metadata/Produce for a topic that does not exist.";
        log_segment_bytes: u64 = 1 << 30 =>
            "log.segment.bytes", Check::Int(14, I32_MAX), "bytes", Long, true,
            "Size at which a log segment is closed and a new one started (1 GiB by default).";
        log_index_interval_bytes: u32 = 4096 =>
            "log.index.interval.bytes", Check::Int(0, I32_MAX), "bytes", Long, true,
            "Log bytes between two entries of the offset index.";
        message_max_bytes: u32 = 1_048_588 =>
            "message.max.bytes", Check::Int(0, I32_MAX), "bytes", Long, true,
            "Largest record batch the broker accepts (MESSAGE_TOO_LARGE above; topic default \
             for `max.message.bytes`).";
        socket_request_max_bytes: u32 = 104_857_600 =>
            "socket.request.max.bytes", Check::Int(1, I32_MAX), "bytes", Long, false,
            "Largest request (size prefix) accepted on a connection; a larger one closes it.";
        log_retention_bytes: i64 = -1 =>
            "log.retention.bytes", Check::Int(-1, i64::MAX), "bytes", Long, true,
            "Size per partition above which the oldest sealed segments are deleted; -1: no \
             size limit.";
        log_message_timestamp_type: TimestampType = TimestampType::CreateTime =>
            "log.message.timestamp.type", Check::OneOf(&["CreateTime", "LogAppendTime"]), "",
            String, true,
            "Whether record timestamps are the producer's or the broker's append time.";
        fetch_max_wait_ms_cap: u32 = 30_000 =>
            "strom.fetch.max.wait.ms.cap", Check::Int(0, I32_MAX), "ms", Int, false,
            "Upper bound applied to a Fetch request's `max_wait_ms`.";
        log_retention_check_interval_ms: i64 = 300_000 =>
            "log.retention.check.interval.ms", Check::Int(1, i64::MAX), "ms", Long, false,
            "How often each shard applies retention to its partitions.";
        producer_id_expiration_ms: i64 = 86_400_000 =>
            "producer.id.expiration.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "How long a partition keeps an idempotent producer's sequences after its last \
             batch; expired producers are forgotten at the next retention check.";
        write_caching_default: bool = false =>
            "strom.write.caching.default", Check::Bool, "", Boolean, true,
            "Default of the topic key `write.caching`. `false`: a record is acknowledged to \
             acks=all producers, and shown to consumers, only after it is synced to disk \
             (`fdatasync`, group commit per shard). `true`: acknowledged and shown once in the \
             page cache (Kafka's default), synced per `flush.messages` / `flush.ms`.";
        log_flush_interval_messages: i64 = i64::MAX =>
            "log.flush.interval.messages", Check::Int(1, i64::MAX), "", Long, true,
            "Default of `flush.messages`: sync a partition once this many records are unsynced \
             (matters with write caching).";
        log_flush_interval_ms: i64 = i64::MAX =>
            "log.flush.interval.ms", Check::Int(0, i64::MAX), "ms", Long, true,
            "Default of `flush.ms`: sync a partition's unsynced records at least this often \
             (matters with write caching).";
        log_flush_offset_checkpoint_interval_ms: i64 = 60_000 =>
            "log.flush.offset.checkpoint.interval.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "How often changed partition checkpoints (recovery point, log start offset, high \
             watermark) are written.";
        log_dir_min_free_bytes: u64 = 1 << 30 =>
            "strom.log.dir.min.free.bytes", Check::Int(0, i64::MAX), "bytes", Long, false,
            "Produce requests get KAFKA_STORAGE_ERROR while the data directory's file system \
             has less free space than this; they succeed again by themselves once space is \
             freed.";
        offsets_topic_num_partitions: i32 = 50 =>
            "offsets.topic.num.partitions", Check::Int(1, PARTITIONS_MAX), "", Int, false,
            "Partitions of the internal `__consumer_offsets` topic (created on first use; \
             fixed afterwards). A group is coordinated by the shard owning partition \
             `abs(javaHash(group)) % N`.";
        group_initial_rebalance_delay_ms: i64 = 3000 =>
            "group.initial.rebalance.delay.ms", Check::Int(0, I32_MAX), "ms", Long, false,
            "How long the first rebalance of an empty group waits for more members to join.";
        group_min_session_timeout_ms: i32 = 6000 =>
            "group.min.session.timeout.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "Smallest session timeout a member may ask for (INVALID_SESSION_TIMEOUT below).";
        group_max_session_timeout_ms: i32 = 1_800_000 =>
            "group.max.session.timeout.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "Largest session timeout a member may ask for.";
        offsets_retention_minutes: i64 = 10_080 =>
            "offsets.retention.minutes", Check::Int(1, I32_MAX), "minutes", Int, false,
            "Committed offsets of a group that has been empty this long are deleted (7 days by \
             default).";
        offsets_retention_check_interval_ms: i64 = 600_000 =>
            "offsets.retention.check.interval.ms", Check::Int(1, i64::MAX), "ms", Long, false,
            "How often expired offsets are looked for.";
        transaction_state_log_num_partitions: i32 = 50 =>
            "transaction.state.log.num.partitions", Check::Int(1, PARTITIONS_MAX), "", Int,
            false,
            "Partitions of the internal `__transaction_state` topic (created on first use; \
             fixed afterwards). A `transactional.id` is coordinated by the shard owning \
             partition `abs(javaHash(id)) % N`.";
        transaction_max_timeout_ms: i64 = 900_000 =>
            "transaction.max.timeout.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "Largest `transaction.timeout.ms` a producer may ask for \
             (INVALID_TRANSACTION_TIMEOUT above it).";
        transaction_abort_interval_ms: i64 = 10_000 =>
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            Check::Int(1, I32_MAX), "ms", Long, false,
            "How often the coordinator looks for transactions open longer than their timeout, \
             and aborts them.";
        transactional_id_expiration_ms: i64 = 604_800_000 =>
            "transactional.id.expiration.ms", Check::Int(1, I32_MAX), "ms", Long, false,
            "How long a coordinator keeps an idle `transactional.id` (no transaction open) \
             before forgetting it.";
        log_cleanup_policy: String = "delete".to_string() =>
            "log.cleanup.policy", Check::CleanupPolicy, "", List, true,
            "Default `cleanup.policy` of topics.";
        min_insync_replicas: i32 = 1 =>
            "min.insync.replicas", Check::Int(1, I32_MAX), "", Int, true,
            "Default `min.insync.replicas` of topics: acks=all produce is refused \
             (NOT_ENOUGH_REPLICAS) while fewer replicas are in sync.";
        compression_type: String = "producer".to_string() =>
            "compression.type", Check::OneOf(COMPRESSION_TYPES), "", String, true,
            "Default `compression.type` of topics.";
    }
}

/// The broker keys parsed by hand in `BrokerConfig::with_layer`.
pub(super) const CUSTOM_KEYS: &[BrokerKey] = &[
    BrokerKey {
        name: "log.dirs",
        check: Check::Custom("non-empty list of non-empty paths"),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Directories holding the log data. Only the first is used for now. If both \
              `log.dirs` and `log.dir` are given, `log.dirs` wins (as in Kafka).",
    },
    BrokerKey {
        name: "log.dir",
        check: Check::Custom("non-empty list of non-empty paths"),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: Some("log.dirs"),
        default_doc: "",
        doc: "",
    },
    BrokerKey {
        name: "listeners",
        check: Check::Custom(
            "`PLAINTEXT://host:port[,CONTROLLER://host:port]`: exactly one `PLAINTEXT` \
             listener and at most one `CONTROLLER` listener; host an IP address, `localhost`, \
             or empty (= `0.0.0.0`); port 0..=65535 (0 = any free port). The `PLAINTEXT://` \
             prefix may be omitted.",
        ),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Addresses the broker listens on: Kafka clients and other brokers on `PLAINTEXT` \
              (the `--listen` flag sets it), the controller quorum on `CONTROLLER` (needed \
              with `controller.quorum.voters`).",
    },
    BrokerKey {
        name: "advertised.listeners",
        check: Check::Custom(
            "`PLAINTEXT://host:port` (a `CONTROLLER` entry is accepted and ignored); host a \
             name or IP address, not empty or `0.0.0.0`; port 1..=65535",
        ),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "the `PLAINTEXT` listener (`127.0.0.1` if it listens on every interface)",
        doc: "Address given to clients and other brokers in Metadata responses.",
    },
    BrokerKey {
        name: "controller.quorum.voters",
        check: Check::Custom(
            "`id@host:port,...`: 1..=9 voters, distinct ids; host an IP address or name",
        ),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "empty (a single node)",
        doc: "The controller quorum (KRaft's key). Empty: a single node, a quorum of itself. \
              Otherwise this node's `node.id` must be one of the voters and its `CONTROLLER` \
              listener port must be its entry's port: every node is broker and controller.",
    },
    BrokerKey {
        name: "controller.listener.names",
        check: Check::Custom("`CONTROLLER`"),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Name of the controller listener in `listeners`.",
    },
    BrokerKey {
        name: "process.roles",
        check: Check::Custom("`broker,controller`"),
        unit: "",
        config_type: ConfigType::List,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Kafka's key; every Strom node is both (broker-only nodes are not supported \
              yet).",
    },
    BrokerKey {
        name: "node.id",
        check: Check::Int(0, I32_MAX),
        unit: "",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "This broker's id. If both `node.id` and `broker.id` are given they must agree.",
    },
    BrokerKey {
        name: "broker.id",
        check: Check::Int(0, I32_MAX),
        unit: "",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: Some("node.id"),
        default_doc: "",
        doc: "",
    },
    BrokerKey {
        name: "strom.smp",
        check: Check::Int(1, 4096),
        unit: "",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: None,
        default_doc: "every usable core",
        doc: "Number of shards (one thread pinned per core). The `--smp` flag sets this key.",
    },
    BrokerKey {
        name: "log.roll.ms",
        check: Check::Int(1, i64::MAX),
        unit: "ms",
        config_type: ConfigType::Long,
        dynamic: true,
        alias_of: None,
        default_doc: "",
        doc: "Age after which a segment is rolled even if not full (7 days by default).",
    },
    BrokerKey {
        name: "log.roll.hours",
        check: Check::Int(1, I32_MAX),
        unit: "hours",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Same as `log.roll.ms` in hours; `log.roll.ms` wins if both are given.",
    },
    BrokerKey {
        name: "log.retention.ms",
        check: Check::Int(-1, i64::MAX),
        unit: "ms",
        config_type: ConfigType::Long,
        dynamic: true,
        alias_of: None,
        default_doc: "",
        doc: "How long log data is kept: a sealed segment whose newest record is older is \
              deleted (checked every `log.retention.check.interval.ms`); -1 = keep forever.",
    },
    BrokerKey {
        name: "log.retention.minutes",
        check: Check::Int(-1, I32_MAX),
        unit: "minutes",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "As `log.retention.ms`, used only if that is not given; negative = keep forever.",
    },
    BrokerKey {
        name: "log.retention.hours",
        check: Check::Int(-1, I32_MAX),
        unit: "hours",
        config_type: ConfigType::Int,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "As `log.retention.ms`, used only if neither ms nor minutes is given; negative = \
              keep forever.",
    },
    BrokerKey {
        name: "admin.listeners",
        check: Check::Custom(
            "`http://host:port`; host an IP address, `localhost` or empty; the `http://` \
             prefix may be omitted",
        ),
        unit: "",
        config_type: ConfigType::String,
        dynamic: false,
        alias_of: None,
        default_doc: "the Kafka listener's host, port 9644 (0 if the Kafka port is 0)",
        doc: "Address of the admin HTTP API (`/metrics`, `/v1/health`, `/v1/ready`, \
              `/v1/status`); the `--admin-listen` flag sets this key.",
    },
    BrokerKey {
        name: "strom.log.level",
        check: Check::Custom("tracing filter directives, e.g. `info,strom_engine::group=debug`"),
        unit: "",
        config_type: ConfigType::String,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Log level, per module if wanted. The `STROM_LOG` environment variable wins when \
              set.",
    },
    BrokerKey {
        name: "strom.log.format",
        check: Check::OneOf(&["text", "json"]),
        unit: "",
        config_type: ConfigType::String,
        dynamic: false,
        alias_of: None,
        default_doc: "",
        doc: "Log line format (the `--log-format` flag sets this key).",
    },
];

/// Every broker key accepted in the configuration file, the environment or
/// [`BrokerConfig::apply_overrides`], aliases included.
pub fn broker_keys() -> impl Iterator<Item = &'static BrokerKey> {
    CUSTOM_KEYS.iter().chain(SIMPLE_KEYS)
}

/// The broker key named `name`.
pub fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    broker_keys().find(|k| k.name == name)
}

macro_rules! topic_config {
    (
        $( $field:ident : $ty:ty = $bfield:ident =>
            $key:literal, $check:expr, $unit:literal, $ctype:ident, [$($synonym:literal),+],
            $doc:literal; )*
    ) => {
        /// A topic's settings: broker defaults plus the topic's own
        /// overrides (Kafka's topic-level key names). Every key is
        /// declared once, in `config/keys.rs`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct TopicConfig {
            $( #[doc = concat!("`", $key, "`: ", $doc)] pub $field: $ty, )*
            /// Accepted keys from [`EXTRA_TOPIC_KEYS`] that have no effect
            /// yet, with their normalized values.
            pub extra: BTreeMap<String, String>,
            pub(super) overrides: BTreeMap<String, String>,
        }

        /// The topic keys Strom acts on.
        pub const TOPIC_KEYS: &[TopicKey] = &[
            $( TopicKey {
                name: $key,
                check: $check,
                unit: $unit,
                config_type: ConfigType::$ctype,
                synonyms: &[$($synonym),+],
                default: None,
                doc: $doc,
            }, )*
        ];

        impl TopicConfig {
            /// The settings of a topic with no overrides on this broker.
            pub fn defaults_from(broker: &BrokerConfig) -> TopicConfig {
                TopicConfig {
                    $( $field: broker.$bfield.clone(), )*
                    extra: BTreeMap::new(),
                    overrides: BTreeMap::new(),
                }
            }

            /// Store an already checked value of a key of [`TOPIC_KEYS`].
            pub(super) fn set_implemented(&mut self, key: &str, norm: &str) {
                match key {
                    $( $key => self.$field = <$ty as Setting>::from_checked(norm), )*
                    _ => {}
                }
            }

            /// The values of the keys of [`TOPIC_KEYS`].
            pub(super) fn implemented_values(&self) -> Vec<(&'static str, String)> {
                vec![ $( ($key, Setting::show(&self.$field)), )* ]
            }
        }
    };
}

topic_config! {
    cleanup_policy: String = log_cleanup_policy =>
        "cleanup.policy", Check::CleanupPolicy, "", List, ["log.cleanup.policy"],
        "delete: old segments are removed by retention.ms / retention.bytes. compact: \
         accepted, but compaction is not implemented yet, so a compact-only topic keeps \
         everything.";
    compression_type: String = compression_type =>
        "compression.type", Check::OneOf(COMPRESSION_TYPES), "", String, ["compression.type"],
        "producer: batches are stored as produced. uncompressed, gzip, snappy, lz4, zstd: the \
         broker re-compresses batches that arrive with another codec.";
    flush_messages: i64 = log_flush_interval_messages =>
        "flush.messages", Check::Int(1, i64::MAX), "", Long, ["log.flush.interval.messages"],
        "With write caching, sync the log once this many records are unsynced.";
    flush_ms: i64 = log_flush_interval_ms =>
        "flush.ms", Check::Int(0, i64::MAX), "ms", Long, ["log.flush.interval.ms"],
        "With write caching, sync unsynced records at least this often (ms).";
    index_interval_bytes: u32 = log_index_interval_bytes =>
        "index.interval.bytes", Check::Int(0, I32_MAX), "bytes", Int,
        ["log.index.interval.bytes"],
        "Bytes of log between two offset-index entries.";
    max_message_bytes: u32 = message_max_bytes =>
        "max.message.bytes", Check::Int(0, I32_MAX), "bytes", Int, ["message.max.bytes"],
        "Largest record batch accepted (MESSAGE_TOO_LARGE above).";
    message_timestamp_type: TimestampType = log_message_timestamp_type =>
        "message.timestamp.type", Check::OneOf(&["CreateTime", "LogAppendTime"]), "", String,
        ["log.message.timestamp.type"],
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the \
         broker's time.";
    min_insync_replicas: i32 = min_insync_replicas =>
        "min.insync.replicas", Check::Int(1, I32_MAX), "", Int, ["min.insync.replicas"],
        "acks=all produce gets NOT_ENOUGH_REPLICAS while fewer replicas are in sync.";
    retention_bytes: i64 = log_retention_bytes =>
        "retention.bytes", Check::Int(-1, i64::MAX), "bytes", Long, ["log.retention.bytes"],
        "Per-partition size above which the oldest sealed segments are deleted; -1: no \
         limit.";
    retention_ms: i64 = log_retention_ms =>
        "retention.ms", Check::Int(-1, i64::MAX), "ms", Long,
        ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "Sealed segments whose newest record is older are deleted; -1: keep forever.";
    segment_bytes: u64 = log_segment_bytes =>
        "segment.bytes", Check::Int(14, I32_MAX), "bytes", Int, ["log.segment.bytes"],
        "Size at which a segment is rolled.";
    segment_ms: i64 = log_roll_ms =>
        "segment.ms", Check::Int(1, i64::MAX), "ms", Long, ["log.roll.ms", "log.roll.hours"],
        "Age after which a segment is rolled even if not full.";
    unclean_leader_election_enable: bool = unclean_leader_election_enable =>
        "unclean.leader.election.enable", Check::Bool, "", Boolean,
        ["unclean.leader.election.enable"],
        "Elect a replica outside the ISR when no in-sync replica is alive: the partition comes \
         back sooner, but acknowledged records can be lost.";
    write_caching: bool = write_caching_default =>
        "write.caching", Check::Bool, "", Boolean, ["strom.write.caching.default"],
        "false: acks=all is answered, and consumers see records, only once they are synced to \
         disk. true: once in the page cache (Kafka's behaviour). Redpanda's key.";
}

/// What DescribeConfigs says of a key Strom accepts but does not act on.
pub const NOT_ENFORCED: &str = "Accepted and stored; Strom does not act on it yet.";

const fn extra(
    name: &'static str,
    check: Check,
    config_type: ConfigType,
    default: Option<&'static str>,
) -> TopicKey {
    TopicKey {
        name,
        check,
        unit: "",
        config_type,
        synonyms: &[],
        default,
        doc: NOT_ENFORCED,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Topic keys Kafka knows that Strom accepts (with the same basic checks as
/// Kafka) and stores in [`TopicConfig::extra`] without acting on them yet,
/// with Kafka 4.0's defaults.
pub const EXTRA_TOPIC_KEYS: &[TopicKey] = &[
    extra(
        "compression.gzip.level",
        Check::Int(-1, 9),
        ConfigType::Int,
        Some("-1"),
    ),
    extra(
        "compression.lz4.level",
        Check::Int(1, 17),
        ConfigType::Int,
        Some("9"),
    ),
    extra(
        "compression.zstd.level",
        Check::Int(-131_072, 22),
        ConfigType::Int,
        Some("3"),
    ),
    extra(
        "delete.retention.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some("86400000"),
    ),
    extra(
        "file.delete.delay.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some("60000"),
    ),
    extra(
        "follower.replication.throttled.replicas",
        Check::Text,
        ConfigType::List,
        Some(""),
    ),
    extra(
        "leader.replication.throttled.replicas",
        Check::Text,
        ConfigType::List,
        Some(""),
    ),
    extra(
        "local.retention.bytes",
        Check::Int(-2, i64::MAX),
        ConfigType::Long,
        Some("-2"),
    ),
    extra(
        "local.retention.ms",
        Check::Int(-2, i64::MAX),
        ConfigType::Long,
        Some("-2"),
    ),
    extra(
        "max.compaction.lag.ms",
        Check::Int(1, i64::MAX),
        ConfigType::Long,
        Some(LONG_MAX),
    ),
    extra(
        "message.downconversion.enable",
        Check::Bool,
        ConfigType::String,
        None,
    ),
    extra(
        "message.format.version",
        Check::Text,
        ConfigType::String,
        None,
    ),
    extra(
        "message.timestamp.after.max.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some(LONG_MAX),
    ),
    extra(
        "message.timestamp.before.max.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some(LONG_MAX),
    ),
    extra(
        "message.timestamp.difference.max.ms",
        Check::Int(0, i64::MAX),
        ConfigType::String,
        None,
    ),
    extra(
        "min.cleanable.dirty.ratio",
        Check::Ratio,
        ConfigType::Double,
        Some("0.5"),
    ),
    extra(
        "min.compaction.lag.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some("0"),
    ),
    extra(
        "preallocate",
        Check::Bool,
        ConfigType::Boolean,
        Some("false"),
    ),
    extra(
        "remote.log.copy.disable",
        Check::Bool,
        ConfigType::Boolean,
        Some("false"),
    ),
    extra(
        "remote.log.delete.on.disable",
        Check::Bool,
        ConfigType::Boolean,
        Some("false"),
    ),
    extra(
        "remote.storage.enable",
        Check::Bool,
        ConfigType::Boolean,
        Some("false"),
    ),
    extra(
        "segment.index.bytes",
        Check::Int(4, I32_MAX),
        ConfigType::Int,
        Some("10485760"),
    ),
    extra(
        "segment.jitter.ms",
        Check::Int(0, i64::MAX),
        ConfigType::Long,
        Some("0"),
    ),
];

/// The topic key named `name`, and whether Strom acts on it.
pub fn topic_key(name: &str) -> Option<(&'static TopicKey, bool)> {
    if let Some(key) = TOPIC_KEYS.iter().find(|k| k.name == name) {
        return Some((key, true));
    }
    EXTRA_TOPIC_KEYS
        .iter()
        .find(|k| k.name == name)
        .map(|k| (k, false))
}
