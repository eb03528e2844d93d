//! DescribeGroups: state, protocol and members of groups.

use super::opt_bytes;
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(shard: &Rc<Shard>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group in request.groups {
        let mut d = describe_groups_response::DescribedGroup::default();
        d.group_id = group.clone();
        d.authorized_operations = i32::MIN;
        match call(shard, &group.0, GroupCall::Describe(group.0.to_string())).await {
            Ok(GroupAnswer::Described(described)) => {
                d.group_state = str_bytes(described.state);
                d.protocol_type = str_bytes(&described.protocol_type);
                d.protocol_data = str_bytes(&described.protocol);
                d.members = described
                    .members
                    .into_iter()
                    .map(|(id, instance, client, host, metadata, assignment)| {
                        let mut m = describe_groups_response::DescribedGroupMember::default();
                        m.member_id = str_bytes(&id);
                        m.group_instance_id = opt_bytes(instance);
                        m.client_id = str_bytes(&client);
                        m.client_host = str_bytes(&host);
                        m.member_metadata = metadata;
                        m.member_assignment = assignment;
                        m
                    })
                    .collect();
            }
            Ok(_) => d.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
            Err(code) => d.error_code = code.0,
        }
        response.groups.push(d);
    }
    response
}
