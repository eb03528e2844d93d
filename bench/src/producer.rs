//! A producer task: generates messages on its schedule, batches them per
//! partition (full batch or linger), and sends one Produce request per leader
//! with every ready batch, keeping up to `max_in_flight` requests in flight
//! per connection. A reader task per connection takes the responses in order
//! and records produce latency (acknowledgement − intended send time) for
//! every message.
//!
//! Runs on one glommio executor; its stats live in an `Rc<RefCell<_>>` shared
//! only with its own reader tasks (no borrow is held across an `.await`).

use crate::admin::TopicLayout;
use crate::batch::{partition_for_key, BatchBuilder, VALUE_STAMP_BYTES};
use crate::error::BenchError;
use crate::schedule::Schedule;
use crate::shared::Shared;
use crate::stats::Latency;
use crate::workload::{Acks, KeyDistribution, ProducerSpec};
use bytes::BytesMut;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::Semaphore;
use glommio::task::JoinHandle;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use strom_net::client::{FrameReader, FrameWriter};

/// A request is sent once this many bytes of batches are ready (or earlier:
/// linger, end of run).
const READY_BYTES_TARGET: usize = 1 << 20;
/// Shortest sleep between two looks at the schedule: waking for every single
/// message at high rates costs more than it measures.
const SLEEP_MIN: Duration = Duration::from_micros(100);
/// Failure messages a producer keeps.
const ERRORS_KEPT: usize = 5;

/// What one producer task is to do. Plain data, built on the main thread.
#[derive(Clone)]
pub struct ProducerPlan {
    pub id: u32,
    pub producers: u32,
    pub topic: Arc<TopicLayout>,
    pub spec: ProducerSpec,
    /// Total rate of all producers, msgs/s; 0 = unlimited.
    pub total_msgs_per_s: f64,
    /// This producer's share of the message limit (`u64::MAX`: none).
    pub messages: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub payload: Arc<Vec<u8>>,
}

/// What a producer hands back.
#[derive(Default)]
pub struct ProducerResult {
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    pub errors: u64,
    pub error_messages: Vec<String>,
    pub last_ack_us: u64,
    pub latency: Latency,
}

/// Messages of one produce request, in the order of its batches.
struct Pending {
    /// (partition, records, value bytes) per batch.
    batches: Vec<(i32, u32, u64)>,
    /// Intended send time of every record, batch after batch.
    intended_us: Vec<u64>,
}

struct Link {
    writer: FrameWriter,
    version: i16,
    in_flight: Rc<Semaphore>,
    pending: LocalSender<Pending>,
    reader: JoinHandle<Result<(), BenchError>>,
}

struct PartitionState {
    builder: BatchBuilder,
    /// Bumped each time a batch is closed, so stale linger entries are ignored.
    generation: u64,
    ready: bool,
}

/// Runs one producer to completion. Failures are reported to `shared` too.
pub async fn run(plan: ProducerPlan, shared: Arc<Shared>) -> ProducerResult {
    let stats = Rc::new(RefCell::new(ProducerResult::default()));
    let outcome = produce(&plan, &shared, &stats).await;
    shared.producer_finished();
    let mut result = stats.take();
    if let Err(err) = outcome {
        let message = format!("producer {}: {err}", plan.id);
        shared.fail(message.clone());
        result.error_messages.push(message);
    }
    result
}

async fn produce(
    plan: &ProducerPlan,
    shared: &Arc<Shared>,
    stats: &Rc<RefCell<ProducerResult>>,
) -> Result<(), BenchError> {
    let spec = &plan.spec;
    let topic = &plan.topic;
    let mut links = Vec::with_capacity(topic.brokers.len());
    for broker in &topic.brokers {
        links.push(connect(broker, spec, plan, shared, stats).await?);
    }
    let Some(start_us) = shared.wait_for_start().await else {
        return Ok(());
    };
    let schedule = Schedule::share(start_us, plan.total_msgs_per_s, plan.producers, plan.id);
    let stop_at_us = start_us + plan.duration.as_micros() as u64;
    let partitions = topic.partitions.len();
    let mut states: Vec<PartitionState> = (0..partitions)
        .map(|_| PartitionState {
            builder: BatchBuilder::default(),
            generation: 0,
            ready: false,
        })
        .collect();
    let mut linger: VecDeque<(u64, usize, u64)> = VecDeque::new();
    let linger_us = spec.linger_ms * 1000;
    let messages_per_batch = (spec.batch_bytes / spec.message_bytes).max(1) as u64;
    let mut ready: Vec<usize> = Vec::new();
    let mut ready_bytes = 0usize;
    let mut sticky = (plan.id as usize * 7919) % partitions;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ (u64::from(plan.id) << 32 | 1);
    let payload_len = spec.message_bytes - VALUE_STAMP_BYTES;
    let payload_spread = plan.payload.len() - payload_len;
    let mut key_buf = [0u8; 20];
    let mut generated = 0u64;
    loop {
        if shared.aborted() {
            break;
        }
        let now = shared.now_us();
        let finished = generated >= plan.messages || now >= stop_at_us;
        let due = match schedule {
            // Unlimited: everything is due until the time is up.
            Schedule::Unlimited if now >= stop_at_us => generated,
            _ => schedule.due_by(now.min(stop_at_us)).min(plan.messages),
        };
        while generated < due && ready_bytes < READY_BYTES_TARGET {
            let intended = schedule.intended_us(generated, now);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = match spec.key_distribution {
                KeyDistribution::None => None,
                KeyDistribution::RoundRobin => {
                    Some(decimal(generated % spec.key_space, &mut key_buf))
                }
                KeyDistribution::Random => Some(decimal(rng % spec.key_space, &mut key_buf)),
            };
            let partition = match key {
                Some(k) => partition_for_key(k, partitions as u32) as usize,
                None => sticky,
            };
            let state = &mut states[partition];
            if state.builder.is_empty() {
                // Linger counts from the first record's intended time, as if
                // it had been appended then.
                linger.push_back((intended, partition, state.generation));
            }
            let at = (rng as usize) % (payload_spread + 1);
            state
                .builder
                .push(key, intended, &plan.payload[at..at + payload_len]);
            generated += 1;
            if state.builder.bytes() >= spec.batch_bytes && !state.ready {
                state.ready = true;
                ready.push(partition);
                ready_bytes += state.builder.bytes();
                if key.is_none() {
                    sticky = (sticky + 1) % partitions;
                }
            }
        }
        // Batches whose linger has run out (or everything, at the end).
        let finishing = finished || generated >= plan.messages;
        while let Some(&(opened, partition, generation)) = linger.front() {
            if !finishing && opened + linger_us > now {
                break;
            }
            linger.pop_front();
            let state = &mut states[partition];
            if state.generation == generation && !state.builder.is_empty() && !state.ready {
                state.ready = true;
                ready.push(partition);
                ready_bytes += state.builder.bytes();
                if spec.key_distribution == KeyDistribution::None && partition == sticky {
                    sticky = (sticky + 1) % partitions;
                }
            }
        }
        if !ready.is_empty() {
            send_ready(plan, shared, stats, &mut links, &mut states, &mut ready).await?;
            ready_bytes = 0;
            stats.borrow_mut().sent = generated;
            continue;
        }
        if finishing {
            break;
        }
        // Sleep until a batch must go: the oldest one's linger runs out, the
        // next message's would, or enough messages are due to fill a batch.
        // Messages due meanwhile are generated on waking with their own
        // intended times, so the batches and their timing are the same as
        // if each had been appended on time, for far fewer wake-ups.
        let mut wake = stop_at_us;
        if let Schedule::Fixed { .. } = schedule {
            let next = schedule.intended_us(generated, now);
            let fill = schedule.intended_us(generated + messages_per_batch - 1, now);
            wake = wake.min(next + linger_us).min(fill);
        }
        if let Some(&(opened, _, _)) = linger.front() {
            wake = wake.min(opened + linger_us);
        }
        let now = shared.now_us();
        if wake > now {
            let wait = Duration::from_micros(wake - now).max(SLEEP_MIN);
            glommio::timer::sleep(wait).await;
        } else {
            glommio::yield_if_needed().await;
        }
    }
    stats.borrow_mut().sent = generated;
    // No more requests: each reader ends after the responses it waits for.
    for link in links {
        drop(link.pending);
        link.reader
            .await
            .unwrap_or_else(|| Err(BenchError::Run("reader task cancelled".into())))?;
    }
    Ok(())
}

/// Writes `n` in decimal into `buf`; returns the digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

async fn connect(
    broker: &str,
    spec: &ProducerSpec,
    plan: &ProducerPlan,
    shared: &Arc<Shared>,
    stats: &Rc<RefCell<ProducerResult>>,
) -> Result<Link, BenchError> {
    let conn = crate::connect::connect(broker).await?;
    let version = conn.versions.pick(broker, ApiKey::Produce)?;
    let in_flight = Rc::new(Semaphore::new(u64::from(spec.max_in_flight)));
    let (pending, receiver) = local_channel::new_bounded(spec.max_in_flight as usize + 1);
    let warmup_us = plan.warmup.as_micros() as u64;
    let reader = if spec.acks == Acks::None {
        drop(conn.reader);
        glommio::spawn_local(async move {
            // acks=0: nothing comes back; drain the channel until it closes.
            while receiver.recv().await.is_some() {}
            Ok(())
        })
        .detach()
    } else {
        let (in_flight, shared, stats) = (in_flight.clone(), shared.clone(), stats.clone());
        glommio::spawn_local(async move {
            let outcome = read_responses(
                conn.reader,
                version,
                receiver,
                &in_flight,
                &shared,
                &stats,
                warmup_us,
            )
            .await;
            if let Err(err) = &outcome {
                // The writer may be waiting for a slot that will never free.
                in_flight.close();
                shared.fail(err.to_string());
            }
            outcome
        })
        .detach()
    };
    Ok(Link {
        writer: conn.writer,
        version,
        in_flight,
        pending,
        reader,
    })
}

/// Closes every ready batch and sends one request per leader.
async fn send_ready(
    plan: &ProducerPlan,
    shared: &Arc<Shared>,
    stats: &Rc<RefCell<ProducerResult>>,
    links: &mut [Link],
    states: &mut [PartitionState],
    ready: &mut Vec<usize>,
) -> Result<(), BenchError> {
    let spec = &plan.spec;
    let topic = &plan.topic;
    let timestamp_ms = wall_clock_ms();
    for (leader, link) in links.iter_mut().enumerate() {
        let mut scratch = BytesMut::new();
        let mut partition_data = Vec::new();
        let mut pending = Pending {
            batches: Vec::new(),
            intended_us: Vec::new(),
        };
        for &partition in ready.iter() {
            if topic.partitions[partition].leader != leader {
                continue;
            }
            let state = &mut states[partition];
            let records = state.builder.len() as u32;
            state
                .builder
                .finish(
                    spec.compression,
                    timestamp_ms,
                    &mut scratch,
                    &mut pending.intended_us,
                )
                .map_err(|reason| BenchError::Run(format!("encoding a batch: {reason}")))?;
            state.generation += 1;
            state.ready = false;
            let mut data = PartitionProduceData::default();
            data.index = partition as i32;
            data.records = Some(scratch.split().freeze());
            partition_data.push(data);
            pending.batches.push((
                partition as i32,
                records,
                records as u64 * spec.message_bytes as u64,
            ));
        }
        if partition_data.is_empty() {
            continue;
        }
        let mut topic_data = TopicProduceData::default();
        topic_data.name = TopicName(StrBytes::from_string(topic.name.clone()));
        topic_data.partition_data = partition_data;
        let mut request = ProduceRequest::default();
        request.acks = spec.acks.wire();
        request.timeout_ms = spec.request_timeout_ms as i32;
        request.topic_data = vec![topic_data];
        let messages: u64 = pending.batches.iter().map(|b| u64::from(b.1)).sum();
        if spec.acks == Acks::None {
            link.writer
                .send(ApiKey::Produce, link.version, &request)
                .await?;
            // Accepted as far as acks=0 can tell: written to the socket.
            let now = shared.now_us();
            let warmup_end =
                shared.start_us.load(Ordering::Acquire) + plan.warmup.as_micros() as u64;
            let mut stats = stats.borrow_mut();
            for &t in &pending.intended_us {
                if t >= warmup_end {
                    stats.latency.record(now.saturating_sub(t));
                }
            }
            let bytes: u64 = pending.batches.iter().map(|b| b.2).sum();
            for &(partition, records, _) in &pending.batches {
                shared.produced[partition as usize].fetch_add(u64::from(records), Ordering::AcqRel);
            }
            stats.acked += messages;
            stats.acked_bytes += bytes;
            stats.last_ack_us = now;
            shared.acked_total.fetch_add(messages, Ordering::AcqRel);
            shared.acked_bytes.fetch_add(bytes, Ordering::AcqRel);
            shared.sent_total.fetch_add(messages, Ordering::AcqRel);
            continue;
        }
        link.in_flight
            .acquire(1)
            .await
            .map_err(|e| BenchError::Run(format!("in-flight limit: {e}")))?;
        link.pending
            .send(pending)
            .await
            .map_err(|_| BenchError::Run("the response reader stopped".into()))?;
        link.writer
            .send(ApiKey::Produce, link.version, &request)
            .await?;
        shared.sent_total.fetch_add(messages, Ordering::AcqRel);
    }
    ready.clear();
    Ok(())
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Takes the responses of one connection in order.
async fn read_responses(
    mut reader: FrameReader,
    version: i16,
    pending: LocalReceiver<Pending>,
    in_flight: &Semaphore,
    shared: &Shared,
    stats: &RefCell<ProducerResult>,
    warmup_us: u64,
) -> Result<(), BenchError> {
    while let Some(request) = pending.recv().await {
        let mut body = reader.read_body(ApiKey::Produce, version).await?;
        in_flight.signal(1);
        let response = ProduceResponse::decode(&mut body, version)
            .map_err(|e| BenchError::protocol(reader.addr(), ApiKey::Produce, e.to_string()))?;
        let now = shared.now_us();
        let warmup_end = shared
            .start_us
            .load(Ordering::Acquire)
            .saturating_add(warmup_us);
        let codes: Vec<(i32, i16, Option<String>)> = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .map(|p| {
                (
                    p.index,
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
        let mut stats = stats.borrow_mut();
        let mut cursor = 0usize;
        for &(partition, records, bytes) in &request.batches {
            let intended = &request.intended_us[cursor..cursor + records as usize];
            cursor += records as usize;
            let answer = codes.iter().find(|c| c.0 == partition);
            match answer {
                Some((_, 0, _)) => {
                    for &t in intended {
                        if t >= warmup_end {
                            stats.latency.record(now.saturating_sub(t));
                        }
                    }
                    stats.acked += u64::from(records);
                    stats.acked_bytes += bytes;
                    stats.last_ack_us = now;
                    shared.produced[partition as usize]
                        .fetch_add(u64::from(records), Ordering::AcqRel);
                    shared
                        .acked_total
                        .fetch_add(u64::from(records), Ordering::AcqRel);
                    shared.acked_bytes.fetch_add(bytes, Ordering::AcqRel);
                }
                other => {
                    stats.errors += u64::from(records);
                    shared
                        .errors_total
                        .fetch_add(u64::from(records), Ordering::AcqRel);
                    if stats.error_messages.len() < ERRORS_KEPT {
                        let what = match other {
                            Some((_, code, message)) => format!(
                                "{} ({code}){}",
                                strom_net::client::error_name(*code),
                                message
                                    .as_deref()
                                    .map(|m| format!(": {m}"))
                                    .unwrap_or_default()
                            ),
                            None => "no answer for the partition".to_string(),
                        };
                        stats
                            .error_messages
                            .push(format!("produce to partition {partition}: {what}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_keys() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(12_345, &mut buf), b"12345");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
