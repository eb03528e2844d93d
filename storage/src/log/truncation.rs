//! Truncation of a diverged follower log, durably, before it fetches again.

use super::*;

impl PartitionLog {
    /// Removes every record at or after `offset`: a follower whose log
    /// diverged from its leader's cuts it back to where they agree
    /// (KIP-101/KIP-279). A batch is never split: if `offset` falls inside a
    /// batch, the log is cut at that batch's start, so the new log end
    /// offset can be below `offset`.
    ///
    /// Later segments are deleted; the segment holding the cut is shortened
    /// (its `.log`, indexes and max timestamp) and becomes the active one.
    /// The synced point and the replicated high watermark move down to the
    /// cut if they were past it, and leader epoch cache entries starting at
    /// or after it are dropped. Durable before it returns: the recovery
    /// point is lowered first (so recovery re-scans rather than trusts what
    /// is rewritten), then the cut file, the directory, the epoch cache and
    /// the checkpoint are synced, so a crash cannot resurrect the removed
    /// records. A fetch still sending bytes past the cut from the shortened
    /// segment fails (the file ends under it; the network layer reports
    /// that), as in Kafka; deleted segments stay readable for such fetches.
    ///
    /// `offset` at or past the log end removes no record, but still drops
    /// epoch cache entries starting at the log end (an epoch recorded by an
    /// append that then failed, which would otherwise claim records a leader
    /// sends next), as Kafka does. `offset` below the log start offset is
    /// [`Self::truncate_fully_and_start_at`]`(offset)`; a negative `offset`
    /// is [`StorageError::OffsetOutOfRange`].
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.log_end_offset {
            let changed = self.epochs.truncate_from_end(self.log_end_offset);
            return self.persist_epochs_if(changed);
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        let cut = self.boundary_at_or_below(offset)?;
        self.truncations += 1;
        self.write_lowered_checkpoint(cut.offset, cut.offset)?;
        self.cut_at(cut)?;
        self.rebuild_producers()?;
        self.write_checkpoint()
    }

    /// Deletes every segment and starts an empty log at `offset`: log start
    /// offset = log end offset = `offset`, the leader epoch cache cleared,
    /// an empty active segment with base `offset` (a follower too far behind
    /// its leader's log start, or with a log the leader no longer has).
    /// Durable before it returns, like [`Self::truncate_to`]; fetches still
    /// sending from the old segments keep reading them. A negative `offset`
    /// is [`StorageError::OffsetOutOfRange`].
    ///
    /// If the new segment cannot be created after the old ones were deleted,
    /// the error is never [`StorageError::is_no_space`] (its cause is kept
    /// inside): the log has no segment left and must not be used again.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        self.truncations += 1;
        // Recovery after a crash in the middle then scans whatever old
        // segments survive, and an empty directory restarts at
        // max(recovery point, log start) = `offset`.
        let first_base = self.segments[0].base_offset;
        let current = self.checkpoint();
        self.write_checkpoint_as(Checkpoint {
            recovery_point: current.recovery_point.min(first_base).min(offset),
            log_start_offset: offset,
            high_watermark: current.high_watermark.min(offset),
        })?;
        // The old segments go, durably, before the new one exists: a crash
        // never leaves a new segment among old ones, which recovery would
        // take for a corrupt log.
        let fatal = |e: StorageError| match e {
            StorageError::Io { path, source } => StorageError::Io {
                path,
                source: std::io::Error::other(source),
            },
            other => other,
        };
        for seg in std::mem::take(&mut self.segments) {
            seg.remove_files().map_err(fatal)?;
        }
        self.dir_changes += 1;
        sync_dir(&self.dir, &*self.syncer).map_err(fatal)?;
        self.segments
            .push(Segment::open(&self.dir, offset).map_err(fatal)?);
        self.dir_changes += 1;
        let start = LogPoint {
            offset,
            segment_base: offset,
            position: 0,
        };
        self.log_end_offset = offset;
        self.log_start_offset = offset;
        self.synced = start;
        if self.replicated_high_watermark.is_some() {
            self.replicated_high_watermark = Some(start);
        }
        sync_dir(&self.dir, &*self.syncer)?;
        self.dir_synced = self.dir_changes;
        // After the records are gone: a crash in between leaves entries that
        // open drops or moves to the new start.
        let changed = self.epochs.clear();
        self.persist_epochs_if(changed)?;
        self.producers.clear();
        self.aborted.clear();
        self.remove_producer_snapshots();
        self.write_checkpoint()
    }

    /// Writes, before a truncation touches any file, a checkpoint whose
    /// recovery point is at most `recovery_point_max` and whose high
    /// watermark is at most `high_watermark_max`. Recovery trusts the
    /// segments below the recovery point without scanning them (and takes
    /// their ends from the next segment's base); a truncation interrupted by
    /// a crash must find them scanned instead.
    pub(super) fn write_lowered_checkpoint(
        &mut self,
        recovery_point_max: i64,
        high_watermark_max: i64,
    ) -> Result<(), StorageError> {
        let current = self.checkpoint();
        self.write_checkpoint_as(Checkpoint {
            recovery_point: current.recovery_point.min(recovery_point_max),
            log_start_offset: current.log_start_offset,
            high_watermark: current.high_watermark.min(high_watermark_max),
        })
    }

    /// Cuts the log at `cut` (a batch boundary inside the log), durably:
    /// deletes later segments, shortens the one holding `cut`, syncs it and
    /// the directory, then moves the log end, the points past the cut and
    /// the leader epoch cache.
    pub(super) fn cut_at(&mut self, cut: LogPoint) -> Result<(), StorageError> {
        let index = self
            .segments
            .iter()
            .position(|s| s.base_offset == cut.segment_base)
            .expect("a cut point names a segment of the log");
        let later: Vec<Segment> = self.segments.drain(index + 1..).collect();
        if !later.is_empty() {
            self.dir_changes += 1;
        }
        for seg in later {
            seg.remove_files()?;
        }
        self.segments[index].truncate(cut.position, cut.offset)?;
        self.log_end_offset = cut.offset;
        self.log_start_offset = self.log_start_offset.min(cut.offset);
        if self.synced.offset > cut.offset {
            self.synced = cut;
        }
        if let Some(cap) = &mut self.replicated_high_watermark {
            if cap.offset > cut.offset {
                *cap = cut;
            }
        }
        let syncer = Arc::clone(&self.syncer);
        self.segments[index].sync(&*syncer)?;
        if self.dir_changes > self.dir_synced {
            sync_dir(&self.dir, &*syncer)?;
            self.dir_synced = self.dir_changes;
        }
        // After the cut is durable: a crash in between leaves entries past
        // the log end, which open drops.
        let changed = self.epochs.truncate_from_end(cut.offset);
        self.persist_epochs_if(changed)
    }
}
