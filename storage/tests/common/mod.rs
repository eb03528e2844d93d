//! Helpers shared by the storage crash/recovery integration tests: a tiny
//! deterministic RNG, a no-op syncer, a record decoder for the batches
//! `encode_simple_batch` builds, and a checker that reads a whole log back
//! against a model of what was appended.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use strom_storage::batch::{encode_simple_batch, validate_batches, BATCH_HEADER_BYTES};
use strom_storage::durability::Syncer;
use strom_storage::log::{LogConfig, PartitionLog};

/// Wall clock handed to the log (its value only matters for retention).
pub const NOW: i64 = 1_700_000_000_000;

/// splitmix64: tiny, fast, good enough to drive randomized tests, and the
/// same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform index into a slice of length `len` (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

/// A syncer that does nothing: for tests about recovery logic, not
/// durability (thousands of real `fsync`s would dominate the runtime).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSync;

impl Syncer for NoSync {
    fn sync(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// The (offset, value) of every record of one uncompressed batch as built by
/// `encode_simple_batch` (null key, no headers); `None` if the records do not
/// parse that way.
pub fn decode_records(batch: &[u8]) -> Option<Vec<(i64, Vec<u8>)>> {
    let base = i64::from_be_bytes(batch.get(0..8)?.try_into().ok()?);
    let records = batch.get(BATCH_HEADER_BYTES..)?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let len = usize::try_from(get_varint(records, &mut pos)?).ok()?;
        let end = pos.checked_add(len)?;
        let body = records.get(pos..end)?;
        let mut at = 1; // attributes
        let _timestamp_delta = get_varint(body, &mut at)?;
        let offset_delta = get_varint(body, &mut at)?;
        let key_len = get_varint(body, &mut at)?;
        if key_len != -1 {
            return None;
        }
        let value_len = usize::try_from(get_varint(body, &mut at)?).ok()?;
        let value = body.get(at..at.checked_add(value_len)?)?.to_vec();
        out.push((base.checked_add(offset_delta)?, value));
        pos = end;
    }
    Some(out)
}

/// A random produce buffer: 1..=`max_batches` batches of 1..=`max_records`
/// records with random values (0..=`max_value` bytes). Returns the buffer and
/// the values in offset order.
pub fn random_produce(
    rng: &mut Rng,
    max_batches: u64,
    max_records: u64,
    max_value: u64,
    timestamp: i64,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut buf = Vec::new();
    let mut all = Vec::new();
    for _ in 0..rng.range(1, max_batches) {
        let values: Vec<Vec<u8>> = (0..rng.range(1, max_records))
            .map(|_| {
                let len = rng.range(0, max_value) as usize;
                rng.bytes(len)
            })
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        buf.extend_from_slice(&encode_simple_batch(0, timestamp, &refs));
        all.extend(values);
    }
    (buf, all)
}

/// Appends `buf` (values `values`) and records the values in `model`
/// (`model[offset]` is the value appended at that offset).
pub fn append_to(
    log: &mut PartitionLog,
    model: &mut Vec<Vec<u8>>,
    mut buf: Vec<u8>,
    values: Vec<Vec<u8>>,
    now_ms: i64,
) -> Result<(), strom_storage::StorageError> {
    let headers = validate_batches(&buf).expect("test batches are valid");
    let info = log.append(&mut buf, &headers, 0, None, now_ms)?;
    let base = info.base_offset;
    assert!(
        base as usize <= model.len(),
        "append at {base} beyond the model end {}",
        model.len()
    );
    model.truncate(base as usize);
    model.extend(values);
    assert_eq!(info.last_offset + 1, model.len() as i64);
    assert_eq!(log.log_end_offset(), model.len() as i64);
    Ok(())
}

/// Reads the log from its start offset to its high watermark with fetch sizes
/// picked by `rng` and checks that it is a valid prefix of `model`: whole
/// batches with valid CRCs, contiguous offsets, and every record equal to the
/// value appended at its offset. Every offset from the log start to the high
/// watermark must hold a record: the log has no holes. Returns the number of
/// records checked.
pub fn check_log(log: &PartitionLog, model: &[Vec<u8>], rng: &mut Rng) -> usize {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let hw = log.high_watermark();
    assert!(
        0 <= start && start <= hw && hw <= end,
        "start {start} hw {hw} end {end}"
    );
    assert!(
        end as usize <= model.len(),
        "log end {end} beyond the {} records ever appended",
        model.len()
    );
    let mut offset = start;
    let mut checked = 0;
    while offset < hw {
        let max_bytes = *rng.pick(&[1u64, 64, 300, 1000, 5000, 1 << 20]);
        let region = log
            .read(offset, max_bytes)
            .unwrap_or_else(|e| panic!("read({offset}) below hw {hw}: {e}"));
        let region = region.unwrap_or_else(|| {
            panic!(
                "read({offset}) returned nothing below the high watermark {hw} \
                 (offsets {offset}..{hw} have no records)"
            )
        });
        let mut bytes = vec![0u8; region.len as usize];
        region
            .file
            .read_exact_at(&mut bytes, region.position)
            .expect("read region");
        let headers = validate_batches(&bytes)
            .unwrap_or_else(|e| panic!("fetch at {offset} returned invalid batches: {e}"));
        assert!(
            headers[0].base_offset <= offset && offset <= headers[0].last_offset(),
            "fetch at {offset} returned a first batch {}..={} (below the high watermark {hw})",
            headers[0].base_offset,
            headers[0].last_offset()
        );
        let mut at = 0usize;
        for (i, h) in headers.iter().enumerate() {
            if i > 0 {
                assert_eq!(
                    h.base_offset, offset,
                    "offsets not contiguous inside one fetch"
                );
            }
            let batch = &bytes[at..at + h.total_bytes()];
            at += h.total_bytes();
            let records = decode_records(batch)
                .unwrap_or_else(|| panic!("batch at {} does not decode", h.base_offset));
            assert_eq!(records.len() as i64, h.last_offset() - h.base_offset + 1);
            for (k, (o, value)) in records.iter().enumerate() {
                assert_eq!(
                    *o,
                    h.base_offset + k as i64,
                    "record offsets not contiguous"
                );
                let expected = model
                    .get(*o as usize)
                    .unwrap_or_else(|| panic!("record at {o} was never appended"));
                assert!(
                    value == expected,
                    "record {o}: read {} bytes, appended {} bytes (different)",
                    value.len(),
                    expected.len()
                );
                checked += 1;
            }
            offset = h.last_offset() + 1;
        }
        assert!(offset <= end, "read past the log end {end}");
    }
    assert_eq!(offset, hw, "reads ended at {offset}, high watermark {hw}");
    assert!(log.read(hw, 1 << 20).expect("read at hw").is_none());
    checked
}

/// A random small-segment configuration.
pub fn random_config(rng: &mut Rng) -> LogConfig {
    LogConfig {
        segment_bytes: rng.range(300, 4000),
        segment_ms: 1 << 50,
        index_interval_bytes: *rng.pick(&[0u32, 1, 64, 200, 512, 4096]),
        retention_ms: -1,
        retention_bytes: -1,
        write_caching: rng.chance(30),
    }
}

/// The seeds to run: `env_seed` (a single seed) if set, otherwise `count`
/// seeds (`env_count` overrides) starting at `first`.
pub fn seeds(env_seed: &str, env_count: &str, first: u64, count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var(env_seed)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var(env_count)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(count);
    (first..first + count).collect()
}

/// Runs `case` for every seed on all cores. A failing case prints
/// `<env_seed>=<seed>` (the command line that replays it) and the test fails
/// with the smallest failing seed.
pub fn run_cases(env_seed: &str, seeds: &[u64], case: impl Fn(u64) + Sync) {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    // More threads than cores: the power-loss cases mostly wait for fsync.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(4)
        .min(seeds.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else {
                    break;
                };
                if panic::catch_unwind(AssertUnwindSafe(|| case(seed))).is_err() {
                    eprintln!("FAILED: replay with {env_seed}={seed}");
                    failed.lock().unwrap().push(seed);
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap();
    failed.sort_unstable();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed; replay one with {env_seed}={} (failing seeds: {failed:?})",
        failed.len(),
        seeds.len(),
        failed[0]
    );
}
