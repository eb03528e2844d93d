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

mod append;
mod leader_epochs;
mod open;
mod read;
mod retention;
mod segment;
mod sync;
mod transactions;
mod truncation;

use segment::*;

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

    /// Replaces the settings (a topic config change). Takes effect for the
    /// next append, read and retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
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

#[cfg(test)]
#[path = "../log_tests.rs"]
mod tests;
