//! Each shard's storage housekeeping: group commit, flush policy,
//! checkpoints, retention and the free-space check.
//!
//! **Group commit.** An append that must be synced (every append of a topic
//! without write caching; with write caching, once `flush.messages` records
//! are unsynced or `flush.ms` has passed) queues its partition on the shard's
//! sync queue. One task per shard takes *everything* queued, asks each log
//! for its [`SyncPlan`](strom_storage::log::SyncPlan), issues all the
//! `fdatasync`s at once as io_uring requests, and when all have completed
//! records the new synced offsets, answers the acks=all producers waiting on
//! them and wakes fetches (the high watermark moved). Appends that arrive
//! while a round is in flight queue up for the next round, so under load many
//! producers' batches share one sync per partition.
//!
//! A failed `fdatasync` stops the broker (exit status
//! [`EXIT_STORAGE_FAILURE`](crate::EXIT_STORAGE_FAILURE)): after a failed
//! sync the kernel may have dropped the dirty pages, so neither retrying nor
//! carrying on is safe.

use crate::clock::now_ms;
use crate::errors::KafkaCode;
use crate::messages::{RecordsDeleted, RecordsDeletion, TopicPartition};
use crate::runtime::uring;
use crate::shard::Shard;
use futures::future::join_all;
use futures::StreamExt;
use std::rc::Rc;
use std::time::Duration;
use strom_storage::checkpoint;
use strom_storage::log::SyncPlan;
use strom_storage::StorageError;
use tracing::{debug, error, info, warn};

/// How often each shard checks the data directory's free space.
const DISK_SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Bounds of the `flush.ms` timer's period.
const FLUSH_TICK_MIN: Duration = Duration::from_millis(5);
const FLUSH_TICK_MAX: Duration = Duration::from_millis(1000);

fn fail_stop(shard: usize, what: &str, err: &dyn std::fmt::Display) -> ! {
    error!(
        shard,
        "{what} failed, stopping the broker (exit status {}): {err}",
        crate::EXIT_STORAGE_FAILURE
    );
    crate::logging::exit(crate::EXIT_STORAGE_FAILURE)
}

impl Shard {
    /// Starts the shard's background storage tasks.
    pub fn start_storage_tasks(self: &Rc<Self>) {
        glommio::spawn_local(self.clone().sync_loop()).detach();
        glommio::spawn_local(self.clone().flush_timer()).detach();
        glommio::spawn_local(self.clone().checkpoint_timer()).detach();
        glommio::spawn_local(self.clone().retention_timer()).detach();
        glommio::spawn_local(self.clone().disk_space_timer()).detach();
        let shard = self.clone();
        glommio::spawn_local(async move { crate::metrics::watch_stalls(&shard.metrics).await })
            .detach();
    }

    /// Queues a partition for the next group-commit round. Bounded by
    /// construction: every caller first sets the partition's `sync_queued`
    /// flag, which the round clears when it takes the partition, so the queue
    /// holds each owned partition at most once.
    pub(crate) fn request_sync(&self, tp: TopicPartition) {
        // The queue is closed only when the sync loop ended, which happens
        // only as the shard stops; closing the partitions then syncs them
        // (PartitionLog::close), and a sync failure there stops the broker.
        if self.sync_queue.unbounded_send(tp).is_err() {
            debug!(shard = self.id, "sync queue closed: the shard is stopping");
        }
    }

    async fn sync_loop(self: Rc<Self>) {
        let Some(mut queue) = self.sync_queue_rx.borrow_mut().take() else {
            return;
        };
        while let Some(first) = queue.next().await {
            let mut tps = vec![first];
            while let Ok(tp) = queue.try_recv() {
                tps.push(tp);
            }
            let plans = self.plan_syncs(tps);
            if plans.is_empty() {
                continue;
            }
            let syncs = plans.iter().flat_map(|(tp, plan)| {
                plan.files.iter().map(move |file| async move {
                    let started = std::time::Instant::now();
                    let result = uring::fdatasync(file).await;
                    (tp, result, started.elapsed())
                })
            });
            for (tp, result, elapsed) in join_all(syncs).await {
                self.metrics.fsync_done(elapsed);
                if let Err(err) = result {
                    let what = format!("fdatasync of {}-{}", tp.topic, tp.partition);
                    fail_stop(self.id, &what, &err);
                }
            }
            self.apply_syncs(plans);
        }
    }

    fn plan_syncs(&self, tps: Vec<TopicPartition>) -> Vec<(TopicPartition, SyncPlan)> {
        let mut partitions = self.partitions.borrow_mut();
        let mut plans = Vec::with_capacity(tps.len());
        for tp in tps {
            let Some(partition) = partitions.get_mut(&tp) else {
                continue;
            };
            partition.sync_queued = false;
            match partition.log.sync_plan() {
                Ok(Some(plan)) => plans.push((tp, plan)),
                Ok(None) => partition.on_progress(),
                Err(err) => fail_stop(self.id, "planning a sync", &err),
            }
        }
        plans
    }

    fn apply_syncs(&self, plans: Vec<(TopicPartition, SyncPlan)>) {
        let now = now_ms();
        let mut partitions = self.partitions.borrow_mut();
        for (tp, plan) in plans {
            // Gone meanwhile (topic deleted): nobody waits for it.
            let Some(partition) = partitions.get_mut(&tp) else {
                continue;
            };
            partition.log.synced(&plan);
            partition.last_sync_ms = now;
            partition.on_progress();
        }
    }

    /// With write caching, `flush.ms` bounds how long records stay unsynced.
    async fn flush_timer(self: Rc<Self>) {
        loop {
            let now = now_ms();
            let mut tick = FLUSH_TICK_MAX;
            let mut due = Vec::new();
            for (tp, partition) in self.partitions.borrow_mut().iter_mut() {
                let flush_ms = partition.config.flush_ms;
                if !partition.config.write_caching || flush_ms == i64::MAX {
                    continue;
                }
                tick = tick.min(Duration::from_millis(flush_ms.max(0) as u64));
                let unsynced = partition.log.log_end_offset() > partition.log.synced_offset();
                if unsynced && !partition.sync_queued && now - partition.last_sync_ms >= flush_ms {
                    partition.sync_queued = true;
                    due.push(tp.clone());
                }
            }
            for tp in due {
                self.request_sync(tp);
            }
            glommio::timer::sleep(tick.max(FLUSH_TICK_MIN)).await;
        }
    }

    /// Writes changed checkpoints every `log.flush.offset.checkpoint.interval.ms`.
    async fn checkpoint_timer(self: Rc<Self>) {
        let period =
            Duration::from_millis(self.broker.log_flush_offset_checkpoint_interval_ms as u64);
        loop {
            glommio::timer::sleep(period).await;
            let stale: Vec<TopicPartition> = self
                .partitions
                .borrow()
                .iter()
                .filter(|(_, p)| p.log.checkpoint_stale())
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in stale {
                self.write_checkpoint(&tp).await;
            }
        }
    }

    /// Writes a partition's checkpoint if it changed, on a blocking thread
    /// (temp file, fsync, rename, fsync the directory), one at a time per
    /// shard so an older checkpoint never lands after a newer one. Returns
    /// false when it could not be written for lack of disk space (the old
    /// one stays in force; the timer tries again).
    pub(crate) async fn write_checkpoint(&self, tp: &TopicPartition) -> bool {
        let Ok(_permit) = self.checkpoint_lock.acquire_permit(1).await else {
            return false;
        };
        let job = self
            .partitions
            .borrow()
            .get(tp)
            .filter(|p| p.log.checkpoint_stale())
            .map(|p| {
                (
                    p.log.dir().to_path_buf(),
                    p.log.checkpoint(),
                    p.log.syncer(),
                )
            });
        let Some((dir, content, syncer)) = job else {
            return true;
        };
        let result = glommio::executor()
            .spawn_blocking(move || checkpoint::write(&dir, &content, &*syncer))
            .await;
        let mut partitions = self.partitions.borrow_mut();
        match (result, partitions.get_mut(tp)) {
            (Ok(()), Some(partition)) => {
                partition.log.checkpoint_written(content);
                true
            }
            // Deleted while the checkpoint was written: nothing to keep.
            (_, None) => true,
            (Err(err), Some(_)) if err.is_no_space() => {
                warn!(shard = self.id, topic = %tp.topic, partition = tp.partition, "disk full: checkpoint not written, trying again later: {err}");
                false
            }
            (Err(err), Some(_)) => fail_stop(self.id, "writing a checkpoint", &err),
        }
    }

    /// Applies retention, and forgets idempotent producers idle for
    /// `producer.id.expiration.ms`, every `log.retention.check.interval.ms`.
    async fn retention_timer(self: Rc<Self>) {
        let period = Duration::from_millis(self.broker.log_retention_check_interval_ms as u64);
        loop {
            glommio::timer::sleep(period).await;
            let now = now_ms();
            let mut changed = Vec::new();
            let expiration = self.broker.producer_id_expiration_ms;
            for (tp, partition) in self.partitions.borrow_mut().iter_mut() {
                let expired = partition.log.expire_producers(now, expiration);
                if expired > 0 {
                    info!(shard = self.id, topic = %tp.topic, partition = tp.partition, expired, "forgot idle idempotent producers");
                }
                match partition.log.enforce_retention(now) {
                    Ok(removed) if removed.segments > 0 => {
                        info!(
                            shard = self.id,
                            topic = %tp.topic,
                            partition = tp.partition,
                            segments = removed.segments,
                            bytes = removed.bytes,
                            log_start_offset = partition.log.log_start_offset(),
                            "retention deleted segments"
                        );
                        changed.push(tp.clone());
                    }
                    Ok(_) => {}
                    Err(err) => fail_stop(self.id, "applying retention", &err),
                }
            }
            for tp in changed {
                self.write_checkpoint(&tp).await;
            }
        }
    }

    /// Keeps `disk_full` in step with the data directory's free space.
    async fn disk_space_timer(self: Rc<Self>) {
        let dir = self.broker.data_dir().to_path_buf();
        let min_free = self.broker.log_dir_min_free_bytes;
        let mut checks = 0u64;
        loop {
            match nix::sys::statvfs::statvfs(&dir) {
                Ok(stat) => {
                    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
                    let low = free < min_free;
                    let was = self.disk_full.replace(low);
                    checks += 1;
                    // Retrying partitions the full disk kept closed costs
                    // file system calls: every 5 s at most.
                    if !low && checks.is_multiple_of(10) {
                        self.reopen_missing_partitions();
                    }
                    if low && !was {
                        warn!(shard = self.id, dir = %dir.display(), free, min_free, "free space below strom.log.dir.min.free.bytes: refusing produce requests (KAFKA_STORAGE_ERROR) until space is freed");
                    } else if !low && was {
                        info!(shard = self.id, dir = %dir.display(), free, "disk space available again: accepting produce requests");
                    }
                }
                Err(err) => {
                    warn!(shard = self.id, dir = %dir.display(), "cannot check free space: {err}")
                }
            }
            glommio::timer::sleep(DISK_SPACE_CHECK_INTERVAL).await;
        }
    }

    /// DeleteRecords on partitions this shard owns: an answer per item,
    /// after the new log start offsets are checkpointed.
    pub(crate) async fn delete_records_local(
        &self,
        items: Vec<RecordsDeletion>,
    ) -> Vec<RecordsDeleted> {
        let refused = |error| RecordsDeleted {
            low_watermark: -1,
            error,
        };
        let mut outcomes = Vec::with_capacity(items.len());
        // (index in outcomes, partition) of the moved log starts.
        let mut changed = Vec::new();
        {
            let mut partitions = self.partitions.borrow_mut();
            for RecordsDeletion { tp, offset } in items {
                let Some(partition) = partitions.get_mut(&tp) else {
                    outcomes.push(refused(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
                    continue;
                };
                if !partition.role.is_leader() {
                    outcomes.push(refused(KafkaCode::NOT_LEADER_OR_FOLLOWER));
                    continue;
                }
                let log = &mut partition.log;
                let target = if offset == -1 {
                    log.high_watermark()
                } else {
                    offset
                };
                match log.delete_records_before(target) {
                    Ok(low_watermark) => {
                        changed.push((outcomes.len(), tp));
                        outcomes.push(RecordsDeleted {
                            low_watermark,
                            error: KafkaCode::NONE,
                        });
                    }
                    Err(StorageError::OffsetOutOfRange { .. }) => {
                        outcomes.push(refused(KafkaCode::OFFSET_OUT_OF_RANGE));
                    }
                    Err(err) => fail_stop(self.id, "deleting records", &err),
                }
            }
        }
        for (index, tp) in changed {
            if !self.write_checkpoint(&tp).await {
                // Moved in memory but not persisted: the client retries
                // (the retry persists it once space is back).
                outcomes[index] = refused(KafkaCode::KAFKA_STORAGE_ERROR);
            }
        }
        outcomes
    }
}
