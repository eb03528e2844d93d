//! OffsetForLeaderEpoch (v2-4): for each partition, the largest leader epoch
//! the leader has up to the one asked about, and the offset where that epoch
//! ends in its log (the next epoch's start, or the log end for the latest).
//! Followers use it to find where their log diverges from the leader's
//! (KIP-101, KIP-279); consumers to detect truncation after a leader change
//! (KIP-320). Only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere); a
//! `current_leader_epoch` older than the leader's gets FENCED_LEADER_EPOCH,
//! a newer one UNKNOWN_LEADER_EPOCH. One message per owner shard.

use crate::errors::KafkaCode;
use crate::ids::LeaderEpoch;
use crate::kafka::routing::Plan;
use crate::messages::EpochQuery;
use crate::shard::Shard;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::rc::Rc;
use std::sync::Arc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let table = shard.table();
    let mut response = OffsetForLeaderEpochResponse::default();
    let mut plan = Plan::default();
    for (ti, topic) in request.topics.into_iter().enumerate() {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        let mut entry = OffsetForLeaderTopicResult::default();
        entry.topic = topic.topic;
        for (pi, partition) in topic.partitions.into_iter().enumerate() {
            let mut answer = EpochEndOffset::default();
            answer.partition = partition.partition;
            answer.leader_epoch = -1;
            answer.end_offset = -1;
            let (current_leader_epoch, leader_epoch) = (
                LeaderEpoch(partition.current_leader_epoch),
                LeaderEpoch(partition.leader_epoch),
            );
            let routed = plan.route(shard, &table, &name, partition.partition, (ti, pi), |tp| {
                EpochQuery {
                    tp,
                    current_leader_epoch,
                    leader_epoch,
                }
            });
            if !routed {
                answer.error_code = KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0;
            }
            entry.partitions.push(answer);
        }
        response.topics.push(entry);
    }
    let answers = plan
        .call(shard, "OffsetForLeaderEpoch", |s, items| async move {
            s.epoch_end_offsets(&items)
        })
        .await;
    for (ti, pi, answer) in answers {
        let slot = &mut response.topics[ti].partitions[pi];
        match answer {
            Some(end) => {
                slot.error_code = end.error.0;
                slot.leader_epoch = end.leader_epoch;
                slot.end_offset = end.end_offset;
            }
            None => slot.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        }
    }
    response
}
