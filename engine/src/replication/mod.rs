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
use crate::shard::Shard;
use std::rc::Rc;
use std::time::Duration;

impl Shard {
    /// Leaders drop followers that stopped keeping up: checked every half of
    /// `replica.lag.time.max.ms` (at most every 5 s, at least every 100 ms).
    pub(crate) async fn isr_timer(self: Rc<Self>) {
        let lag_max_ms = self.broker.replica_lag_time_max_ms;
        let every = Duration::from_millis((lag_max_ms / 2).clamp(100, 5000) as u64);
        let me = self.broker.node_id;
        loop {
            glommio::timer::sleep(every).await;
            let now = now_ms();
            let requests: Vec<_> = self
                .partitions
                .borrow_mut()
                .iter_mut()
                .filter_map(|(tp, p)| {
                    p.shrink_lagging(me, now, lag_max_ms)
                        .map(|r| (tp.clone(), r))
                })
                .collect();
            for (tp, request) in requests {
                tracing::info!(shard = self.id, topic = %tp.topic, partition = tp.partition, isr = ?request.isr, "followers fell behind for longer than replica.lag.time.max.ms");
                self.request_isr_change(tp, request);
            }
        }
    }
}
