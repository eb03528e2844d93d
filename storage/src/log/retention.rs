//! Retention by time and size, and DeleteRecords: whole segments leave from the front.

use super::*;

impl PartitionLog {
    /// Retention: deletes sealed segments from the front while their newest
    /// record is older than `retention.ms` or the log is over
    /// `retention.bytes` without them, as long as they are synced and below
    /// the high watermark. The active segment is never deleted;
    /// when every record of it has expired by time it is rolled first (as
    /// Kafka does), so the log keeps an empty active segment. Moves the log
    /// start offset; the caller persists it with the checkpoint.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<Removed, StorageError> {
        let expired = |seg: &Segment, retention_ms: i64| {
            retention_ms >= 0
                && seg
                    .max_timestamp
                    .is_some_and(|(ts, _)| now_ms.saturating_sub(ts) > retention_ms)
        };
        let retention_ms = self.config.retention_ms;
        let active = &self.segments[self.segments.len() - 1];
        if self.segments.iter().all(|s| expired(s, retention_ms)) && !active.is_empty() {
            self.roll()?;
        }
        let mut excess = if self.config.retention_bytes >= 0 {
            self.size_bytes()
                .saturating_sub(self.config.retention_bytes as u64)
        } else {
            0
        };
        // Only segments wholly synced and below the high watermark go (as
        // in Kafka): deleting unsynced data would move the synced point past
        // records a power loss could still take back.
        let deletable_below = self.high_watermark().min(self.synced.offset);
        let mut count = 0;
        for (seg, next) in self.segments.iter().zip(&self.segments[1..]) {
            if next.base_offset > deletable_below {
                break;
            }
            if expired(seg, retention_ms) {
                excess = excess.saturating_sub(seg.size);
            } else if excess >= seg.size && excess > 0 {
                excess -= seg.size;
            } else {
                break;
            }
            count += 1;
        }
        let removed = self.remove_front_segments(count)?;
        self.truncate_epochs_from_start()?;
        Ok(removed)
    }

    /// DeleteRecords: makes `offset` the log start offset (records below it
    /// are no longer readable) and deletes the segments entirely below it.
    /// `offset` must be at most the high watermark. Returns the new log
    /// start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, StorageError> {
        if offset < 0 || offset > self.high_watermark() {
            return Err(self.out_of_range(offset));
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            let below = self.segments[1..]
                .iter()
                .take_while(|s| s.base_offset <= offset)
                .count();
            self.remove_front_segments(below)?;
            self.truncate_epochs_from_start()?;
        }
        Ok(self.log_start_offset)
    }

    /// Deletes the first `count` segments (never the active one). A fetch
    /// still sending from one keeps reading it: its [`FileRegion`] holds the
    /// open file, and an unlinked file lives until its last descriptor
    /// closes.
    pub(super) fn remove_front_segments(&mut self, count: usize) -> Result<Removed, StorageError> {
        let count = count.min(self.segments.len() - 1);
        let mut removed = Removed::default();
        for seg in self.segments.drain(..count) {
            removed.segments += 1;
            removed.bytes += seg.size;
            seg.remove_files()?;
        }
        if removed.segments > 0 {
            self.dir_changes += 1;
            metrics::SEGMENTS_DELETED.add(removed.segments as u64);
            self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
            let first_base = self.segments[0].base_offset;
            let inside = |point: &mut LogPoint| {
                if point.segment_base < first_base {
                    // Everything removed was synced (below the high
                    // watermark) or is gone; keep the point inside the log.
                    point.offset = point.offset.max(first_base);
                    point.segment_base = first_base;
                    point.position = 0;
                }
            };
            inside(&mut self.synced);
            if let Some(cap) = &mut self.replicated_high_watermark {
                inside(cap);
            }
            self.aborted.retain(|a| a.last_offset >= first_base);
        }
        Ok(removed)
    }
}
