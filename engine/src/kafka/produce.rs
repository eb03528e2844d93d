//! Produce: validate every batch on the connection's shard (length, magic, CRC-32C,
//! size), group partitions by owner shard, append with one message per shard, and
//! answer per partition. acks=0 requests get no response, as in Kafka.
//!
//! Durability: acks=1 is answered once the batch is appended (page cache). acks=all
//! is answered once the batch is synced to disk (`fdatasync` through io_uring, one
//! group commit per shard round), unless the topic has `write.caching=true`, where
//! it is answered after the append like acks=1 (Kafka's default flush policy).
//! While the data directory is short of space, partitions fail with
//! KAFKA_STORAGE_ERROR (retriable: clients retry until space is back).
//!
//! Topic configs applied here: `max.message.bytes` (MESSAGE_TOO_LARGE, checked
//! after re-compression as Kafka does), `compression.type` (batches in another
//! codec are re-compressed, see `recompress`), `min.insync.replicas` (acks=all
//! gets NOT_ENOUGH_REPLICAS while it exceeds the replicas in sync: one).

use crate::errors::{batch_error_code, KafkaCode};
use crate::kafka::create_topics::auto_create;
use crate::kafka::routing::fan_out;
use crate::messages::{AppendItem, AppendOutcome, TopicPartition};
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use strom_net::response::str_bytes;
use strom_storage::batch::{validate_batches, BatchHeader};
use strom_storage::compression as recompress;
use strom_tuning::config::TopicConfig;
use strom_tuning::validate_topic_name;
use tracing::warn;

/// Where each partition's answer comes from.
enum Slot {
    Done(KafkaCode, Option<String>),
    Pending { shard: usize, index: usize },
}

/// What Produce answers: nothing (acks=0), a response now, or, with acks=all
/// records still waiting for the in-sync replicas, a future of the response.
/// The records are appended (in request order) before this returns either
/// way, so the connection may go on to its next request while it waits.
pub enum Produced {
    NoResponse,
    Now(ProduceResponse),
    Later(futures::future::LocalBoxFuture<'static, ProduceResponse>),
}

pub async fn handle(shard: &Rc<Shard>, request: ProduceRequest) -> Produced {
    let acks = request.acks;
    let request_timeout_ms = request.timeout_ms;
    if acks != 0 && acks != 1 && acks != -1 {
        return Produced::Now(all_failed(request, KafkaCode::INVALID_REQUIRED_ACKS));
    }
    let mut table = shard.table();
    if shard.broker.auto_create_topics_enable {
        let missing: Vec<String> = request
            .topic_data
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|n| !table.topics.contains_key(n) && validate_topic_name(n).is_ok())
            .collect();
        if !missing.is_empty() {
            auto_create(shard, missing).await;
            table = shard.table();
        }
    }

    let mut per_shard: BTreeMap<usize, Vec<AppendItem>> = BTreeMap::new();
    let mut slots: Vec<(String, Vec<(i32, Slot)>)> = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let meta = table.topics.get(&name).cloned();
        let config = meta.as_ref().and_then(|m| shard.topic_config(&m.name));
        let topic_name: Arc<str> = Arc::from(name.as_str());
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            let prepared = match (&meta, &config) {
                (Some(meta), Some(config)) if (0..meta.partitions).contains(&index) => {
                    prepare(&name, index, data.records, config)
                }
                _ => Err((KafkaCode::UNKNOWN_TOPIC_OR_PARTITION, None)),
            };
            let (records, headers) = match prepared {
                Ok(batches) => batches,
                Err((code, message)) => {
                    partitions.push((index, Slot::Done(code, message)));
                    continue;
                }
            };
            let tp = TopicPartition {
                topic: topic_name.clone(),
                partition: index,
            };
            let owner = shard.owner_of(&tp);
            let items = per_shard.entry(owner).or_default();
            items.push(AppendItem {
                tp,
                records,
                headers,
            });
            partitions.push((
                index,
                Slot::Pending {
                    shard: owner,
                    index: items.len() - 1,
                },
            ));
        }
        slots.push((name, partitions));
    }

    let appended = fan_out(shard, per_shard, "Produce", move |s, items| async move {
        s.append_local(items, acks == -1)
    })
    .await;
    let mut results: BTreeMap<usize, Vec<AppendOutcome>> = BTreeMap::new();
    let mut waits = Vec::new();
    for (owner, (list, pending)) in appended {
        results.insert(owner, list);
        waits.extend(pending.into_iter().map(|(index, rx)| (owner, index, rx)));
    }
    if acks == 0 {
        return Produced::NoResponse;
    }
    if waits.is_empty() {
        return Produced::Now(respond(slots, results));
    }
    // acks=all waits for the in-sync replicas at most the request's timeout.
    let timeout =
        std::time::Duration::from_millis(u64::try_from(request_timeout_ms).unwrap_or(0).max(1));
    Produced::Later(Box::pin(acknowledged(slots, results, waits, timeout)))
}

/// The response once every acks=all wait ended: a partition not
/// acknowledged in time (or that went away: deleted, or the broker is
/// stopping) answers REQUEST_TIMED_OUT or the code its wait ended with.
async fn acknowledged(
    slots: Vec<(String, Vec<(i32, Slot)>)>,
    mut results: BTreeMap<usize, Vec<AppendOutcome>>,
    waits: Vec<(usize, usize, futures::channel::oneshot::Receiver<KafkaCode>)>,
    timeout: std::time::Duration,
) -> ProduceResponse {
    let deadline = std::time::Instant::now() + timeout;
    for (owner, index, acked) in waits {
        let code = crate::shard::ack_by(acked, deadline, KafkaCode::REQUEST_TIMED_OUT).await;
        if let Some(outcome) = results.get_mut(&owner).and_then(|l| l.get_mut(index)) {
            if !code.is_ok() {
                outcome.error = code;
                outcome.base_offset = -1;
                outcome.message = None;
            }
        }
    }
    respond(slots, results)
}

/// One partition's record set checked as Kafka does before an append:
/// batches valid (length, magic, CRC), no control batch, within
/// `max.message.bytes` as produced and again after re-compression to the
/// topic's `compression.type`. One copy per batch (the owner assigns
/// offsets in place).
fn prepare(
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    config: &TopicConfig,
) -> Result<(BytesMut, Vec<BatchHeader>), (KafkaCode, Option<String>)> {
    let Some(records) = records else {
        return Err((KafkaCode::CORRUPT_MESSAGE, Some("null record set".into())));
    };
    let headers = validate_batches(&records).map_err(|err| {
        warn!(topic, partition, "rejecting produce: {err}");
        (batch_error_code(&err), Some(err.to_string()))
    })?;
    // Markers are the coordinator's to write: a client's control batch
    // could end another producer's transaction.
    if headers.iter().any(|h| h.is_control()) {
        return Err((
            KafkaCode::INVALID_RECORD,
            Some("Clients may not write control batches (transaction markers)".into()),
        ));
    }
    // The batch as produced must fit (Kafka checks it before re-compressing,
    // and the re-compressed one again below).
    if let Some(message) = too_large(&headers, config.max_message_bytes) {
        return Err((KafkaCode::MESSAGE_TOO_LARGE, Some(message)));
    }
    let (records, headers) = match recompress::target_codec(&config.compression_type) {
        None => (BytesMut::from(&records[..]), headers),
        Some(codec) => match recompress::recompress_all(&records, &headers, codec) {
            Ok(None) => (BytesMut::from(&records[..]), headers),
            Ok(Some(rewritten)) => {
                let headers = validate_batches(&rewritten).map_err(|err| {
                    warn!(topic, partition, "re-compressed batch is invalid: {err}");
                    (KafkaCode::UNKNOWN_SERVER_ERROR, Some(err.to_string()))
                })?;
                (rewritten, headers)
            }
            Err(message) => return Err((KafkaCode::INVALID_RECORD, Some(message))),
        },
    };
    if let Some(message) = too_large(&headers, config.max_message_bytes) {
        return Err((KafkaCode::MESSAGE_TOO_LARGE, Some(message)));
    }
    Ok((records, headers))
}

/// The response from every partition's slot and the owners' outcomes.
fn respond(
    slots: Vec<(String, Vec<(i32, Slot)>)>,
    results: BTreeMap<usize, Vec<AppendOutcome>>,
) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    for (name, partitions) in slots {
        let mut topic = TopicProduceResponse::default();
        topic.name = kafka_protocol::messages::TopicName(str_bytes(&name));
        for (index, slot) in partitions {
            let mut p = PartitionProduceResponse::default();
            p.index = index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            match slot {
                Slot::Done(code, message) => {
                    p.error_code = code.0;
                    p.error_message = message.map(|m| str_bytes(&m));
                }
                Slot::Pending {
                    shard: owner,
                    index: i,
                } => match results.get(&owner).and_then(|list| list.get(i)) {
                    Some(outcome) => {
                        p.error_code = outcome.error.0;
                        p.error_message = outcome.message.as_deref().map(str_bytes);
                        p.base_offset = outcome.base_offset;
                        p.log_append_time_ms = outcome.log_append_time_ms;
                        p.log_start_offset = outcome.log_start_offset;
                    }
                    None => p.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
                },
            }
            topic.partition_responses.push(p);
        }
        response.responses.push(topic);
    }
    response
}

/// The error message when a batch is above `max.message.bytes`.
fn too_large(headers: &[BatchHeader], max_message_bytes: u32) -> Option<String> {
    headers
        .iter()
        .find(|h| h.total_bytes() as u64 > u64::from(max_message_bytes))
        .map(|big| {
            format!(
                "batch of {} bytes exceeds max.message.bytes {max_message_bytes}",
                big.total_bytes()
            )
        })
}

fn all_failed(request: ProduceRequest, code: KafkaCode) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        let mut entry = TopicProduceResponse::default();
        entry.name = topic.name;
        for data in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = data.index;
            p.error_code = code.0;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            entry.partition_responses.push(p);
        }
        response.responses.push(entry);
    }
    response
}
