//! Reads: fetch regions up to the high watermark (or the log end, for followers), offset and timestamp lookups.

use super::*;

impl PartitionLog {
    /// Bytes to send for a fetch at `offset`: from the start of the batch
    /// holding `offset`, at most `max_bytes` but always the whole first batch
    /// (KIP-74), ending on a batch boundary and never past the segment's end.
    /// `Ok(None)` at the log end offset.
    ///
    /// Only records below the [high watermark](Self::high_watermark) are
    /// returned; an offset between it and the log end reads as `Ok(None)`.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<FileRegion>, StorageError> {
        self.read_below(offset, max_bytes, self.visible_point())
    }

    /// [`Self::read`] for a follower replicating this log: bounded by the log
    /// end offset instead of the high watermark, so it also returns records
    /// that are not synced or not committed yet (a follower copies the
    /// leader's log as it is; the high watermark it is sent says what may be
    /// exposed).
    pub fn read_to_end(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<FileRegion>, StorageError> {
        self.read_below(offset, max_bytes, self.end_point())
    }

    /// The reads: batches from the one holding `offset` up to `visible` (a
    /// batch boundary), see [`Self::read`].
    pub(super) fn read_below(
        &self,
        offset: i64,
        max_bytes: u64,
        visible: LogPoint,
    ) -> Result<Option<FileRegion>, StorageError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        if offset >= visible.offset {
            return Ok(None);
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            if seg.base_offset > visible.segment_base {
                break;
            }
            let Some((position, header)) = seg.find_batch(offset)? else {
                // Offsets past this segment's last batch continue in the
                // next segment.
                continue;
            };
            let first_end = position + header.total_bytes() as u64;
            let mut limit = position.saturating_add(max_bytes);
            if seg.base_offset == visible.segment_base {
                limit = limit.min(visible.position);
            }
            let first_next = header.last_offset() + 1;
            let (end, next_offset) = if first_end >= limit {
                (first_end, first_next)
            } else {
                seg.boundary_at_or_below(first_end, first_next, limit)?
            };
            return Ok(Some(FileRegion {
                file: Arc::clone(&seg.log),
                position,
                len: end - position,
                next_offset,
            }));
        }
        Ok(None)
    }

    /// The point below which records are visible: the synced end, or the
    /// log end with write caching; never past the replicated high watermark.
    pub(super) fn visible_point(&self) -> LogPoint {
        let local = if self.config.write_caching {
            self.end_point()
        } else {
            self.synced
        };
        match self.replicated_high_watermark {
            Some(cap) if cap.offset < local.offset => cap,
            _ => local,
        }
    }

    /// Caps what [`Self::high_watermark`] and [`Self::read`] expose at
    /// `limit`, the high watermark replication computed (the offset every
    /// in-sync replica has): the high watermark becomes the smaller of the
    /// local one (synced end, or log end with write caching) and `limit`.
    /// `None`, the default, removes the cap (a single replica).
    ///
    /// `limit` is clamped into `[log start, log end]`; one inside a batch is
    /// rounded down to that batch's start, since reads end on batch
    /// boundaries. The cap stays where it is as the log grows (call again to
    /// move it) and moves down with [`Self::truncate_to`]. The point is
    /// looked up here, once; if its batch header cannot be read, the cap is
    /// put at the start of the segment holding `limit` (it only exposes
    /// less) and a warning is logged.
    pub fn set_replicated_high_watermark(&mut self, limit: Option<i64>) {
        self.replicated_high_watermark = limit.map(|offset| self.cap_point(offset));
    }

    /// The replicated high watermark point for `offset` (see
    /// [`Self::set_replicated_high_watermark`]).
    pub(super) fn cap_point(&self, offset: i64) -> LogPoint {
        let offset = offset.clamp(self.log_start_offset, self.log_end_offset);
        let mut point = self.boundary_at_or_below(offset).unwrap_or_else(|e| {
            let seg = &self.segments[self.segment_index(offset)];
            warn!(dir = %self.dir.display(), offset, error = %e, "cannot find the batch holding the replicated high watermark: capping at its segment's start");
            LogPoint {
                offset: seg.base_offset,
                segment_base: seg.base_offset,
                position: 0,
            }
        });
        point.offset = point.offset.max(self.log_start_offset);
        point
    }

    /// The index of the segment holding `offset` (the first one for offsets
    /// below the log).
    pub(super) fn segment_index(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// The batch boundary at or below `offset`: the start of the batch
    /// holding it, or the log end.
    pub(super) fn boundary_at_or_below(&self, offset: i64) -> Result<LogPoint, StorageError> {
        if offset >= self.log_end_offset {
            return Ok(self.end_point());
        }
        let seg = &self.segments[self.segment_index(offset)];
        let (offset, position) = if offset <= seg.base_offset {
            (seg.base_offset, 0)
        } else {
            match seg.find_batch(offset)? {
                Some((position, header)) => (header.base_offset, position),
                None => (seg.next_offset, seg.size),
            }
        };
        Ok(LogPoint {
            offset,
            segment_base: seg.base_offset,
            position,
        })
    }

    /// The high watermark the checkpoint held when the log was opened,
    /// clamped to the log end offset; `None` without a checkpoint. The
    /// engine of a replicated partition restores the cap from it
    /// ([`Self::set_replicated_high_watermark`]) right after open, before
    /// the next checkpoint is written: the checkpoint that open itself
    /// writes keeps the high watermark at most this value, so a crash before
    /// the cap is restored does not raise it.
    pub fn stored_high_watermark(&self) -> Option<i64> {
        self.stored_high_watermark
    }

    pub(super) fn end_point(&self) -> LogPoint {
        let active = &self.segments[self.segments.len() - 1];
        LogPoint {
            offset: self.log_end_offset,
            segment_base: active.base_offset,
            position: active.size,
        }
    }

    /// The high watermark: the offset below which consumers may read. With
    /// write caching off (the default) that is the synced end of the log, so
    /// nobody ever reads a record a crash could take back; with write
    /// caching on it is the log end offset. Either way no more than the
    /// [replicated high watermark](Self::set_replicated_high_watermark), if
    /// one is set.
    pub fn high_watermark(&self) -> i64 {
        self.visible_point().offset
    }

    /// ListOffsets by timestamp: the base offset of the first batch whose
    /// max timestamp is >= `timestamp_ms`, with that max timestamp. Records
    /// are not parsed, so the answer is at batch granularity (a consumer
    /// seeking there may see a few older records of the same batch).
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        for seg in &self.segments {
            match seg.max_timestamp {
                Some((max, _)) if max >= timestamp_ms => {}
                _ => continue,
            }
            // Every batch before the last time entry older than the target
            // is older too, so the scan can start at that entry's batch.
            let mut position = match seg.time_index.last_before(timestamp_ms) {
                Some(entry) => {
                    let at = seg.offset_index.lookup(entry.offset);
                    let position = u64::from(at.position);
                    if position != 0 && seg.index_entry_matches(at.offset, position) {
                        position
                    } else {
                        0
                    }
                }
                None => 0,
            };
            while position < seg.size {
                let header = seg.read_header(position)?;
                if header.max_timestamp >= timestamp_ms {
                    // Kafka answers with the first *record* at or after the time.
                    // Uncompressed batches are searched record by record; for a
                    // compressed one the batch's base offset is returned (never
                    // later than the exact record, so nothing is skipped).
                    let mut found = (header.base_offset, header.max_timestamp);
                    if header.compression() == 0 {
                        let mut bytes = vec![0u8; header.total_bytes()];
                        seg.log
                            .read_exact_at(&mut bytes, position)
                            .map_err(|e| StorageError::io_at(&seg.log_path, position, e))?;
                        if let Some(record) = batch::record_timestamps(&bytes)
                            .and_then(|records| records.into_iter().find(|r| r.1 >= timestamp_ms))
                        {
                            found = record;
                        }
                    }
                    let offset = found.0.max(self.log_start_offset);
                    return Ok(Some((offset, found.1)));
                }
                position += header.total_bytes() as u64;
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of the first record
    /// carrying it (ListOffsets MAX_TIMESTAMP); None if empty. Exact for an
    /// uncompressed batch; for a compressed one, the batch's base offset.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(usize, i64, i64)> = None;
        for (index, seg) in self.segments.iter().enumerate() {
            if let Some((ts, offset)) = seg.max_timestamp {
                let better = match best {
                    Some((_, b, _)) => ts > b,
                    None => true,
                };
                if better {
                    best = Some((index, ts, offset));
                }
            }
        }
        let (index, ts, batch_offset) = best?;
        let exact = self.segments[index]
            .record_with_timestamp(batch_offset, ts)
            .unwrap_or(batch_offset);
        Some((ts, exact.max(self.log_start_offset)))
    }

    pub(super) fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }
}
