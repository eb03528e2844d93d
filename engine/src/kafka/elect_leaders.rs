//! ElectLeaders (v0-2, `kafka-leader-election.sh`): preferred (type 0) or
//! unclean (type 1) leader elections, decided by the active controller.
//! Partitions asked about but not elected say why (ELECTION_NOT_NEEDED,
//! PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION). Null partitions: every partition.

use crate::cluster::controller::{ControllerRequest, ControllerResponse};
use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use std::collections::BTreeMap;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let election = if version >= 1 {
        request.election_type
    } else {
        0
    };
    let mut response = ElectLeadersResponse::default();
    if !(0..=1).contains(&election) {
        response.error_code = KafkaCode::INVALID_REQUEST.0;
        return response;
    }
    let partitions = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect::<Vec<_>>()
    });
    let request = ControllerRequest::ElectLeaders {
        election,
        partitions,
    };
    let answer = shard
        .call(0, move |zero| async move {
            crate::cluster::client::admin(&zero, request).await
        })
        .await;
    let outcomes = match answer {
        Ok(Ok(ControllerResponse::ElectLeaders { outcomes, .. })) => outcomes,
        Ok(Err((code, _))) => {
            response.error_code = code.0;
            return response;
        }
        _ => {
            response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0;
            return response;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), code) in outcomes {
        let mut result = PartitionResult::default();
        result.partition_id = partition;
        result.error_code = code.0;
        if !code.is_ok() {
            result.error_message = Some(str_bytes(&format!("{code:?}")));
        }
        by_topic.entry(topic).or_default().push(result);
    }
    response.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut r = ReplicaElectionResult::default();
            r.topic = TopicName(str_bytes(&topic));
            r.partition_result = partition_result;
            r
        })
        .collect();
    response
}
