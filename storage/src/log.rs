//! One partition's log: a directory of segments, appends, fetch lookups,
//! timestamp lookups, flushing and crash recovery, and the mechanisms
//! leader/follower replication needs (see below).
//!
//! # Directory layout (`<data_dir>/<topic>-<partition>/`, Kafka's names)
//!
//! * `<base offset, 20 digits zero padded>.log` — the segment's batches,
//!   back to back, exactly as producers sent them after offset assignment
//!   (see [`crate::batch`] for the byte layout). No header, no padding.
//! * `<base>.index` and `<base>.timeindex` — the sparse indexes, see
//!   [`crate::index::OFFSET_INDEX_ENTRY_BYTES`] and
//!   [`crate::index::TIME_INDEX_ENTRY_BYTES`].
//! * `checkpoint` — recovery point (every batch below it was synced), log
//!   start offset and high watermark; see [`crate::checkpoint`].
//! * `leader-epoch-checkpoint` — the leader epoch cache: which leader epoch
//!   wrote from which offset on, in Kafka's text format; see
//!   [`crate::epochs`]. Written only once an epoch was recorded.
//! * `clean-shutdown` — empty marker file written by [`PartitionLog::close`]
//!   after everything was flushed, removed again by [`PartitionLog::open`].
//!
//! All file I/O is positional (`pread`/`pwrite`) through the page cache, so
//! fetches can `sendfile` straight from the same `.log` files.
//!
//! # Replication (ISR model, KIP-101/KIP-279)
//!
//! The engine decides roles and computes the replicated high watermark;
//! the log provides the mechanisms:
//!
//! * [`PartitionLog::append`] takes the leader epoch: it is stamped into
//!   every batch's partitionLeaderEpoch field and a new epoch is recorded in
//!   the leader epoch cache (made durable before the batches are written).
//! * [`PartitionLog::latest_epoch`], [`PartitionLog::epoch_entries`] and
//!   [`PartitionLog::end_offset_for_epoch`] (OffsetForLeaderEpoch) read the
//!   cache.
//! * [`PartitionLog::read_to_end`] serves followers: like
//!   [`PartitionLog::read`], but up to the log end offset instead of the high
//!   watermark.
//! * [`PartitionLog::append_replicated`] is the follower's append: batches
//!   fetched from the leader, written unchanged at the log end, their epochs
//!   recorded.
//! * [`PartitionLog::set_replicated_high_watermark`] caps what consumers see
//!   (and what the checkpoint records) at the replicated high watermark;
//!   [`PartitionLog::stored_high_watermark`] hands back the checkpointed one
//!   after a restart.
//! * [`PartitionLog::truncate_to`] and
//!   [`PartitionLog::truncate_fully_and_start_at`] cut a diverged log back,
//!   durably, before the follower fetches again.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, warn};

use crate::batch::{self, BatchHeader, BATCH_HEADER_BYTES};
use crate::checkpoint::{self, sync_dir, Checkpoint};
use crate::durability::{OsSync, Syncer};
use crate::epochs::{self, LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::error::is_no_space;
use crate::error::StorageError;
use crate::index::{OffsetIndex, TimeIndex, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};
use crate::metrics;
use crate::producers::{EndedTxn, ProducerStates, SequenceCheck};
use crate::txn_index::{self, AbortedTxn};

const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const LOG_SUFFIX: &str = ".log";
/// Producer state snapshots (`<offset>.producers`, see [`crate::producers`]).
const PRODUCER_SNAPSHOT_SUFFIX: &str = ".producers";
/// Snapshots kept: the newest few cover a follower's truncations.
const PRODUCER_SNAPSHOTS_KEPT: usize = 3;
const INDEX_SUFFIX: &str = ".index";
const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Aborted-transaction indexes (see [`crate::txn_index`]).
const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// A `.txnindex` being replaced (removed at open if a crash left it).
const TXN_INDEX_TMP_EXTENSION: &str = "txnindex.tmp";
/// Index entries are written to their files once this many are pending (and
/// always on roll, flush and close), so that appends rarely touch the index
/// files while a crash loses at most a little (recovery rebuilds them).
const PENDING_INDEX_ENTRIES: usize = 64;
/// Chunk size for streaming a batch through CRC-32C during recovery, so a
/// huge batch does not need a huge buffer.
const SCAN_CHUNK_BYTES: usize = 64 * 1024;
/// Kafka stores relative offsets as a signed 32-bit number; roll before a
/// segment would need a larger one so its index stays Kafka-readable.
const MAX_RELATIVE_OFFSET: i64 = i32::MAX as i64;

/// Per-partition log settings (Kafka's `segment.bytes`, `segment.ms`,
/// `index.interval.bytes`, `retention.ms`, `retention.bytes`, and
/// Redpanda's `write.caching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll when the active segment would exceed this many bytes.
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch was appended longer ago
    /// than this (wall clock of the append).
    pub segment_ms: i64,
    /// Add index entries at least every this many bytes of log.
    pub index_interval_bytes: u32,
    /// Delete sealed segments whose newest record is older than this; -1 =
    /// keep forever.
    pub retention_ms: i64,
    /// Delete the oldest sealed segments while the log is larger than
    /// this; -1 = no limit.
    pub retention_bytes: i64,
    /// false (the default): records become visible (high watermark) only
    /// once synced. true: visible as soon as appended, synced later.
    pub write_caching: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            write_caching: false,
        }
    }
}

/// A point in the log: `offset` starts at byte `position` of the segment
/// with base offset `segment_base` (or is that segment's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogPoint {
    offset: i64,
    segment_base: i64,
    position: u64,
}

/// What must be synced to make the log durable up to its end as it was when
/// the plan was made: hand every file to `fdatasync` (directories to
/// `fsync`), then report with [`PartitionLog::synced`].
#[derive(Debug)]
pub struct SyncPlan {
    /// Segment `.log` files with unsynced bytes, and the partition directory
    /// if files were created or removed in it.
    pub files: Vec<Arc<File>>,
    /// The log end offset the plan covers.
    pub end_offset: i64,
    point: LogPoint,
    sizes: Vec<(i64, u64)>,
    dir_changes: u64,
    /// The log's truncation count when the plan was made.
    truncations: u64,
}

/// What retention or DeleteRecords removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub segments: usize,
    pub bytes: u64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: i64,
    /// Offset given to the last record.
    pub last_offset: i64,
    /// The broker timestamp stamped on the batches, if LogAppendTime.
    pub log_append_time_ms: Option<i64>,
    /// Byte position in the active segment's `.log` where the first batch
    /// was written.
    pub position_bytes: u64,
}

/// Where a fetch's bytes live: send `len` bytes of `file` from `position`
/// (sendfile). The Arc keeps the fd open even if the segment is deleted
/// meanwhile.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
    /// Offset after the last record of the region (for metrics: records
    /// a consumer at the fetch offset receives = this − fetch offset).
    pub next_offset: i64,
}

/// What [`PartitionLog::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Batches read and checked (CRC included) during the scan.
    pub batches_scanned: u64,
    /// Bytes cut off torn/corrupt tails plus bytes of deleted later segments.
    pub truncated_bytes: u64,
    /// Segments whose indexes were rebuilt by scanning the log.
    pub indexes_rebuilt: usize,
    /// Invalid batches found with valid-looking data after them (bit rot or
    /// overwritten bytes, not an interrupted write); the log was cut there.
    pub corrupt_batches: usize,
    /// Whether the previous shutdown left the clean-shutdown marker.
    pub clean: bool,
}

/// One segment: a `.log` file plus its two indexes.
#[derive(Debug)]
struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    log: Arc<File>,
    /// Open while the segment is active (or being rebuilt); a sealed segment's
    /// indexes live in memory and its index files are closed, so a partition
    /// holds one descriptor per old segment instead of three.
    index_file: Option<File>,
    time_index_file: Option<File>,
    /// Bytes of complete batches in the `.log` (appends go here).
    size: u64,
    /// Offset after the last batch of this segment (base offset if empty).
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// How many entries of each index are already in its file.
    index_written: usize,
    time_index_written: usize,
    bytes_since_index: u64,
    /// Largest batch max timestamp in the segment and the base offset of the
    /// first batch that reached it.
    max_timestamp: Option<(i64, i64)>,
    /// Wall clock of the first append into this segment since open, for
    /// `segment_ms`.
    first_append_ms: Option<i64>,
    /// Written since the last full flush (log or index files).
    dirty: bool,
    /// Bytes of the `.log` known to be synced.
    synced_size: u64,
}

fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses `<20 digits><suffix>` back into a base offset.
fn parse_segment_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, e))
}

/// Reads a whole small file; a missing file reads as empty.
fn read_optional(path: &Path) -> Result<Vec<u8>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

impl Segment {
    fn open(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = dir.join(segment_file_name(base_offset, LOG_SUFFIX));
        let index_path = dir.join(segment_file_name(base_offset, INDEX_SUFFIX));
        let time_index_path = dir.join(segment_file_name(base_offset, TIME_INDEX_SUFFIX));
        let log = open_rw(&log_path)?;
        let index_file = Some(open_rw(&index_path)?);
        let time_index_file = Some(open_rw(&time_index_path)?);
        let size = log
            .metadata()
            .map_err(|e| StorageError::io(&log_path, e))?
            .len();
        Ok(Segment {
            base_offset,
            log_path,
            index_path,
            time_index_path,
            log: Arc::new(log),
            index_file,
            time_index_file,
            size,
            next_offset: base_offset,
            offset_index: OffsetIndex::new(base_offset),
            time_index: TimeIndex::new(base_offset),
            index_written: 0,
            time_index_written: 0,
            bytes_since_index: 0,
            max_timestamp: None,
            first_append_ms: None,
            dirty: false,
            synced_size: 0,
        })
    }

    fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Index bookkeeping for one batch at `position` (shared by append and
    /// recovery so both build identical indexes).
    fn track_batch(
        &mut self,
        base_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        position: u64,
        total_bytes: u64,
        index_interval: u64,
    ) {
        let grows = match self.max_timestamp {
            Some((ts, _)) => max_timestamp > ts,
            None => true,
        };
        if grows {
            self.max_timestamp = Some((max_timestamp, base_offset));
        }
        if self.bytes_since_index >= index_interval {
            // Positions fit u32 because the log rolls before they could not.
            if let Ok(pos) = u32::try_from(position) {
                self.offset_index.append(base_offset, pos);
            }
            if let Some((ts, offset)) = self.max_timestamp {
                self.time_index.append(ts, offset);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += total_bytes;
        self.next_offset = last_offset + 1;
    }

    fn pending_index_entries(&self) -> usize {
        (self.offset_index.len() - self.index_written)
            + (self.time_index.len() - self.time_index_written)
    }

    /// Appends index entries not yet in the files.
    fn write_pending_indexes(&mut self) -> Result<(), StorageError> {
        if self.index_written < self.offset_index.len() {
            let at = (self.index_written * OFFSET_INDEX_ENTRY_BYTES) as u64;
            let bytes = self.offset_index.to_bytes_from(self.index_written);
            self.index_file()?
                .write_all_at(&bytes, at)
                .map_err(|e| StorageError::io_at(&self.index_path, at, e))?;
            self.index_written = self.offset_index.len();
        }
        if self.time_index_written < self.time_index.len() {
            let at = (self.time_index_written * TIME_INDEX_ENTRY_BYTES) as u64;
            let bytes = self.time_index.to_bytes_from(self.time_index_written);
            self.time_index_file()?
                .write_all_at(&bytes, at)
                .map_err(|e| StorageError::io_at(&self.time_index_path, at, e))?;
            self.time_index_written = self.time_index.len();
        }
        Ok(())
    }

    /// Replaces both index files with the in-memory indexes.
    fn rewrite_index_files(&mut self) -> Result<(), StorageError> {
        self.index_file()?
            .set_len(0)
            .map_err(|e| StorageError::io(&self.index_path, e))?;
        self.time_index_file()?
            .set_len(0)
            .map_err(|e| StorageError::io(&self.time_index_path, e))?;
        self.index_written = 0;
        self.time_index_written = 0;
        self.write_pending_indexes()
    }

    /// Makes the time index record the segment's final max timestamp (the
    /// interval rule may have skipped it), as Kafka does when a segment
    /// stops being active: a later clean open reads the segment's max
    /// timestamp from the last time-index entry.
    fn seal(&mut self) -> Result<(), StorageError> {
        if let Some((ts, offset)) = self.max_timestamp {
            if self.time_index.append(ts, offset) {
                self.dirty = true;
            }
        }
        self.write_pending_indexes()
    }

    fn sync(&mut self, syncer: &dyn Syncer) -> Result<(), StorageError> {
        self.write_pending_indexes()?;
        syncer
            .sync(&self.log)
            .map_err(|e| StorageError::io(&self.log_path, e))?;
        if let Some(file) = &self.index_file {
            syncer
                .sync(file)
                .map_err(|e| StorageError::io(&self.index_path, e))?;
        }
        if let Some(file) = &self.time_index_file {
            syncer
                .sync(file)
                .map_err(|e| StorageError::io(&self.time_index_path, e))?;
        }
        self.dirty = false;
        self.synced_size = self.size;
        Ok(())
    }

    /// The `.index` file, reopened if it was released.
    fn index_file(&mut self) -> Result<&File, StorageError> {
        if self.index_file.is_none() {
            self.index_file = Some(open_rw(&self.index_path)?);
        }
        self.index_file
            .as_ref()
            .ok_or_else(|| StorageError::io(&self.index_path, ErrorKind::NotFound.into()))
    }

    /// The `.timeindex` file, reopened if it was released.
    fn time_index_file(&mut self) -> Result<&File, StorageError> {
        if self.time_index_file.is_none() {
            self.time_index_file = Some(open_rw(&self.time_index_path)?);
        }
        self.time_index_file
            .as_ref()
            .ok_or_else(|| StorageError::io(&self.time_index_path, ErrorKind::NotFound.into()))
    }

    /// Writes out and fsyncs the index files, then closes them (for a sealed
    /// segment, whose indexes no longer change).
    fn release_index_files(&mut self, syncer: &dyn Syncer) -> Result<(), StorageError> {
        self.write_pending_indexes()?;
        if let Some(file) = self.index_file.take() {
            syncer
                .sync(&file)
                .map_err(|e| StorageError::io(&self.index_path, e))?;
        }
        if let Some(file) = self.time_index_file.take() {
            syncer
                .sync(&file)
                .map_err(|e| StorageError::io(&self.time_index_path, e))?;
        }
        Ok(())
    }

    fn remove_files(self) -> Result<(), StorageError> {
        remove_if_exists(&self.log_path.with_extension(&TXN_INDEX_SUFFIX[1..]))?;
        remove_if_exists(&self.log_path)?;
        remove_if_exists(&self.index_path)?;
        remove_if_exists(&self.time_index_path)
    }

    /// Cuts the segment at `position`, the start of the batch with base
    /// offset `offset` (or the end of the segment): the `.log` file, both
    /// indexes in memory and in their files, and the max timestamp. The
    /// caller syncs.
    fn truncate(&mut self, position: u64, offset: i64) -> Result<(), StorageError> {
        assert!(position <= self.size && offset <= self.next_offset);
        self.log
            .set_len(position)
            .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
        self.size = position;
        self.next_offset = offset;
        self.synced_size = self.synced_size.min(position);
        self.dirty = true;
        // Index entries name batch base offsets, so those of removed batches
        // are exactly the ones at or after `offset`.
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.index_written = self.index_written.min(self.offset_index.len());
        self.time_index_written = self.time_index_written.min(self.time_index.len());
        let index_bytes = (self.index_written * OFFSET_INDEX_ENTRY_BYTES) as u64;
        self.index_file()?
            .set_len(index_bytes)
            .map_err(|e| StorageError::io_at(&self.index_path, index_bytes, e))?;
        let time_bytes = (self.time_index_written * TIME_INDEX_ENTRY_BYTES) as u64;
        self.time_index_file()?
            .set_len(time_bytes)
            .map_err(|e| StorageError::io_at(&self.time_index_path, time_bytes, e))?;
        self.bytes_since_index = position
            - self
                .offset_index
                .last()
                .map_or(0, |e| u64::from(e.position));
        if position == 0 {
            self.first_append_ms = None;
        }
        self.max_timestamp = self.max_timestamp_of_kept_batches()?;
        Ok(())
    }

    /// The largest batch max timestamp and the first batch reaching it,
    /// recomputed after a truncation. Every batch before the last time
    /// index entry's batch is no newer than that entry, so the scan starts
    /// there.
    fn max_timestamp_of_kept_batches(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let (mut position, mut max) = match self.time_index.last() {
            Some(entry) => match self.find_batch(entry.offset)? {
                Some((at, header)) if header.base_offset == entry.offset => {
                    (at, Some((entry.timestamp, entry.offset)))
                }
                _ => (0, None),
            },
            None => (0, None),
        };
        while position < self.size {
            let header = self.read_header(position)?;
            let newer = match max {
                Some((ts, _)) => header.max_timestamp > ts,
                None => true,
            };
            if newer {
                max = Some((header.max_timestamp, header.base_offset));
            }
            position += header.total_bytes() as u64;
        }
        Ok(max)
    }

    /// Reads the header of the batch at `position` (which must be a batch
    /// boundary below `size`).
    fn read_header(&self, position: u64) -> Result<BatchHeader, StorageError> {
        let corrupt = |source| StorageError::CorruptBatch {
            path: self.log_path.clone(),
            position,
            source,
        };
        if position + BATCH_HEADER_BYTES as u64 > self.size {
            return Err(corrupt(batch::BatchError::Truncated));
        }
        let mut head = [0u8; BATCH_HEADER_BYTES];
        self.log
            .read_exact_at(&mut head, position)
            .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
        let header = batch::parse_header(&head).map_err(corrupt)?;
        if position + header.total_bytes() as u64 > self.size {
            return Err(corrupt(batch::BatchError::Truncated));
        }
        Ok(header)
    }

    /// The marker of the control batch at `position`.
    fn read_batch(
        &self,
        position: u64,
        header: &BatchHeader,
    ) -> Result<Option<(batch::Marker, i32)>, StorageError> {
        let mut bytes = vec![0u8; header.total_bytes()];
        self.log
            .read_exact_at(&mut bytes, position)
            .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
        Ok(batch::marker_of(&bytes))
    }

    /// The batch containing `offset` (the first batch whose last offset is
    /// >= `offset`) and its position, or None if no batch here has it.
    fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let entry = self.offset_index.lookup(offset);
        let mut position = u64::from(entry.position);
        if position != 0 {
            // The entry's batch is read anyway: check it against the entry
            // with the same read.
            match self.read_header(position) {
                Ok(header) if header.base_offset == entry.offset => {
                    if header.last_offset() >= offset {
                        return Ok(Some((position, header)));
                    }
                    position += header.total_bytes() as u64;
                }
                _ => {
                    warn!(file = %self.index_path.display(), offset = entry.offset, position, "index entry does not match the log; scanning the segment");
                    position = 0;
                }
            }
        }
        while position < self.size {
            let header = self.read_header(position)?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// The offset of the first record with timestamp `ts` in the uncompressed
    /// batch holding `batch_offset`; None when the batch is compressed, does not
    /// hold such a record, or cannot be read.
    fn record_with_timestamp(&self, batch_offset: i64, ts: i64) -> Option<i64> {
        let (position, header) = self.find_batch(batch_offset).ok()??;
        if header.compression() != 0 {
            return None;
        }
        let mut bytes = vec![0u8; header.total_bytes()];
        self.log.read_exact_at(&mut bytes, position).ok()?;
        batch::record_timestamps(&bytes)?
            .into_iter()
            .find(|(_, t)| *t == ts)
            .map(|(offset, _)| offset)
    }

    /// Whether the batch at `position` starts at `offset`, as an index entry
    /// claims. An index that survived a crash can be plausible and still
    /// wrong; a wrong entry is never used (the caller scans from the segment
    /// start instead), so it can cost time but never serve the wrong bytes.
    fn index_entry_matches(&self, offset: i64, position: u64) -> bool {
        match self.read_header(position) {
            Ok(header) if header.base_offset == offset => true,
            _ => {
                warn!(file = %self.index_path.display(), offset, position, "index entry does not match the log; scanning the segment");
                false
            }
        }
    }

    /// The last batch boundary at or below `limit`, but not below `floor`
    /// (itself a boundary). Starts from the offset index, so it reads at most
    /// about one index interval of headers.
    /// Also returns the offset after the last batch below that boundary
    /// (`floor_next` is the one after the batch ending at `floor`).
    fn boundary_at_or_below(
        &self,
        floor: u64,
        floor_next: i64,
        limit: u64,
    ) -> Result<(u64, i64), StorageError> {
        if limit >= self.size {
            return Ok((self.size, self.next_offset));
        }
        let mut position = floor;
        let mut next = floor_next;
        if let Some(entry) = self.offset_index.floor_position(limit) {
            let at = u64::from(entry.position);
            if at > position {
                // The entry's batch header is needed anyway: check the entry
                // against it with the same read.
                match self.read_header(at) {
                    Ok(header) if header.base_offset == entry.offset => {
                        let end = at + header.total_bytes() as u64;
                        if end > limit {
                            // The batch before `at` ends where this one starts.
                            return Ok((at, header.base_offset));
                        }
                        position = end;
                        next = header.last_offset() + 1;
                    }
                    _ => {
                        warn!(file = %self.index_path.display(), offset = entry.offset, position = at, "index entry does not match the log; scanning the segment");
                    }
                }
            }
        }
        while position < self.size {
            let header = self.read_header(position)?;
            let end = position + header.total_bytes() as u64;
            if end > limit {
                break;
            }
            position = end;
            next = header.last_offset() + 1;
        }
        Ok((position, next))
    }

    /// Loads the index files. Returns false (after a warning) when they are
    /// malformed or inconsistent with the log, in which case the caller
    /// rebuilds them. `next_base` is the next segment's base offset, which
    /// every offset here must be below.
    fn load_indexes(&mut self, next_base: Option<i64>) -> Result<bool, StorageError> {
        let index_bytes = read_optional(&self.index_path)?;
        let time_bytes = read_optional(&self.time_index_path)?;
        let loaded =
            OffsetIndex::from_bytes(&self.index_path, &index_bytes, self.base_offset, self.size)
                .and_then(|offsets| {
                    TimeIndex::from_bytes(&self.time_index_path, &time_bytes, self.base_offset)
                        .map(|times| (offsets, times))
                });
        let (offsets, times) = match loaded {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "malformed index, rebuilding it from the log");
                return Ok(false);
            }
        };
        let beyond = |offset: Option<i64>| match (offset, next_base) {
            (Some(o), Some(next)) => o >= next,
            _ => false,
        };
        if beyond(offsets.last().map(|e| e.offset)) || beyond(times.last().map(|e| e.offset)) {
            warn!(file = %self.index_path.display(), "index points past the segment, rebuilding");
            return Ok(false);
        }
        if !self.is_empty() && times.is_empty() {
            // A sealed non-empty segment always has a final time entry;
            // without it the segment's max timestamp is unknown.
            warn!(file = %self.time_index_path.display(), "time index empty for a non-empty segment, rebuilding");
            return Ok(false);
        }
        // Entries that look fine can still point at the wrong bytes (a
        // crash between writing the log and its index, a stray write): check
        // the first and last against the batches they name, one read each.
        for entry in [offsets.entries().first(), offsets.entries().last()]
            .into_iter()
            .flatten()
        {
            let at = u64::from(entry.position);
            if !matches!(self.read_header(at), Ok(h) if h.base_offset == entry.offset) {
                warn!(file = %self.index_path.display(), offset = entry.offset, position = at, "index entry does not match the log, rebuilding");
                return Ok(false);
            }
        }
        self.max_timestamp = times.last().map(|e| (e.timestamp, e.offset));
        self.index_written = offsets.len();
        self.time_index_written = times.len();
        self.offset_index = offsets;
        self.time_index = times;
        Ok(true)
    }

    /// Reads and checks batches from `position` (a batch boundary where the
    /// batch offsets are >= `min_offset`) to the end of the file, tracking
    /// them into the indexes. At the first torn or invalid batch the file is
    /// truncated there; returns whether that happened.
    fn scan(
        &mut self,
        start: u64,
        min_offset: i64,
        index_interval: u64,
        report: &mut RecoveryReport,
    ) -> Result<bool, StorageError> {
        let file_size = self
            .log
            .metadata()
            .map_err(|e| StorageError::io(&self.log_path, e))?
            .len();
        let mut position = start;
        let mut expected = min_offset;
        let mut chunk = vec![0u8; SCAN_CHUNK_BYTES];
        self.bytes_since_index = 0;
        // (reason, whether the bad batch is the last thing in the file).
        let problem: Option<(String, bool)> = loop {
            if position >= file_size {
                break None;
            }
            let remaining = file_size - position;
            if remaining < BATCH_HEADER_BYTES as u64 {
                break Some((format!("torn batch header ({remaining} bytes)"), true));
            }
            let mut head = [0u8; BATCH_HEADER_BYTES];
            self.log
                .read_exact_at(&mut head, position)
                .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
            let header = match batch::parse_header(&head)
                .and_then(|h| batch::check_header_fields(&h).map(|()| h))
            {
                Ok(h) => h,
                Err(e) => break Some((e.to_string(), false)),
            };
            let total = header.total_bytes() as u64;
            if total > remaining {
                break Some((
                    format!("torn batch: needs {total} bytes, {remaining} left"),
                    true,
                ));
            }
            // Offsets are contiguous: each batch starts right after the
            // previous one, the first at the segment's base offset. The CRC
            // does not cover the base offset, so this is what catches a
            // damaged one. (Compaction, when it comes, will leave gaps and
            // must relax this to "above the previous".)
            if header.base_offset != expected {
                break Some((
                    format!(
                        "batch base offset {} where {expected} was expected",
                        header.base_offset
                    ),
                    false,
                ));
            }
            if header.last_offset() - self.base_offset > MAX_RELATIVE_OFFSET {
                break Some((
                    format!("offset {} too far from segment base", header.last_offset()),
                    false,
                ));
            }
            // Stream the covered region (attributes..end) through CRC-32C.
            let mut crc = crc32c::crc32c(&head[21..]);
            let end = position + total;
            let mut at = position + BATCH_HEADER_BYTES as u64;
            while at < end {
                let n = (end - at).min(chunk.len() as u64) as usize;
                self.log
                    .read_exact_at(&mut chunk[..n], at)
                    .map_err(|e| StorageError::io_at(&self.log_path, at, e))?;
                crc = crc32c::crc32c_append(crc, &chunk[..n]);
                at += n as u64;
            }
            if crc != header.crc {
                break Some((
                    format!(
                        "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                        header.crc
                    ),
                    end == file_size,
                ));
            }
            self.track_batch(
                header.base_offset,
                header.last_offset(),
                header.max_timestamp,
                position,
                total,
                index_interval,
            );
            report.batches_scanned += 1;
            expected = header.last_offset().saturating_add(1);
            position = end;
        };
        self.size = position;
        if self.offset_index.len() > self.index_written
            || self.time_index.len() > self.time_index_written
        {
            self.dirty = true;
        }
        let Some((reason, last)) = problem else {
            return Ok(false);
        };
        let cut = file_size - position;
        if last || self.zeros_from(position, file_size)? {
            // An interrupted write: expected after a crash.
            warn!(
                file = %self.log_path.display(),
                position,
                bytes = cut,
                reason = %reason,
                "truncating a torn tail"
            );
            metrics::TORN_TAIL_TRUNCATIONS.add(1);
        } else {
            // Valid-looking data after an invalid batch: the disk or someone
            // changed bytes that were once written whole.
            error!(
                file = %self.log_path.display(),
                position,
                bytes = cut,
                reason = %reason,
                "CORRUPT BATCH in the middle of the log: truncating the log here; every later record of this partition is dropped"
            );
            metrics::CORRUPT_BATCH_TRUNCATIONS.add(1);
            report.corrupt_batches += 1;
        }
        metrics::TRUNCATED_BYTES.add(cut);
        report.truncated_bytes += cut;
        self.log
            .set_len(position)
            .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
        self.dirty = true;
        Ok(true)
    }

    /// Whether every byte in `from..to` is zero (a file system can expose
    /// allocated but never written blocks as zeros after a crash). Gives up
    /// (false) on large ranges.
    fn zeros_from(&self, from: u64, to: u64) -> Result<bool, StorageError> {
        if to - from > SCAN_CHUNK_BYTES as u64 * 16 {
            return Ok(false);
        }
        let mut bytes = vec![0u8; (to - from) as usize];
        self.log
            .read_exact_at(&mut bytes, from)
            .map_err(|e| StorageError::io_at(&self.log_path, from, e))?;
        Ok(bytes.iter().all(|b| *b == 0))
    }

    /// Rebuilds both indexes by scanning the whole segment (truncating a
    /// torn tail). Returns whether the log was truncated.
    fn rebuild(
        &mut self,
        index_interval: u64,
        report: &mut RecoveryReport,
    ) -> Result<bool, StorageError> {
        self.offset_index = OffsetIndex::new(self.base_offset);
        self.time_index = TimeIndex::new(self.base_offset);
        self.max_timestamp = None;
        self.next_offset = self.base_offset;
        let truncated = self.scan(0, self.base_offset, index_interval, report)?;
        if let Some((ts, offset)) = self.max_timestamp {
            self.time_index.append(ts, offset);
        }
        self.rewrite_index_files()?;
        self.dirty = true;
        report.indexes_rebuilt += 1;
        metrics::INDEX_REBUILDS.add(1);
        Ok(truncated)
    }
}

/// One partition's log.
///
/// Files in its directory (see the module docs for details): segments
/// `<base:020>.log` / `.index` / `.timeindex`; the `checkpoint`; the
/// `leader-epoch-checkpoint`; and the empty `clean-shutdown` marker.
///
/// Not thread-safe by itself: the engine owns it from
/// one shard; `read` only needs `&self` and hands out `Arc`ed files.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset, never empty; the last one is active.
    segments: Vec<Segment>,
    /// First offset readable; kept separately from the first segment's
    /// base so retention / DeleteRecords can move it later.
    log_start_offset: i64,
    log_end_offset: i64,
    /// Everything before this point is synced.
    synced: LogPoint,
    /// The replicated high watermark, if the engine set one (a replicated
    /// partition): reads and the high watermark stop here too. A batch
    /// boundary at or below the log end, except that its offset is raised
    /// to the log start offset when that lies inside the batch (then nothing
    /// below it is readable anyway).
    replicated_high_watermark: Option<LogPoint>,
    /// The high watermark of the checkpoint found at open, clamped to the
    /// log end offset.
    stored_high_watermark: Option<i64>,
    /// How many truncations this log went through since open (a sync plan
    /// made before one is stale).
    truncations: u64,
    /// The checkpoint last written to disk.
    checkpointed: Option<Checkpoint>,
    /// Files created or removed in the directory: a count, and the count at
    /// the last directory sync.
    dir_changes: u64,
    dir_synced: u64,
    syncer: Arc<dyn Syncer>,
    /// Which leader epoch wrote which offsets; mirrored in
    /// `leader-epoch-checkpoint`.
    epochs: LeaderEpochCache,
    /// The `leader-epoch-checkpoint` file may differ from `epochs` (a write
    /// failed): it is rewritten before the next batch is written, so no
    /// record ever lands on disk with its epoch missing from the file.
    epochs_stale: bool,
    /// Idempotent producers' sequences (see [`crate::producers`]), rebuilt
    /// from the batch headers at open and after a truncation.
    producers: ProducerStates,
    /// Every transaction aborted in the log, by marker offset; mirrored in
    /// the segments' `.txnindex` files.
    aborted: Vec<AbortedTxn>,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory `dir` and runs
    /// recovery. `now_ms` is the wall clock, injected for tests.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        Self::open_with(dir, config, now_ms, Arc::new(OsSync))
    }

    /// [`PartitionLog::open`] with the syncer every sync of this log goes
    /// through (the power-loss tests pass one that records durability).
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        syncer: Arc<dyn Syncer>,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean {
            // Remove the marker before touching anything, so a crash from
            // here on is never mistaken for a clean shutdown.
            fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
            sync_dir(dir, &*syncer)?;
        }
        let stored = checkpoint::read(dir);
        let recovery_point = stored.map(|c| c.recovery_point);
        let bases = list_segments(dir)?;
        let mut report = RecoveryReport {
            clean,
            ..RecoveryReport::default()
        };
        let interval = u64::from(config.index_interval_bytes);
        let mut dir_dirty = false;
        // A checkpoint that claims more than the files hold is stale or
        // forged: keep the log start offset inside the log.

        let mut segments = Vec::with_capacity(bases.len().max(1));
        for base in bases {
            segments.push(Segment::open(dir, base)?);
        }
        if segments.is_empty() {
            // An empty log continues from the recovery point, if any, so
            // offsets never go backwards.
            let base = stored
                .map_or(0, |c| c.recovery_point.max(c.log_start_offset))
                .max(0);
            segments.push(Segment::open(dir, base)?);
            dir_dirty = true;
        }

        // Segments before `scan_from` are trusted (indexes loaded and
        // sanity-checked); from `scan_from` on, every batch is checked.
        let last = segments.len() - 1;
        let scan_from = if clean {
            last
        } else {
            match recovery_point {
                Some(rp) => segments
                    .partition_point(|s| s.base_offset <= rp)
                    .saturating_sub(1),
                None => 0,
            }
        };

        let mut keep = segments.len();
        // Later segments are dropped because the one before lost its tail
        // (a power loss kept a new segment's file but not the old one's last
        // writes): expected after a crash, not corruption.
        let mut lost_tail = false;
        for i in 0..segments.len() {
            if i > 0 && segments[i].base_offset != segments[i - 1].next_offset {
                let previous_end = segments[i - 1].next_offset;
                lost_tail = segments[i].base_offset > previous_end;
                warn!(
                    file = %segments[i].log_path.display(),
                    previous_end,
                    "segment does not start where the previous one ends, removing it and later segments"
                );
                keep = i;
                break;
            }
            let next_base = segments.get(i + 1).map(|s| s.base_offset);
            let seg = &mut segments[i];
            let truncated = if i < scan_from || (clean && i == last) {
                if seg.load_indexes(next_base)? {
                    let start = seg.offset_index.lookup(i64::MAX);
                    if i == last
                        && start.position != 0
                        && !seg.index_entry_matches(start.offset, u64::from(start.position))
                    {
                        // Scanning from a wrong entry would cut valid data.
                        seg.rebuild(interval, &mut report)?
                    } else if i == last {
                        // Only the tail after the last index entry is
                        // unknown: scan it to find the log end offset.
                        let truncated = seg.scan(
                            u64::from(start.position),
                            start.offset,
                            interval,
                            &mut report,
                        )?;
                        if truncated {
                            // The cut may have removed batches that index
                            // entries point at; rebuild from the now-valid
                            // file rather than patch the indexes.
                            seg.rebuild(interval, &mut report)?;
                        }
                        truncated
                    } else {
                        seg.next_offset = next_base.unwrap_or(seg.base_offset);
                        false
                    }
                } else {
                    seg.rebuild(interval, &mut report)?
                }
            } else {
                seg.rebuild(interval, &mut report)?
            };
            if truncated {
                keep = i + 1;
                break;
            }
        }
        if keep < segments.len() && !lost_tail {
            // Later segments existed, so the cut was not a torn tail.
            if report.corrupt_batches == 0 {
                metrics::CORRUPT_BATCH_TRUNCATIONS.add(1);
                report.corrupt_batches += 1;
            }
            error!(
                dir = %dir.display(),
                segments = segments.len() - keep,
                "CORRUPT LOG: an invalid batch is followed by later segments; deleting them"
            );
        }
        for seg in segments.drain(keep..) {
            let bytes = seg
                .log
                .metadata()
                .map_err(|e| StorageError::io(&seg.log_path, e))?
                .len();
            warn!(file = %seg.log_path.display(), bytes, "deleting segment after the end of the valid log");
            report.truncated_bytes += bytes;
            metrics::TRUNCATED_BYTES.add(bytes);
            seg.remove_files()?;
            dir_dirty = true;
        }

        let active = segments.len() - 1;
        let log_end_offset = segments[active].next_offset;
        // The checkpoint's log start offset may lie inside the first segment
        // (DeleteRecords); never outside the log.
        let log_start_offset = stored
            .map_or(0, |c| c.log_start_offset)
            .max(segments[0].base_offset)
            .min(log_end_offset);
        if !segments[active].is_empty() {
            // The append wall clock of a segment is not persisted; count the
            // segment's age from now, which can only delay a time roll.
            segments[active].first_append_ms = Some(now_ms);
        }
        report.segments = segments.len();
        for seg in &mut segments {
            // Segments recovery did not touch were synced before: below the
            // recovery point, or everything after a clean shutdown. The
            // others are synced by the flush below.
            if !seg.dirty {
                seg.synced_size = seg.size;
            }
        }
        let first_base = segments[0].base_offset;
        // The cache is written before the batches of a new epoch, so after a
        // crash it may name epochs whose records were lost: drop entries
        // past the recovered end. An entry starting exactly at the end is
        // kept (an epoch that has not written yet).
        let mut epochs = epochs::read(dir);
        let mut epochs_changed = epochs.truncate_from_end(log_end_offset.saturating_add(1));
        epochs_changed |= epochs.truncate_from_start(log_start_offset);

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            synced: LogPoint {
                offset: first_base,
                segment_base: first_base,
                position: 0,
            },
            replicated_high_watermark: None,
            stored_high_watermark: stored.map(|c| c.high_watermark.min(log_end_offset)),
            truncations: 0,
            checkpointed: stored,
            dir_changes: u64::from(dir_dirty),
            dir_synced: 0,
            syncer,
            epochs,
            epochs_stale: epochs_changed,
            producers: ProducerStates::new(),
            aborted: Vec::new(),
        };
        log.rebuild_producers()?;
        // Make whatever recovery found durable and record the new recovery
        // point, so the next crash need not scan this again.
        log.flush()?;
        match log.write_open_checkpoint() {
            // The old checkpoint stays valid (it only makes the next
            // recovery scan more); it is written again later.
            Err(e) if e.is_no_space() => {
                warn!(dir = %dir.display(), error = %e, "disk full: checkpoint not updated")
            }
            other => other?,
        }
        if log.epochs_stale {
            log.persist_epochs_or_defer()?;
        }
        let sealed = log.segments.len().saturating_sub(1);
        let syncer = Arc::clone(&log.syncer);
        for seg in &mut log.segments[..sealed] {
            seg.release_index_files(&*syncer)?;
        }
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn active(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

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

    fn invalid_append(&self, reason: String) -> StorageError {
        StorageError::InvalidAppend {
            path: self.dir.clone(),
            reason,
        }
    }

    /// Checks that `headers` tile `batches` exactly.
    fn check_tiling(&self, batches: &[u8], headers: &[BatchHeader]) -> Result<(), StorageError> {
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
    fn roll_if_needed(
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

    /// Makes the leader epoch cache durable before an append writes its
    /// batches, if the append added entries (beyond the first
    /// `epochs_before`) or an earlier write failed. On failure the added
    /// entries are forgotten and nothing is written: the append fails, as
    /// [`StorageError::NoSpace`] when the disk is full.
    fn persist_new_epochs(&mut self, epochs_before: usize) -> Result<(), StorageError> {
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

    /// Writes batches whose offsets (from `first_offset`, contiguous) and
    /// epochs are final at the end of the active segment, tracks them in the
    /// indexes and moves the log end offset. `max_timestamp_ms` replaces
    /// every batch's max timestamp in the indexes (LogAppendTime). On
    /// failure the log is unchanged and the epoch entries the append added
    /// (beyond the first `epochs_before`) are dropped again. Returns the
    /// position of the first batch.
    fn write_batches(
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
    fn persist_epochs(&mut self) -> Result<(), StorageError> {
        self.epochs_stale = true;
        epochs::write(&self.dir, &self.epochs, &*self.syncer)?;
        self.epochs_stale = false;
        Ok(())
    }

    /// [`Self::persist_epochs`] if the cache `changed` or the file is stale.
    fn persist_epochs_if(&mut self, changed: bool) -> Result<(), StorageError> {
        if changed || self.epochs_stale {
            self.persist_epochs()?;
        }
        Ok(())
    }

    /// [`Self::persist_epochs`] where a full disk can wait: the file stays
    /// stale and is rewritten before the next batch is written (the entries
    /// dropped here from the front are dropped again at open anyway).
    fn persist_epochs_or_defer(&mut self) -> Result<(), StorageError> {
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
    fn truncate_epochs_from_start(&mut self) -> Result<(), StorageError> {
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.persist_epochs_or_defer()?;
        }
        Ok(())
    }

    fn needs_roll(&self, len: u64, records: i64, now_ms: i64) -> bool {
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
    fn roll(&mut self) -> Result<(), StorageError> {
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
    fn read_below(
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
    fn visible_point(&self) -> LogPoint {
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
    fn cap_point(&self, offset: i64) -> LogPoint {
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
    fn segment_index(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// The batch boundary at or below `offset`: the start of the batch
    /// holding it, or the log end.
    fn boundary_at_or_below(&self, offset: i64) -> Result<LogPoint, StorageError> {
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

    fn end_point(&self) -> LogPoint {
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

    /// Offsets below this are synced.
    pub fn synced_offset(&self) -> i64 {
        self.synced.offset
    }

    /// Replaces the settings (a topic config change). Takes effect for the
    /// next append, read and retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
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

    fn write_checkpoint_as(&mut self, current: Checkpoint) -> Result<(), StorageError> {
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
    fn write_open_checkpoint(&mut self) -> Result<(), StorageError> {
        let mut current = self.checkpoint();
        if let Some(stored) = self.stored_high_watermark {
            current.high_watermark = current
                .high_watermark
                .min(stored.max(self.log_start_offset));
        }
        self.write_checkpoint_as(current)
    }

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

    /// Checks a client's batches against the idempotent producers' state
    /// before they are appended (see [`crate::producers`]).
    pub fn check_producers(&self, headers: &[BatchHeader]) -> SequenceCheck {
        self.producers.check(headers)
    }

    /// The idempotent producers this partition knows.
    pub fn producers(&self) -> &ProducerStates {
        &self.producers
    }

    /// Forgets producers idle for `expiration_ms`; returns how many.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// Records written batches in the producer state (`batches`: their
    /// bytes, for the markers of control batches); an abort marker adds the
    /// transaction it ends to the aborted-transaction index. `first_offset`:
    /// the offset the leader assigned to the first batch (`None`: the
    /// headers carry their offsets, as replicated batches do).
    fn record_producers(
        &mut self,
        batches: &[u8],
        headers: &[BatchHeader],
        first_offset: Option<i64>,
    ) -> Result<(), StorageError> {
        let mut next = first_offset;
        let mut at = 0usize;
        for header in headers {
            let base = next.unwrap_or(header.base_offset);
            let end = at + header.total_bytes();
            let marker = if header.is_control() {
                batches.get(at..end).and_then(batch::marker_of)
            } else {
                None
            };
            if let Some(ended) = self.producers.record_at(header, base, marker) {
                self.transaction_ended(ended)?;
            }
            at = end;
            next = next.map(|_| base + i64::from(header.last_offset_delta) + 1);
        }
        Ok(())
    }

    /// A marker ended a transaction: an aborted one goes into the index
    /// (memory and the `.txnindex` of the marker's segment), unless it is
    /// there already (a rebuild finds markers the files also hold).
    fn transaction_ended(&mut self, ended: EndedTxn) -> Result<(), StorageError> {
        if ended.marker != batch::Marker::Abort
            || self
                .aborted
                .last()
                .is_some_and(|a| a.last_offset >= ended.last_offset)
        {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: ended.producer_id,
            first_offset: ended.first_offset,
            last_offset: ended.last_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(ended.last_offset + 1),
        };
        let base = self.segments[self.segment_index(ended.last_offset)].base_offset;
        let path = self.dir.join(segment_file_name(base, TXN_INDEX_SUFFIX));
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&entry.encode()));
        if let Err(e) = written {
            // The marker is written already: not a disk-full refusal.
            return Err(StorageError::io(&path, std::io::Error::other(e)));
        }
        self.aborted.push(entry);
        Ok(())
    }

    /// Loads the segments' aborted-transaction indexes, keeping the entries
    /// below the log end (a file holding others is rewritten without them).
    fn load_aborted(&mut self) -> Result<(), StorageError> {
        self.aborted.clear();
        for seg in &self.segments {
            let path = self
                .dir
                .join(segment_file_name(seg.base_offset, TXN_INDEX_SUFFIX));
            let bytes = read_optional(&path)?;
            if bytes.is_empty() {
                continue;
            }
            let entries = txn_index::decode(&bytes);
            let kept: Vec<AbortedTxn> = entries
                .iter()
                .copied()
                .filter(|a| a.last_offset < self.log_end_offset)
                .collect();
            if kept.len() * txn_index::ENTRY_BYTES != bytes.len() {
                // Replaced whole (temp file, sync, rename, sync the
                // directory): a crash never leaves it without entries the
                // rebuild cannot find again.
                let out: Vec<u8> = kept.iter().flat_map(|a| a.encode()).collect();
                let tmp = path.with_extension(TXN_INDEX_TMP_EXTENSION);
                File::create(&tmp)
                    .and_then(|mut f| f.write_all(&out).and_then(|()| self.syncer.sync(&f)))
                    .and_then(|()| fs::rename(&tmp, &path))
                    .map_err(|e| StorageError::io(&path, e))?;
                sync_dir(&self.dir, &*self.syncer)?;
            }
            self.aborted.extend(kept);
        }
        Ok(())
    }

    /// Makes the active segment's aborted-transaction index durable (before
    /// a producer snapshot says the markers before it need no scan).
    fn sync_txn_index(&self) -> Result<(), StorageError> {
        let base = self.segments[self.segments.len() - 1].base_offset;
        let path = self.dir.join(segment_file_name(base, TXN_INDEX_SUFFIX));
        match File::open(&path) {
            Ok(f) => self.syncer.sync(&f).map_err(|e| StorageError::io(&path, e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// The last stable offset: the high watermark, or the first offset of
    /// the oldest open transaction if that is lower. read_committed
    /// consumers read up to here.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.producers
            .first_unstable_offset()
            .map_or(hw, |first| first.clamp(self.log_start_offset, hw))
    }

    /// [`Self::read`] for a read_committed consumer: up to the
    /// [last stable offset](Self::last_stable_offset).
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<FileRegion>, StorageError> {
        let visible = self.visible_point();
        let limit = match self.producers.first_unstable_offset() {
            Some(first) if first < visible.offset => {
                self.boundary_at_or_below(first.max(self.log_start_offset))?
            }
            _ => visible,
        };
        self.read_below(offset, max_bytes, limit)
    }

    /// The aborted transactions overlapping offsets `[from, to)`, oldest
    /// marker first: what a read_committed fetch of that range must drop.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Rebuilds the producer state (at open, and after a truncation removed
    /// batches): the newest snapshot at or below the log end, then the
    /// batch headers after it (every segment's when there is none).
    /// Snapshots past the log end (written before a crash lost records, or
    /// cut by a truncation) and damaged ones are removed.
    fn rebuild_producers(&mut self) -> Result<(), StorageError> {
        self.load_aborted()?;
        let (from, mut states) = self.newest_producer_snapshot();
        let mut ended = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            let next_base = self.segments.get(i + 1).map(|s| s.base_offset);
            if next_base.is_some_and(|next| next <= from) {
                continue;
            }
            let mut position = if from > segment.base_offset {
                match segment.find_batch(from)? {
                    Some((at, _)) => at,
                    None => continue,
                }
            } else {
                0
            };
            while position < segment.size {
                let header = segment.read_header(position)?;
                position += header.total_bytes() as u64;
                if header.base_offset >= from {
                    let marker = if header.is_control() {
                        segment.read_batch(position - header.total_bytes() as u64, &header)?
                    } else {
                        None
                    };
                    ended.extend(states.record_at(&header, header.base_offset, marker));
                }
            }
        }
        self.producers = states;
        for txn in ended {
            self.transaction_ended(txn)?;
        }
        Ok(())
    }

    /// The newest usable producer snapshot: (its offset, its state), or
    /// (`i64::MIN`, empty) when there is none.
    fn newest_producer_snapshot(&self) -> (i64, ProducerStates) {
        let mut offsets = self.producer_snapshot_offsets();
        while let Some(offset) = offsets.pop() {
            let path = self
                .dir
                .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
            if offset <= self.log_end_offset {
                let decoded = fs::read(&path)
                    .ok()
                    .and_then(|bytes| ProducerStates::decode_snapshot(&bytes));
                match decoded {
                    Some((at, states)) if at == offset => return (offset, states),
                    _ => {
                        warn!(file = %path.display(), "damaged producer state snapshot, removing it")
                    }
                }
            }
            if let Err(err) = fs::remove_file(&path) {
                warn!(file = %path.display(), "cannot remove a producer state snapshot: {err}");
            }
        }
        (i64::MIN, ProducerStates::new())
    }

    /// Offsets of the producer snapshots in the directory, oldest first.
    fn producer_snapshot_offsets(&self) -> Vec<i64> {
        let mut offsets: Vec<i64> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        parse_segment_file_name(e.file_name().to_str()?, PRODUCER_SNAPSHOT_SUFFIX)
                    })
                    .collect()
            })
            .unwrap_or_default();
        offsets.sort_unstable();
        offsets
    }

    /// Snapshots the producer state at the log end (at a roll and at a
    /// clean close) and removes all but the newest few. Best effort: a
    /// snapshot only shortens the rebuild, it is never needed, so it is not
    /// synced and a failure is only logged (a torn one fails its CRC).
    fn snapshot_producers(&self) {
        if self.producers.is_empty() && self.producer_snapshot_offsets().is_empty() {
            return;
        }
        let offset = self.log_end_offset;
        let path = self
            .dir
            .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
        if let Err(err) = fs::write(&path, self.producers.encode_snapshot(offset)) {
            warn!(file = %path.display(), "cannot write a producer state snapshot: {err}");
            let _ = fs::remove_file(&path);
            return;
        }
        let offsets = self.producer_snapshot_offsets();
        let old = offsets.len().saturating_sub(PRODUCER_SNAPSHOTS_KEPT);
        for offset in &offsets[..old] {
            let path = self
                .dir
                .join(segment_file_name(*offset, PRODUCER_SNAPSHOT_SUFFIX));
            let _ = fs::remove_file(path);
        }
    }

    /// Removes every producer snapshot (the log was emptied).
    fn remove_producer_snapshots(&self) {
        for offset in self.producer_snapshot_offsets() {
            let path = self
                .dir
                .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
            let _ = fs::remove_file(path);
        }
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
    fn write_lowered_checkpoint(
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
    fn cut_at(&mut self, cut: LogPoint) -> Result<(), StorageError> {
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

    /// Deletes the first `count` segments (never the active one). A fetch
    /// still sending from one keeps reading it: its [`FileRegion`] holds the
    /// open file, and an unlinked file lives until its last descriptor
    /// closes.
    fn remove_front_segments(&mut self, count: usize) -> Result<Removed, StorageError> {
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

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
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

    /// Removes the partition directory and everything in it (topic
    /// deletion). Outstanding [`FileRegion`]s keep their files readable.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let syncer = self.syncer();
        drop(self);
        // A checkpoint written on another thread may add a file between the
        // listing and the removal of the directory: try again then.
        let mut attempts = 0;
        while let Err(e) = fs::remove_dir_all(&dir) {
            attempts += 1;
            if e.kind() != ErrorKind::DirectoryNotEmpty || attempts >= 5 {
                return Err(StorageError::io(&dir, e));
            }
        }
        // Make the removal durable; a failed directory fsync is a storage
        // fault like any other and is reported to the caller.
        match dir.parent() {
            Some(parent) => sync_dir(parent, &*syncer),
            None => Ok(()),
        }
    }
}

/// Base offsets of the segments in `dir`, ascending. Also removes leftovers
/// that have no meaning on their own: index files without a `.log`, and
/// checkpoint temp files from an interrupted write.
fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut logs = Vec::new();
    let mut index_files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(base) = parse_segment_file_name(name, LOG_SUFFIX) {
            logs.push(base);
        } else if let Some(base) = parse_segment_file_name(name, INDEX_SUFFIX)
            .or_else(|| parse_segment_file_name(name, TIME_INDEX_SUFFIX))
            .or_else(|| parse_segment_file_name(name, TXN_INDEX_SUFFIX))
        {
            index_files.push((base, entry.path()));
        } else if name == checkpoint::CHECKPOINT_TMP_FILE
            || name.ends_with(TXN_INDEX_TMP_EXTENSION)
            || name == checkpoint::LEGACY_RECOVERY_POINT_TMP_FILE
            || name == epochs::LEADER_EPOCH_CHECKPOINT_TMP_FILE
        {
            remove_if_exists(&entry.path())?;
        }
    }
    logs.sort_unstable();
    for (base, path) in index_files {
        if logs.binary_search(&base).is_err() {
            warn!(file = %path.display(), "removing index without a log segment");
            remove_if_exists(&path)?;
        }
    }
    Ok(logs)
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
