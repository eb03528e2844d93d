//! What the `recovery` fuzz target (`tests/fuzz/fuzz_targets/recovery.rs`)
//! does with one input; `storage/tests/recovery_fuzz_corpus.rs` replays the
//! fuzz corpus through the same function in `cargo test`. Only `std` and
//! `strom_storage` may be used here: the fuzz crate includes this file by
//! path.
//!
//! # Input layout
//!
//! ```text
//! byte 0      flags (see the F_* constants)
//! [F_INDEX]       u16 LE length, then that many bytes of .index
//! [F_TIME_INDEX]  u16 LE length, then .timeindex bytes
//! [F_CHECKPOINT]  u16 LE length, then raw `checkpoint` file bytes
//! [F_CP_FIELDS]   3 x u64 LE (masked to i64 >= 0): recovery point, log
//!                 start offset, high watermark, written as a checkpoint
//!                 with a valid CRC (ignored when F_CHECKPOINT is set)
//! rest        the bytes of 00000000000000000000.log
//! ```
//! Lengths and fields are cut short where the input ends.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use strom_storage::batch::{encode_simple_batch, validate_batches};
use strom_storage::checkpoint::{Checkpoint, CHECKPOINT_FILE};
use strom_storage::durability::Syncer;
use strom_storage::log::{LogConfig, PartitionLog};

/// Leave the clean-shutdown marker.
pub const F_CLEAN: u8 = 1;
/// Open with write caching (records visible before they are synced).
pub const F_WRITE_CACHING: u8 = 2;
pub const F_INDEX: u8 = 4;
pub const F_TIME_INDEX: u8 = 8;
pub const F_CHECKPOINT: u8 = 16;
pub const F_CP_FIELDS: u8 = 32;
/// Index every batch instead of every 4 KiB.
pub const F_DENSE_INDEX: u8 = 64;
/// Close (cleanly) before the second open instead of crashing.
pub const F_CLOSE: u8 = 128;

const NOW: i64 = 1_700_000_000_000;
const SEGMENT: &str = "00000000000000000000";

/// Recovery is about file contents, not durability: no real syncs (the
/// fuzzer runs thousands of cases a second).
#[derive(Debug)]
struct NoSync;

impl Syncer for NoSync {
    fn sync(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }
}

/// The files an input describes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files {
    pub flags: u8,
    pub index: Vec<u8>,
    pub time_index: Vec<u8>,
    pub checkpoint: Option<Vec<u8>>,
    pub log: Vec<u8>,
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = data.split_at(n.min(data.len()));
    *data = rest;
    head
}

fn take_sized<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let len = take(data, 2);
    let len = match len {
        [a, b] => u16::from_le_bytes([*a, *b]) as usize,
        [a] => *a as usize,
        _ => 0,
    };
    take(data, len)
}

fn take_u64(data: &mut &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let got = take(data, 8);
    b[..got.len()].copy_from_slice(got);
    (u64::from_le_bytes(b) & i64::MAX as u64) as i64
}

impl Files {
    /// Splits a fuzz input (see the module docs).
    pub fn parse(mut data: &[u8]) -> Files {
        let flags = take(&mut data, 1).first().copied().unwrap_or(0);
        let mut files = Files {
            flags,
            ..Files::default()
        };
        if flags & F_INDEX != 0 {
            files.index = take_sized(&mut data).to_vec();
        }
        if flags & F_TIME_INDEX != 0 {
            files.time_index = take_sized(&mut data).to_vec();
        }
        if flags & F_CHECKPOINT != 0 {
            files.checkpoint = Some(take_sized(&mut data).to_vec());
        } else if flags & F_CP_FIELDS != 0 {
            let checkpoint = Checkpoint {
                recovery_point: take_u64(&mut data),
                log_start_offset: take_u64(&mut data),
                high_watermark: take_u64(&mut data),
            };
            files.checkpoint = Some(checkpoint.encode().into_bytes());
        }
        files.log = data.to_vec();
        files
    }

    /// The fuzz input for these files (raw checkpoint bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.flags & !(F_INDEX | F_TIME_INDEX | F_CHECKPOINT | F_CP_FIELDS);
        let mut out = vec![0];
        for (flag, bytes) in [
            (F_INDEX, Some(&self.index)),
            (F_TIME_INDEX, Some(&self.time_index)),
            (F_CHECKPOINT, self.checkpoint.as_ref()),
        ] {
            if let Some(bytes) = bytes.filter(|b| !b.is_empty() || flag == F_CHECKPOINT) {
                flags |= flag;
                let len = u16::try_from(bytes.len()).expect("small seed");
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
        out[0] = flags;
        out.extend_from_slice(&self.log);
        out
    }

    /// Reads the files of a partition directory holding one segment.
    pub fn read_dir(dir: &Path, flags: u8) -> Files {
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_default();
        Files {
            flags: flags
                | if dir.join("clean-shutdown").exists() {
                    F_CLEAN
                } else {
                    0
                },
            index: read(&format!("{SEGMENT}.index")),
            time_index: read(&format!("{SEGMENT}.timeindex")),
            checkpoint: std::fs::read(dir.join(CHECKPOINT_FILE)).ok(),
            log: read(&format!("{SEGMENT}.log")),
        }
    }
}

fn config(flags: u8) -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30,
        segment_ms: 1 << 50,
        index_interval_bytes: if flags & F_DENSE_INDEX != 0 { 0 } else { 4096 },
        retention_ms: -1,
        retention_bytes: -1,
        write_caching: flags & F_WRITE_CACHING != 0,
    }
}

fn open(dir: &Path, flags: u8) -> PartitionLog {
    match PartitionLog::open_with(dir, config(flags), NOW, Arc::new(NoSync)) {
        Ok((log, _)) => log,
        Err(e) => panic!("recovery failed on a directory of plain files: {e}"),
    }
}

/// Reads from the log start to the high watermark. If `scanned` (recovery
/// scanned every batch) everything read must be valid batches with
/// contiguous offsets: the first batch holds the log start offset and every
/// later one starts right after the one before, so every offset up to the
/// high watermark has a record. Otherwise (a clean shutdown trusts bytes
/// before the last index entry) reads may fail but must not panic. Returns
/// where reading ended.
fn read_all(log: &PartitionLog, scanned: bool) -> i64 {
    let hw = log.high_watermark();
    let mut offset = log.log_start_offset();
    assert!(offset <= hw && hw <= log.log_end_offset());
    for round in 0.. {
        if offset >= hw || (!scanned && round > 10_000) {
            break;
        }
        let region = match log.read(offset, 1 + (round % 3) * 500) {
            Ok(Some(region)) => region,
            Ok(None) if scanned => panic!("nothing at {offset} below the high watermark {hw}"),
            Err(e) if scanned => panic!("read({offset}) below the high watermark {hw}: {e}"),
            _ => break,
        };
        assert!(region.len > 0);
        let mut bytes = vec![0u8; region.len as usize];
        if let Err(e) = region.file.read_exact_at(&mut bytes, region.position) {
            assert!(!scanned, "region unreadable: {e}");
            break;
        }
        let headers = match validate_batches(&bytes) {
            Ok(headers) => headers,
            Err(e) if scanned => panic!("recovered log serves an invalid batch at {offset}: {e}"),
            Err(_) => break,
        };
        let mut next = offset;
        for (i, h) in headers.iter().enumerate() {
            if scanned {
                if round == 0 && i == 0 {
                    // The log start offset may lie inside the first batch.
                    assert!(
                        h.base_offset <= next && next <= h.last_offset(),
                        "read({next}) at the log start returned batch {h:?}"
                    );
                } else {
                    // No holes: recovery checks that each base offset is
                    // the one expected (the CRC does not cover it).
                    assert_eq!(h.base_offset, next, "offsets not contiguous: batch {h:?}");
                }
            }
            next = next.max(h.last_offset().saturating_add(1));
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    if scanned {
        assert_eq!(offset, hw, "reads ended at {offset}, high watermark {hw}");
    }
    offset
}

/// Writes the files `data` describes into `dir` (emptied first), recovers,
/// reads everything, appends, and recovers again.
pub fn exercise(dir: &Path, data: &[u8]) {
    let files = Files::parse(data);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the partition directory");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write an input file");
    };
    write(&format!("{SEGMENT}.log"), &files.log);
    if files.flags & F_INDEX != 0 {
        write(&format!("{SEGMENT}.index"), &files.index);
    }
    if files.flags & F_TIME_INDEX != 0 {
        write(&format!("{SEGMENT}.timeindex"), &files.time_index);
    }
    if let Some(checkpoint) = &files.checkpoint {
        write(CHECKPOINT_FILE, checkpoint);
    }
    let clean = files.flags & F_CLEAN != 0;
    if clean {
        write("clean-shutdown", b"");
    }

    let mut log = open(dir, files.flags);
    let scanned = !clean;
    read_all(&log, scanned);
    // Timestamp lookups walk the same bytes.
    for ts in [i64::MIN, 0, NOW, i64::MAX] {
        let found = log.offset_for_timestamp(ts);
        assert!(
            found.is_ok() || !scanned,
            "offset_for_timestamp({ts}): {found:?}"
        );
    }
    let _ = log.max_timestamp();

    // The log takes appends where recovery ended.
    let end = log.log_end_offset();
    let mut batch = encode_simple_batch(0, NOW, &[b"after recovery".as_slice()]);
    let headers = validate_batches(&batch).expect("valid batch");
    let info = log
        .append(&mut batch, &headers, 0, None, NOW)
        .expect("append after recovery");
    assert_eq!(info.base_offset, end);
    log.sync_now().expect("sync");
    if scanned {
        let region = log
            .read(end, 1 << 20)
            .expect("read the append")
            .expect("the append");
        let mut bytes = vec![0u8; region.len as usize];
        region
            .file
            .read_exact_at(&mut bytes, region.position)
            .expect("read the append");
        let headers = validate_batches(&bytes).expect("the appended batch is valid");
        assert_eq!(headers[0].base_offset, end);
        assert_eq!(read_all(&log, true), end + 1);
    }
    if files.flags & F_CLOSE != 0 {
        log.close().expect("close");
    } else {
        drop(log);
    }

    // A second recovery finds the same log.
    let log = open(dir, files.flags);
    if scanned {
        assert_eq!(log.log_end_offset(), end + 1, "second recovery disagrees");
        assert_eq!(read_all(&log, true), end + 1);
    } else {
        read_all(&log, false);
    }
}
