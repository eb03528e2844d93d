//! The broker's side of the controller, on shard 0: admin requests
//! (CreateTopics, DeleteTopics, AlterConfigs, CreatePartitions,
//! ElectLeaders, DescribeQuorum), ISR changes and producer-id blocks go
//! through this node's [`ClusterNode`] to the active controller, wherever it
//! is, and return once every shard of this broker has applied their effect.
//!
//! Each function runs on shard 0 (other shards reach it with
//! `Shard::call(0, …)`); elsewhere it answers NOT_CONTROLLER.

use super::controller::{ControllerRequest, ControllerResponse};
use super::elections::IsrChange;
use super::ClusterNode;
use crate::errors::{KafkaCode, DISK_FULL_MESSAGE};
use crate::messages::{
    AdminOutcome, ConfigAlteration, CreateOutcome, CreateSpec, DeleteOutcome, DeleteSpec,
    PartitionGrowth,
};
use crate::metadata::PartitionState;
use crate::shard::Shard;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;
use tracing::{info, warn};
use uuid::Uuid;

/// How long an admin request may wait for the active controller.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

thread_local! {
    /// This node's cluster membership, on shard 0's thread once started.
    static NODE: OnceCell<Rc<ClusterNode>> = const { OnceCell::new() };
}

/// Makes `node` the one this thread's requests go through (shard 0, at start).
pub(super) fn install(node: &Rc<ClusterNode>) {
    NODE.with(|cell| assert!(cell.set(node.clone()).is_ok(), "one cluster node per shard"));
}

/// This node's cluster membership, on shard 0 once started.
pub fn node() -> Option<Rc<ClusterNode>> {
    NODE.with(|cell| cell.get().cloned())
}

/// Sends an admin request to the active controller and waits until every
/// shard here has applied its effect, so a client told "created" can use
/// the topic through any connection to this broker. Out of disk space, the
/// request is refused here before it reaches the metadata log
/// (KAFKA_STORAGE_ERROR, retriable).
pub(crate) async fn admin(
    shard: &Shard,
    request: ControllerRequest,
) -> Result<ControllerResponse, (KafkaCode, String)> {
    use ControllerResponse as R;
    if shard.disk_full.get() {
        return Err((
            KafkaCode::KAFKA_STORAGE_ERROR,
            DISK_FULL_MESSAGE.to_string(),
        ));
    }
    let Some(node) = node() else {
        return Err((
            KafkaCode::NOT_CONTROLLER,
            "admin requests are handled by shard 0".to_string(),
        ));
    };
    let answer = node
        .call(request, ADMIN_TIMEOUT)
        .await
        .map_err(|code| (code, "no active controller answered in time".to_string()))?;
    if let R::Refused { error, message } = answer {
        return Err((error, message));
    }
    let offset = match &answer {
        R::CreateTopics { offset, .. }
        | R::DeleteTopics { offset, .. }
        | R::Admin { offset, .. }
        | R::AlterIsr { offset, .. }
        | R::ElectLeaders { offset, .. }
        | R::Registered { offset, .. }
        | R::ProducerIds { offset, .. } => *offset,
        _ => 0,
    };
    if !node.wait_published(offset, ADMIN_TIMEOUT).await {
        warn!(
            offset,
            "admin change committed but not yet applied on every shard"
        );
    }
    Ok(answer)
}

/// CreateTopics: one outcome per topic.
pub(crate) async fn create_topics(
    shard: &Shard,
    specs: Vec<CreateSpec>,
    validate_only: bool,
) -> Vec<CreateOutcome> {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let request = ControllerRequest::CreateTopics {
        specs,
        validate_only,
    };
    match admin(shard, request).await {
        Ok(ControllerResponse::CreateTopics { outcomes, .. }) => outcomes,
        Ok(_) => failed_creates(names, KafkaCode::UNKNOWN_SERVER_ERROR, "unexpected answer"),
        Err((code, message)) => failed_creates(names, code, &message),
    }
}

/// DeleteTopics: one outcome per topic.
pub(crate) async fn delete_topics(shard: &Shard, specs: Vec<DeleteSpec>) -> Vec<DeleteOutcome> {
    let request = ControllerRequest::DeleteTopics {
        specs: specs.clone(),
    };
    match admin(shard, request).await {
        Ok(ControllerResponse::DeleteTopics { outcomes, .. }) => outcomes,
        Ok(_) => failed_deletes(&specs, KafkaCode::UNKNOWN_SERVER_ERROR, "unexpected answer"),
        Err((code, message)) => failed_deletes(&specs, code, &message),
    }
}

/// AlterConfigs (and IncrementalAlterConfigs): one outcome per resource.
pub(crate) async fn alter_configs(
    shard: &Shard,
    alterations: Vec<ConfigAlteration>,
    validate_only: bool,
) -> Vec<AdminOutcome> {
    let resources = alterations.len();
    let request = ControllerRequest::AlterConfigs {
        alterations,
        validate_only,
    };
    admin_outcomes(shard, request, resources).await
}

/// CreatePartitions: one outcome per topic.
pub(crate) async fn create_partitions(
    shard: &Shard,
    growths: Vec<PartitionGrowth>,
    validate_only: bool,
) -> Vec<AdminOutcome> {
    let resources = growths.len();
    let request = ControllerRequest::CreatePartitions {
        growths,
        validate_only,
    };
    admin_outcomes(shard, request, resources).await
}

/// A leader's ISR change: the partition's new state once committed.
pub(crate) async fn alter_isr(
    shard: &Shard,
    change: IsrChange,
) -> Result<PartitionState, KafkaCode> {
    match admin(shard, ControllerRequest::AlterIsr(change)).await {
        Ok(ControllerResponse::AlterIsr { result, .. }) => result,
        Ok(_) => Err(KafkaCode::UNKNOWN_SERVER_ERROR),
        Err((code, _)) => Err(code),
    }
}

/// A producer id no other producer of the cluster has: the next of the
/// block this broker holds, taking a new block from the controller when it
/// runs out (one request at a time). Blocks are in the metadata log, so ids
/// are never handed out twice, even across restarts; ids left in a block at
/// shutdown are skipped.
pub(crate) async fn allocate_producer_id(shard: &Shard) -> Result<i64, KafkaCode> {
    let Some(node) = node() else {
        return Err(KafkaCode::COORDINATOR_NOT_AVAILABLE);
    };
    loop {
        let (next, end) = node.producer_ids.get();
        if next < end {
            node.producer_ids.set((next + 1, end));
            return Ok(next);
        }
        let _one = node
            .producer_id_lock
            .acquire_permit(1)
            .await
            .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE)?;
        let (next, end) = node.producer_ids.get();
        if next < end {
            continue;
        }
        let request = ControllerRequest::AllocateProducerIds {
            broker: shard.node_id(),
        };
        match admin(shard, request).await {
            Ok(ControllerResponse::ProducerIds { first, count, .. }) => {
                info!(first, count, "took a block of producer ids");
                node.producer_ids.set((first, first + count));
            }
            Ok(other) => {
                warn!("unexpected answer to a producer id request: {other:?}");
                return Err(KafkaCode::COORDINATOR_NOT_AVAILABLE);
            }
            Err((code, message)) => {
                warn!(?code, "no producer id block from the controller: {message}");
                return Err(KafkaCode::COORDINATOR_NOT_AVAILABLE);
            }
        }
    }
}

/// An admin request answered with one outcome per resource.
async fn admin_outcomes(
    shard: &Shard,
    request: ControllerRequest,
    resources: usize,
) -> Vec<AdminOutcome> {
    match admin(shard, request).await {
        Ok(ControllerResponse::Admin { outcomes, .. }) => outcomes,
        Ok(_) => vec![
            AdminOutcome::failed(KafkaCode::UNKNOWN_SERVER_ERROR, "unexpected answer");
            resources
        ],
        Err((code, message)) => vec![AdminOutcome::failed(code, message); resources],
    }
}

fn failed_creates(names: Vec<String>, code: KafkaCode, message: &str) -> Vec<CreateOutcome> {
    names
        .into_iter()
        .map(|name| CreateOutcome {
            name,
            id: Uuid::nil(),
            error: code,
            message: Some(message.to_string()),
            num_partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        })
        .collect()
}

fn failed_deletes(specs: &[DeleteSpec], code: KafkaCode, message: &str) -> Vec<DeleteOutcome> {
    specs
        .iter()
        .map(|spec| DeleteOutcome {
            name: match spec {
                DeleteSpec::Name(n) => Some(n.clone()),
                DeleteSpec::Id(_) => None,
            },
            id: match spec {
                DeleteSpec::Id(id) => *id,
                DeleteSpec::Name(_) => Uuid::nil(),
            },
            error: code,
            message: Some(message.to_string()),
        })
        .collect()
}
