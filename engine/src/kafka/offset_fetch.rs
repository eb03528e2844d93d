//! OffsetFetch: a group's committed offsets (several groups from v8).

use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;
use strom_net::response::str_bytes;

async fn fetch_offsets(
    shard: &Rc<Shard>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<CommittedOffset>, KafkaCode> {
    let fetch = GroupCall::Fetch {
        group: group.to_string(),
        topics,
        require_stable,
    };
    match call(shard, group, fetch).await? {
        GroupAnswer::Offsets(rows) => Ok(rows),
        _ => Err(KafkaCode::UNKNOWN_SERVER_ERROR),
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version <= 7 {
        let topics = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let stable = version >= 7 && request.require_stable;
        match fetch_offsets(shard, &request.group_id.0, topics, stable).await {
            Ok(rows) => {
                for CommittedOffset {
                    topic,
                    partition: p,
                    offset,
                    leader_epoch: epoch,
                    metadata,
                    error: code,
                } in rows
                {
                    let idx = match response
                        .topics
                        .iter()
                        .position(|t| t.name.0.as_str() == topic)
                    {
                        Some(i) => i,
                        None => {
                            let mut t = offset_fetch_response::OffsetFetchResponseTopic::default();
                            t.name = TopicName(str_bytes(&topic));
                            response.topics.push(t);
                            response.topics.len() - 1
                        }
                    };
                    let mut r = offset_fetch_response::OffsetFetchResponsePartition::default();
                    r.partition_index = p;
                    r.error_code = code.0;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(str_bytes(&metadata));
                    response.topics[idx].partitions.push(r);
                }
            }
            Err(code) => response.error_code = code.0,
        }
        return response;
    }
    for g in request.groups {
        let mut out = offset_fetch_response::OffsetFetchResponseGroup::default();
        out.group_id = g.group_id.clone();
        let topics = g.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        match fetch_offsets(shard, &g.group_id.0, topics, request.require_stable).await {
            Ok(rows) => {
                for CommittedOffset {
                    topic,
                    partition: p,
                    offset,
                    leader_epoch: epoch,
                    metadata,
                    error: code,
                } in rows
                {
                    let idx = match out.topics.iter().position(|t| t.name.0.as_str() == topic) {
                        Some(i) => i,
                        None => {
                            let mut t = offset_fetch_response::OffsetFetchResponseTopics::default();
                            t.name = TopicName(str_bytes(&topic));
                            out.topics.push(t);
                            out.topics.len() - 1
                        }
                    };
                    let mut r = offset_fetch_response::OffsetFetchResponsePartitions::default();
                    r.partition_index = p;
                    r.error_code = code.0;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(str_bytes(&metadata));
                    out.topics[idx].partitions.push(r);
                }
            }
            Err(code) => out.error_code = code.0,
        }
        response.groups.push(out);
    }
    response
}
