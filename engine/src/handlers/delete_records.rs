//! DeleteRecords: move partitions' log start offsets forward. Records below the
//! new log start offset are no longer readable (fetches there get
//! OFFSET_OUT_OF_RANGE, ListOffsets earliest returns it); segments wholly below it
//! are deleted. The new log start offset is written to the partition checkpoint
//! before the answer, so it survives a crash. One message per owner shard.

use crate::errors::KafkaCode;
use crate::messages::{ShardMsg, TopicPartition};
use crate::shard::Shard;
use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use tracing::warn;

pub async fn handle(shard: &Rc<Shard>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let table = shard.table();
    let mut response = DeleteRecordsResponse::default();
    // Each item with its (topic index, partition index), per owner shard.
    type Routed = Vec<((TopicPartition, i64), usize, usize)>;
    let mut per_shard: BTreeMap<usize, Routed> = BTreeMap::new();
    for (ti, topic) in request.topics.into_iter().enumerate() {
        let meta = table.topics.get(topic.name.0.as_str()).cloned();
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        let mut entry = DeleteRecordsTopicResult::default();
        entry.name = topic.name;
        for (pi, partition) in topic.partitions.into_iter().enumerate() {
            let mut p = DeleteRecordsPartitionResult::default();
            p.partition_index = partition.partition_index;
            p.low_watermark = -1;
            let known = meta.as_ref().is_some_and(|m| {
                partition.partition_index >= 0 && partition.partition_index < m.partitions
            });
            if known {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: partition.partition_index,
                };
                per_shard.entry(shard.owner_of(&tp)).or_default().push((
                    (tp, partition.offset),
                    ti,
                    pi,
                ));
            } else {
                p.error_code = KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0;
            }
            entry.partitions.push(p);
        }
        response.topics.push(entry);
    }
    let calls = per_shard.into_iter().map(|(owner, list)| {
        let shard = shard.clone();
        async move {
            let items: Vec<(TopicPartition, i64)> =
                list.iter().map(|(item, _, _)| item.clone()).collect();
            let answers = shard
                .call(owner, |reply| ShardMsg::DeleteRecords(items, reply))
                .await;
            (list, answers)
        }
    });
    for (list, answers) in join_all(calls).await {
        let answers = answers.unwrap_or_else(|err| {
            warn!("DeleteRecords failed: {err}");
            Vec::new()
        });
        for (i, (_, ti, pi)) in list.into_iter().enumerate() {
            let p = &mut response.topics[ti].partitions[pi];
            match answers.get(i) {
                Some((low_watermark, error)) => {
                    p.error_code = error.0;
                    p.low_watermark = *low_watermark;
                }
                None => p.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
            }
        }
    }
    response
}
