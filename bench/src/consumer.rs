//! A consumer task: for each leader of its partitions, a Fetch loop from the
//! offsets the topic had when the run began (no consumer group). It counts
//! every record per partition, checks offsets are contiguous, and records
//! end-to-end latency (receipt − the intended send time stamped in the
//! value). It stops once every partition has yielded what the producers had
//! acknowledged, or when the drain time after the producers ends runs out.

use crate::admin::TopicLayout;
use crate::batch::walk_batches;
use crate::error::BenchError;
use crate::shared::{Shared, NOT_STARTED};
use crate::stats::Latency;
use crate::workload::ConsumerSpec;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use strom_net::client::error_name;

/// What one consumer task is to do. Plain data, built on the main thread.
#[derive(Clone)]
pub struct ConsumerPlan {
    pub id: u32,
    pub topic: Arc<TopicLayout>,
    /// Partition numbers this consumer reads.
    pub partitions: Vec<usize>,
    pub spec: ConsumerSpec,
    pub warmup: Duration,
    pub drain_timeout: Duration,
}

/// What a consumer hands back.
#[derive(Default)]
pub struct ConsumerResult {
    /// (partition, records received).
    pub received: Vec<(usize, u64)>,
    pub bytes: u64,
    /// Offsets skipped over (records that never came).
    pub gaps: u64,
    /// Fetch requests sent, and those that brought no record.
    pub fetches: u64,
    pub empty_fetches: u64,
    pub first_receive_us: Option<u64>,
    pub last_receive_us: u64,
    pub latency: Latency,
    pub error_messages: Vec<String>,
}

impl ConsumerResult {
    fn merge(&mut self, other: ConsumerResult) {
        self.received.extend(other.received);
        self.bytes += other.bytes;
        self.gaps += other.gaps;
        self.fetches += other.fetches;
        self.empty_fetches += other.empty_fetches;
        self.first_receive_us = match (self.first_receive_us, other.first_receive_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_receive_us = self.last_receive_us.max(other.last_receive_us);
        self.latency.merge(&other.latency);
        self.error_messages.extend(other.error_messages);
    }
}

/// Runs one consumer to completion. Failures are reported to `shared` too.
pub async fn run(plan: ConsumerPlan, shared: Arc<Shared>) -> ConsumerResult {
    let mut by_leader: Vec<Vec<usize>> = vec![Vec::new(); plan.topic.brokers.len()];
    for &p in &plan.partitions {
        by_leader[plan.topic.partitions[p].leader].push(p);
    }
    let mut tasks = Vec::new();
    for (leader, partitions) in by_leader.into_iter().enumerate() {
        if partitions.is_empty() {
            continue;
        }
        let plan = plan.clone();
        let shared = shared.clone();
        tasks.push(glommio::spawn_local(async move {
            let mut result = ConsumerResult::default();
            if let Err(err) = fetch_loop(&plan, leader, &partitions, &shared, &mut result).await {
                let message = format!("consumer {}: {err}", plan.id);
                shared.fail(message.clone());
                result.error_messages.push(message);
            }
            result
        }));
    }
    let mut total = ConsumerResult::default();
    for task in tasks {
        total.merge(task.await);
    }
    total
}

async fn fetch_loop(
    plan: &ConsumerPlan,
    leader: usize,
    partitions: &[usize],
    shared: &Shared,
    result: &mut ConsumerResult,
) -> Result<(), BenchError> {
    let broker = &plan.topic.brokers[leader];
    let mut conn = crate::connect::connect(broker).await?;
    let version = conn.versions.pick(broker, ApiKey::Fetch)?;
    let mut offsets: Vec<i64> = partitions
        .iter()
        .map(|&p| plan.topic.partitions[p].start_offset)
        .collect();
    let mut received = vec![0u64; partitions.len()];
    // Record what we have even when we stop early.
    let report = |received: &[u64], result: &mut ConsumerResult| {
        result.received = partitions
            .iter()
            .copied()
            .zip(received.iter().copied())
            .collect();
    };
    let Some(start_us) = shared.wait_for_start().await else {
        report(&received, result);
        return Ok(());
    };
    while !shared.consumers_go.load(Ordering::Acquire) {
        if shared.aborted() {
            report(&received, result);
            return Ok(());
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let warmup_end = start_us + plan.warmup.as_micros() as u64;
    let topic_name = TopicName(StrBytes::from_string(plan.topic.name.clone()));
    loop {
        if shared.aborted() {
            break;
        }
        let done_us = shared.producers_done_us.load(Ordering::Acquire);
        if done_us != NOT_STARTED {
            let all_in = partitions
                .iter()
                .zip(&received)
                .all(|(&p, &got)| got >= shared.produced[p].load(Ordering::Acquire));
            if all_in {
                break;
            }
            if shared.now_us() > done_us + plan.drain_timeout.as_micros() as u64 {
                result.error_messages.push(format!(
                    "consumer {}: gave up {} s after the producers stopped",
                    plan.id,
                    plan.drain_timeout.as_secs()
                ));
                break;
            }
        }
        let request = fetch_request(plan, &topic_name, partitions, &offsets);
        conn.writer.send(ApiKey::Fetch, version, &request).await?;
        let mut body = conn.reader.read_body(ApiKey::Fetch, version).await?;
        let now = shared.now_us();
        let response = FetchResponse::decode(&mut body, version)
            .map_err(|e| BenchError::protocol(broker, ApiKey::Fetch, e.to_string()))?;
        if response.error_code != 0 {
            return Err(BenchError::kafka(
                broker,
                ApiKey::Fetch,
                response.error_code,
                "",
            ));
        }
        let bytes_before = result.bytes;
        for data in response.responses.iter().flat_map(|t| t.partitions.iter()) {
            let Some(slot) = partitions
                .iter()
                .position(|&p| p as i32 == data.partition_index)
            else {
                continue;
            };
            if data.error_code != 0 {
                return Err(BenchError::kafka(
                    broker,
                    ApiKey::Fetch,
                    data.error_code,
                    &format!(
                        ": {}-{} at offset {} ({})",
                        plan.topic.name,
                        data.partition_index,
                        offsets[slot],
                        error_name(data.error_code)
                    ),
                ));
            }
            let Some(records) = data.records.as_ref() else {
                continue;
            };
            let before = received[slot];
            let next = walk_batches(records, |r| {
                if r.offset < offsets[slot] {
                    return; // earlier records of the first batch
                }
                if r.offset > offsets[slot] {
                    result.gaps += (r.offset - offsets[slot]) as u64;
                }
                offsets[slot] = r.offset + 1;
                received[slot] += 1;
                result.bytes += r.value_bytes as u64;
                if let Some(t) = r.intended_us {
                    if t >= warmup_end {
                        result.latency.record(now.saturating_sub(t));
                    }
                }
            })
            .map_err(|e| {
                BenchError::protocol(
                    broker,
                    ApiKey::Fetch,
                    format!("{}-{}: {e}", plan.topic.name, data.partition_index),
                )
            })?;
            if let Some(next) = next {
                offsets[slot] = offsets[slot].max(next);
            }
            let got = received[slot] - before;
            if got > 0 {
                result.first_receive_us.get_or_insert(now);
                result.last_receive_us = now;
                shared.received_total.fetch_add(got, Ordering::AcqRel);
            }
        }
        result.fetches += 1;
        if result.bytes == bytes_before {
            result.empty_fetches += 1;
        }
        shared
            .received_bytes
            .fetch_add(result.bytes - bytes_before, Ordering::AcqRel);
    }
    report(&received, result);
    Ok(())
}

fn fetch_request(
    plan: &ConsumerPlan,
    topic_name: &TopicName,
    partitions: &[usize],
    offsets: &[i64],
) -> FetchRequest {
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = plan.spec.fetch_max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = plan.spec.fetch_max_bytes;
    request.isolation_level = 0;
    request.session_id = 0;
    request.session_epoch = -1;
    let mut topic = FetchTopic::default();
    topic.topic = topic_name.clone();
    topic.partitions = partitions
        .iter()
        .zip(offsets)
        .map(|(&p, &offset)| {
            let mut fp = FetchPartition::default();
            fp.partition = p as i32;
            fp.current_leader_epoch = -1;
            fp.fetch_offset = offset;
            fp.last_fetched_epoch = -1;
            fp.log_start_offset = -1;
            fp.partition_max_bytes = plan.spec.partition_max_bytes;
            fp
        })
        .collect();
    request.topics = vec![topic];
    request
}
