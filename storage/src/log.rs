//! One partition's log: a directory of segments, appends, fetch lookups,
//! timestamp lookups, flushing and crash recovery.
//!
//! # Directory layout (`<data_dir>/<topic>-<partition>/`, Kafka's names)
//!
//! * `<base offset, 20 digits zero padded>.log` — the segment's batches,
//!   back to back, exactly as producers sent them after offset assignment
//!   (see [`crate::batch`] for the byte layout). No header, no padding.
//! * `<base>.index` and `<base>.timeindex` — the sparse indexes, see
//!   [`crate::index::OFFSET_INDEX_ENTRY_BYTES`] and
//!   [`crate::index::TIME_INDEX_ENTRY_BYTES`].
//! * `recovery-point` — ASCII decimal offset followed by `\n`: every batch
//!   below this offset was fsynced. Replaced atomically (write
//!   `recovery-point.tmp`, fsync, rename, fsync the directory).
//! * `clean-shutdown` — empty marker file written by [`PartitionLog::close`]
//!   after everything was flushed, removed again by [`PartitionLog::open`].
//!
//! All file I/O is positional (`pread`/`pwrite`) through the page cache, so
//! fetches can `sendfile` straight from the same `.log` files.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::batch::{self, BatchHeader, BATCH_HEADER_BYTES};
use crate::error::StorageError;
use crate::index::{OffsetIndex, TimeIndex, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};

const RECOVERY_POINT_FILE: &str = "recovery-point";
const RECOVERY_POINT_TMP_FILE: &str = "recovery-point.tmp";
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const LOG_SUFFIX: &str = ".log";
const INDEX_SUFFIX: &str = ".index";
const TIME_INDEX_SUFFIX: &str = ".timeindex";
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
/// `index.interval.bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll when the active segment would exceed this many bytes.
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch was appended longer ago
    /// than this (wall clock of the append).
    pub segment_ms: i64,
    /// Add index entries at least every this many bytes of log.
    pub index_interval_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
        }
    }
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
    /// Written since the last fsync.
    dirty: bool,
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

/// fsync a directory so that file creations, renames and removals in it
/// survive a crash.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
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

    fn sync(&mut self) -> Result<(), StorageError> {
        self.write_pending_indexes()?;
        self.log
            .sync_data()
            .map_err(|e| StorageError::io(&self.log_path, e))?;
        if let Some(file) = &self.index_file {
            file.sync_data()
                .map_err(|e| StorageError::io(&self.index_path, e))?;
        }
        if let Some(file) = &self.time_index_file {
            file.sync_data()
                .map_err(|e| StorageError::io(&self.time_index_path, e))?;
        }
        self.dirty = false;
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
    fn release_index_files(&mut self) -> Result<(), StorageError> {
        self.write_pending_indexes()?;
        if let Some(file) = self.index_file.take() {
            file.sync_data()
                .map_err(|e| StorageError::io(&self.index_path, e))?;
        }
        if let Some(file) = self.time_index_file.take() {
            file.sync_data()
                .map_err(|e| StorageError::io(&self.time_index_path, e))?;
        }
        Ok(())
    }

    fn remove_files(self) -> Result<(), StorageError> {
        remove_if_exists(&self.log_path)?;
        remove_if_exists(&self.index_path)?;
        remove_if_exists(&self.time_index_path)
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

    /// The batch containing `offset` (the first batch whose last offset is
    /// >= `offset`) and its position, or None if no batch here has it.
    fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut position = u64::from(self.offset_index.lookup(offset).position);
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

    /// The last batch boundary at or below `limit`, but not below `floor`
    /// (itself a boundary). Starts from the offset index, so it reads at most
    /// about one index interval of headers.
    fn boundary_at_or_below(&self, floor: u64, limit: u64) -> Result<u64, StorageError> {
        if limit >= self.size {
            return Ok(self.size);
        }
        let mut position = floor;
        if let Some(entry) = self.offset_index.floor_position(limit) {
            position = position.max(u64::from(entry.position));
        }
        while position < self.size {
            let end = position + self.read_header(position)?.total_bytes() as u64;
            if end > limit {
                break;
            }
            position = end;
        }
        Ok(position)
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
        let problem: Option<String> = loop {
            if position >= file_size {
                break None;
            }
            let remaining = file_size - position;
            if remaining < BATCH_HEADER_BYTES as u64 {
                break Some(format!("torn batch header ({remaining} bytes)"));
            }
            let mut head = [0u8; BATCH_HEADER_BYTES];
            self.log
                .read_exact_at(&mut head, position)
                .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
            let header = match batch::parse_header(&head)
                .and_then(|h| batch::check_header_fields(&h).map(|()| h))
            {
                Ok(h) => h,
                Err(e) => break Some(e.to_string()),
            };
            let total = header.total_bytes() as u64;
            if total > remaining {
                break Some(format!("torn batch: needs {total} bytes, {remaining} left"));
            }
            if header.base_offset < expected {
                break Some(format!(
                    "offset {} not above previous offset {}",
                    header.base_offset,
                    expected - 1
                ));
            }
            if header.last_offset() - self.base_offset > MAX_RELATIVE_OFFSET {
                break Some(format!(
                    "offset {} too far from segment base",
                    header.last_offset()
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
                break Some(format!(
                    "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                    header.crc
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
        let Some(reason) = problem else {
            return Ok(false);
        };
        warn!(
            file = %self.log_path.display(),
            position,
            reason = %reason,
            "truncating log at the first invalid batch"
        );
        report.truncated_bytes += file_size - position;
        self.log
            .set_len(position)
            .map_err(|e| StorageError::io_at(&self.log_path, position, e))?;
        self.dirty = true;
        Ok(true)
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
        Ok(truncated)
    }
}

/// One partition's log.
///
/// Files in its directory (see the module docs for details): segments
/// `<base:020>.log` / `.index` / `.timeindex`; `recovery-point` holding the
/// ASCII decimal offset below which everything is fsynced, then `\n`; and
/// the empty `clean-shutdown` marker.
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
    /// Recovery point last written to disk.
    recovery_point: Option<i64>,
    /// Files were created or removed since the directory was last fsynced.
    dir_dirty: bool,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory `dir` and runs
    /// recovery. `now_ms` is the wall clock, injected for tests.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean {
            // Remove the marker before touching anything, so a crash from
            // here on is never mistaken for a clean shutdown.
            fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
            sync_dir(dir)?;
        }
        let recovery_point = read_recovery_point(dir);
        let bases = list_segments(dir)?;
        let mut report = RecoveryReport {
            clean,
            ..RecoveryReport::default()
        };
        let interval = u64::from(config.index_interval_bytes);
        let mut dir_dirty = false;

        let mut segments = Vec::with_capacity(bases.len().max(1));
        for base in bases {
            segments.push(Segment::open(dir, base)?);
        }
        if segments.is_empty() {
            // An empty log continues from the recovery point, if any, so
            // offsets never go backwards.
            let base = recovery_point.unwrap_or(0).max(0);
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
        for i in 0..segments.len() {
            if i > 0 && segments[i].base_offset < segments[i - 1].next_offset {
                warn!(
                    file = %segments[i].log_path.display(),
                    previous_end = segments[i - 1].next_offset,
                    "segment overlaps the previous one, removing it and later segments"
                );
                keep = i;
                break;
            }
            let next_base = segments.get(i + 1).map(|s| s.base_offset);
            let seg = &mut segments[i];
            let truncated = if i < scan_from || (clean && i == last) {
                if seg.load_indexes(next_base)? {
                    if i == last {
                        // Only the tail after the last index entry is
                        // unknown: scan it to find the log end offset.
                        let start = seg.offset_index.lookup(i64::MAX);
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
        for seg in segments.drain(keep..) {
            let bytes = seg
                .log
                .metadata()
                .map_err(|e| StorageError::io(&seg.log_path, e))?
                .len();
            warn!(file = %seg.log_path.display(), bytes, "deleting segment after corruption");
            report.truncated_bytes += bytes;
            seg.remove_files()?;
            dir_dirty = true;
        }

        let log_start_offset = segments[0].base_offset;
        let active = segments.len() - 1;
        if !segments[active].is_empty() {
            // The append wall clock of a segment is not persisted; count the
            // segment's age from now, which can only delay a time roll.
            segments[active].first_append_ms = Some(now_ms);
        }
        let log_end_offset = segments[active].next_offset;
        report.segments = segments.len();

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            recovery_point,
            dir_dirty,
        };
        // Make whatever recovery changed durable and record the new
        // recovery point, so the next crash need not scan this again.
        log.flush()?;
        let sealed = log.segments.len().saturating_sub(1);
        for seg in &mut log.segments[..sealed] {
            seg.release_index_files()?;
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
    /// (`headers` are its result for this buffer). Assigns offsets from the
    /// log end offset by rewriting the buffer, rolls first if needed, writes,
    /// and updates the indexes.
    pub fn append(
        &mut self,
        batches: &mut [u8],
        headers: &[BatchHeader],
        log_append_time_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let tiled: usize = headers.iter().map(|h| h.total_bytes()).sum();
        if headers.is_empty() || tiled != batches.len() {
            return Err(StorageError::InvalidAppend {
                path: self.dir.clone(),
                reason: format!(
                    "{} headers cover {tiled} bytes but the buffer has {}",
                    headers.len(),
                    batches.len()
                ),
            });
        }
        let len = batches.len() as u64;
        let records: i64 = headers
            .iter()
            .map(|h| i64::from(h.last_offset_delta) + 1)
            .sum();
        if self.needs_roll(len, records, now_ms) {
            self.roll()?;
        }

        let first_offset = self.log_end_offset;
        let next_offset = batch::assign_offsets(batches, first_offset, headers, log_append_time_ms);
        let interval = u64::from(self.config.index_interval_bytes);
        let seg = self.active();
        let position = seg.size;
        seg.log
            .write_all_at(batches, position)
            .map_err(|e| StorageError::io_at(&seg.log_path, position, e))?;
        seg.dirty = true;
        seg.first_append_ms.get_or_insert(now_ms);
        let mut at = position;
        let mut base = first_offset;
        for h in headers {
            let total = h.total_bytes() as u64;
            let last = base + i64::from(h.last_offset_delta);
            let max_ts = log_append_time_ms.unwrap_or(h.max_timestamp);
            seg.track_batch(base, last, max_ts, at, total, interval);
            at += total;
            base = last + 1;
        }
        seg.size = at;
        if seg.pending_index_entries() >= PENDING_INDEX_ENTRIES {
            seg.write_pending_indexes()?;
        }
        self.log_end_offset = next_offset;
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next_offset - 1,
            log_append_time_ms,
            position_bytes: position,
        })
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
        self.active().seal()?;
        self.active().release_index_files()?;
        let seg = Segment::open(&self.dir, self.log_end_offset)?;
        self.segments.push(seg);
        self.dir_dirty = true;
        Ok(())
    }

    /// Bytes to send for a fetch at `offset`: from the start of the batch
    /// holding `offset`, at most `max_bytes` but always the whole first batch
    /// (KIP-74), ending on a batch boundary and never past the segment's end.
    /// `Ok(None)` at the log end offset.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<FileRegion>, StorageError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        if offset == self.log_end_offset {
            return Ok(None);
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            let Some((position, header)) = seg.find_batch(offset)? else {
                // Offsets past this segment's last batch continue in the
                // next segment.
                continue;
            };
            let first_end = position + header.total_bytes() as u64;
            let limit = position.saturating_add(max_bytes);
            let end = if first_end >= limit {
                first_end
            } else {
                seg.boundary_at_or_below(first_end, limit)?
            };
            return Ok(Some(FileRegion {
                file: Arc::clone(&seg.log),
                position,
                len: end - position,
            }));
        }
        Ok(None)
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
                Some(entry) => u64::from(seg.offset_index.lookup(entry.offset).position),
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

    /// fdatasyncs the log and index files of segments written since the
    /// last flush, then records the log end offset as the recovery point.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        for seg in self.segments.iter_mut().filter(|s| s.dirty) {
            seg.sync()?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if self.recovery_point != Some(self.log_end_offset) {
            write_recovery_point(&self.dir, self.log_end_offset)?;
            self.recovery_point = Some(self.log_end_offset);
        }
        Ok(())
    }

    /// Flushes everything and leaves the clean-shutdown marker, so the next
    /// open trusts the files instead of scanning them.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.active().seal()?;
        self.active().dirty = true;
        self.flush()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(|e| StorageError::io(&marker, e))?;
        sync_dir(&self.dir)
    }

    /// Removes the partition directory and everything in it (topic
    /// deletion). Outstanding [`FileRegion`]s keep their files readable.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        // Make the removal durable; a failed directory fsync is a storage
        // fault like any other and is reported to the caller.
        match dir.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }
}

/// Base offsets of the segments in `dir`, ascending. Also removes leftovers
/// that have no meaning on their own: index files without a `.log`, and a
/// recovery-point temp file from an interrupted write.
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
        {
            index_files.push((base, entry.path()));
        } else if name == RECOVERY_POINT_TMP_FILE {
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

/// The recovery point, or None if the file is missing or garbled (then
/// recovery scans every segment).
fn read_recovery_point(dir: &Path) -> Option<i64> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "unreadable recovery point, scanning all segments");
            return None;
        }
    };
    match text.trim().parse::<i64>() {
        Ok(offset) if offset >= 0 => Some(offset),
        _ => {
            warn!(file = %path.display(), "garbled recovery point, scanning all segments");
            None
        }
    }
}

/// Atomically replaces the recovery-point file: a crash leaves either the
/// old or the new value, never a torn one.
fn write_recovery_point(dir: &Path, offset: i64) -> Result<(), StorageError> {
    let tmp = dir.join(RECOVERY_POINT_TMP_FILE);
    let path = dir.join(RECOVERY_POINT_FILE);
    let file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    file.write_all_at(format!("{offset}\n").as_bytes(), 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
