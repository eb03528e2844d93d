//! OffsetDelete: committed offsets of partitions no member consumes.

use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let mut response = OffsetDeleteResponse::default();
    let topics: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let codes = match call(
        shard,
        &group,
        GroupCall::OffsetDelete {
            group: group.clone(),
            topics,
        },
    )
    .await
    {
        Ok(GroupAnswer::Codes(codes)) => codes,
        Ok(_) => vec![KafkaCode::UNKNOWN_SERVER_ERROR],
        Err(code) => vec![code],
    };
    let mut codes = codes.into_iter();
    response.error_code = codes.next().unwrap_or(KafkaCode::NONE).0;
    if response.error_code != 0 {
        return response;
    }
    for topic in request.topics {
        let mut t = offset_delete_response::OffsetDeleteResponseTopic::default();
        t.name = topic.name;
        for p in topic.partitions {
            let mut r = offset_delete_response::OffsetDeleteResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = codes.next().unwrap_or(KafkaCode::NONE).0;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}
