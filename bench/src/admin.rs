//! Setting up and tearing down a run's topic: CreateTopics, Metadata (who
//! leads each partition) and ListOffsets (where consumers start), on one
//! connection to the bootstrap broker and one per leader.

use crate::error::BenchError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use strom_net::client::Connection;

/// How long to wait for every partition of a new topic to have a leader.
const LEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// ListOffsets timestamp for "the log end".
const LATEST: i64 = -1;
/// LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION:
/// a new topic is not ready yet.
const NOT_READY_CODES: [i16; 3] = [5, 6, 3];

/// A topic as the load tasks need it. Sent to every executor (plain data).
#[derive(Clone, Debug)]
pub struct TopicLayout {
    pub name: String,
    /// `host:port` of each broker that leads a partition.
    pub brokers: Vec<String>,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Clone, Copy, Debug)]
pub struct PartitionInfo {
    /// Index into `TopicLayout::brokers`.
    pub leader: usize,
    /// The log end when the topic was set up: where consumers start.
    pub start_offset: i64,
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Creates `topic` with `partitions` and `config`, waits until every
/// partition has a leader, and reads every partition's log end.
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    config: &BTreeMap<String, String>,
) -> Result<TopicLayout, BenchError> {
    let mut conn = crate::connect::connect(bootstrap).await?;
    let mut request = CreateTopicsRequest::default();
    let mut creatable = CreatableTopic::default();
    creatable.name = TopicName(str_bytes(topic));
    creatable.num_partitions = partitions as i32;
    creatable.replication_factor = 1;
    creatable.configs = config
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = str_bytes(k);
            c.value = Some(str_bytes(v));
            c
        })
        .collect();
    request.topics = vec![creatable];
    request.timeout_ms = 30_000;
    let response: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, &request).await?;
    for result in &response.topics {
        if result.error_code != 0 {
            let message = result
                .error_message
                .as_ref()
                .map(|m| format!(": {topic}: {m}"))
                .unwrap_or_else(|| format!(": {topic}"));
            return Err(BenchError::kafka(
                conn.addr(),
                ApiKey::CreateTopics,
                result.error_code,
                &message,
            ));
        }
    }
    let (brokers, leaders) = wait_for_leaders(&mut conn, topic, partitions).await?;
    let mut start_offsets = vec![0i64; partitions as usize];
    for (broker_index, broker) in brokers.iter().enumerate() {
        let mine: Vec<i32> = (0..partitions as i32)
            .filter(|p| leaders[*p as usize] == broker_index)
            .collect();
        let mut leader_conn = crate::connect::connect(broker).await?;
        for (p, offset) in list_offsets(&mut leader_conn, topic, &mine, LATEST).await? {
            start_offsets[p as usize] = offset;
        }
    }
    Ok(TopicLayout {
        name: topic.to_string(),
        brokers,
        partitions: (0..partitions as usize)
            .map(|p| PartitionInfo {
                leader: leaders[p],
                start_offset: start_offsets[p],
            })
            .collect(),
    })
}

/// Metadata until every partition has a leader. Returns the leaders'
/// addresses and each partition's leader as an index into them.
async fn wait_for_leaders(
    conn: &mut Connection,
    topic: &str,
    partitions: u32,
) -> Result<(Vec<String>, Vec<usize>), BenchError> {
    let started = Instant::now();
    loop {
        let mut request = MetadataRequest::default();
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(str_bytes(topic)));
        request.topics = Some(vec![t]);
        request.allow_auto_topic_creation = false;
        let response: MetadataResponse = conn.call(ApiKey::Metadata, &request).await?;
        match leaders_of(&response, topic, partitions) {
            Ok(found) => return Ok(found),
            Err(reason) if started.elapsed() > LEADERS_TIMEOUT => {
                return Err(BenchError::Run(format!(
                    "{}: topic {topic} has no leader for every partition after {} s: {reason}",
                    conn.addr(),
                    LEADERS_TIMEOUT.as_secs()
                )))
            }
            Err(_) => glommio::timer::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Pure part of [`wait_for_leaders`]: Err says what is missing.
fn leaders_of(
    response: &MetadataResponse,
    topic: &str,
    partitions: u32,
) -> Result<(Vec<String>, Vec<usize>), String> {
    let addresses: HashMap<BrokerId, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id, host_port(b.host.as_str(), b.port)))
        .collect();
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or("topic not in the metadata")?;
    if t.error_code != 0 && !NOT_READY_CODES.contains(&t.error_code) {
        return Err(format!(
            "topic error {}",
            strom_net::client::error_name(t.error_code)
        ));
    }
    let mut brokers: Vec<String> = Vec::new();
    let mut leaders = vec![usize::MAX; partitions as usize];
    for p in &t.partitions {
        let index = usize::try_from(p.partition_index)
            .ok()
            .filter(|i| *i < leaders.len())
            .ok_or_else(|| format!("unexpected partition {}", p.partition_index))?;
        if p.error_code != 0 || p.leader_id.0 < 0 {
            continue;
        }
        let addr = addresses
            .get(&p.leader_id)
            .ok_or_else(|| format!("leader {} is not in the broker list", p.leader_id.0))?;
        let broker = match brokers.iter().position(|b| b == addr) {
            Some(i) => i,
            None => {
                brokers.push(addr.clone());
                brokers.len() - 1
            }
        };
        leaders[index] = broker;
    }
    match leaders.iter().filter(|l| **l == usize::MAX).count() {
        0 => Ok((brokers, leaders)),
        n => Err(format!("{n} partitions without a leader")),
    }
}

fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// ListOffsets for `partitions` of `topic` on their leader.
pub async fn list_offsets(
    conn: &mut Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, BenchError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(str_bytes(topic));
    t.partitions = partitions
        .iter()
        .map(|p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = *p;
            lp.current_leader_epoch = -1;
            lp.timestamp = timestamp;
            lp
        })
        .collect();
    request.topics = vec![t];
    let response: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, &request).await?;
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(BenchError::kafka(
                    conn.addr(),
                    ApiKey::ListOffsets,
                    p.error_code,
                    &format!(": {topic}-{}", p.partition_index),
                ));
            }
            out.push((p.partition_index, p.offset));
        }
    }
    if out.len() != partitions.len() {
        return Err(BenchError::protocol(
            conn.addr(),
            ApiKey::ListOffsets,
            format!("{} answers for {} partitions", out.len(), partitions.len()),
        ));
    }
    Ok(out)
}

/// Deletes the run's topic (best effort: the caller reports a failure).
pub async fn delete_topic(bootstrap: &str, topic: &str) -> Result<(), BenchError> {
    let mut conn = crate::connect::connect(bootstrap).await?;
    let mut request = DeleteTopicsRequest::default();
    request.topic_names = vec![TopicName(str_bytes(topic))];
    request.timeout_ms = 30_000;
    let response: DeleteTopicsResponse = conn.call(ApiKey::DeleteTopics, &request).await?;
    for r in &response.responses {
        if r.error_code != 0 {
            return Err(BenchError::kafka(
                conn.addr(),
                ApiKey::DeleteTopics,
                r.error_code,
                &format!(": {topic}"),
            ));
        }
    }
    Ok(())
}
