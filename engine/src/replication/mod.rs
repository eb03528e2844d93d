//! Partition replication, Kafka's ISR model: the leader of a partition
//! serves produce and fetch, followers copy its log with replica fetches,
//! the high watermark is what every in-sync replica has, and ISR changes go
//! through the active controller.
//!
//! - `crate::partition::isr`: the leader's rules (high watermark, lagging
//!   and caught-up followers), pure.
//! - `crate::partition::role`: a partition's role on this broker and its
//!   transitions.
//! - `fetcher`: followers' fetch tasks, one per shard and leader broker.

pub mod fetcher;

use crate::clock::now_ms;
use crate::cluster::elections::IsrChange;
use crate::messages::TopicPartition;
use crate::partition::role::IsrRequest;
use crate::shard::Shard;
use std::rc::Rc;
use std::time::Duration;
use tracing::info;

/// Leaders drop followers that stopped keeping up: checked every half of
/// `replica.lag.time.max.ms` (at most every 5 s, at least every 100 ms).
pub(crate) async fn isr_timer(shard: Rc<Shard>) {
    let lag_max_ms = shard.broker.replica_lag_time_max_ms;
    let every = Duration::from_millis((lag_max_ms / 2).clamp(100, 5000) as u64);
    let me = shard.node_id();
    loop {
        glommio::timer::sleep(every).await;
        let now = now_ms();
        let requests: Vec<_> = shard
            .partitions
            .borrow_mut()
            .iter_mut()
            .filter_map(|(tp, p)| {
                p.shrink_lagging(me, now, lag_max_ms)
                    .map(|r| (tp.clone(), r))
            })
            .collect();
        for (tp, request) in requests {
            tracing::info!(shard = shard.id, topic = %tp.topic, partition = tp.partition, isr = ?request.isr, "followers fell behind for longer than replica.lag.time.max.ms");
            request_isr_change(&shard, tp, &request);
        }
    }
}

/// Asks the controller (through shard 0) for an ISR change a partition of
/// this shard leads; the new ISR arrives with the metadata.
pub(crate) fn request_isr_change(shard: &Rc<Shard>, tp: TopicPartition, request: &IsrRequest) {
    let change = IsrChange {
        leader: shard.node_id(),
        topic: tp.topic.to_string(),
        partition: tp.partition,
        leader_epoch: request.leader_epoch,
        partition_epoch: request.partition_epoch,
        isr: request.isr.clone(),
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        info!(shard = shard.id, topic = %tp.topic, partition = tp.partition, isr = ?change.isr, "asking the controller for an ISR change");
        let result = shard
            .call(0, move |zero| async move {
                crate::cluster::client::alter_isr(&zero, change).await
            })
            .await;
        if !matches!(result, Ok(Ok(_))) {
            info!(shard = shard.id, topic = %tp.topic, partition = tp.partition, ?result, "ISR change not made");
            if let Some(partition) = shard.partitions.borrow_mut().get_mut(&tp) {
                partition.isr_request_failed(now_ms());
            }
        }
    })
    .detach();
}
