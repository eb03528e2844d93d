//! FindCoordinator: which broker coordinates a consumer group (key type 0). On a
//! single node that is this broker, for every group. Transaction coordinators (key
//! type 1) do not exist yet: COORDINATOR_NOT_AVAILABLE, so transactional clients
//! fail clearly instead of being sent to a coordinator that cannot serve them.
//!
//! The first group lookup creates `__consumer_offsets`; the group APIs are in
//! `groups.rs`. (Serving FindCoordinator also makes librdkafka enable LZ4, which
//! it gates on FindCoordinator v0.)

use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;
use strom_net::response::str_bytes;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The answer for one key: the coordinator, or an error and its message.
fn answer(
    shard: &Shard,
    key: &str,
    key_type: i8,
) -> Result<(i32, String, i32), (KafkaCode, String)> {
    match key_type {
        KEY_TYPE_GROUP if key.is_empty() => Err((
            KafkaCode::INVALID_REQUEST,
            "The group id must not be empty".into(),
        )),
        KEY_TYPE_GROUP => {
            // The leader of the group's __consumer_offsets partition.
            let table = shard.table();
            let topic = table.topics.get(crate::group::OFFSETS_TOPIC).ok_or((
                KafkaCode::COORDINATOR_NOT_AVAILABLE,
                "The coordinator is not available".to_string(),
            ))?;
            let p = crate::group::offsets_partition(key, topic.partitions);
            let leader = topic
                .partition(p)
                .map_or(crate::metadata::NO_LEADER, |s| s.leader);
            let broker = table.brokers.get(&leader).filter(|b| !b.fenced);
            match broker {
                Some(b) => Ok((b.id, b.host.clone(), i32::from(b.port))),
                None if leader == shard.broker.node_id => {
                    let (host, port) = shard.broker.advertised();
                    Ok((leader, host, i32::from(port)))
                }
                None => Err((
                    KafkaCode::COORDINATOR_NOT_AVAILABLE,
                    "The coordinator is not available".to_string(),
                )),
            }
        }
        KEY_TYPE_TRANSACTION => Err((
            KafkaCode::COORDINATOR_NOT_AVAILABLE,
            "Transactions are not supported by this broker yet".into(),
        )),
        other => Err((
            KafkaCode::INVALID_REQUEST,
            format!("Unknown coordinator key type {other}"),
        )),
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if request.key_type == KEY_TYPE_GROUP {
        // Created on first use, like Kafka, so the coordinator is ready
        // when the client comes to it.
        if let Err(code) = crate::handlers::groups::ensure_offsets_topic(shard).await {
            tracing::warn!(
                "{}: cannot create the offsets topic ({code:?})",
                crate::group::OFFSETS_TOPIC
            );
        }
    }
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                match answer(shard, key, request.key_type) {
                    Ok((node, host, port)) => {
                        c.node_id = BrokerId(node);
                        c.host = str_bytes(&host);
                        c.port = port;
                    }
                    Err((code, message)) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = code.0;
                        c.error_message = Some(str_bytes(&message));
                    }
                }
                c
            })
            .collect();
        return response;
    }
    match answer(shard, &request.key, request.key_type) {
        Ok((node, host, port)) => {
            response.node_id = BrokerId(node);
            response.host = str_bytes(&host);
            response.port = port;
        }
        Err((code, message)) => {
            response.error_code = code.0;
            response.node_id = BrokerId(-1);
            response.host = StrBytes::default();
            response.port = -1;
            if version >= 1 {
                response.error_message = Some(str_bytes(&message));
            }
        }
    }
    response
}
