//! DeleteRecords: move partitions' log start offsets forward. Records below the
//! new log start offset are no longer readable (fetches there get
//! OFFSET_OUT_OF_RANGE, ListOffsets earliest returns it); segments wholly below it
//! are deleted. The new log start offset is written to the partition checkpoint
//! before the answer, so it survives a crash. One message per owner shard.

use crate::errors::KafkaCode;
use crate::kafka::routing::Plan;
use crate::messages::RecordsDeletion;
use crate::shard::Shard;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::rc::Rc;
use std::sync::Arc;

pub async fn handle(shard: &Rc<Shard>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let table = shard.table();
    let mut response = DeleteRecordsResponse::default();
    let mut plan = Plan::default();
    for (ti, topic) in request.topics.into_iter().enumerate() {
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        let mut entry = DeleteRecordsTopicResult::default();
        entry.name = topic.name;
        for (pi, partition) in topic.partitions.into_iter().enumerate() {
            let mut p = DeleteRecordsPartitionResult::default();
            p.partition_index = partition.partition_index;
            p.low_watermark = -1;
            let offset = partition.offset;
            let routed = plan.route(
                shard,
                &table,
                &name,
                partition.partition_index,
                (ti, pi),
                |tp| RecordsDeletion { tp, offset },
            );
            if !routed {
                p.error_code = KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0;
            }
            entry.partitions.push(p);
        }
        response.topics.push(entry);
    }
    let answers = plan
        .call(shard, "DeleteRecords", |s, items| async move {
            s.delete_records_local(items).await
        })
        .await;
    for (ti, pi, answer) in answers {
        let p = &mut response.topics[ti].partitions[pi];
        match answer {
            Some(deleted) => {
                p.error_code = deleted.error.0;
                p.low_watermark = deleted.low_watermark;
            }
            None => p.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        }
    }
    response
}
