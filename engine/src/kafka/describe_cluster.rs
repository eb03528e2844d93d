//! DescribeCluster: the cluster id, the active controller and the live brokers
//! (v2: with every registered broker and whether it is fenced, KIP-1073).

use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use std::rc::Rc;
use strom_net::response::str_bytes;

/// Endpoint types (v1+): brokers, or controllers (KIP-919).
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(shard: &Rc<Shard>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.endpoint_type = request.endpoint_type;
    response.cluster_authorized_operations = i32::MIN;
    if request.endpoint_type != ENDPOINT_BROKERS {
        response.error_code = KafkaCode::UNSUPPORTED_ENDPOINT_TYPE.0;
        response.error_message = Some(str_bytes(
            "Strom serves only broker endpoints (endpoint type 1); it has no separate controllers",
        ));
        return response;
    }
    let table = shard.table();
    response.cluster_id = str_bytes(&table.cluster_id);
    response.controller_id = table.controller_id.into();
    let mut brokers: Vec<DescribeClusterBroker> =
        crate::kafka::metadata::live_brokers(shard, &table)
            .into_iter()
            .map(|(id, host, port, rack)| {
                let mut node = DescribeClusterBroker::default();
                node.broker_id = id.into();
                node.host = str_bytes(&host);
                node.port = i32::from(port);
                node.rack = rack.map(|r| str_bytes(&r));
                node
            })
            .collect();
    if request.include_fenced_brokers {
        for b in table.brokers.values().filter(|b| b.fenced) {
            let mut node = DescribeClusterBroker::default();
            node.broker_id = b.id.into();
            node.host = str_bytes(&b.host);
            node.port = i32::from(b.port);
            node.rack = b.rack.as_ref().map(|r| str_bytes(r));
            node.is_fenced = true;
            brokers.push(node);
        }
        brokers.sort_by_key(|b| b.broker_id.0);
    }
    response.brokers = brokers;
    response
}
