//! Recovery of partition directories committed under `tests/fixtures/`: a
//! valid segment, a torn tail, a corrupt batch in the middle of a segment, a
//! garbled index and a garbled checkpoint. Each is copied to a temporary
//! directory, opened, and the outcome compared with what it must be; so a
//! change to the on-disk format or to recovery that breaks existing data
//! shows up here.
//!
//! `STROM_WRITE_FIXTURES=1` regenerates the fixtures (deterministically) before
//! replaying them.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{append_to, check_log, NoSync, Rng, NOW};
use strom_storage::batch::encode_simple_batch;
use strom_storage::log::{LogConfig, PartitionLog, RecoveryReport};
use strom_storage::metrics;

const BATCHES: usize = 8;
const RECORDS_PER_BATCH: usize = 3;
const RECORDS: i64 = (BATCHES * RECORDS_PER_BATCH) as i64;
/// Bytes of one fixture batch (61-byte header, three 26-byte records).
const BATCH_BYTES: u64 = 139;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: 1 << 50,
        index_interval_bytes: 128,
        retention_ms: -1,
        retention_bytes: -1,
        write_caching: false,
    }
}

/// The value of the record at `offset` in every fixture.
fn value(offset: i64) -> Vec<u8> {
    format!("fixture record {offset:04}").into_bytes()
}

fn model() -> Vec<Vec<u8>> {
    (0..RECORDS).map(value).collect()
}

/// Appends batch `b` (records `b*3 .. b*3+3`).
fn append_batch(log: &mut PartitionLog, model: &mut Vec<Vec<u8>>, b: usize) {
    let first = (b * RECORDS_PER_BATCH) as i64;
    let values: Vec<Vec<u8>> = (first..first + RECORDS_PER_BATCH as i64)
        .map(value)
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    let buf = encode_simple_batch(0, 1_600_000_000_000 + b as i64 * 1000, &refs);
    assert_eq!(buf.len() as u64, BATCH_BYTES);
    append_to(log, model, buf, values, NOW).unwrap();
}

fn segment_log(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Positions of the batches of a segment file.
fn batch_positions(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at as u64);
        at += strom_storage::batch::parse_header(&bytes[at..])
            .unwrap()
            .total_bytes();
    }
    out
}

/// Writes one fixture directory from scratch.
fn generate(name: &str, dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    let mut model = Vec::new();
    let segment_bytes = if name == "garbled_checkpoint" {
        700
    } else {
        1 << 20
    };
    let (mut log, _) =
        PartitionLog::open_with(dir, config(segment_bytes), NOW, Arc::new(NoSync)).unwrap();
    match name {
        "valid_segment" | "garbled_index" => {
            for b in 0..BATCHES {
                append_batch(&mut log, &mut model, b);
            }
            log.close().unwrap();
            if name == "garbled_index" {
                // Not a whole number of entries, and entries going backwards.
                fs::write(segment_log(dir, 0).with_extension("index"), [0xee; 13]).unwrap();
                let mut times = Vec::new();
                for (ts, rel) in [(1_600_000_005_000i64, 9u32), (1_600_000_001_000, 3)] {
                    times.extend_from_slice(&ts.to_be_bytes());
                    times.extend_from_slice(&rel.to_be_bytes());
                }
                fs::write(segment_log(dir, 0).with_extension("timeindex"), times).unwrap();
            }
        }
        "torn_tail" => {
            for b in 0..BATCHES {
                append_batch(&mut log, &mut model, b);
                if b == 4 {
                    log.sync_now().unwrap();
                    log.write_checkpoint().unwrap();
                }
            }
            drop(log); // a crash
            let path = segment_log(dir, 0);
            let len = fs::metadata(&path).unwrap().len();
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len - 7)
                .unwrap();
        }
        "mid_segment_corrupt" => {
            for b in 0..BATCHES {
                append_batch(&mut log, &mut model, b);
            }
            drop(log); // a crash; the checkpoint says only offset 0 is synced
            let path = segment_log(dir, 0);
            let at = batch_positions(&path)[3] + 70; // inside a record value
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut byte = [0u8];
            f.read_exact_at(&mut byte, at).unwrap();
            byte[0] ^= 0x20;
            f.write_all_at(&byte, at).unwrap();
        }
        "garbled_checkpoint" => {
            for b in 0..BATCHES {
                append_batch(&mut log, &mut model, b);
            }
            log.sync_now().unwrap();
            log.write_checkpoint().unwrap();
            drop(log); // a crash after a checkpoint that is then damaged
            let path = dir.join(strom_storage::checkpoint::CHECKPOINT_FILE);
            let text = fs::read_to_string(&path).unwrap();
            fs::write(
                &path,
                text.replace("recovery-point 24", "recovery-point 42"),
            )
            .unwrap();
        }
        other => panic!("unknown fixture {other}"),
    }
}

/// What opening a fixture must report.
struct Expected {
    name: &'static str,
    log_end_offset: i64,
    truncated_bytes: u64,
    corrupt_batches: usize,
    indexes_rebuilt: usize,
    segments: usize,
    clean: bool,
}

const FIXTURES: [Expected; 5] = [
    Expected {
        name: "valid_segment",
        log_end_offset: RECORDS,
        truncated_bytes: 0,
        corrupt_batches: 0,
        indexes_rebuilt: 0,
        segments: 1,
        clean: true,
    },
    Expected {
        // The last batch lost its last 7 bytes.
        name: "torn_tail",
        log_end_offset: RECORDS - RECORDS_PER_BATCH as i64,
        truncated_bytes: BATCH_BYTES - 7,
        corrupt_batches: 0,
        indexes_rebuilt: 1,
        segments: 1,
        clean: false,
    },
    Expected {
        // Batch 3 (offsets 9..12) has a flipped bit; batches 4..8 follow.
        name: "mid_segment_corrupt",
        log_end_offset: 9,
        truncated_bytes: 5 * BATCH_BYTES,
        corrupt_batches: 1,
        indexes_rebuilt: 1,
        segments: 1,
        clean: false,
    },
    Expected {
        name: "garbled_index",
        log_end_offset: RECORDS,
        truncated_bytes: 0,
        corrupt_batches: 0,
        indexes_rebuilt: 1,
        segments: 1,
        clean: true,
    },
    Expected {
        // The checkpoint fails its CRC: every segment is scanned.
        name: "garbled_checkpoint",
        log_end_offset: RECORDS,
        truncated_bytes: 0,
        corrupt_batches: 0,
        indexes_rebuilt: 2,
        segments: 2,
        clean: false,
    },
];

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn replay(expected: &Expected) {
    let name = expected.name;
    let fixture = fixtures_dir().join(name);
    assert!(
        fixture.join("00000000000000000000.log").exists(),
        "fixture {name} missing (STROM_WRITE_FIXTURES=1 writes it)"
    );
    for entry in fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        let len = entry.metadata().unwrap().len();
        assert!(
            len <= 4096,
            "fixture file {:?} is {len} bytes",
            entry.path()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&fixture, &dir);
    let cfg = config(1 << 20);
    let counters = || {
        [
            &metrics::TORN_TAIL_TRUNCATIONS,
            &metrics::CORRUPT_BATCH_TRUNCATIONS,
            &metrics::TRUNCATED_BYTES,
            &metrics::INDEX_REBUILDS,
        ]
        .map(|c| c.get())
    };
    let before = counters();
    let (mut log, report) = PartitionLog::open_with(&dir, cfg, NOW, Arc::new(NoSync)).unwrap();
    let after = counters();
    // This is the only test in this binary, so nothing else moves the
    // process-wide counters meanwhile.
    let torn = u64::from(expected.truncated_bytes > 0 && expected.corrupt_batches == 0);
    assert_eq!(
        [0, 1, 2, 3].map(|i| after[i] - before[i]),
        [
            torn,
            expected.corrupt_batches as u64,
            expected.truncated_bytes,
            expected.indexes_rebuilt as u64
        ],
        "fixture {name}: metrics (torn tails, corrupt batches, truncated bytes, index rebuilds)"
    );
    let got = RecoveryReport {
        batches_scanned: report.batches_scanned,
        ..RecoveryReport {
            segments: expected.segments,
            batches_scanned: 0,
            truncated_bytes: expected.truncated_bytes,
            indexes_rebuilt: expected.indexes_rebuilt,
            corrupt_batches: expected.corrupt_batches,
            clean: expected.clean,
        }
    };
    assert_eq!(report, got, "fixture {name}");
    assert_eq!(
        log.log_end_offset(),
        expected.log_end_offset,
        "fixture {name}"
    );
    assert_eq!(log.log_start_offset(), 0, "fixture {name}");
    let mut model = model();
    let mut rng = Rng::new(1);
    let checked = check_log(&log, &model, &mut rng);
    assert_eq!(checked as i64, expected.log_end_offset, "fixture {name}");

    // The recovered log takes appends and reopens to the same state.
    model.truncate(expected.log_end_offset as usize);
    append_batch(&mut log, &mut model, BATCHES);
    log.close().unwrap();
    let (log, report) = PartitionLog::open_with(&dir, cfg, NOW, Arc::new(NoSync)).unwrap();
    assert!(
        report.clean && report.truncated_bytes == 0,
        "fixture {name}: {report:?}"
    );
    assert_eq!(log.log_end_offset() as usize, model.len());
    check_log(&log, &model, &mut rng);
}

#[test]
fn recovery_fixtures_replay() {
    if std::env::var_os("STROM_WRITE_FIXTURES").is_some() {
        for expected in &FIXTURES {
            generate(expected.name, &fixtures_dir().join(expected.name));
        }
    }
    for expected in &FIXTURES {
        replay(expected);
    }
}
