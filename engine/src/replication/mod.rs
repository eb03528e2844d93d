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

use crate::clock::monotonic_ms;
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
    loop {
        glommio::timer::sleep(every).await;
        for (tp, request) in lagging_isr_requests(&shard, lag_max_ms) {
            tracing::info!(shard = shard.id, topic = %tp.topic, partition = tp.partition, isr = ?request.isr, "followers fell behind for longer than replica.lag.time.max.ms");
            request_isr_change(&shard, tp, &request);
        }
    }
}

/// The ISR shrinks this shard's partitions ask for now: members not caught
/// up for `lag_max_ms`. Measured on the monotonic clock, as every ISR time
/// is: a step of the wall clock (NTP, an operator) neither drops every
/// follower at once nor keeps a dead one in (issue 17, defect 7).
pub(crate) fn lagging_isr_requests(
    shard: &Shard,
    lag_max_ms: i64,
) -> Vec<(TopicPartition, IsrRequest)> {
    let me = shard.node_id();
    let now = monotonic_ms();
    shard
        .partitions
        .borrow_mut()
        .iter_mut()
        .filter_map(|(tp, p)| {
            p.shrink_lagging(me, now, lag_max_ms)
                .map(|r| (tp.clone(), r))
        })
        .collect()
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
                partition.isr_request_failed(monotonic_ms());
            }
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Manual;
    use crate::ids::{LeaderEpoch, NodeId};
    use crate::messages::ReadItem;
    use crate::metadata::{PartitionState, TopicMeta, TopicTable};
    use crate::runtime::mesh::Task;
    use glommio::channels::channel_mesh::MeshBuilder;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use strom_tuning::config::BrokerConfig;
    use uuid::Uuid;

    /// A step of the wall clock is no time passing: the ISR stays as it is
    /// (issue 17, defect 7). Before, ISR lag was wall-clock time, and a
    /// step of five minutes dropped every follower at once.
    #[test]
    fn a_wall_clock_step_does_not_shrink_the_isr() {
        let data = tempfile::tempdir().unwrap();
        let mut config = BrokerConfig {
            node_id: 1,
            replica_lag_time_max_ms: 30_000,
            ..BrokerConfig::default()
        };
        config.log_dirs = vec![data.path().to_path_buf()];
        let mut state = PartitionState::new(vec![NodeId(1), NodeId(2)]);
        state.leader_epoch = LeaderEpoch(1);
        let meta = TopicMeta {
            name: "t".to_string(),
            id: Uuid::new_v4(),
            partitions: 1,
            configs: BTreeMap::new(),
            assignments: vec![state],
        };
        let table = Arc::new(TopicTable {
            revision: 1,
            cluster_id: "test".to_string(),
            topics: [("t".to_string(), Arc::new(meta))].into_iter().collect(),
            ..TopicTable::default()
        });
        let config = Arc::new(config);
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let clock = Manual::start_at(1_700_000_000_000);
                let mesh = MeshBuilder::<Task<Shard>, _>::full(1, 8);
                let (senders, _receivers) = mesh.join().await.unwrap();
                let shard = Shard::new(config, senders, Arc::new(TopicTable::default()));
                shard.apply_table(table);
                let tp = TopicPartition {
                    topic: Arc::from("t"),
                    partition: 0,
                };
                // Follower 2 fetches at the log end: caught up.
                let fetch = ReadItem {
                    tp: tp.clone(),
                    offset: 0,
                    max_bytes: 1 << 20,
                    current_leader_epoch: LeaderEpoch(1),
                    replica_id: NodeId(2),
                    read_committed: false,
                };
                let read = shard.read_local(&[fetch]);
                let caught_up = read[0].error;
                clock.advance(1_000);
                let after_a_second = lagging_isr_requests(&shard, 30_000).len();
                // The wall clock jumps five minutes ahead, then back.
                clock.step_wall(5 * 60_000);
                let after_step_ahead = lagging_isr_requests(&shard, 30_000).len();
                clock.step_wall(-10 * 60_000);
                let after_step_back = lagging_isr_requests(&shard, 30_000).len();
                // Real time passing beyond the lag limit still counts.
                clock.advance(31_000);
                let after_real_lag = lagging_isr_requests(&shard, 30_000);
                (
                    caught_up,
                    after_a_second,
                    after_step_ahead,
                    after_step_back,
                    after_real_lag
                        .into_iter()
                        .map(|(_, r)| r.isr)
                        .collect::<Vec<_>>(),
                )
            })
            .unwrap();
        let (caught_up, second, ahead, back, lagged) = handle.join().unwrap();
        assert_eq!(caught_up, crate::errors::KafkaCode::NONE);
        assert_eq!(second, 0);
        assert_eq!(ahead, 0, "a wall-clock step ahead shrank the ISR");
        assert_eq!(back, 0);
        assert_eq!(
            lagged,
            vec![vec![NodeId(1)]],
            "a follower 31 s behind leaves"
        );
    }
}
