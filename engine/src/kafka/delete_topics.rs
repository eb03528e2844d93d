//! DeleteTopics: by name (v1-v5) or by name or id (v6). Forwarded to shard 0; when
//! it answers, every shard has dropped the topic and its data is gone from disk.

use crate::errors::KafkaCode;
use crate::messages::{DeleteOutcome, DeleteSpec};
use crate::shard::Shard;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use std::rc::Rc;
use strom_net::response::str_bytes;
use tracing::warn;
use uuid::Uuid;

pub async fn handle(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let specs: Vec<DeleteSpec> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) => DeleteSpec::Name(name.0.to_string()),
                None => DeleteSpec::Id(t.topic_id),
            })
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| DeleteSpec::Name(n.0.to_string()))
            .collect()
    };
    let fallback: Vec<DeleteSpec> = specs.clone();
    let outcomes = match shard
        .call(0, move |zero| async move {
            crate::cluster::client::delete_topics(&zero, specs).await
        })
        .await
    {
        Ok(outcomes) => outcomes,
        Err(err) => {
            warn!("DeleteTopics not completed: {err}");
            fallback
                .into_iter()
                .map(|spec| {
                    let (name, id) = match spec {
                        DeleteSpec::Name(n) => (Some(n), Uuid::nil()),
                        DeleteSpec::Id(id) => (None, id),
                    };
                    DeleteOutcome {
                        name,
                        id,
                        error: KafkaCode::UNKNOWN_SERVER_ERROR,
                        message: Some(err.to_string()),
                    }
                })
                .collect()
        }
    };
    let mut response = DeleteTopicsResponse::default();
    response.responses = outcomes
        .into_iter()
        .map(|o| {
            let mut result = DeletableTopicResult::default();
            result.name = o.name.map(|n| TopicName(str_bytes(&n)));
            result.topic_id = o.id;
            result.error_code = o.error.0;
            result.error_message = o.message.map(|m| str_bytes(&m));
            result
        })
        .collect();
    response
}
