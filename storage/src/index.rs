//! Sparse per-segment indexes, in Kafka's file formats.
//!
//! Both indexes are held fully in memory (they are small: one entry per
//! `index_interval_bytes` of log) and mirrored to files so that a clean
//! restart does not need to scan the log.
//!
//! Offsets are stored relative to the segment's base offset so that an entry
//! fits in 4 bytes; the log rolls a segment before a relative offset or a
//! file position could overflow `u32`.

use std::path::Path;

use crate::error::StorageError;

/// `.index` file: a sequence of 8-byte entries, no header:
///
/// | bytes | field                                             |
/// |------:|---------------------------------------------------|
/// | 0..4  | relative offset, u32 BE (offset − segment base)   |
/// | 4..8  | file position of the batch in the `.log`, u32 BE  |
///
/// Entries are strictly increasing in both fields. An entry `(o, p)` means
/// "the batch whose base offset is `o` starts at byte `p`", so a reader
/// looking for offset `t` starts scanning at the greatest entry `o <= t`.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

/// `.timeindex` file: a sequence of 12-byte entries, no header:
///
/// | bytes | field                                             |
/// |------:|---------------------------------------------------|
/// | 0..8  | timestamp, i64 BE (largest batch max timestamp so far in the segment) |
/// | 8..12 | relative offset, u32 BE, of the batch that first reached that timestamp |
///
/// Entries are strictly increasing in both fields; one is added only when
/// the segment's max timestamp grows. Every batch before an entry's offset
/// has a max timestamp <= the entry's timestamp.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// One offset-index entry, with the offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

/// One time-index entry, with the offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

fn relative(base_offset: i64, offset: i64) -> Option<u32> {
    u32::try_from(offset.checked_sub(base_offset)?).ok()
}

fn corrupt(path: &Path, reason: String) -> StorageError {
    StorageError::CorruptIndex {
        path: path.to_path_buf(),
        reason,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// In-memory copy of a segment's `.index`.
///
/// File format: entries of [`OFFSET_INDEX_ENTRY_BYTES`] = 8 bytes, no
/// header: bytes 0..4 relative offset u32 BE (offset − segment base offset),
/// bytes 4..8 position of that batch in the `.log`, u32 BE. Strictly
/// increasing in both fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    base_offset: i64,
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    pub fn new(base_offset: i64) -> Self {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    /// Where to start scanning for `offset`: the greatest entry with
    /// entry.offset <= offset, or the segment start when there is none.
    pub fn lookup(&self, offset: i64) -> OffsetEntry {
        let idx = self.entries.partition_point(|e| e.offset <= offset);
        if idx == 0 {
            OffsetEntry {
                offset: self.base_offset,
                position: 0,
            }
        } else {
            self.entries[idx - 1]
        }
    }

    /// The greatest entry whose position is <= `position`, if any. Entries
    /// are batch boundaries, so this finds a boundary near a byte limit.
    pub fn floor_position(&self, position: u64) -> Option<OffsetEntry> {
        let idx = self
            .entries
            .partition_point(|e| u64::from(e.position) <= position);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Adds an entry. A sparse index loses nothing by skipping an entry, so
    /// one that is not strictly after the last entry or whose relative offset
    /// does not fit in `u32` is ignored; returns whether it was added.
    pub fn append(&mut self, offset: i64, position: u32) -> bool {
        if relative(self.base_offset, offset).is_none() {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if offset <= last.offset || position <= last.position {
                return false;
            }
        }
        self.entries.push(OffsetEntry { offset, position });
        true
    }

    /// Drops every entry for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = self.entries.partition_point(|e| e.offset < offset);
        self.entries.truncate(keep);
    }

    /// Serializes entries `from..` (so new entries can be appended to the
    /// file without rewriting it).
    pub fn to_bytes_from(&self, from: usize) -> Vec<u8> {
        let tail = self.entries.get(from..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(tail.len() * OFFSET_INDEX_ENTRY_BYTES);
        for e in tail {
            // Entries were checked to fit when appended.
            let rel = relative(self.base_offset, e.offset).unwrap_or(u32::MAX);
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_from(0)
    }

    /// Parses an `.index` file's contents. `path` is only for error context;
    /// `log_size` is the size of the segment's `.log`, which every position
    /// must be inside.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        base_offset: i64,
        log_size: u64,
    ) -> Result<Self, StorageError> {
        if !bytes
            .chunks_exact(OFFSET_INDEX_ENTRY_BYTES)
            .remainder()
            .is_empty()
        {
            return Err(corrupt(
                path,
                format!(
                    "size {} is not a multiple of {OFFSET_INDEX_ENTRY_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let mut index = OffsetIndex::new(base_offset);
        for (i, chunk) in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES).enumerate() {
            let offset = base_offset + i64::from(u32_at(chunk, 0));
            let position = u32_at(chunk, 4);
            if u64::from(position) >= log_size {
                return Err(corrupt(
                    path,
                    format!("entry {i}: position {position} beyond log size {log_size}"),
                ));
            }
            if !index.append(offset, position) {
                return Err(corrupt(
                    path,
                    format!("entry {i}: offset {offset} / position {position} not increasing"),
                ));
            }
        }
        Ok(index)
    }
}

/// In-memory copy of a segment's `.timeindex`.
///
/// File format: entries of [`TIME_INDEX_ENTRY_BYTES`] = 12 bytes, no
/// header: bytes 0..8 timestamp i64 BE (the segment's max timestamp so far),
/// bytes 8..12 relative offset u32 BE of the batch that first reached it.
/// Strictly increasing in both fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    base_offset: i64,
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    pub fn new(base_offset: i64) -> Self {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// The first entry with timestamp >= `timestamp`.
    pub fn lookup(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp < timestamp);
        self.entries.get(idx).copied()
    }

    /// The last entry with timestamp < `timestamp`: every batch before its
    /// offset is older than `timestamp`, so a search for the first batch at
    /// or after `timestamp` can start scanning at that offset.
    pub fn last_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp < timestamp);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Adds an entry if it is strictly after the last one in both timestamp
    /// and offset and the offset fits; returns whether it was added.
    pub fn append(&mut self, timestamp: i64, offset: i64) -> bool {
        if relative(self.base_offset, offset).is_none() {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if timestamp <= last.timestamp || offset <= last.offset {
                return false;
            }
        }
        self.entries.push(TimeEntry { timestamp, offset });
        true
    }

    /// Drops every entry for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = self.entries.partition_point(|e| e.offset < offset);
        self.entries.truncate(keep);
    }

    /// Serializes entries `from..`.
    pub fn to_bytes_from(&self, from: usize) -> Vec<u8> {
        let tail = self.entries.get(from..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(tail.len() * TIME_INDEX_ENTRY_BYTES);
        for e in tail {
            let rel = relative(self.base_offset, e.offset).unwrap_or(u32::MAX);
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_from(0)
    }

    /// Parses a `.timeindex` file's contents; `path` is for error context.
    pub fn from_bytes(path: &Path, bytes: &[u8], base_offset: i64) -> Result<Self, StorageError> {
        if !bytes
            .chunks_exact(TIME_INDEX_ENTRY_BYTES)
            .remainder()
            .is_empty()
        {
            return Err(corrupt(
                path,
                format!(
                    "size {} is not a multiple of {TIME_INDEX_ENTRY_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let mut index = TimeIndex::new(base_offset);
        for (i, chunk) in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES).enumerate() {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[0..8]);
            let timestamp = i64::from_be_bytes(ts);
            let offset = base_offset + i64::from(u32_at(chunk, 8));
            if !index.append(timestamp, offset) {
                return Err(corrupt(
                    path,
                    format!("entry {i}: timestamp {timestamp} / offset {offset} not increasing"),
                ));
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_append_truncate() {
        let mut idx = OffsetIndex::new(100);
        assert_eq!(
            idx.lookup(150),
            OffsetEntry {
                offset: 100,
                position: 0
            }
        );
        assert!(idx.append(110, 4096));
        assert!(idx.append(130, 9000));
        assert!(!idx.append(130, 10000), "offset must increase");
        assert!(!idx.append(140, 9000), "position must increase");
        assert!(!idx.append(99, 1), "below base offset");
        assert_eq!(idx.lookup(109).position, 0);
        assert_eq!(idx.lookup(110).position, 4096);
        assert_eq!(idx.lookup(129).position, 4096);
        assert_eq!(idx.lookup(1000).position, 9000);
        assert_eq!(idx.floor_position(9999).map(|e| e.offset), Some(130));
        assert_eq!(idx.floor_position(100), None);
        idx.truncate_to(130);
        assert_eq!(idx.len(), 1);
        idx.truncate_to(0);
        assert!(idx.is_empty());
    }

    #[test]
    fn offset_index_bytes_round_trip_and_validation() {
        let mut idx = OffsetIndex::new(1 << 40);
        idx.append((1 << 40) + 5, 100);
        idx.append((1 << 40) + 9, 300);
        let bytes = idx.to_bytes();
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[0..4], &5u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &100u32.to_be_bytes());
        let p = Path::new("x.index");
        let back = OffsetIndex::from_bytes(p, &bytes, 1 << 40, 1000).unwrap();
        assert_eq!(back, idx);
        assert_eq!(idx.to_bytes_from(1), bytes[8..].to_vec());

        assert!(OffsetIndex::from_bytes(p, &bytes[..15], 1 << 40, 1000).is_err());
        assert!(OffsetIndex::from_bytes(p, &bytes, 1 << 40, 300).is_err());
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(OffsetIndex::from_bytes(p, &swapped, 1 << 40, 1000).is_err());
    }

    #[test]
    fn time_index_lookup_and_round_trip() {
        let mut idx = TimeIndex::new(0);
        assert!(idx.append(1000, 0));
        assert!(idx.append(2000, 10));
        assert!(!idx.append(2000, 20), "timestamp must grow");
        assert!(idx.append(3000, 20));
        assert_eq!(idx.lookup(1500).map(|e| e.offset), Some(10));
        assert_eq!(idx.lookup(1000).map(|e| e.offset), Some(0));
        assert_eq!(idx.lookup(3001), None);
        assert_eq!(idx.last_before(1000), None);
        assert_eq!(idx.last_before(2500).map(|e| e.offset), Some(10));
        let p = Path::new("x.timeindex");
        let bytes = idx.to_bytes();
        assert_eq!(bytes.len(), 36);
        assert_eq!(TimeIndex::from_bytes(p, &bytes, 0).unwrap(), idx);
        assert!(TimeIndex::from_bytes(p, &bytes[..30], 0).is_err());
        let mut bad = bytes.clone();
        bad.extend_from_slice(&bytes[..12]);
        assert!(TimeIndex::from_bytes(p, &bad, 0).is_err());
        idx.truncate_to(10);
        assert_eq!(idx.len(), 1);
    }
}
