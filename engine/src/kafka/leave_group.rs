//! LeaveGroup: members leave (one, or a batch by instance id from v3).

use super::{opt, opt_bytes};
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    let mut response = LeaveGroupResponse::default();
    let members: Vec<(String, Option<String>)> = if version <= 2 {
        vec![(request.member_id.to_string(), None)]
    } else {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), opt(&m.group_instance_id)))
            .collect()
    };
    let leave = GroupCall::Leave {
        group: group.clone(),
        members: members.clone(),
    };
    match call(shard, &group, leave).await {
        Ok(GroupAnswer::Codes(codes)) => {
            if version <= 2 {
                response.error_code = codes.first().copied().unwrap_or(KafkaCode::NONE).0;
            } else {
                response.members = members
                    .into_iter()
                    .zip(codes)
                    .map(|((member, instance), code)| {
                        let mut m = leave_group_response::MemberResponse::default();
                        m.member_id = str_bytes(&member);
                        m.group_instance_id = opt_bytes(instance);
                        m.error_code = code.0;
                        m
                    })
                    .collect();
            }
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
        Err(code) => response.error_code = code.0,
    }
    response
}
