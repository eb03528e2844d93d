//! Fetch: plan the partitions per owner shard (one message per shard), read file
//! regions there, and long-poll (`max_wait_ms`, `min_bytes`) by asking the owners to
//! wake us on the next append. The response goes out with `sendfile` from the
//! regions (see `strom_net::fetch_response`).
//!
//! Fetch sessions (KIP-227) are not kept: every response says session id 0, which
//! tells clients to keep sending full fetch requests.

use crate::errors::KafkaCode;
use crate::ids::{LeaderEpoch, NodeId};
use crate::kafka::routing::fan_out;
use crate::messages::{ReadItem, ReadOutcome, TopicPartition, WaitItem};
use crate::shard::Shard;
use futures::future::{select, select_all};
use kafka_protocol::messages::FetchRequest;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strom_net::fetch_response::{FetchPartitionData, FetchResponseData, FetchTopicData};
use strom_tuning::limits::FETCH_RESPONSE_BYTES_DEFAULT_MAX;
use tracing::warn;

/// One partition to read, and where its answer goes in the response.
struct Wanted {
    item: ReadItem,
    topic_index: usize,
    partition_index: usize,
}

pub async fn handle(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponseData {
    let mut response = FetchResponseData {
        read_committed: request.isolation_level == 1,
        ..FetchResponseData::default()
    };
    if request.session_epoch > 0 {
        // An incremental fetch for a session we never created.
        response.error_code = KafkaCode::FETCH_SESSION_ID_NOT_FOUND.0;
        return response;
    }
    // A follower's fetch names its broker id (v15+ in the replica state).
    let replica_id = NodeId(if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    });
    let wanted = plan_reads(shard, &request, version, replica_id, &mut response);

    let wait_ms = request
        .max_wait_ms
        .clamp(0, shard.broker.fetch_max_wait_ms_cap as i32);
    let deadline = Instant::now() + Duration::from_millis(wait_ms as u64);
    let min_bytes = request.min_bytes.max(0) as u64;
    let max_bytes = if request.max_bytes <= 0 {
        FETCH_RESPONSE_BYTES_DEFAULT_MAX as u64
    } else {
        request.max_bytes as u64
    };
    if wanted.len() == 1 {
        // All partitions on one shard: the whole long-poll is one message there
        // (no message at all when it is this shard).
        let (owner, list) = wanted.iter().next().expect("one owner");
        let items: Vec<ReadItem> = list.iter().map(|w| w.item.clone()).collect();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let owner = *owner;
        let mut results = BTreeMap::new();
        match shard
            .call(owner, move |s| async move {
                s.read_wait_local(items, min_bytes, timeout).await
            })
            .await
        {
            Ok(list) => {
                results.insert(owner, list);
            }
            Err(err) => warn!("fetch from shard {owner} failed: {err}"),
        }
        fill(&mut response, &wanted, results, max_bytes);
        return response;
    }
    // Partitions on several shards: rounds of one message per shard (read; if
    // short of min_bytes, wait on every shard until one has an append; read again).
    loop {
        let results = read_all(shard, &wanted).await;
        let seen = log_ends(&wanted, &results);
        let (total, any_error) = fill(&mut response, &wanted, results, max_bytes);
        let now = Instant::now();
        if total >= min_bytes.max(1) || any_error || now >= deadline || wanted.is_empty() {
            return response;
        }
        wait_for_appends(shard, seen, deadline - now).await;
        if Instant::now() >= deadline {
            // One last read so that data appended at the deadline is not missed.
            let results = read_all(shard, &wanted).await;
            fill(&mut response, &wanted, results, max_bytes);
            return response;
        }
    }
}

/// One read per known partition, grouped by owner shard; unknown topics
/// and partitions get their error in `response` right away (whose
/// partitions keep the request's order for `fill`).
fn plan_reads(
    shard: &Shard,
    request: &FetchRequest,
    version: i16,
    replica_id: NodeId,
    response: &mut FetchResponseData,
) -> BTreeMap<usize, Vec<Wanted>> {
    let table = shard.table();
    let mut wanted: BTreeMap<usize, Vec<Wanted>> = BTreeMap::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let meta = if version >= 13 {
            table.by_id(topic.topic_id).cloned()
        } else {
            table.topics.get(topic.topic.0.as_str()).cloned()
        };
        let unknown = if version >= 13 {
            KafkaCode::UNKNOWN_TOPIC_ID
        } else {
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
        };
        let name = meta
            .as_ref()
            .map_or_else(|| topic.topic.0.to_string(), |m| m.name.clone());
        let topic_name: Arc<str> = Arc::from(name.as_str());
        let mut entry = FetchTopicData {
            name,
            topic_id: meta.as_ref().map_or(topic.topic_id, |m| m.id),
            partitions: Vec::with_capacity(topic.partitions.len()),
        };
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let known = meta
                .as_ref()
                .is_some_and(|m| partition.partition >= 0 && partition.partition < m.partitions);
            let error = match (&meta, known) {
                (None, _) => unknown,
                (Some(_), false) => KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                (Some(_), true) => KafkaCode::NONE,
            };
            entry.partitions.push(empty(partition.partition, error));
            if !error.is_ok() {
                continue;
            }
            let tp = TopicPartition {
                topic: topic_name.clone(),
                partition: partition.partition,
            };
            let owner = shard.owner_of(&tp);
            wanted.entry(owner).or_default().push(Wanted {
                item: ReadItem {
                    tp,
                    offset: partition.fetch_offset,
                    max_bytes: partition.partition_max_bytes.max(0) as u64,
                    current_leader_epoch: LeaderEpoch(partition.current_leader_epoch),
                    replica_id,
                    read_committed: request.isolation_level == 1 && !replica_id.is_some(),
                },
                topic_index,
                partition_index,
            });
        }
        response.topics.push(entry);
    }
    wanted
}

fn empty(partition: i32, error: KafkaCode) -> FetchPartitionData {
    FetchPartitionData {
        partition_index: partition,
        error_code: error.0,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: Vec::new(),
        records: None,
    }
}

async fn read_all(
    shard: &Rc<Shard>,
    wanted: &BTreeMap<usize, Vec<Wanted>>,
) -> BTreeMap<usize, Vec<ReadOutcome>> {
    let items: BTreeMap<usize, Vec<ReadItem>> = wanted
        .iter()
        .map(|(owner, list)| (*owner, list.iter().map(|w| w.item.clone()).collect()))
        .collect();
    fan_out(
        shard,
        items,
        "Fetch",
        |s, items: Vec<ReadItem>| async move { s.read_local(&items) },
    )
    .await
}

/// Puts read results into the response in request order, applying the response
/// size limit (the first non-empty partition is always whole, KIP-74). Returns the
/// bytes included and whether any partition has an error.
fn fill(
    response: &mut FetchResponseData,
    wanted: &BTreeMap<usize, Vec<Wanted>>,
    mut results: BTreeMap<usize, Vec<ReadOutcome>>,
    max_bytes: u64,
) -> (u64, bool) {
    let mut placed: Vec<(usize, usize, ReadOutcome)> = Vec::new();
    for (owner, list) in wanted {
        let outcomes = results.remove(owner).unwrap_or_default();
        for (i, w) in list.iter().enumerate() {
            let outcome = outcomes.get(i).cloned().unwrap_or(ReadOutcome {
                error: KafkaCode::UNKNOWN_SERVER_ERROR,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                records: None,
                aborted: Vec::new(),
            });
            placed.push((w.topic_index, w.partition_index, outcome));
        }
    }
    placed.sort_by_key(|(t, p, _)| (*t, *p));
    let mut total = 0u64;
    let mut any_error = false;
    for (t, p, outcome) in placed {
        let slot = &mut response.topics[t].partitions[p];
        slot.error_code = outcome.error.0;
        slot.high_watermark = outcome.high_watermark;
        slot.last_stable_offset = outcome.last_stable_offset;
        slot.log_start_offset = outcome.log_start_offset;
        slot.aborted_transactions = outcome.aborted;
        any_error |= !outcome.error.is_ok();
        slot.records = outcome.records.and_then(|mut region| {
            if total > 0 {
                let remaining = max_bytes.saturating_sub(total);
                if remaining == 0 {
                    return None;
                }
                region.len = region.len.min(remaining);
            }
            total += region.len;
            Some(region)
        });
    }
    (total, any_error)
}

/// Per owner shard, each partition with the offset the last read saw: the
/// wait ends when any of them grows past it (so an append between the read
/// and the wait is not missed, and data below `min_bytes` does not spin).
fn log_ends(
    wanted: &BTreeMap<usize, Vec<Wanted>>,
    results: &BTreeMap<usize, Vec<ReadOutcome>>,
) -> BTreeMap<usize, Vec<WaitItem>> {
    wanted
        .iter()
        .map(|(owner, list)| {
            let outcomes = results.get(owner);
            let items = list
                .iter()
                .enumerate()
                .map(|(i, w)| match outcomes.and_then(|o| o.get(i)) {
                    Some(outcome) => crate::shard::wait_item(&w.item, outcome),
                    None => WaitItem {
                        tp: w.item.tp.clone(),
                        seen: w.item.offset,
                        replica: w.item.replica_id.is_some(),
                        committed: w.item.read_committed,
                    },
                })
                .collect();
            (*owner, items)
        })
        .collect()
}

async fn wait_for_appends(
    shard: &Rc<Shard>,
    seen: BTreeMap<usize, Vec<WaitItem>>,
    timeout: Duration,
) {
    let waits: Vec<_> = seen
        .into_iter()
        .map(|(owner, items)| {
            let shard = shard.clone();
            Box::pin(async move {
                let _ = shard
                    .call(
                        owner,
                        move |s| async move { s.wait_local(items, timeout).await },
                    )
                    .await;
            })
        })
        .collect();
    if waits.is_empty() {
        return;
    }
    let sleep = Box::pin(glommio::timer::sleep(timeout));
    let _ = select(select_all(waits), sleep).await;
}
