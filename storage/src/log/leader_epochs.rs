//! The leader epoch cache of the partition: what fetchers and OffsetForLeaderEpoch read, and when it is made durable.

use super::*;

impl PartitionLog {
    /// Makes the leader epoch cache durable before an append writes its
    /// batches, if the append added entries (beyond the first
    /// `epochs_before`) or an earlier write failed. On failure the added
    /// entries are forgotten and nothing is written: the append fails, as
    /// [`StorageError::NoSpace`] when the disk is full.
    pub(super) fn persist_new_epochs(&mut self, epochs_before: usize) -> Result<(), StorageError> {
        if self.epochs.len() == epochs_before && !self.epochs_stale {
            return Ok(());
        }
        if let Err(e) = self.persist_epochs() {
            self.epochs.keep_first(epochs_before);
            let e = e.into_no_space();
            if e.is_no_space() {
                metrics::NO_SPACE_APPENDS.add(1);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The newest leader epoch that wrote to this log, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The leader epoch cache: `(epoch, start_offset)` entries, sorted by
    /// both; epoch `e` wrote from `start_offset` up to the next entry's start
    /// (or the log end for the latest).
    pub fn epoch_entries(&self) -> &[(i32, i64)] {
        self.epochs.entries()
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and the
    /// offset where it ended here (see
    /// [`LeaderEpochCache::end_offset_for`]); `(-1, -1)` (Kafka's
    /// UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs
            .end_offset_for(epoch, self.log_end_offset)
            .unwrap_or((UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET))
    }

    /// Writes the leader epoch cache to its file, durably. While this has
    /// not succeeded the file counts as stale.
    pub(super) fn persist_epochs(&mut self) -> Result<(), StorageError> {
        self.epochs_stale = true;
        epochs::write(&self.dir, &self.epochs, &*self.syncer)?;
        self.epochs_stale = false;
        Ok(())
    }

    /// [`Self::persist_epochs`] if the cache `changed` or the file is stale.
    pub(super) fn persist_epochs_if(&mut self, changed: bool) -> Result<(), StorageError> {
        if changed || self.epochs_stale {
            self.persist_epochs()?;
        }
        Ok(())
    }

    /// [`Self::persist_epochs`] where a full disk can wait: the file stays
    /// stale and is rewritten before the next batch is written (the entries
    /// dropped here from the front are dropped again at open anyway).
    pub(super) fn persist_epochs_or_defer(&mut self) -> Result<(), StorageError> {
        match self.persist_epochs() {
            Err(e) if e.is_no_space() => {
                warn!(dir = %self.dir.display(), error = %e, "disk full: leader epoch checkpoint not updated yet");
                Ok(())
            }
            other => other,
        }
    }

    /// The log start offset moved (retention, DeleteRecords): so does the
    /// first epoch's start.
    pub(super) fn truncate_epochs_from_start(&mut self) -> Result<(), StorageError> {
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.persist_epochs_or_defer()?;
        }
        Ok(())
    }
}
