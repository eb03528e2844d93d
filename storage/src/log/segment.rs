//! One segment of a partition log: its `.log`, `.index` and `.timeindex`
//! files, batch lookups inside it, and the recovery scan of its tail.

use super::*;

/// One segment: a `.log` file plus its two indexes.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) base_offset: i64,
    pub(super) log_path: PathBuf,
    pub(super) index_path: PathBuf,
    pub(super) time_index_path: PathBuf,
    pub(super) log: Arc<File>,
    /// Open while the segment is active (or being rebuilt); a sealed segment's
    /// indexes live in memory and its index files are closed, so a partition
    /// holds one descriptor per old segment instead of three.
    pub(super) index_file: Option<File>,
    pub(super) time_index_file: Option<File>,
    /// Bytes of complete batches in the `.log` (appends go here).
    pub(super) size: u64,
    /// Offset after the last batch of this segment (base offset if empty).
    pub(super) next_offset: i64,
    pub(super) offset_index: OffsetIndex,
    pub(super) time_index: TimeIndex,
    /// How many entries of each index are already in its file.
    pub(super) index_written: usize,
    pub(super) time_index_written: usize,
    pub(super) bytes_since_index: u64,
    /// Largest batch max timestamp in the segment and the base offset of the
    /// first batch that reached it.
    pub(super) max_timestamp: Option<(i64, i64)>,
    /// Wall clock of the first append into this segment since open, for
    /// `segment_ms`.
    pub(super) first_append_ms: Option<i64>,
    /// Written since the last full flush (log or index files).
    pub(super) dirty: bool,
    /// Bytes of the `.log` known to be synced.
    pub(super) synced_size: u64,
}

pub(super) fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses `<20 digits><suffix>` back into a base offset.
pub(super) fn parse_segment_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(super) fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, e))
}

/// Reads a whole small file; a missing file reads as empty.
pub(super) fn read_optional(path: &Path) -> Result<Vec<u8>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

pub(super) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

impl Segment {
    pub(super) fn open(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
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

    pub(super) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Index bookkeeping for one batch at `position` (shared by append and
    /// recovery so both build identical indexes).
    pub(super) fn track_batch(
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

    pub(super) fn pending_index_entries(&self) -> usize {
        (self.offset_index.len() - self.index_written)
            + (self.time_index.len() - self.time_index_written)
    }

    /// Appends index entries not yet in the files.
    pub(super) fn write_pending_indexes(&mut self) -> Result<(), StorageError> {
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
    pub(super) fn rewrite_index_files(&mut self) -> Result<(), StorageError> {
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
    pub(super) fn seal(&mut self) -> Result<(), StorageError> {
        if let Some((ts, offset)) = self.max_timestamp {
            if self.time_index.append(ts, offset) {
                self.dirty = true;
            }
        }
        self.write_pending_indexes()
    }

    pub(super) fn sync(&mut self, syncer: &dyn Syncer) -> Result<(), StorageError> {
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
    pub(super) fn index_file(&mut self) -> Result<&File, StorageError> {
        if self.index_file.is_none() {
            self.index_file = Some(open_rw(&self.index_path)?);
        }
        self.index_file
            .as_ref()
            .ok_or_else(|| StorageError::io(&self.index_path, ErrorKind::NotFound.into()))
    }

    /// The `.timeindex` file, reopened if it was released.
    pub(super) fn time_index_file(&mut self) -> Result<&File, StorageError> {
        if self.time_index_file.is_none() {
            self.time_index_file = Some(open_rw(&self.time_index_path)?);
        }
        self.time_index_file
            .as_ref()
            .ok_or_else(|| StorageError::io(&self.time_index_path, ErrorKind::NotFound.into()))
    }

    /// Writes out and fsyncs the index files, then closes them (for a sealed
    /// segment, whose indexes no longer change).
    pub(super) fn release_index_files(&mut self, syncer: &dyn Syncer) -> Result<(), StorageError> {
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

    pub(super) fn remove_files(self) -> Result<(), StorageError> {
        remove_if_exists(&self.log_path.with_extension(&TXN_INDEX_SUFFIX[1..]))?;
        remove_if_exists(&self.log_path)?;
        remove_if_exists(&self.index_path)?;
        remove_if_exists(&self.time_index_path)
    }

    /// Cuts the segment at `position`, the start of the batch with base
    /// offset `offset` (or the end of the segment): the `.log` file, both
    /// indexes in memory and in their files, and the max timestamp. The
    /// caller syncs.
    pub(super) fn truncate(&mut self, position: u64, offset: i64) -> Result<(), StorageError> {
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
    pub(super) fn max_timestamp_of_kept_batches(&self) -> Result<Option<(i64, i64)>, StorageError> {
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
    pub(super) fn read_header(&self, position: u64) -> Result<BatchHeader, StorageError> {
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
    pub(super) fn read_batch(
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
    pub(super) fn find_batch(
        &self,
        offset: i64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
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
    pub(super) fn record_with_timestamp(&self, batch_offset: i64, ts: i64) -> Option<i64> {
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
    pub(super) fn index_entry_matches(&self, offset: i64, position: u64) -> bool {
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
    pub(super) fn boundary_at_or_below(
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
    pub(super) fn load_indexes(&mut self, next_base: Option<i64>) -> Result<bool, StorageError> {
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
    pub(super) fn scan(
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
    pub(super) fn zeros_from(&self, from: u64, to: u64) -> Result<bool, StorageError> {
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
    pub(super) fn rebuild(
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

/// Base offsets of the segments in `dir`, ascending. Also removes leftovers
/// that have no meaning on their own: index files without a `.log`, and
/// checkpoint temp files from an interrupted write.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
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
