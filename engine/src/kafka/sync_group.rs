//! SyncGroup: the leader hands out assignments, every member gets its own.

use super::{opt, opt_bytes};
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = SyncGroupResponse::default();
    let sync = GroupCall::Sync {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id,
        protocol_type: opt(&request.protocol_type),
        protocol: opt(&request.protocol_name),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    match call(shard, &group, sync).await {
        Ok(GroupAnswer::Sync(outcome)) => {
            response.error_code = outcome.error.0;
            response.protocol_type = opt_bytes(outcome.protocol_type);
            response.protocol_name = opt_bytes(outcome.protocol);
            response.assignment = outcome.assignment;
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => response.error_code = code.0,
    }
    response
}
