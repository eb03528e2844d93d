//! Workload files (`bench/workloads/*.toml`), in the spirit of the
//! OpenMessaging Benchmark's workload YAML. Every key, its unit and default
//! is documented on the struct fields; all problems in a file are reported
//! together.
//!
//! ```toml
//! name = "max-throughput"
//! description = "1 topic, 16 partitions, 1 KB messages, as fast as it goes"
//! [topic]
//! partitions = 16
//! config = { "write.caching" = "false" }
//! [producer]
//! producers = 2
//! message_bytes = 1024
//! [consumer]
//! consumers = 2
//! [run]
//! duration_s = 30
//! ```

use crate::batch::{Codec, VALUE_STAMP_BYTES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Most partitions a workload may ask for.
pub const PARTITIONS_MAX: u32 = 10_000;
/// Most producer or consumer tasks.
pub const TASKS_MAX: u32 = 256;
/// Largest message, 16 MiB.
pub const MESSAGE_BYTES_MAX: usize = 16 << 20;
/// Largest batch, 16 MiB.
pub const BATCH_BYTES_MAX: usize = 16 << 20;
/// Most requests in flight per connection.
pub const IN_FLIGHT_MAX: u32 = 64;
/// Longest run, one hour.
pub const DURATION_S_MAX: u64 = 3_600;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Short name, used in topic names and file names.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub topic: TopicSpec,
    #[serde(default)]
    pub producer: ProducerSpec,
    #[serde(default)]
    pub consumer: ConsumerSpec,
    #[serde(default)]
    pub run: RunSpec,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSpec {
    /// Partitions of the (fresh) topic. Default 16; 1..=10,000.
    pub partitions: u32,
    /// Topic configs set at creation (Kafka names; e.g. Strom's
    /// `write.caching`). Default none.
    pub config: BTreeMap<String, String>,
}

impl Default for TopicSpec {
    fn default() -> Self {
        TopicSpec {
            partitions: 16,
            config: BTreeMap::new(),
        }
    }
}

/// How record keys are chosen.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// No key; the sticky partitioner fills one partition's batch, then moves on.
    #[default]
    None,
    /// Keys `0..key_space` in turn; partition by murmur2 as Kafka does.
    RoundRobin,
    /// Uniformly random keys in `0..key_space`; partition by murmur2.
    Random,
}

/// `acks` of the produce requests.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum Acks {
    #[serde(rename = "0")]
    None,
    #[serde(rename = "1")]
    Leader,
    /// -1: every in-sync replica (on Strom with `write.caching=false`: after fsync).
    #[default]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    pub fn parse(text: &str) -> Option<Acks> {
        Some(match text {
            "0" => Acks::None,
            "1" => Acks::Leader,
            "all" | "-1" => Acks::All,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSpec {
    /// Producer tasks, each with its own connection per partition leader.
    /// Default 2; 1..=256.
    pub producers: u32,
    /// Bytes of each record's value (the first 8 carry the send time).
    /// Default 1024; 8..=16 MiB.
    pub message_bytes: usize,
    /// Default `none`.
    pub key_distribution: KeyDistribution,
    /// Distinct keys for keyed distributions. Default 10,000.
    pub key_space: u64,
    /// A partition's batch is sent when its uncompressed size reaches this.
    /// Default 131,072 (128 KiB); up to 16 MiB.
    pub batch_bytes: usize,
    /// A batch is sent at the latest this long after its first record.
    /// Default 1 ms.
    pub linger_ms: u64,
    /// Default `all`.
    pub acks: Acks,
    /// Default `none`.
    pub compression: Codec,
    /// Total target rate of all producers in messages/s; 0 = as fast as the
    /// broker acknowledges. At most one of the two rates may be set.
    pub rate_msgs_per_s: f64,
    /// Total target rate in MB/s (10^6 bytes of values); 0 = unset.
    pub rate_mb_per_s: f64,
    /// Produce requests in flight per connection. Default 5 (Kafka's
    /// `max.in.flight.requests.per.connection`); 1..=64.
    pub max_in_flight: u32,
    /// Produce request timeout. Default 30,000 ms.
    pub request_timeout_ms: u32,
}

impl Default for ProducerSpec {
    fn default() -> Self {
        ProducerSpec {
            producers: 2,
            message_bytes: 1024,
            key_distribution: KeyDistribution::None,
            key_space: 10_000,
            batch_bytes: 128 << 10,
            linger_ms: 1,
            acks: Acks::All,
            compression: Codec::None,
            rate_msgs_per_s: 0.0,
            rate_mb_per_s: 0.0,
            max_in_flight: 5,
            request_timeout_ms: 30_000,
        }
    }
}

impl ProducerSpec {
    /// The total target rate in messages/s; 0 for unlimited.
    pub fn total_msgs_per_s(&self) -> f64 {
        if self.rate_mb_per_s > 0.0 {
            self.rate_mb_per_s * 1e6 / self.message_bytes as f64
        } else {
            self.rate_msgs_per_s.max(0.0)
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSpec {
    /// Consumer tasks; partition p goes to consumer p mod consumers. 0 = no
    /// consumers (no end-to-end latency). Default 2; 0..=256.
    pub consumers: u32,
    /// Fetch `max_wait_ms`. Default 100.
    pub fetch_max_wait_ms: i32,
    /// Fetch `max_bytes`. Default 52,428,800 (Kafka's).
    pub fetch_max_bytes: i32,
    /// Fetch `partition_max_bytes`. Default 1,048,576 (Kafka's).
    pub partition_max_bytes: i32,
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        ConsumerSpec {
            consumers: 2,
            fetch_max_wait_ms: 100,
            fetch_max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Producers stop after this long. Default 30 s; 1..=3,600.
    pub duration_s: u64,
    /// Producers stop after this many messages in total (0 = no limit); the
    /// first of duration and count ends the run.
    pub messages: u64,
    /// Latencies of messages intended in the first seconds are not recorded
    /// (counts and throughput still include them). Default 0.
    pub warmup_s: u64,
    /// Consumers start only after this many messages were produced, and then
    /// read from the start of the topic: the catch-up (backlog) test. 0 = off.
    pub backlog_messages: u64,
    /// After producers stop, consumers have this long to receive everything.
    /// Default 30 s.
    pub drain_timeout_s: u64,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            duration_s: 30,
            messages: 0,
            warmup_s: 0,
            backlog_messages: 0,
            drain_timeout_s: 30,
        }
    }
}

/// Command-line changes to a workload, applied before validation.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub duration_s: Option<u64>,
    pub messages: Option<u64>,
    pub rate_msgs_per_s: Option<f64>,
    pub rate_mb_per_s: Option<f64>,
    pub acks: Option<Acks>,
    pub compression: Option<Codec>,
    pub backlog_messages: Option<u64>,
    pub warmup_s: Option<u64>,
    pub topic_config: Vec<(String, String)>,
}

impl Workload {
    pub fn load(path: &Path) -> Result<Workload, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Workload::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Workload, String> {
        let workload: Workload = toml::from_str(text).map_err(|e| e.to_string())?;
        workload.validate()?;
        Ok(workload)
    }

    pub fn apply(&mut self, o: &Overrides) -> Result<(), String> {
        if let Some(v) = o.duration_s {
            self.run.duration_s = v;
        }
        if let Some(v) = o.messages {
            self.run.messages = v;
        }
        if let Some(v) = o.rate_msgs_per_s {
            self.producer.rate_msgs_per_s = v;
            self.producer.rate_mb_per_s = 0.0;
        }
        if let Some(v) = o.rate_mb_per_s {
            self.producer.rate_mb_per_s = v;
            self.producer.rate_msgs_per_s = 0.0;
        }
        if let Some(v) = o.acks {
            self.producer.acks = v;
        }
        if let Some(v) = o.compression {
            self.producer.compression = v;
        }
        if let Some(v) = o.backlog_messages {
            self.run.backlog_messages = v;
        }
        if let Some(v) = o.warmup_s {
            self.run.warmup_s = v;
        }
        for (k, v) in &o.topic_config {
            self.topic.config.insert(k.clone(), v.clone());
        }
        self.validate()
    }

    /// Every problem at once, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(what);
            }
        };
        let (t, p, c, r) = (&self.topic, &self.producer, &self.consumer, &self.run);
        check(
            !self.name.is_empty()
                && self
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            format!("name {:?}: letters, digits, - and _ only", self.name),
        );
        check(
            (1..=PARTITIONS_MAX).contains(&t.partitions),
            format!("topic.partitions {}: 1..={PARTITIONS_MAX}", t.partitions),
        );
        check(
            (1..=TASKS_MAX).contains(&p.producers),
            format!("producer.producers {}: 1..={TASKS_MAX}", p.producers),
        );
        check(
            (VALUE_STAMP_BYTES..=MESSAGE_BYTES_MAX).contains(&p.message_bytes),
            format!(
                "producer.message_bytes {}: {VALUE_STAMP_BYTES}..={MESSAGE_BYTES_MAX}",
                p.message_bytes
            ),
        );
        check(
            p.key_distribution == KeyDistribution::None || p.key_space >= 1,
            "producer.key_space must be at least 1 for keyed distributions".into(),
        );
        check(
            (1..=BATCH_BYTES_MAX).contains(&p.batch_bytes),
            format!(
                "producer.batch_bytes {}: 1..={BATCH_BYTES_MAX}",
                p.batch_bytes
            ),
        );
        check(
            p.linger_ms <= 10_000,
            format!("producer.linger_ms {}: 0..=10000", p.linger_ms),
        );
        check(
            p.rate_msgs_per_s >= 0.0
                && p.rate_mb_per_s >= 0.0
                && p.rate_msgs_per_s.is_finite()
                && p.rate_mb_per_s.is_finite(),
            "producer rates must be finite and not negative".into(),
        );
        check(
            !(p.rate_msgs_per_s > 0.0 && p.rate_mb_per_s > 0.0),
            "set producer.rate_msgs_per_s or producer.rate_mb_per_s, not both".into(),
        );
        check(
            (1..=IN_FLIGHT_MAX).contains(&p.max_in_flight),
            format!(
                "producer.max_in_flight {}: 1..={IN_FLIGHT_MAX}",
                p.max_in_flight
            ),
        );
        check(
            p.request_timeout_ms >= 1,
            "producer.request_timeout_ms must be positive".into(),
        );
        check(
            c.consumers <= TASKS_MAX,
            format!("consumer.consumers {}: 0..={TASKS_MAX}", c.consumers),
        );
        check(
            c.fetch_max_wait_ms >= 0 && c.fetch_max_bytes >= 1 && c.partition_max_bytes >= 1,
            "consumer fetch sizes must be positive and max_wait_ms not negative".into(),
        );
        check(
            (1..=DURATION_S_MAX).contains(&r.duration_s),
            format!("run.duration_s {}: 1..={DURATION_S_MAX}", r.duration_s),
        );
        check(
            r.warmup_s < r.duration_s,
            format!(
                "run.warmup_s {} must be shorter than run.duration_s {}",
                r.warmup_s, r.duration_s
            ),
        );
        check(
            r.backlog_messages == 0 || c.consumers > 0,
            "run.backlog_messages needs consumers".into(),
        );
        check(
            r.backlog_messages == 0 || r.messages == 0 || r.backlog_messages < r.messages,
            format!(
                "run.backlog_messages {} must be below run.messages {}",
                r.backlog_messages, r.messages
            ),
        );
        check(
            r.drain_timeout_s >= 1 && r.drain_timeout_s <= DURATION_S_MAX,
            format!(
                "run.drain_timeout_s {}: 1..={DURATION_S_MAX}",
                r.drain_timeout_s
            ),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Parses `key=value`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_workload_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let w = Workload::load(&path).unwrap();
                assert_eq!(
                    path.file_stem().unwrap().to_str().unwrap(),
                    w.name,
                    "file name and workload name agree"
                );
                names.push(w.name);
            }
        }
        assert!(names.len() >= 6, "{names:?}");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let err = Workload::parse(
            "name = 'x y'\n[topic]\npartitions = 0\n[producer]\nmessage_bytes = 2\n\
             rate_msgs_per_s = 1.0\nrate_mb_per_s = 1.0\n",
        )
        .unwrap_err();
        assert_eq!(err.lines().count(), 4, "{err}");
        assert!(Workload::parse("name = 'a'\nbogus = 1\n").is_err());
    }

    #[test]
    fn rates_and_overrides() {
        let mut w =
            Workload::parse("name = 'a'\n[producer]\nmessage_bytes = 1000\nrate_mb_per_s = 50.0\n")
                .unwrap();
        assert_eq!(w.producer.total_msgs_per_s(), 50_000.0);
        w.apply(&Overrides {
            rate_msgs_per_s: Some(10.0),
            acks: Some(Acks::Leader),
            topic_config: vec![("write.caching".into(), "true".into())],
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(w.producer.total_msgs_per_s(), 10.0);
        assert_eq!(w.producer.acks.wire(), 1);
        assert_eq!(w.topic.config["write.caching"], "true");
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("=x").is_err());
    }
}
