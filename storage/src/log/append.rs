//! Appends: the leader's (offsets assigned, epochs stamped) and a follower's (batches as fetched), and rolling to a new segment.

use super::*;

impl PartitionLog {
    /// Appends batches already checked by [`batch::validate_batches`]
    /// (`headers` are its result for this buffer) as the partition's leader
    /// in `leader_epoch`. Assigns offsets from the log end offset and stamps
    /// `leader_epoch` on every batch (partitionLeaderEpoch, outside the CRC)
    /// by rewriting the buffer, rolls first if needed, writes, and updates
    /// the indexes.
    ///
    /// A `leader_epoch` newer than [`Self::latest_epoch`] is recorded in the
    /// leader epoch cache, starting at this append's first offset, and the
    /// `leader-epoch-checkpoint` is made durable before any batch is
    /// written. A negative epoch, or one older than the latest, is refused
    /// as [`StorageError::InvalidAppend`] (a stale leader must not write).
    pub fn append(
        &mut self,
        batches: &mut [u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
        log_append_time_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.check_tiling(batches, headers)?;
        if let Some(latest) = self.epochs.latest_epoch().filter(|l| leader_epoch < *l) {
            return Err(self.invalid_append(format!(
                "leader epoch {leader_epoch} is older than the latest epoch {latest} of the log"
            )));
        }
        if leader_epoch < 0 {
            return Err(self.invalid_append(format!("leader epoch {leader_epoch} is negative")));
        }
        self.roll_if_needed(batches.len() as u64, headers, now_ms)?;
        let first_offset = self.log_end_offset;
        let epochs_before = self.epochs.len();
        self.epochs.assign(leader_epoch, first_offset);
        // Every entry starts at or below the log end, so a newer epoch is
        // always accepted.
        assert_eq!(self.epochs.latest_epoch(), Some(leader_epoch));
        self.persist_new_epochs(epochs_before)?;
        let next_offset = batch::assign_offsets(batches, first_offset, headers, log_append_time_ms);
        batch::set_partition_leader_epoch(batches, headers, leader_epoch);
        let position = self.write_batches(
            batches,
            headers,
            first_offset,
            log_append_time_ms,
            now_ms,
            epochs_before,
        )?;
        debug_assert_eq!(self.log_end_offset, next_offset);
        self.record_producers(batches, headers, Some(first_offset))?;
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next_offset - 1,
            log_append_time_ms,
            position_bytes: position,
        })
    }

    /// Appends batches a follower fetched from its leader, exactly as they
    /// are: their offsets, leader epochs, timestamps and CRCs were set by the
    /// leader. `headers` are [`batch::validate_batches`]'s result for this
    /// buffer. Rolls first if needed, writes the bytes unchanged and updates
    /// the indexes, as [`Self::append`] does.
    ///
    /// Refused as [`StorageError::InvalidAppend`], with nothing written,
    /// unless the first batch starts at the log end offset and every batch
    /// starts right after the one before, and unless the batches' leader
    /// epochs never go below the latest epoch of the log (a follower
    /// truncates to where it agrees with its leader before it fetches, see
    /// [`Self::truncate_to`], so the leader's epochs continue its own).
    ///
    /// Each batch whose epoch is newer than the latest starts an entry of
    /// the leader epoch cache at its base offset; the cache is made durable
    /// before the batches are written. Batches without an epoch (-1, written
    /// by old clients before epochs existed) add nothing.
    /// `log_append_time_ms` of the result is always `None`: the leader
    /// stamped the timestamps.
    pub fn append_replicated(
        &mut self,
        batches: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.check_tiling(batches, headers)?;
        let first_offset = headers[0].base_offset;
        if first_offset != self.log_end_offset {
            return Err(self.invalid_append(format!(
                "replicated batches start at offset {first_offset}, the log ends at {}",
                self.log_end_offset
            )));
        }
        let mut next_offset = first_offset;
        let mut latest_epoch = self.epochs.latest_epoch();
        for h in headers {
            if h.base_offset != next_offset {
                return Err(self.invalid_append(format!(
                    "replicated batch at offset {} where {next_offset} was expected",
                    h.base_offset
                )));
            }
            let epoch = h.partition_leader_epoch;
            if let Some(latest) = latest_epoch.filter(|l| epoch >= 0 && epoch < *l) {
                return Err(self.invalid_append(format!(
                    "replicated batch at offset {} has leader epoch {epoch}, older than the \
                     latest epoch {latest} of the log",
                    h.base_offset
                )));
            }
            if epoch >= 0 {
                latest_epoch = Some(epoch);
            }
            next_offset = h.last_offset() + 1;
        }
        self.roll_if_needed(batches.len() as u64, headers, now_ms)?;
        let epochs_before = self.epochs.len();
        for h in headers {
            self.epochs.assign(h.partition_leader_epoch, h.base_offset);
        }
        self.persist_new_epochs(epochs_before)?;
        let position =
            self.write_batches(batches, headers, first_offset, None, now_ms, epochs_before)?;
        debug_assert_eq!(self.log_end_offset, next_offset);
        self.record_producers(batches, headers, None)?;
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next_offset - 1,
            log_append_time_ms: None,
            position_bytes: position,
        })
    }

    pub(super) fn invalid_append(&self, reason: String) -> StorageError {
        StorageError::InvalidAppend {
            path: self.dir.clone(),
            reason,
        }
    }

    /// Checks that `headers` tile `batches` exactly.
    pub(super) fn check_tiling(
        &self,
        batches: &[u8],
        headers: &[BatchHeader],
    ) -> Result<(), StorageError> {
        let tiled: usize = headers.iter().map(|h| h.total_bytes()).sum();
        if headers.is_empty() || tiled != batches.len() {
            return Err(self.invalid_append(format!(
                "{} headers cover {tiled} bytes but the buffer has {}",
                headers.len(),
                batches.len()
            )));
        }
        Ok(())
    }

    /// Rolls before an append of `len` bytes in `headers` if the active
    /// segment cannot take it.
    pub(super) fn roll_if_needed(
        &mut self,
        len: u64,
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let records: i64 = headers
            .iter()
            .map(|h| i64::from(h.last_offset_delta) + 1)
            .sum();
        if self.needs_roll(len, records, now_ms) {
            self.roll()?;
        }
        Ok(())
    }

    /// Writes batches whose offsets (from `first_offset`, contiguous) and
    /// epochs are final at the end of the active segment, tracks them in the
    /// indexes and moves the log end offset. `max_timestamp_ms` replaces
    /// every batch's max timestamp in the indexes (LogAppendTime). On
    /// failure the log is unchanged and the epoch entries the append added
    /// (beyond the first `epochs_before`) are dropped again. Returns the
    /// position of the first batch.
    pub(super) fn write_batches(
        &mut self,
        batches: &[u8],
        headers: &[BatchHeader],
        first_offset: i64,
        max_timestamp_ms: Option<i64>,
        now_ms: i64,
        epochs_before: usize,
    ) -> Result<u64, StorageError> {
        assert_eq!(
            first_offset, self.log_end_offset,
            "appends start at the log end"
        );
        let interval = u64::from(self.config.index_interval_bytes);
        let last = self.segments.len() - 1;
        let seg = &mut self.segments[last];
        let position = seg.size;
        if let Err(e) = seg.log.write_all_at(batches, position) {
            // The cache names epochs whose records are not there: forget
            // them, and have the file rewritten before the next write.
            if self.epochs.len() > epochs_before {
                self.epochs.keep_first(epochs_before);
                self.epochs_stale = true;
            }
            if is_no_space(&e) {
                // Nothing was acknowledged: cut whatever part of the write
                // landed, so the log ends where it did. If even that fails
                // the file is in an unknown state (the caller fail-stops).
                seg.log
                    .set_len(position)
                    .map_err(|e| StorageError::io_at(&seg.log_path, position, e))?;
                metrics::NO_SPACE_APPENDS.add(1);
                return Err(StorageError::NoSpace {
                    path: seg.log_path.clone(),
                    source: e,
                });
            }
            return Err(StorageError::io_at(&seg.log_path, position, e));
        }
        seg.dirty = true;
        seg.first_append_ms.get_or_insert(now_ms);
        let mut at = position;
        let mut base = first_offset;
        for h in headers {
            let total = h.total_bytes() as u64;
            let last = base + i64::from(h.last_offset_delta);
            let max_ts = max_timestamp_ms.unwrap_or(h.max_timestamp);
            seg.track_batch(base, last, max_ts, at, total, interval);
            at += total;
            base = last + 1;
        }
        seg.size = at;
        if seg.pending_index_entries() >= PENDING_INDEX_ENTRIES {
            match seg.write_pending_indexes() {
                Ok(()) => {}
                // The records are written; index entries stay pending in
                // memory and are written later (and recovery rebuilds
                // indexes anyway), so a full disk does not fail the append.
                Err(StorageError::IoAt { ref source, .. }) if is_no_space(source) => {
                    warn!(dir = %self.dir.display(), "disk full: index entries kept in memory for now");
                }
                Err(e) => return Err(e),
            }
        }
        self.log_end_offset = base;
        Ok(position)
    }

    pub(super) fn needs_roll(&self, len: u64, records: i64, now_ms: i64) -> bool {
        let Some(seg) = self.segments.last() else {
            return true;
        };
        if seg.is_empty() {
            // Whatever its size, a batch goes into a fresh segment as is.
            return false;
        }
        let new_size = seg.size + len;
        new_size > self.config.segment_bytes
            // Index positions are u32.
            || new_size > u64::from(u32::MAX)
            || self.log_end_offset + records - 1 - seg.base_offset > MAX_RELATIVE_OFFSET
            || seg
                .first_append_ms
                .is_some_and(|first| now_ms - first > self.config.segment_ms)
    }

    /// Seals the active segment and starts a new one at the log end offset.
    pub(super) fn roll(&mut self) -> Result<(), StorageError> {
        let syncer = Arc::clone(&self.syncer);
        self.sync_txn_index().map_err(StorageError::into_no_space)?;
        // Out of space while writing the old segment's indexes: no roll; the
        // entries stay in memory and the append is refused as disk full.
        self.active().seal().map_err(StorageError::into_no_space)?;
        self.active()
            .release_index_files(&*syncer)
            .map_err(StorageError::into_no_space)?;
        let seg = match Segment::open(&self.dir, self.log_end_offset) {
            Ok(seg) => seg,
            Err(StorageError::Io { path, source }) if is_no_space(&source) => {
                // Leave no half-created segment behind; appends go on in
                // the old one once space is back.
                for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    let name = segment_file_name(self.log_end_offset, suffix);
                    remove_if_exists(&self.dir.join(name))?;
                }
                metrics::NO_SPACE_APPENDS.add(1);
                return Err(StorageError::NoSpace { path, source });
            }
            Err(e) => return Err(e),
        };
        self.segments.push(seg);
        self.dir_changes += 1;
        self.snapshot_producers();
        Ok(())
    }
}
