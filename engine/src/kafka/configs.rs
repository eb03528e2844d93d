//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.
//!
//! Resources: TOPIC (2) — a topic's overrides over the broker defaults — and
//! BROKER (4) — this node by id, or the cluster-wide default with the empty
//! name — whose run-time changeable keys are listed in
//! `strom_tuning::catalog::is_dynamic_broker_key`. Describing reads the
//! connection's shard's copy of the table; changes go to shard 0 (the
//! table's single writer), which persists the table before answering, so a
//! change is in force on every shard and survives a restart once
//! acknowledged. Other resource types (broker loggers, client metrics,
//! groups) get INVALID_REQUEST.

use crate::cluster::admin::broker_resource;
use crate::errors::KafkaCode;
use crate::messages::{AdminOutcome, ConfigAlteration, ConfigOp, ConfigResource};
use crate::shard::Shard;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;
use strom_net::response::str_bytes;
use strom_tuning::catalog::Described;
use strom_tuning::validate_topic_name;
use tracing::{info, warn};

/// Kafka's resource type codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn resource_of(resource_type: i8, name: &str) -> Result<ConfigResource, AdminOutcome> {
    match resource_type {
        RESOURCE_TOPIC => {
            if let Err(reason) = validate_topic_name(name) {
                return Err(AdminOutcome::failed(
                    KafkaCode::INVALID_TOPIC_EXCEPTION,
                    reason,
                ));
            }
            Ok(ConfigResource::Topic(name.to_string()))
        }
        RESOURCE_BROKER => Ok(ConfigResource::Broker(name.to_string())),
        other => Err(AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!(
                "resource type {other} is not supported by Strom (only TOPIC = 2 and BROKER = 4)"
            ),
        )),
    }
}

pub fn describe_configs(
    shard: &Rc<Shard>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let table = shard.table();
    let layers = shard.config_layers();
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name;
        let keys: Option<Vec<String>> = resource
            .configuration_keys
            .map(|keys| keys.iter().map(|k| k.to_string()).collect());
        let keys = keys.as_deref();
        let described = match resource_of(resource.resource_type, &name) {
            Err(outcome) => Err(outcome),
            Ok(ConfigResource::Topic(topic)) => match table.topics.get(&topic) {
                Some(meta) => Ok(layers.describe_topic(&meta.configs, keys)),
                None => Err(AdminOutcome::failed(
                    KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic '{topic}' does not exist."),
                )),
            },
            Ok(ConfigResource::Broker(id)) => match broker_resource(&shard.broker, &id) {
                Ok(None) => Ok(layers.describe_cluster_default(keys)),
                Ok(Some(_)) => Ok(layers.describe_broker(keys)),
                Err(outcome) => Err(outcome),
            },
        };
        match described {
            Ok(list) => {
                result.configs = list
                    .into_iter()
                    .map(|d| {
                        entry(
                            d,
                            request.include_synonyms,
                            request.include_documentation,
                            version,
                        )
                    })
                    .collect();
            }
            Err(outcome) => {
                result.error_code = outcome.error.0;
                result.error_message = outcome.message.map(|m| str_bytes(&m));
            }
        }
        response.results.push(result);
    }
    response
}

fn entry(
    d: Described,
    include_synonyms: bool,
    include_documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default();
    out.name = str_bytes(&d.name);
    out.value = d.value.as_deref().map(str_bytes);
    out.read_only = d.read_only;
    out.config_source = d.source.code();
    out.is_sensitive = false;
    if include_synonyms {
        out.synonyms = d
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                let mut synonym = DescribeConfigsSynonym::default();
                synonym.name = str_bytes(&name);
                synonym.value = value.as_deref().map(str_bytes);
                synonym.source = source.code();
                synonym
            })
            .collect();
    }
    if version >= 3 {
        out.config_type = d.config_type.code();
        if include_documentation && !d.documentation.is_empty() {
            out.documentation = Some(str_bytes(&d.documentation));
        }
    }
    out
}

/// Sends the alterations to shard 0; failures found here (bad resource
/// type or name, bad operation) are answered without it.
async fn alter(
    shard: &Rc<Shard>,
    resources: Vec<Result<ConfigAlteration, AdminOutcome>>,
    validate_only: bool,
) -> Vec<AdminOutcome> {
    let valid: Vec<ConfigAlteration> = resources
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut answers = if valid.is_empty() {
        Vec::new()
    } else {
        let described: Vec<String> = valid.iter().map(|a| format!("{:?}", a.resource)).collect();
        match shard
            .call(0, move |zero| async move {
                crate::cluster::client::alter_configs(&zero, valid, validate_only).await
            })
            .await
        {
            Ok(answers) => {
                if !validate_only {
                    for (what, answer) in described.iter().zip(&answers) {
                        if answer.error.is_ok() {
                            info!("configs altered: {what}");
                        }
                    }
                }
                answers
            }
            Err(err) => {
                warn!("AlterConfigs not completed: {err}");
                Vec::new()
            }
        }
    }
    .into_iter();
    resources
        .into_iter()
        .map(|r| match r {
            Err(outcome) => outcome,
            Ok(_) => answers.next().unwrap_or_else(|| {
                AdminOutcome::failed(KafkaCode::UNKNOWN_SERVER_ERROR, "the broker is stopping")
            }),
        })
        .collect()
}

pub async fn alter_configs(
    shard: &Rc<Shard>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let keys: Vec<(i8, StrBytes)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.clone()))
        .collect();
    let resources = request
        .resources
        .into_iter()
        .map(|r| {
            let resource = resource_of(r.resource_type, &r.resource_name)?;
            Ok(ConfigAlteration {
                resource,
                replace: true,
                ops: r
                    .configs
                    .into_iter()
                    .map(|c| ConfigOp::Set(c.name.to_string(), c.value.map(|v| v.to_string())))
                    .collect(),
            })
        })
        .collect();
    let outcomes = alter(shard, resources, request.validate_only).await;
    let mut response = AlterConfigsResponse::default();
    for ((resource_type, name), outcome) in keys.into_iter().zip(outcomes) {
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource_type;
        r.resource_name = name;
        r.error_code = outcome.error.0;
        r.error_message = outcome.message.map(|m| str_bytes(&m));
        response.responses.push(r);
    }
    response
}

pub async fn incremental_alter_configs(
    shard: &Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let keys: Vec<(i8, StrBytes)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.clone()))
        .collect();
    let resources = request
        .resources
        .into_iter()
        .map(|r| {
            let resource = resource_of(r.resource_type, &r.resource_name)?;
            let mut ops = Vec::with_capacity(r.configs.len());
            for c in r.configs {
                let key = c.name.to_string();
                let value = c.value.map(|v| v.to_string());
                ops.push(match c.config_operation {
                    OP_SET => ConfigOp::Set(key, value),
                    OP_DELETE => ConfigOp::Delete(key),
                    OP_APPEND => ConfigOp::Append(key, value),
                    OP_SUBTRACT => ConfigOp::Subtract(key, value),
                    other => {
                        return Err(AdminOutcome::failed(
                            KafkaCode::INVALID_REQUEST,
                            format!("{key}: unknown config operation {other} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)"),
                        ))
                    }
                });
            }
            Ok(ConfigAlteration {
                resource,
                replace: false,
                ops,
            })
        })
        .collect();
    let outcomes = alter(shard, resources, request.validate_only).await;
    let mut response = IncrementalAlterConfigsResponse::default();
    for ((resource_type, name), outcome) in keys.into_iter().zip(outcomes) {
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource_type;
        r.resource_name = name;
        r.error_code = outcome.error.0;
        r.error_message = outcome.message.map(|m| str_bytes(&m));
        response.responses.push(r);
    }
    response
}
