//! DescribeCluster: the cluster id, the controller and the brokers (this one).

use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
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
    let broker = &shard.broker;
    let (host, port) = broker.advertised();
    response.cluster_id = str_bytes(&shard.table().cluster_id);
    response.controller_id = BrokerId(broker.node_id);
    let mut node = DescribeClusterBroker::default();
    node.broker_id = BrokerId(broker.node_id);
    node.host = str_bytes(&host);
    node.port = i32::from(port);
    response.brokers = vec![node];
    response
}
