//! Metrics: every shard keeps its own counters (plain `Cell`s, no atomics,
//! no sharing); a scrape of `/metrics` asks every shard for a snapshot
//! (`Shard::metrics_snapshot`) and merges them into Prometheus text.
//!
//! # Names
//!
//! One scheme, `strom_<area>_<what>[_<unit>][_total]`, units last (seconds,
//! bytes), counters end in `_total`, histograms in seconds. Labels: `shard`
//! for per-shard series, `topic` and `partition` for per-partition ones,
//! `api` (Kafka's API name) for requests, `group` for consumer groups.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `strom_build_info` | gauge | version | always 1 |
//! | `strom_uptime_seconds` | gauge | | since start |
//! | `strom_shards` | gauge | | shard count |
//! | `strom_connections` | gauge | shard | open client connections |
//! | `strom_connections_accepted_total` | counter | shard | |
//! | `strom_kafka_requests_total` | counter | shard, api | requests answered (or, for acks=0, handled) |
//! | `strom_kafka_request_latency_seconds` | histogram | shard, api | from the whole request read to the response written |
//! | `strom_kafka_request_bytes_total` / `strom_kafka_response_bytes_total` | counter | shard | on the wire, size prefixes included |
//! | `strom_produce_requests_in_flight` / `strom_fetch_requests_in_flight` | gauge | shard | produce / fetch requests being handled (queue depth) |
//! | `strom_cross_shard_messages_total` | counter | shard | messages sent to other shards |
//! | `strom_reactor_stall_seconds_total` | counter | shard | time a 10 ms timer fired late: how long the shard's tasks kept the reactor from running others |
//! | `strom_reactor_stalls_total` | counter | shard | timer lateness above 10 ms |
//! | `strom_storage_fsync_latency_seconds` | histogram | shard | each `fdatasync` of a group-commit round |
//! | `strom_partition_bytes_in_total` / `strom_partition_records_in_total` | counter | topic, partition | appended |
//! | `strom_partition_bytes_out_total` / `strom_partition_records_out_total` | counter | topic, partition | fetched (records: offsets a consumer advanced by) |
//! | `strom_partition_log_start_offset` / `strom_partition_log_end_offset` / `strom_partition_high_watermark` | gauge | topic, partition | |
//! | `strom_partition_segments` / `strom_partition_size_bytes` | gauge | topic, partition | segment files and their bytes |
//! | `strom_partition_leader` | gauge | topic, partition | 1 where this broker leads the partition, 0 where it follows (or no leader) |
//! | `strom_partition_replicas` / `strom_partition_in_sync_replicas` | gauge | topic, partition | replicas; ISR members (as the leader knows them; 0 on followers) |
//! | `strom_partition_under_replicated` | gauge | topic, partition | 1 where this broker leads and the ISR is smaller than the replica set |
//! | `strom_partition_replica_bytes_out_total` | counter | topic, partition | bytes sent to followers |
//! | `strom_partition_duplicate_batches_total` | counter | topic, partition | retried batches of idempotent producers answered with their first offsets, not written again |
//! | `strom_partition_producers` | gauge | topic, partition | idempotent producer ids the partition keeps state for |
//! | `strom_partition_last_stable_offset` | gauge | topic, partition | where read_committed consumers stop: the first offset of the oldest open transaction, or the high watermark |
//! | `strom_partition_open_transactions` | gauge | topic, partition | transactions with records here and no marker yet |
//! | `strom_transactions_ended_total` | counter | shard, outcome | transactions this shard's coordinator ended: `commit`, `abort` (by the client), `timeout` (open past its timeout), `fenced` (a new producer with the same id) |
//! | `strom_transactional_ids` | gauge | shard | transactional ids this shard coordinates |
//! | `strom_group_members` | gauge | group, state | members of a consumer group |
//! | `strom_group_committed_offset` / `strom_group_lag` | gauge | group, topic, partition | committed offset; high watermark − committed offset |
//! | `strom_storage_*_total` | counter | | recovery and disk-full counters of `strom_storage::metrics` |
//!
//! Counters per partition start at zero when the partition is opened (at
//! start-up, or on the shard that owns it); Prometheus' `rate()` handles the
//! reset.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Appends one line to the exposition text. The text is a `String`, whose
/// `fmt::Write` never fails, so there is no I/O result here to keep.
macro_rules! emit {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).expect("a String takes any text")
    };
}
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS_SECONDS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket latency histogram (Prometheus' cumulative form at render).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Count per bucket (not cumulative); the last is above every bound.
    buckets: [u64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let index = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[index] += 1;
        self.sum_seconds += secs;
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends the histogram's lines to `out` (a `String`: `fmt::Write`
    /// into it cannot fail, hence the ignored results; nothing touches a
    /// file here).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in LATENCY_BUCKETS_SECONDS.iter().zip(self.buckets.iter()) {
            cumulative += count;
            emit!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[LATENCY_BUCKETS_SECONDS.len()];
        emit!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        emit!(out, "{name}_sum{{{labels}}} {}", self.sum_seconds);
        emit!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// One shard's own counters. Touched only on that shard.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// By Kafka API key.
    requests: RefCell<BTreeMap<i16, Histogram>>,
    pub request_bytes: Cell<u64>,
    pub response_bytes: Cell<u64>,
    pub connections_accepted: Cell<u64>,
    pub produce_in_flight: Cell<u64>,
    pub fetch_in_flight: Cell<u64>,
    pub cross_shard_messages: Cell<u64>,
    pub stall_seconds: Cell<f64>,
    pub stalls: Cell<u64>,
    fsync: RefCell<Histogram>,
    /// Transactions ended by this shard's coordinator, by outcome.
    pub txn_commits: Cell<u64>,
    pub txn_aborts: Cell<u64>,
    pub txn_timeouts: Cell<u64>,
    pub txn_fenced: Cell<u64>,
}

impl ShardMetrics {
    pub fn request_done(&self, api_key: i16, elapsed: Duration) {
        self.requests
            .borrow_mut()
            .entry(api_key)
            .or_default()
            .observe(elapsed);
    }

    pub fn fsync_done(&self, elapsed: Duration) {
        self.fsync.borrow_mut().observe(elapsed);
    }

    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().wrapping_add(n));
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(cell: &Cell<u64>) -> InFlight<'_> {
        cell.set(cell.get() + 1);
        InFlight(cell)
    }
}

/// Decrements an in-flight gauge when dropped.
pub struct InFlight<'a>(&'a Cell<u64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Per-partition counters, kept in the partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounters {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
    pub records_out: u64,
    /// Bytes sent to followers (replica fetches), not counted in `bytes_out`.
    pub replica_bytes_out: u64,
    /// Retried batches of idempotent producers answered without writing.
    pub duplicate_batches: u64,
}

/// One partition at scrape time.
#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub counters: PartitionCounters,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub segments: u64,
    pub size_bytes: u64,
    /// Whether this broker leads it.
    pub leader: bool,
    pub replicas: u64,
    /// ISR members as the leader knows them (0 when not leading).
    pub in_sync_replicas: u64,
    /// Idempotent producer ids with state here.
    pub producers: u64,
    pub last_stable_offset: i64,
    pub open_transactions: u64,
}

/// One group at scrape time (on its coordinator shard).
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub group: String,
    pub state: &'static str,
    pub members: u64,
    /// (topic, partition, committed offset).
    pub offsets: Vec<(String, i32, i64)>,
}

/// Everything one shard reports to a scrape (sent between shards).
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub connections: u64,
    pub connections_accepted: u64,
    pub requests: Vec<(i16, Histogram)>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub produce_in_flight: u64,
    pub fetch_in_flight: u64,
    pub cross_shard_messages: u64,
    pub stall_seconds: f64,
    pub stalls: u64,
    pub fsync: Histogram,
    pub partitions: Vec<PartitionSnapshot>,
    pub groups: Vec<GroupSnapshot>,
    /// Transactions ended: commit, abort, timeout, fenced.
    pub txn_ended: [u64; 4],
    /// Transactional ids coordinated here.
    pub transactional_ids: u64,
}

impl ShardMetrics {
    /// The shard-level part of a snapshot (partitions and groups are added
    /// by the shard).
    pub fn snapshot(&self, shard: usize, connections: u64) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            connections,
            connections_accepted: self.connections_accepted.get(),
            requests: self
                .requests
                .borrow()
                .iter()
                .map(|(k, h)| (*k, h.clone()))
                .collect(),
            request_bytes: self.request_bytes.get(),
            response_bytes: self.response_bytes.get(),
            produce_in_flight: self.produce_in_flight.get(),
            fetch_in_flight: self.fetch_in_flight.get(),
            cross_shard_messages: self.cross_shard_messages.get(),
            stall_seconds: self.stall_seconds.get(),
            stalls: self.stalls.get(),
            fsync: self.fsync.borrow().clone(),
            partitions: Vec::new(),
            groups: Vec::new(),
            txn_ended: [
                self.txn_commits.get(),
                self.txn_aborts.get(),
                self.txn_timeouts.get(),
                self.txn_fenced.get(),
            ],
            transactional_ids: 0,
        }
    }
}

/// Period of the stall watch timer.
const STALL_TICK: Duration = Duration::from_millis(10);
/// Lateness below this is timer noise, not a stall.
const STALL_NOISE: Duration = Duration::from_millis(2);

/// Runs for the shard's life: a 10 ms timer whose lateness is time the
/// shard's tasks kept the reactor busy (a long synchronous stretch: a big
/// memcpy, a blocking syscall). Adds lateness above `STALL_NOISE` (timer
/// resolution and scheduling noise of an idle shard) to `stall_seconds`,
/// and counts lateness above one tick as a stall.
pub async fn watch_stalls(m: &ShardMetrics) {
    loop {
        let started = std::time::Instant::now();
        glommio::timer::sleep(STALL_TICK).await;
        let late = started.elapsed().saturating_sub(STALL_TICK);
        if late > STALL_NOISE {
            m.stall_seconds
                .set(m.stall_seconds.get() + late.as_secs_f64());
            if late > STALL_TICK {
                ShardMetrics::add(&m.stalls, 1);
            }
        }
    }
}

/// Process-wide facts for the render.
pub struct Process {
    pub version: &'static str,
    pub uptime: Duration,
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    emit!(out, "# HELP {name} {help}");
    emit!(out, "# TYPE {name} {kind}");
}

/// Prometheus text (version 0.0.4) of all shards' snapshots.
/// Prometheus text (version 0.0.4) of all shards' snapshots.
pub fn render(process: &Process, shards: &[ShardSnapshot]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    render_process(&mut out, process, shards.len());
    render_shards(&mut out, shards);
    render_latencies(&mut out, shards);
    render_partitions(&mut out, shards);
    render_groups(&mut out, shards);
    render_storage(&mut out);
    out
}

/// Build, uptime and shard count.
fn render_process(out: &mut String, process: &Process, shard_count: usize) {
    header(out, "strom_build_info", "gauge", "Strom version.");
    emit!(
        out,
        "strom_build_info{{version=\"{}\"}} 1",
        label(process.version)
    );
    header(
        out,
        "strom_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
    );
    emit!(out, "strom_uptime_seconds {}", process.uptime.as_secs_f64());
    header(
        out,
        "strom_shards",
        "gauge",
        "Shards (one pinned thread each).",
    );
    emit!(out, "strom_shards {}", shard_count);
}

/// Per-shard gauges and counters.
fn render_shards(out: &mut String, shards: &[ShardSnapshot]) {
    type Field = fn(&ShardSnapshot) -> String;
    let per_shard: [(&str, &str, &str, Field); 12] = [
        (
            "strom_transactional_ids",
            "gauge",
            "Transactional ids this shard coordinates.",
            |s| s.transactional_ids.to_string(),
        ),
        (
            "strom_transactions_ended_total",
            "counter",
            "Transactions this shard's coordinator ended, by outcome.",
            |_| String::new(),
        ),
        (
            "strom_connections",
            "gauge",
            "Open client connections.",
            |s| s.connections.to_string(),
        ),
        (
            "strom_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            |s| s.connections_accepted.to_string(),
        ),
        (
            "strom_kafka_request_bytes_total",
            "counter",
            "Request bytes received, size prefixes included.",
            |s| s.request_bytes.to_string(),
        ),
        (
            "strom_kafka_response_bytes_total",
            "counter",
            "Response bytes sent, size prefixes included.",
            |s| s.response_bytes.to_string(),
        ),
        (
            "strom_produce_requests_in_flight",
            "gauge",
            "Produce requests being handled.",
            |s| s.produce_in_flight.to_string(),
        ),
        (
            "strom_fetch_requests_in_flight",
            "gauge",
            "Fetch requests being handled (long polls included).",
            |s| s.fetch_in_flight.to_string(),
        ),
        (
            "strom_cross_shard_messages_total",
            "counter",
            "Messages sent to other shards.",
            |s| s.cross_shard_messages.to_string(),
        ),
        (
            "strom_reactor_stall_seconds_total",
            "counter",
            "Seconds a 10 ms timer fired late on the shard.",
            |s| s.stall_seconds.to_string(),
        ),
        (
            "strom_reactor_stalls_total",
            "counter",
            "Times a 10 ms timer fired more than 10 ms late.",
            |s| s.stalls.to_string(),
        ),
        (
            "strom_kafka_requests_total",
            "counter",
            "Kafka requests handled, by API.",
            |_| String::new(),
        ),
    ];
    for (name, kind, help, field) in per_shard {
        header(out, name, kind, help);
        for s in shards {
            if name == "strom_transactions_ended_total" {
                for (outcome, n) in ["commit", "abort", "timeout", "fenced"]
                    .iter()
                    .zip(s.txn_ended)
                {
                    emit!(
                        out,
                        "{name}{{shard=\"{}\",outcome=\"{outcome}\"}} {n}",
                        s.shard
                    );
                }
            } else if name == "strom_kafka_requests_total" {
                for (api, h) in &s.requests {
                    emit!(
                        out,
                        "{name}{{shard=\"{}\",api=\"{}\"}} {}",
                        s.shard,
                        api_name(*api),
                        h.count()
                    );
                }
            } else {
                emit!(out, "{name}{{shard=\"{}\"}} {}", s.shard, field(s));
            }
        }
    }
}

/// Request and fsync latency histograms.
fn render_latencies(out: &mut String, shards: &[ShardSnapshot]) {
    let name = "strom_kafka_request_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from a request read to its response written.",
    );
    for s in shards {
        for (api, h) in &s.requests {
            let labels = format!("shard=\"{}\",api=\"{}\"", s.shard, api_name(*api));
            h.render(out, name, &labels);
        }
    }
    let name = "strom_storage_fsync_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Latency of each fdatasync of a group-commit round.",
    );
    for s in shards {
        s.fsync.render(out, name, &format!("shard=\"{}\"", s.shard));
    }
}

/// Per-partition gauges and counters, ordered by topic and partition.
fn render_partitions(out: &mut String, shards: &[ShardSnapshot]) {
    let mut partitions: Vec<&PartitionSnapshot> =
        shards.iter().flat_map(|s| s.partitions.iter()).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    type PField = fn(&PartitionSnapshot) -> i64;
    let per_partition: [(&str, &str, &str, PField); 18] = [
        (
            "strom_partition_last_stable_offset",
            "gauge",
            "Where read_committed consumers stop: the first offset of the oldest open transaction, or the high watermark.",
            |p| p.last_stable_offset,
        ),
        (
            "strom_partition_open_transactions",
            "gauge",
            "Transactions with records here and no marker yet.",
            |p| p.open_transactions as i64,
        ),
        (
            "strom_partition_duplicate_batches_total",
            "counter",
            "Retried batches of idempotent producers answered without writing them again.",
            |p| p.counters.duplicate_batches as i64,
        ),
        (
            "strom_partition_producers",
            "gauge",
            "Idempotent producer ids this partition keeps state for.",
            |p| p.producers as i64,
        ),
        (
            "strom_partition_bytes_in_total",
            "counter",
            "Bytes appended.",
            |p| p.counters.bytes_in as i64,
        ),
        (
            "strom_partition_records_in_total",
            "counter",
            "Records appended.",
            |p| p.counters.records_in as i64,
        ),
        (
            "strom_partition_bytes_out_total",
            "counter",
            "Bytes fetched.",
            |p| p.counters.bytes_out as i64,
        ),
        (
            "strom_partition_records_out_total",
            "counter",
            "Offsets consumers advanced by through fetches.",
            |p| p.counters.records_out as i64,
        ),
        (
            "strom_partition_log_start_offset",
            "gauge",
            "First offset kept.",
            |p| p.log_start_offset,
        ),
        (
            "strom_partition_log_end_offset",
            "gauge",
            "Offset of the next record appended.",
            |p| p.log_end_offset,
        ),
        (
            "strom_partition_high_watermark",
            "gauge",
            "Offset below which consumers read.",
            |p| p.high_watermark,
        ),
        ("strom_partition_segments", "gauge", "Segment files.", |p| {
            p.segments as i64
        }),
        (
            "strom_partition_size_bytes",
            "gauge",
            "Bytes of the partition's segment files.",
            |p| p.size_bytes as i64,
        ),
        (
            "strom_partition_leader",
            "gauge",
            "1 where this broker leads the partition.",
            |p| i64::from(p.leader),
        ),
        (
            "strom_partition_replicas",
            "gauge",
            "Replicas of the partition.",
            |p| p.replicas as i64,
        ),
        (
            "strom_partition_in_sync_replicas",
            "gauge",
            "In-sync replicas as the leader knows them (0 where not leading).",
            |p| p.in_sync_replicas as i64,
        ),
        (
            "strom_partition_under_replicated",
            "gauge",
            "1 where this broker leads and not every replica is in sync.",
            |p| i64::from(p.leader && p.in_sync_replicas < p.replicas),
        ),
        (
            "strom_partition_replica_bytes_out_total",
            "counter",
            "Bytes sent to followers.",
            |p| p.counters.replica_bytes_out as i64,
        ),
    ];
    for (name, kind, help, field) in per_partition {
        header(out, name, kind, help);
        for p in &partitions {
            emit!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\"}} {}",
                label(&p.topic),
                p.partition,
                field(p)
            );
        }
    }
}

/// Consumer groups: members, committed offsets and lag.
fn render_groups(out: &mut String, shards: &[ShardSnapshot]) {
    let high_watermarks: BTreeMap<(&str, i32), i64> = shards
        .iter()
        .flat_map(|s| s.partitions.iter())
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    let mut groups: Vec<&GroupSnapshot> = shards.iter().flat_map(|s| s.groups.iter()).collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    header(
        out,
        "strom_group_members",
        "gauge",
        "Members of a consumer group.",
    );
    for g in &groups {
        emit!(
            out,
            "strom_group_members{{group=\"{}\",state=\"{}\"}} {}",
            label(&g.group),
            g.state,
            g.members
        );
    }
    header(
        out,
        "strom_group_committed_offset",
        "gauge",
        "Offset a group committed.",
    );
    for g in &groups {
        for (topic, partition, offset) in &g.offsets {
            emit!(
                out,
                "strom_group_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {offset}",
                label(&g.group),
                label(topic)
            );
        }
    }
    header(
        out,
        "strom_group_lag",
        "gauge",
        "High watermark minus the committed offset.",
    );
    for g in &groups {
        for (topic, partition, offset) in &g.offsets {
            if let Some(hw) = high_watermarks.get(&(topic.as_str(), *partition)) {
                emit!(
                    out,
                    "strom_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {}",
                    label(&g.group),
                    label(topic),
                    (hw - offset).max(0)
                );
            }
        }
    }
}

/// Process-wide storage counters.
fn render_storage(out: &mut String) {
    use strom_storage::metrics as storage;
    let storage_counters = [
        (
            "strom_storage_corrupt_batch_truncations_total",
            "Logs truncated at a corrupt batch in the middle during recovery.",
            &storage::CORRUPT_BATCH_TRUNCATIONS,
        ),
        (
            "strom_storage_torn_tail_truncations_total",
            "Torn tails cut during recovery.",
            &storage::TORN_TAIL_TRUNCATIONS,
        ),
        (
            "strom_storage_truncated_bytes_total",
            "Bytes removed by recovery.",
            &storage::TRUNCATED_BYTES,
        ),
        (
            "strom_storage_index_rebuilds_total",
            "Index files rebuilt from their log.",
            &storage::INDEX_REBUILDS,
        ),
        (
            "strom_storage_segments_deleted_total",
            "Segments removed by retention or DeleteRecords.",
            &storage::SEGMENTS_DELETED,
        ),
        (
            "strom_storage_no_space_appends_total",
            "Appends refused for lack of disk space.",
            &storage::NO_SPACE_APPENDS,
        ),
    ];
    for (name, help, counter) in storage_counters {
        header(out, name, "counter", help);
        emit!(out, "{name} {}", counter.get());
    }
}

/// Kafka's name of an API key (`Produce`, `Fetch`, ...).
pub fn api_name(key: i16) -> String {
    kafka_protocol::messages::ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("Api{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_merge() {
        let mut a = Histogram::default();
        a.observe(Duration::from_micros(30));
        a.observe(Duration::from_millis(3));
        let mut b = Histogram::default();
        b.observe(Duration::from_secs(60));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        let mut out = String::new();
        a.render(&mut out, "x", "shard=\"0\"");
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"0.00005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{shard=\"0\",le=\"10\"} 2\n"), "{out}");
        assert!(
            out.contains("x_bucket{shard=\"0\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{shard=\"0\"} 3\n"), "{out}");
    }

    #[test]
    fn render_merges_shards_and_computes_lag() {
        let mut s0 = ShardSnapshot {
            shard: 0,
            connections: 2,
            ..ShardSnapshot::default()
        };
        s0.partitions.push(PartitionSnapshot {
            topic: "t\"x".into(),
            partition: 1,
            counters: PartitionCounters {
                bytes_in: 100,
                records_in: 10,
                bytes_out: 0,
                records_out: 0,
                replica_bytes_out: 0,
                duplicate_batches: 0,
            },
            log_start_offset: 0,
            log_end_offset: 10,
            high_watermark: 10,
            leader: true,
            replicas: 3,
            in_sync_replicas: 2,
            producers: 0,
            last_stable_offset: 7,
            open_transactions: 1,
            segments: 1,
            size_bytes: 100,
        });
        let mut s1 = ShardSnapshot {
            shard: 1,
            ..ShardSnapshot::default()
        };
        s1.groups.push(GroupSnapshot {
            group: "g".into(),
            state: "Stable",
            members: 1,
            offsets: vec![("t\"x".into(), 1, 4)],
        });
        let text = render(
            &Process {
                version: "0.1.0",
                uptime: Duration::from_secs(5),
            },
            &[s0, s1],
        );
        assert!(text.contains("strom_connections{shard=\"0\"} 2\n"));
        assert!(text
            .contains("strom_partition_records_in_total{topic=\"t\\\"x\",partition=\"1\"} 10\n"));
        assert!(text.contains("strom_group_lag{group=\"g\",topic=\"t\\\"x\",partition=\"1\"} 6\n"));
        assert!(text.contains("# TYPE strom_kafka_request_latency_seconds histogram\n"));
    }
}
