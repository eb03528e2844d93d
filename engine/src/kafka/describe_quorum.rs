//! DescribeQuorum (v0-2, `kafka-metadata-quorum.sh describe`): the controller
//! quorum of the metadata log (`__cluster_metadata` partition 0): the active
//! controller, its term (leader epoch), the commit index (high watermark)
//! and each voter's last entry, as the active controller sees them. Any
//! broker answers by asking the active controller.

use crate::cluster::controller::{ControllerRequest, ControllerResponse};
use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use std::rc::Rc;
use strom_net::response::str_bytes;

/// Kafka's name of the metadata log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(shard: &Rc<Shard>, _request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let mut response = DescribeQuorumResponse::default();
    let answer = shard
        .call(0, |zero| async move {
            crate::cluster::client::admin(&zero, ControllerRequest::DescribeQuorum).await
        })
        .await;
    let info = match answer {
        Ok(Ok(ControllerResponse::Quorum(info))) => info,
        Ok(Err((code, message))) => {
            response.error_code = code.0;
            response.error_message = Some(str_bytes(&message));
            return response;
        }
        _ => {
            response.error_code = KafkaCode::NOT_CONTROLLER.0;
            return response;
        }
    };
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    partition.leader_id = info.leader.into();
    partition.leader_epoch = info.term as i32;
    partition.high_watermark = info.commit as i64;
    partition.current_voters = info
        .voters
        .iter()
        .map(|(id, matched)| {
            let mut voter = ReplicaState::default();
            voter.replica_id = (*id).into();
            voter.log_end_offset = *matched as i64;
            voter.last_fetch_timestamp = -1;
            voter.last_caught_up_timestamp = -1;
            voter
        })
        .collect();
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(str_bytes(METADATA_TOPIC));
    topic.partitions = vec![partition];
    response.topics = vec![topic];
    response
}
