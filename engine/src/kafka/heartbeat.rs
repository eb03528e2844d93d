//! Heartbeat: a member is alive; the answer says whether a rebalance is under way.

use super::opt;
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group = request.group_id.0.to_string();
    let mut response = HeartbeatResponse::default();
    let beat = GroupCall::Heartbeat {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id,
    };
    response.error_code = match call(shard, &group, beat).await {
        Ok(GroupAnswer::Code(code)) => code.0,
        Ok(_) => KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => code.0,
    };
    response
}
