//! DescribeProducers (KIP-664, `kafka-transactions.sh describe-producers`):
//! the idempotent producers a partition keeps state for, as its leader
//! knows them: id, epoch, last sequence and the timestamp of the last
//! batch, and the first offset of its open transaction on the partition
//! (-1 without one), and the coordinator epoch of its last marker (-1
//! without one). Answered by the partition's leader (NOT_LEADER_OR_FOLLOWER
//! elsewhere, so clients go to the leader). One message per owner shard.

use crate::errors::KafkaCode;
use crate::kafka::routing::Plan;
use crate::shard::Shard;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use std::rc::Rc;
use std::sync::Arc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let table = shard.table();
    let mut response = DescribeProducersResponse::default();
    let mut plan = Plan::default();
    for (ti, topic) in request.topics.into_iter().enumerate() {
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        let mut entry = TopicResponse::default();
        entry.name = topic.name;
        for (pi, index) in topic.partition_indexes.into_iter().enumerate() {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            if !plan.route(shard, &table, &name, index, (ti, pi), |tp| tp) {
                p.error_code = KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0;
                p.error_message = Some(str_bytes("This server does not host this topic-partition"));
            }
            entry.partitions.push(p);
        }
        response.topics.push(entry);
    }
    let answers = plan
        .call(shard, "DescribeProducers", |s, items| async move {
            s.describe_producers_local(&items)
        })
        .await;
    for (ti, pi, answer) in answers {
        let p = &mut response.topics[ti].partitions[pi];
        match answer {
            Some(Ok(rows)) => {
                p.active_producers = rows
                    .into_iter()
                    .map(|row| {
                        let mut state = ProducerState::default();
                        state.producer_id = ProducerId(row.id);
                        state.producer_epoch = i32::from(row.epoch);
                        state.last_sequence = row.last_sequence;
                        state.last_timestamp = row.last_timestamp;
                        state.coordinator_epoch = row.coordinator_epoch;
                        state.current_txn_start_offset = row.txn_start;
                        state
                    })
                    .collect();
            }
            Some(Err(code)) => p.error_code = code.0,
            None => p.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        }
    }
    response
}
