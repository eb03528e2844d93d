//! CreatePartitions: grow a topic's partition count (never shrink).
//!
//! Forwarded to shard 0, which validates each topic, persists the table and
//! installs it on every shard (the owners open the new partitions) before
//! answering, so the new partitions take produce and fetch right away.

use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::messages::{AdminOutcome, PartitionGrowth};
use crate::shard::Shard;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::rc::Rc;
use strom_net::response::str_bytes;
use tracing::{info, warn};

pub async fn handle(
    shard: &Rc<Shard>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let growths: Vec<PartitionGrowth> = request
        .topics
        .into_iter()
        .map(|t| PartitionGrowth {
            topic: t.name.0.to_string(),
            count: t.count,
            assignments: t.assignments.map(|list| {
                list.into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| NodeId(b.0)).collect())
                    .collect()
            }),
        })
        .collect();
    let summary: Vec<(String, i32)> = growths.iter().map(|g| (g.topic.clone(), g.count)).collect();
    let validate_only = request.validate_only;
    let outcomes = match shard
        .call(0, move |zero| async move {
            crate::cluster::client::create_partitions(&zero, growths, validate_only).await
        })
        .await
    {
        Ok(outcomes) => outcomes,
        Err(err) => {
            warn!("CreatePartitions not completed: {err}");
            Vec::new()
        }
    };
    let mut outcomes = outcomes.into_iter();
    let mut response = CreatePartitionsResponse::default();
    for (name, (topic, count)) in names.into_iter().zip(summary) {
        let outcome = outcomes.next().unwrap_or_else(|| {
            AdminOutcome::failed(KafkaCode::UNKNOWN_SERVER_ERROR, "the broker is stopping")
        });
        if outcome.error.is_ok() && !validate_only {
            info!(topic = %topic, partitions = count, "partitions added");
        }
        let mut result = CreatePartitionsTopicResult::default();
        result.name = name;
        result.error_code = outcome.error.0;
        result.error_message = outcome.message.map(|m| str_bytes(&m));
        response.results.push(result);
    }
    response
}
