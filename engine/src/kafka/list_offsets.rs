//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the first offset
//! whose timestamp is at or after a given time (time index). One message per owner
//! shard.

use crate::errors::KafkaCode;
use crate::kafka::routing::Plan;
use crate::messages::OffsetQuery;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::rc::Rc;
use std::sync::Arc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let table = shard.table();
    let mut response = ListOffsetsResponse::default();
    // (topic index, partition index) of each query, per owner shard.
    let mut plan = Plan::default();
    for (ti, topic) in request.topics.into_iter().enumerate() {
        let meta = table.topics.get(topic.name.0.as_str()).cloned();
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        let mut entry = ListOffsetsTopicResponse::default();
        entry.name = topic.name;
        for (pi, partition) in topic.partitions.into_iter().enumerate() {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = partition.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            // Leader epochs exist from v4; older versions must leave the default.
            p.leader_epoch = match meta
                .as_ref()
                .and_then(|m| m.partition(partition.partition_index))
            {
                Some(state) if version >= 4 => state.leader_epoch.0,
                _ => -1,
            };
            let (timestamp, read_committed) = (partition.timestamp, request.isolation_level == 1);
            let routed = plan.route(
                shard,
                &table,
                &name,
                partition.partition_index,
                (ti, pi),
                |tp| OffsetQuery {
                    tp,
                    timestamp,
                    read_committed,
                },
            );
            if !routed {
                p.error_code = KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0;
            }
            entry.partitions.push(p);
        }
        response.topics.push(entry);
    }
    let answers = plan
        .call(shard, "ListOffsets", |s, queries| async move {
            s.list_offsets_local(&queries)
        })
        .await;
    for (ti, pi, answer) in answers {
        let p = &mut response.topics[ti].partitions[pi];
        match answer {
            Some(answer) => {
                p.error_code = answer.error.0;
                p.timestamp = answer.timestamp;
                p.offset = answer.offset;
            }
            None => p.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        }
    }
    response
}
