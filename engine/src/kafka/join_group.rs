//! JoinGroup: a member joins (or rejoins) a group; answered when the rebalance completes.

use super::{opt, opt_bytes};
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::group::JoinRequest;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = JoinGroupResponse::default();
    let join = JoinRequest {
        group: group.clone(),
        member_id: request.member_id.to_string(),
        instance_id: opt(&request.group_instance_id),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    response.generation_id = -1;
    match call(shard, &group, GroupCall::Join(join)).await {
        Ok(GroupAnswer::Join(outcome)) => {
            response.error_code = outcome.error.0;
            response.generation_id = outcome.generation;
            response.protocol_type = opt_bytes(outcome.protocol_type);
            response.protocol_name = opt_bytes(outcome.protocol);
            if version < 7 && response.protocol_name.is_none() {
                response.protocol_name = Some(StrBytes::default());
            }
            response.leader = str_bytes(&outcome.leader);
            response.skip_assignment = outcome.skip_assignment;
            response.member_id = str_bytes(&outcome.member_id);
            response.members = outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let mut m = join_group_response::JoinGroupResponseMember::default();
                    m.member_id = str_bytes(&id);
                    m.group_instance_id = opt_bytes(instance);
                    m.metadata = metadata;
                    m
                })
                .collect();
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => {
            response.error_code = code.0;
            response.member_id = request.member_id;
        }
    }
    response
}
