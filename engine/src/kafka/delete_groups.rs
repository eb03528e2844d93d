//! DeleteGroups: empty groups and their offsets.

use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group in request.groups_names {
        let mut r = delete_groups_response::DeletableGroupResult::default();
        r.group_id = group.clone();
        r.error_code = match call(shard, &group.0, GroupCall::Delete(group.0.to_string())).await {
            Ok(GroupAnswer::Code(code)) => code.0,
            Ok(_) => KafkaCode::UNKNOWN_SERVER_ERROR.0,
            Err(code) => code.0,
        };
        response.results.push(r);
    }
    response
}
