//! ListGroups: every group this broker coordinates (all shards asked).

use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use futures::future::join_all;
use kafka_protocol::messages::*;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(shard: &Rc<Shard>, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return response;
    }
    let calls = (0..shard.count).map(|s| {
        let shard = shard.clone();
        async move {
            shard
                .call(s, |s| async move {
                    crate::group::service::groups()
                        .serve(&s, GroupCall::List)
                        .await
                })
                .await
        }
    });
    for answer in join_all(calls).await {
        match answer {
            Ok(GroupAnswer::Listed(groups)) => {
                for (id, protocol_type, state) in groups {
                    if !states.is_empty() && !states.contains(&state.to_ascii_lowercase()) {
                        continue;
                    }
                    let mut g = list_groups_response::ListedGroup::default();
                    g.group_id = GroupId(str_bytes(&id));
                    g.protocol_type = str_bytes(&protocol_type);
                    g.group_state = str_bytes(state);
                    g.group_type = str_bytes("classic");
                    response.groups.push(g);
                }
            }
            Ok(_) => {}
            Err(_) => response.error_code = KafkaCode::COORDINATOR_NOT_AVAILABLE.0,
        }
    }
    response
        .groups
        .sort_by(|a, b| a.group_id.0.as_str().cmp(b.group_id.0.as_str()));
    response
}
