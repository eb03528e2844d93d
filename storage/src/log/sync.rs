//! Durability: sync plans for the engine's group commit, the checkpoint file, flush and clean close.

use super::*;

impl PartitionLog {
    /// Offsets below this are synced.
    pub fn synced_offset(&self) -> i64 {
        self.synced.offset
    }

    /// What must be synced to make everything appended so far durable, or
    /// `None` when it already is.
    pub fn sync_plan(&self) -> Result<Option<SyncPlan>, StorageError> {
        let point = self.end_point();
        let dir_dirty = self.dir_changes > self.dir_synced;
        if point.offset <= self.synced.offset && !dir_dirty {
            return Ok(None);
        }
        let mut files = Vec::new();
        let mut sizes = Vec::new();
        for seg in &self.segments {
            if seg.size > seg.synced_size {
                files.push(Arc::clone(&seg.log));
                sizes.push((seg.base_offset, seg.size));
            }
        }
        if dir_dirty {
            let dir = File::open(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
            files.push(Arc::new(dir));
        }
        Ok(Some(SyncPlan {
            files,
            end_offset: point.offset,
            point,
            sizes,
            dir_changes: self.dir_changes,
            truncations: self.truncations,
        }))
    }

    /// Records that every file of `plan` was synced successfully. Returns
    /// the new synced offset.
    ///
    /// A plan made before a [truncation](Self::truncate_to) is ignored: the
    /// bytes it covered may be gone and their offsets written again since.
    pub fn synced(&mut self, plan: &SyncPlan) -> i64 {
        if plan.truncations != self.truncations {
            return self.synced.offset;
        }
        for (base, size) in &plan.sizes {
            if let Some(seg) = self.segments.iter_mut().find(|s| s.base_offset == *base) {
                seg.synced_size = seg.synced_size.max(*size);
            }
        }
        self.dir_synced = self.dir_synced.max(plan.dir_changes);
        if plan.point.offset > self.synced.offset {
            self.synced = plan.point;
        }
        self.synced.offset
    }

    /// Syncs what [`Self::sync_plan`] names, here and now through the log's
    /// syncer (recovery, close, tests; the broker syncs through io_uring).
    pub fn sync_now(&mut self) -> Result<i64, StorageError> {
        if let Some(plan) = self.sync_plan()? {
            for file in &plan.files {
                self.syncer
                    .sync(file)
                    .map_err(|e| StorageError::io(&self.dir, e))?;
            }
            self.synced(&plan);
        }
        Ok(self.synced.offset)
    }

    /// The checkpoint as it stands now.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            recovery_point: self.synced.offset,
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark(),
        }
    }

    /// Whether the checkpoint on disk differs from [`Self::checkpoint`].
    pub fn checkpoint_stale(&self) -> bool {
        self.checkpointed != Some(self.checkpoint())
    }

    /// Records that `checkpoint` was written (by [`checkpoint::write`] on
    /// another thread).
    pub fn checkpoint_written(&mut self, checkpoint: Checkpoint) {
        self.checkpointed = Some(checkpoint);
    }

    /// The syncer this log's files are synced with.
    pub fn syncer(&self) -> Arc<dyn Syncer> {
        Arc::clone(&self.syncer)
    }

    /// Writes the checkpoint here and now if it changed.
    pub fn write_checkpoint(&mut self) -> Result<(), StorageError> {
        self.write_checkpoint_as(self.checkpoint())
    }

    pub(super) fn write_checkpoint_as(&mut self, current: Checkpoint) -> Result<(), StorageError> {
        if self.checkpointed != Some(current) {
            checkpoint::write(&self.dir, &current, &*self.syncer)?;
            self.checkpointed = Some(current);
        }
        Ok(())
    }

    /// The checkpoint open writes after recovery: the current one, but with
    /// a high watermark no higher than the stored one. The replicated cap is
    /// not known yet at open; writing the uncapped value would let a second
    /// crash turn uncommitted records into a stored high watermark.
    pub(super) fn write_open_checkpoint(&mut self) -> Result<(), StorageError> {
        let mut current = self.checkpoint();
        if let Some(stored) = self.stored_high_watermark {
            current.high_watermark = current
                .high_watermark
                .min(stored.max(self.log_start_offset));
        }
        self.write_checkpoint_as(current)
    }

    /// Syncs the log and index files of every segment written since the
    /// last flush, and the directory if files came or went, through the
    /// log's syncer; everything appended so far is then synced (the
    /// checkpoint is written separately, see [`Self::write_checkpoint`]).
    pub fn flush(&mut self) -> Result<(), StorageError> {
        let point = self.end_point();
        let syncer = Arc::clone(&self.syncer);
        for seg in self
            .segments
            .iter_mut()
            .filter(|s| s.dirty || s.size > s.synced_size)
        {
            seg.sync(&*syncer)?;
        }
        if self.dir_changes > self.dir_synced {
            sync_dir(&self.dir, &*syncer)?;
            self.dir_synced = self.dir_changes;
        }
        self.synced = point;
        Ok(())
    }

    /// Flushes everything, writes the checkpoint and leaves the
    /// clean-shutdown marker, so the next open trusts the files instead of
    /// scanning them.
    ///
    /// On a full disk the index files or the checkpoint may not fit: then
    /// the records are still synced, but no marker is left, so the next open
    /// checks the log and rebuilds what is missing.
    pub fn close(mut self) -> Result<(), StorageError> {
        let finished = self
            .active()
            .seal()
            .and_then(|()| {
                self.active().dirty = true;
                self.flush()
            })
            .and_then(|()| self.write_checkpoint())
            .and_then(|()| self.sync_txn_index())
            .and_then(|()| {
                if self.epochs_stale {
                    self.persist_epochs()
                } else {
                    Ok(())
                }
            });
        match finished {
            Ok(()) => {}
            Err(e) if e.is_no_space() => {
                warn!(dir = %self.dir.display(), error = %e, "disk full at close: records synced, indexes left for recovery to rebuild");
                self.sync_now()?;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.snapshot_producers();
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| self.syncer.sync(&f))
            .map_err(|e| StorageError::io(&marker, e))?;
        sync_dir(&self.dir, &*self.syncer)
    }
}
