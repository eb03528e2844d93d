//! The leader epoch cache of one partition: which leader epoch wrote which
//! range of offsets, as Kafka's `LeaderEpochFileCache` keeps it. Replication
//! uses it to answer OffsetForLeaderEpoch (KIP-101, KIP-279): a follower
//! asks "where did epoch N end on the leader?" and truncates its own log
//! there before it fetches, so that leader and follower never diverge.
//!
//! The cache is a list of `(epoch, start_offset)` entries, sorted by both
//! fields: epoch `e` starts at `start_offset` and lasts until the next
//! entry's start offset (or the log end offset for the latest entry).
//! [`LeaderEpochCache`] is the pure in-memory part; [`read()`] and [`write()`]
//! move it to and from its file. The owning
//! partition log (`PartitionLog`, `log.rs`) decides when it changes and
//! persists it.
//!
//! # Format (`<partition dir>/leader-epoch-checkpoint`, ASCII)
//!
//! Kafka's checkpoint file layout, so that Kafka tools read it:
//!
//! ```text
//! 0
//! 2
//! 3 0
//! 5 1200
//! ```
//!
//! * line 1: the format version, always `0`;
//! * line 2: the number of entries that follow, decimal;
//! * one line per entry: the epoch (decimal i32, >= 0), one space, the
//!   start offset (decimal i64, >= 0).
//!
//! Every line, the last included, ends with `\n`; there are no other bytes
//! (no blank lines, no leading or trailing spaces). Entries are listed with
//! strictly increasing epochs and non-decreasing start offsets. A file that
//! breaks any of these rules is ignored as a whole (with a warning): the
//! cache starts empty, which only makes OffsetForLeaderEpoch answer
//! "unknown" for old epochs.
//!
//! Written as the partition checkpoint is (`leader-epoch-checkpoint.tmp`,
//! sync, rename, sync the directory), so a crash leaves the old or the new
//! file.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use tracing::warn;

use crate::checkpoint::{replace_file, sync_dir};
use crate::durability::Syncer;
use crate::error::StorageError;

pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
pub const LEADER_EPOCH_CHECKPOINT_TMP_FILE: &str = "leader-epoch-checkpoint.tmp";
const VERSION: &str = "0";
/// Kafka's "no epoch" (`OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's "no offset" for OffsetForLeaderEpoch
/// (`OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The `(epoch, start_offset)` entries of one partition, sorted by both.
///
/// Owned by the partition's log (`PartitionLog`, `log.rs`) on its
/// shard; pure values, no I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    pub fn new() -> Self {
        LeaderEpochCache::default()
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest entry.
    pub fn latest(&self) -> Option<(i32, i64)> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest().map(|(epoch, _)| epoch)
    }

    /// Records that `epoch` starts at `start_offset`. As in Kafka, an entry
    /// is only added when it keeps the list sorted: its epoch is greater
    /// than the latest and its start offset is at least the latest's start
    /// (negative values are never added). Returns whether it was added.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some((latest_epoch, latest_start)) = self.latest() {
            if epoch <= latest_epoch || start_offset < latest_start {
                return false;
            }
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Removes the entries whose start offset is `end_offset` or more (the
    /// log was truncated there). Returns whether anything was removed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self.entries.partition_point(|&(_, s)| s < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start_offset`: drops the entries wholly below
    /// it and moves the start of the latest entry at or below it up to
    /// `start_offset` (that epoch still owns the first records). Returns
    /// whether anything changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let at_or_below = self.entries.partition_point(|&(_, s)| s <= start_offset);
        let Some(last) = at_or_below.checked_sub(1) else {
            return false;
        };
        let changed = last > 0 || self.entries[last].1 != start_offset;
        self.entries[last].1 = start_offset;
        self.entries.drain(..last);
        changed
    }

    /// Keeps only the first `count` entries (undoes [`Self::assign`]s that
    /// were not made durable).
    pub(crate) fn keep_first(&mut self, count: usize) {
        self.entries.truncate(count);
    }

    /// Removes every entry. Returns whether there were any.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// OffsetForLeaderEpoch, as Kafka's `LeaderEpochFileCache.endOffsetFor`
    /// (Kafka 2.0 and later) answers it: the largest epoch at or below
    /// `epoch` and the offset where it ended, which is the start offset of
    /// the next larger epoch, or `log_end_offset` when `epoch` is the latest.
    ///
    /// When `epoch` is below every entry (its records were deleted, or it
    /// never wrote here), the answer is `epoch` itself with the first
    /// entry's start offset, so a follower truncates no further than the
    /// leader's oldest known epoch.
    ///
    /// `None` (Kafka's `UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`) when
    /// `epoch` is undefined (negative), when the cache is empty, or when
    /// `epoch` is newer than every entry.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.partition_point(|&(e, _)| e <= epoch);
        let (_, next_start) = *self.entries.get(higher)?;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, next_start)),
            None => Some((epoch, next_start)),
        }
    }

    /// The file contents (see the module docs).
    pub fn encode(&self) -> String {
        let mut out = format!("{VERSION}\n{}\n", self.entries.len());
        for (epoch, start_offset) in &self.entries {
            out.push_str(&format!("{epoch} {start_offset}\n"));
        }
        out
    }

    /// Parses [`Self::encode`]'s output; `Err` says what is wrong.
    pub fn decode(text: &[u8]) -> Result<LeaderEpochCache, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| "does not end with a newline".to_string())?;
        let mut lines = body.split('\n');
        if lines.next() != Some(VERSION) {
            return Err("unknown version".into());
        }
        let count_line = lines.next().ok_or_else(|| "no entry count".to_string())?;
        let count: usize =
            parse_decimal(count_line).ok_or_else(|| format!("bad entry count {count_line:?}"))?;
        let mut cache = LeaderEpochCache::new();
        for i in 0..count {
            let line = lines
                .next()
                .ok_or_else(|| format!("{count} entries announced, {i} found"))?;
            let (epoch, start_offset) = line
                .split_once(' ')
                .and_then(|(e, s)| Some((parse_decimal::<i32>(e)?, parse_decimal::<i64>(s)?)))
                .ok_or_else(|| format!("bad entry line {line:?}"))?;
            if !cache.assign(epoch, start_offset) {
                return Err(format!("entry {line:?} out of order"));
            }
        }
        if lines.next().is_some() {
            return Err(format!("more than the {count} entries announced"));
        }
        Ok(cache)
    }
}

/// A non-negative decimal number with nothing around it (no sign, no
/// spaces, no leading `+`).
fn parse_decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads the cache of the partition in `dir`: empty when the file is
/// missing, and (after a warning) when it is garbled or unreadable.
pub fn read(dir: &Path) -> LeaderEpochCache {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(bytes) => match LeaderEpochCache::decode(&bytes) {
            Ok(cache) => cache,
            Err(reason) => {
                warn!(file = %path.display(), %reason, "ignoring a garbled leader epoch checkpoint: the epoch cache starts empty");
                LeaderEpochCache::new()
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => LeaderEpochCache::new(),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "unreadable leader epoch checkpoint: the epoch cache starts empty");
            LeaderEpochCache::new()
        }
    }
}

/// Atomically replaces the leader epoch checkpoint of the partition in
/// `dir` (temp file, sync, rename, sync the directory).
pub fn write(
    dir: &Path,
    cache: &LeaderEpochCache,
    syncer: &dyn Syncer,
) -> Result<(), StorageError> {
    replace_file(
        dir,
        LEADER_EPOCH_CHECKPOINT_FILE,
        LEADER_EPOCH_CHECKPOINT_TMP_FILE,
        cache.encode().as_bytes(),
        syncer,
    )?;
    sync_dir(dir, syncer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::new();
        for &(epoch, start) in entries {
            assert!(cache.assign(epoch, start), "({epoch}, {start})");
        }
        cache
    }

    #[test]
    fn assign_only_moves_forward() {
        let mut c = LeaderEpochCache::new();
        assert_eq!(c.latest_epoch(), None);
        assert!(!c.assign(-1, 0), "undefined epoch");
        assert!(!c.assign(0, -1), "negative offset");
        assert!(c.assign(2, 10));
        assert!(!c.assign(2, 20), "same epoch again");
        assert!(!c.assign(1, 30), "older epoch");
        assert!(!c.assign(3, 9), "start below the latest start");
        assert!(c.assign(3, 10), "same start: epoch 2 wrote nothing");
        assert!(c.assign(7, 25));
        assert_eq!(c.entries(), &[(2, 10), (3, 10), (7, 25)]);
        assert_eq!(c.latest(), Some((7, 25)));
    }

    #[test]
    fn truncate_from_end_removes_entries_starting_at_or_after() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 20)]);
        assert!(!c.truncate_from_end(21));
        assert!(c.truncate_from_end(20));
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        assert!(c.truncate_from_end(5));
        assert_eq!(c.entries(), &[(1, 0)]);
        assert!(c.truncate_from_end(0));
        assert!(c.is_empty());
    }

    #[test]
    fn truncate_from_start_keeps_the_epoch_owning_the_new_start() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 20)]);
        assert!(!c.truncate_from_start(0));
        // 15 lies in epoch 3: epoch 1 goes, epoch 3 now starts at 15.
        assert!(c.truncate_from_start(15));
        assert_eq!(c.entries(), &[(3, 15), (4, 20)]);
        // Exactly at an entry's start: the earlier ones go.
        assert!(c.truncate_from_start(20));
        assert_eq!(c.entries(), &[(4, 20)]);
        assert!(!c.truncate_from_start(20));
        // Past every entry: the latest epoch owns the new start.
        assert!(c.truncate_from_start(90));
        assert_eq!(c.entries(), &[(4, 90)]);
        let mut empty = LeaderEpochCache::new();
        assert!(!empty.truncate_from_start(5));
    }

    #[test]
    fn end_offset_for_answers_as_kafka_does() {
        let c = cache(&[(1, 0), (3, 10), (6, 20)]);
        let leo = 25;
        // The latest epoch ends at the log end.
        assert_eq!(c.end_offset_for(6, leo), Some((6, 25)));
        // A known earlier epoch ends where the next one starts.
        assert_eq!(c.end_offset_for(1, leo), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, leo), Some((3, 20)));
        // An unknown epoch between two: the largest one below it.
        assert_eq!(c.end_offset_for(2, leo), Some((1, 10)));
        assert_eq!(c.end_offset_for(5, leo), Some((3, 20)));
        // Newer than every entry, or undefined: unknown.
        assert_eq!(c.end_offset_for(7, leo), None);
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, leo), None);
        assert_eq!(LeaderEpochCache::new().end_offset_for(0, leo), None);
        // Older than every entry: that epoch, ending where the first starts.
        let trimmed = cache(&[(3, 15), (6, 20)]);
        assert_eq!(trimmed.end_offset_for(1, leo), Some((1, 15)));
    }

    #[test]
    fn file_format_round_trip_and_garbled_files() {
        let c = cache(&[(0, 0), (5, 1200)]);
        assert_eq!(c.encode(), "0\n2\n0 0\n5 1200\n");
        assert_eq!(LeaderEpochCache::decode(c.encode().as_bytes()), Ok(c));
        assert_eq!(
            LeaderEpochCache::decode(b"0\n0\n"),
            Ok(LeaderEpochCache::new())
        );
        for bad in [
            "",
            "0\n",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 0\n1 5\n",
            "0\n1\n0 0",
            "0\n1\n0  0\n",
            "0\n1\n-1 0\n",
            "0\n1\n0 -4\n",
            "0\n1\n+3 4\n",
            "0\n2\n5 10\n4 20\n",
            "0\n2\n4 10\n5 9\n",
            "0\n1\n99999999999 0\n",
            "0\nx\n",
        ] {
            assert!(
                LeaderEpochCache::decode(bad.as_bytes()).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), LeaderEpochCache::new());
        let c = cache(&[(2, 7), (4, 9)]);
        write(dir.path(), &c, &crate::durability::OsSync).unwrap();
        assert_eq!(read(dir.path()), c);
        assert_eq!(
            fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap(),
            "0\n2\n2 7\n4 9\n"
        );
        assert!(!dir.path().join(LEADER_EPOCH_CHECKPOINT_TMP_FILE).exists());
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE), "0\n3\n1 1\n").unwrap();
        assert_eq!(read(dir.path()), LeaderEpochCache::new());
    }
}
