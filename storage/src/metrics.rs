//! Process-wide storage counters. They are plain atomics so that any shard
//! can bump them without coordination; the metrics endpoint reads them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Recovery truncated a log at an invalid batch that was followed by more
/// bytes that looked like data (a corrupt batch in the middle, not a torn
/// tail): `strom_storage_corrupt_batch_truncations_total`.
pub static CORRUPT_BATCH_TRUNCATIONS: Counter = Counter::new();
/// Recovery cut a torn tail (an incomplete last batch):
/// `strom_storage_torn_tail_truncations_total`.
pub static TORN_TAIL_TRUNCATIONS: Counter = Counter::new();
/// Bytes removed from logs by recovery: `strom_storage_truncated_bytes_total`.
pub static TRUNCATED_BYTES: Counter = Counter::new();
/// Index files rebuilt from their log: `strom_storage_index_rebuilds_total`.
pub static INDEX_REBUILDS: Counter = Counter::new();
/// Segments removed by retention or DeleteRecords:
/// `strom_storage_segments_deleted_total`.
pub static SEGMENTS_DELETED: Counter = Counter::new();
/// Appends refused because the disk was full (ENOSPC/EDQUOT):
/// `strom_storage_no_space_appends_total`.
pub static NO_SPACE_APPENDS: Counter = Counter::new();
