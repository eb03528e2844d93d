use super::*;
use crate::batch::{encode_simple_batch, validate_batches};
use crate::index::OffsetIndex;

const NOW: i64 = 1_700_000_000_000;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: 1 << 50,
        index_interval_bytes: 256,
        retention_ms: -1,
        retention_bytes: -1,
        // These tests are about the log's mechanics: records are visible
        // when appended. The synced default has its own tests below.
        write_caching: true,
    }
}

fn make_batch(records: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|i| format!("value-{i:014}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    encode_simple_batch(0, ts, &refs)
}

fn append_buf(log: &mut PartitionLog, mut buf: Vec<u8>, append_time: Option<i64>) -> AppendInfo {
    let headers = validate_batches(&buf).unwrap();
    log.append(&mut buf, &headers, 0, append_time, NOW).unwrap()
}

fn append(log: &mut PartitionLog, records: usize, ts: i64) -> AppendInfo {
    append_buf(log, make_batch(records, ts), None)
}

fn region_bytes(region: &FileRegion) -> Vec<u8> {
    let mut bytes = vec![0u8; region.len as usize];
    region
        .file
        .read_exact_at(&mut bytes, region.position)
        .unwrap();
    bytes
}

/// Fetches everything from `from` on, `max_bytes` per fetch, checking that
/// every region is whole valid batches; returns their headers.
fn fetch_all(log: &PartitionLog, from: i64, max_bytes: u64) -> Vec<BatchHeader> {
    let mut offset = from;
    let mut out = Vec::new();
    while let Some(region) = log.read(offset, max_bytes).unwrap() {
        let headers = validate_batches(&region_bytes(&region)).unwrap();
        assert!(headers[0].base_offset <= offset && offset <= headers[0].last_offset());
        offset = headers.last().unwrap().last_offset() + 1;
        assert_eq!(region.next_offset, offset, "next offset of the region");
        out.extend(headers);
    }
    assert_eq!(offset, log.log_end_offset());
    out
}

fn assert_contiguous(headers: &[BatchHeader], start: i64, end: i64) {
    let mut next = start;
    for h in headers {
        assert_eq!(h.base_offset, next);
        next = h.last_offset() + 1;
    }
    assert_eq!(next, end);
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn open(dir: &Path, cfg: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, cfg, NOW).unwrap()
}

#[test]
fn append_and_read_across_segment_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let (mut log, report) = open(&dir, config(1000));
    assert_eq!(report.segments, 1);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.read(0, 100).unwrap().map(|r| r.len), None);

    for i in 0..40 {
        let info = append(&mut log, 3, 1000 + i);
        assert_eq!(info.base_offset, i * 3);
        assert_eq!(info.last_offset, i * 3 + 2);
    }
    // Two batches in one produce buffer.
    let mut two = make_batch(2, 5000);
    two.extend_from_slice(&make_batch(4, 5001));
    let info = append_buf(&mut log, two, None);
    assert_eq!((info.base_offset, info.last_offset), (120, 125));
    assert_eq!(log.log_end_offset(), 126);
    assert!(log.segment_count() >= 5, "{} segments", log.segment_count());
    assert_eq!(log_files(&dir).len(), log.segment_count());
    let on_disk: u64 = log_files(&dir)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(log.size_bytes(), on_disk);
    for seg in &log.segments {
        assert!(seg.size <= 1000);
    }
    // First segment file name is Kafka's 20-digit base offset.
    assert!(dir.join("00000000000000000000.log").exists());
    assert!(dir.join("00000000000000000000.index").exists());
    assert!(dir.join("00000000000000000000.timeindex").exists());

    for max_bytes in [1, 200, 500, 1 << 20] {
        let headers = fetch_all(&log, 0, max_bytes);
        assert_contiguous(&headers, 0, 126);
    }
    // Every offset is readable and lands in the right batch.
    for offset in 0..126 {
        let region = log.read(offset, 1).unwrap().unwrap();
        let header = batch::parse_header(&region_bytes(&region)).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset());
        assert_eq!(region.len as usize, header.total_bytes());
    }
    // Sparse indexes were built.
    assert!(log.segments.iter().any(|s| !s.offset_index.is_empty()));
}

#[test]
fn read_in_the_middle_of_a_batch_returns_that_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    append(&mut log, 10, 1);
    let second = append(&mut log, 5, 2);
    assert_eq!(second.base_offset, 10);

    let region = log.read(3, 1 << 20).unwrap().unwrap();
    assert_eq!(region.position, 0);
    let headers = validate_batches(&region_bytes(&region)).unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[0].base_offset, 0);

    let region = log.read(12, 1 << 20).unwrap().unwrap();
    assert_eq!(region.position, second.position_bytes);
    let headers = validate_batches(&region_bytes(&region)).unwrap();
    assert_eq!(headers[0].base_offset, 10);
    assert_eq!(headers[0].last_offset(), 14);
}

#[test]
fn kip74_big_first_batch_and_fresh_segment_for_oversized_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(4096));
    let big = make_batch(300, 1); // ~ 10 KB, larger than segment_bytes
    let big_len = big.len() as u64;
    assert!(big_len > 4096);
    append_buf(&mut log, big, None);
    assert_eq!(log.segment_count(), 1);
    // The whole first batch even with a tiny max_bytes.
    let region = log.read(5, 1).unwrap().unwrap();
    assert_eq!(region.len, big_len);
    // The next batch does not fit: roll.
    append(&mut log, 1, 2);
    assert_eq!(log.segment_count(), 2);
    // An oversized batch goes alone into a fresh segment.
    append_buf(&mut log, make_batch(300, 3), None);
    assert_eq!(log.segment_count(), 3);
    append(&mut log, 1, 4);
    assert_eq!(log.segment_count(), 4);
    // A fetch never crosses a segment end.
    let region = log.read(0, 1 << 30).unwrap().unwrap();
    assert_eq!(region.len, big_len);
    assert_contiguous(&fetch_all(&log, 0, 1 << 30), 0, 602);
}

#[test]
fn max_bytes_limit_ends_on_a_batch_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    let batch_len = make_batch(2, 0).len() as u64;
    for i in 0..50 {
        append(&mut log, 2, i);
    }
    let region = log.read(0, batch_len * 5 / 2).unwrap().unwrap();
    assert_eq!(region.len, batch_len * 2);
    // Limits far past the index entries still end on boundaries.
    let region = log.read(21, batch_len * 30 + 7).unwrap().unwrap();
    assert_eq!(region.position, batch_len * 10);
    assert_eq!(region.len, batch_len * 30);
}

#[test]
fn log_append_time_sets_timestamps_and_keeps_crc_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    append(&mut log, 2, 100);
    let mut buf = make_batch(3, 100);
    buf.extend_from_slice(&make_batch(2, 200));
    let info = append_buf(&mut log, buf, Some(777_000));
    assert_eq!(info.base_offset, 2);
    assert_eq!(info.last_offset, 6);
    assert_eq!(info.log_append_time_ms, Some(777_000));

    let region = log.read(2, 1 << 20).unwrap().unwrap();
    let headers = validate_batches(&region_bytes(&region)).expect("CRC recomputed");
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[0].base_offset, 2);
    assert_eq!(headers[1].base_offset, 5);
    for h in &headers {
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 777_000);
    }
    assert_eq!(log.max_timestamp(), Some((777_000, 2)));
    assert_eq!(log.offset_for_timestamp(101).unwrap(), Some((2, 777_000)));
    assert_eq!(log.offset_for_timestamp(100).unwrap(), Some((0, 100)));
}

/// Brute-force expectation: first batch (in offset order) whose max
/// timestamp is >= target.
fn expected_for_timestamp(batches: &[(i64, i64)], target: i64) -> Option<(i64, i64)> {
    batches.iter().copied().find(|&(_, ts)| ts >= target)
}

fn check_timestamps(log: &PartitionLog, batches: &[(i64, i64)]) {
    for target in (-500..26_000).step_by(250) {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected_for_timestamp(batches, target),
            "target {target}"
        );
    }
    let max = batches.iter().map(|&(_, ts)| ts).max();
    let expected_max = max.map(|m| {
        let first = batches.iter().find(|&&(_, ts)| ts == m).unwrap();
        (m, first.0)
    });
    assert_eq!(log.max_timestamp(), expected_max);
}

#[test]
fn offset_for_timestamp_across_segments_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(700);
    cfg.index_interval_bytes = 100;
    let (mut log, _) = open(tmp.path(), cfg);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.max_timestamp(), None);
    // Mostly increasing timestamps with some going backwards.
    let mut batches = Vec::new();
    for i in 0..40i64 {
        let ts = if i % 7 == 3 {
            i * 500 - 1700
        } else {
            i * 500 + 1000
        };
        let info = append(&mut log, 2, ts);
        batches.push((info.base_offset, ts));
    }
    assert!(log.segment_count() > 3);
    check_timestamps(&log, &batches);

    log.close().unwrap();
    let (log, report) = open(tmp.path(), cfg);
    assert!(report.clean);
    assert_eq!(report.indexes_rebuilt, 0);
    check_timestamps(&log, &batches);

    drop(log);
    let dir_rp = tmp.path().join(checkpoint::CHECKPOINT_FILE);
    fs::remove_file(dir_rp).unwrap();
    let (log, report) = open(tmp.path(), cfg);
    assert!(!report.clean);
    assert_eq!(report.indexes_rebuilt, log.segment_count());
    check_timestamps(&log, &batches);
}

#[test]
fn reopen_after_clean_close_and_after_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(800);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..30 {
        append(&mut log, 4, i);
    }
    let end = log.log_end_offset();
    let segments = log.segment_count();
    let before = fetch_all(&log, 0, 1 << 20);
    log.close().unwrap();
    assert!(tmp.path().join(CLEAN_SHUTDOWN_FILE).exists());

    let (mut log, report) = open(tmp.path(), cfg);
    assert!(!tmp.path().join(CLEAN_SHUTDOWN_FILE).exists());
    assert!(report.clean);
    assert_eq!(report.segments, segments);
    assert_eq!(report.truncated_bytes, 0);
    // Only the active segment's tail after its last index entry is read.
    assert!(report.batches_scanned < 8, "{report:?}");
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(fetch_all(&log, 0, 1 << 20), before);

    // Appends continue; then "crash" (drop without close or flush).
    for i in 0..10 {
        append(&mut log, 1, 100 + i);
    }
    let end = log.log_end_offset();
    assert_eq!(end, 130);
    let before = fetch_all(&log, 0, 1 << 20);
    drop(log);

    let (mut log, report) = open(tmp.path(), cfg);
    assert!(!report.clean);
    assert_eq!(report.truncated_bytes, 0);
    assert!(report.batches_scanned > 0);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(fetch_all(&log, 0, 1 << 20), before);
    assert_eq!(append(&mut log, 1, 0).base_offset, end);
    log.flush().unwrap();
    log.write_checkpoint().unwrap();
    let cp = checkpoint::read(tmp.path()).unwrap();
    assert_eq!(cp.recovery_point, end + 1);
}

/// Builds a log of several segments, drops it without closing, damages the
/// last segment with `damage(path, size_before_last_batch, size)`, reopens and
/// returns the log, the report and the base offset of the last batch.
fn damaged_tail(
    dir: &Path,
    close_first: bool,
    damage: impl FnOnce(&Path, u64, u64),
) -> (PartitionLog, RecoveryReport, i64, i64) {
    let cfg = config(900);
    let (mut log, _) = open(dir, cfg);
    for i in 0..25 {
        append(&mut log, 3, i);
    }
    let before_last = log.segments.last().unwrap().size;
    let last = append(&mut log, 5, 99);
    let end = log.log_end_offset();
    if close_first {
        log.close().unwrap();
    } else {
        log.flush().unwrap();
        drop(log);
    }
    let files = log_files(dir);
    let path = files.last().unwrap();
    let size = fs::metadata(path).unwrap().len();
    damage(path, before_last, size);
    let (log, report) = open(dir, cfg);
    (log, report, last.base_offset, end)
}

fn assert_recovered_to(log: &mut PartitionLog, end: i64) {
    assert_eq!(log.log_end_offset(), end);
    assert_contiguous(&fetch_all(log, 0, 1 << 20), 0, end);
    assert!(log.read(end, 1 << 20).unwrap().is_none());
    assert!(matches!(
        log.read(end + 1, 1 << 20),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // The log keeps working after recovery.
    assert_eq!(append(log, 2, 5).base_offset, end);
    assert_contiguous(&fetch_all(log, 0, 1 << 20), 0, end + 2);
}

#[test]
fn torn_tail_truncated_mid_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, report, last_base, _) = damaged_tail(tmp.path(), false, |path, _, size| {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(size - 10).unwrap();
    });
    assert!(!report.clean);
    assert!(report.truncated_bytes > 0);
    assert_recovered_to(&mut log, last_base);
}

#[test]
fn torn_tail_garbage_appended() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, report, _, end) = damaged_tail(tmp.path(), false, |path, _, size| {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(&[0xab; 100], size).unwrap();
    });
    assert_eq!(report.truncated_bytes, 100);
    assert_recovered_to(&mut log, end);
}

#[test]
fn torn_tail_flipped_byte_in_last_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, report, last_base, _) = damaged_tail(tmp.path(), false, flip_byte_before_end);
    assert!(report.truncated_bytes > 0);
    assert_recovered_to(&mut log, last_base);
}

#[test]
fn corrupt_tail_is_caught_even_after_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, report, last_base, _) = damaged_tail(tmp.path(), true, flip_byte_before_end);
    assert!(report.clean);
    assert!(report.truncated_bytes > 0);
    assert_recovered_to(&mut log, last_base);
}

fn flip_byte_before_end(path: &Path, _before_last: u64, size: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, size - 3).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, size - 3).unwrap();
}

#[test]
fn torn_header_of_last_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, report, last_base, _) =
        damaged_tail(tmp.path(), false, |path, before_last, _| {
            let f = OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(before_last + 20).unwrap();
        });
    assert_eq!(report.truncated_bytes, 20);
    assert_recovered_to(&mut log, last_base);
}

#[test]
fn corruption_in_a_middle_segment_drops_later_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(600);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..30 {
        append(&mut log, 2, i);
    }
    let segments = log.segment_count();
    assert!(segments >= 5);
    let third_base = log.segments[2].base_offset;
    drop(log);
    // Without a recovery point every segment is scanned.
    fs::remove_file(tmp.path().join(checkpoint::CHECKPOINT_FILE)).unwrap();
    let files = log_files(tmp.path());
    // Damage the first batch of the third segment.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&files[2])
        .unwrap();
    f.write_all_at(&[0xff, 0xff], 70).unwrap();

    let (mut log, report) = open(tmp.path(), cfg);
    assert!(!report.clean);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log_files(tmp.path()).len(), 3);
    assert!(report.truncated_bytes > 0);
    assert_recovered_to(&mut log, third_base);
}

#[test]
fn garbled_recovery_point_scans_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(600);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..20 {
        append(&mut log, 2, i);
    }
    let segments = log.segment_count();
    drop(log);
    fs::write(
        tmp.path().join(checkpoint::CHECKPOINT_FILE),
        b"not a number",
    )
    .unwrap();
    let (mut log, report) = open(tmp.path(), cfg);
    assert_eq!(report.batches_scanned, 20);
    assert_eq!(report.indexes_rebuilt, segments);
    assert_recovered_to(&mut log, 40);
}

#[test]
fn garbled_indexes_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(1500);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..40 {
        append(&mut log, 3, i);
    }
    assert!(log.segment_count() >= 3);
    let good_index = log.segments[1].offset_index.to_bytes();
    assert!(!good_index.is_empty());
    let before = fetch_all(&log, 0, 700);
    log.close().unwrap();

    let index0 = tmp.path().join(segment_file_name(0, INDEX_SUFFIX));
    fs::write(&index0, b"garbage").unwrap(); // not a multiple of 8
    let files = log_files(tmp.path());
    let index1 = files[1].with_extension("index");
    let mut bad = good_index.clone();
    bad[4..8].copy_from_slice(&u32::MAX.to_be_bytes()); // position past the log
    fs::write(&index1, &bad).unwrap();
    let timeindex2 = files[2].with_extension("timeindex");
    fs::write(&timeindex2, [0u8; 24]).unwrap(); // entries not increasing

    let (log, report) = open(tmp.path(), cfg);
    assert!(report.clean);
    assert_eq!(report.indexes_rebuilt, 3);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(fetch_all(&log, 0, 700), before);
    let rebuilt = fs::read(&index1).unwrap();
    assert_eq!(rebuilt, good_index);
    let size0 = fs::metadata(&files[0]).unwrap().len();
    assert!(OffsetIndex::from_bytes(&index0, &fs::read(&index0).unwrap(), 0, size0).is_ok());
}

#[test]
fn index_files_mirror_memory_after_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    for i in 0..200 {
        append(&mut log, 1, i);
    }
    log.flush().unwrap();
    let seg = &log.segments[0];
    assert!(seg.offset_index.len() > 10);
    assert_eq!(
        fs::read(&seg.index_path).unwrap(),
        seg.offset_index.to_bytes()
    );
    assert_eq!(
        fs::read(&seg.time_index_path).unwrap(),
        seg.time_index.to_bytes()
    );
}

#[test]
fn segment_ms_rolls_by_append_wall_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(1 << 20);
    cfg.segment_ms = 1000;
    let (mut log, _) = open(tmp.path(), cfg);
    let mut buf = make_batch(1, 0);
    let headers = validate_batches(&buf).unwrap();
    log.append(&mut buf, &headers, 0, None, 10_000).unwrap();
    let mut buf = make_batch(1, 0);
    log.append(&mut buf, &headers, 0, None, 11_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    let mut buf = make_batch(1, 0);
    log.append(&mut buf, &headers, 0, None, 11_001).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segments[1].base_offset, 2);
}

#[test]
fn out_of_range_invalid_append_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-3");
    let (mut log, _) = open(&dir, config(1 << 20));
    append(&mut log, 3, 0);
    assert!(matches!(
        log.read(4, 10),
        Err(StorageError::OffsetOutOfRange {
            offset: 4,
            log_start_offset: 0,
            log_end_offset: 3
        })
    ));
    assert!(log.read(-1, 10).is_err());
    assert!(log.read(3, 10).unwrap().is_none());

    let mut buf = make_batch(2, 0);
    let headers = validate_batches(&buf).unwrap();
    let mut short = buf[..buf.len() - 1].to_vec();
    assert!(matches!(
        log.append(&mut short, &headers, 0, None, NOW),
        Err(StorageError::InvalidAppend { .. })
    ));
    assert!(matches!(
        log.append(&mut buf, &[], 0, None, NOW),
        Err(StorageError::InvalidAppend { .. })
    ));
    assert_eq!(log.log_end_offset(), 3);

    let region = log.read(0, 100).unwrap().unwrap();
    log.delete().unwrap();
    assert!(!dir.exists());
    // An outstanding region still reads the deleted file.
    assert_eq!(validate_batches(&region_bytes(&region)).unwrap().len(), 1);
}

#[test]
fn leftover_files_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(segment_file_name(500, INDEX_SUFFIX)), b"x").unwrap();
    fs::write(tmp.path().join(checkpoint::CHECKPOINT_TMP_FILE), b"12").unwrap();
    let (log, report) = open(tmp.path(), config(1 << 20));
    assert_eq!(report.segments, 1);
    assert_eq!(log.log_end_offset(), 0);
    assert!(!tmp
        .path()
        .join(segment_file_name(500, INDEX_SUFFIX))
        .exists());
    assert!(!tmp.path().join(checkpoint::CHECKPOINT_TMP_FILE).exists());
}

/// Descriptors this process holds on files of `dir` with the given suffix.
fn open_fds_in(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(dir) && target.to_string_lossy().ends_with(suffix))
        .count()
}

#[test]
fn sealed_segments_keep_only_their_log_file_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let (mut log, _) = open(&dir, config(1024));
    for i in 0..40 {
        append(&mut log, 5, 1_000 + i);
    }
    let segments = log.segment_count();
    assert!(segments >= 5, "{segments} segments");
    assert_eq!(open_fds_in(&dir, ".log"), segments);
    assert_eq!(
        open_fds_in(&dir, ".index"),
        1,
        "only the active segment's index is open"
    );
    assert_eq!(open_fds_in(&dir, ".timeindex"), 1);
    let end = log.log_end_offset();
    log.close().unwrap();
    // Reopened (clean), sealed segments release their index files again, and the
    // indexes written before release still serve reads and time lookups.
    let (log, _) = open(&dir, config(1024));
    assert_eq!(open_fds_in(&dir, ".index"), 1);
    assert_eq!(log.log_end_offset(), end);
    assert_contiguous(&fetch_all(&log, 0, 1 << 20), 0, end);
    assert_eq!(
        log.offset_for_timestamp(1_020).unwrap().map(|r| r.0),
        Some(100)
    );
}

fn synced_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        write_caching: false,
        ..config(segment_bytes)
    }
}

/// The offsets a consumer can read from `from` on.
fn readable_end(log: &PartitionLog, from: i64) -> i64 {
    let mut offset = from;
    while let Some(region) = log.read(offset, 1 << 20).unwrap() {
        let headers = validate_batches(&region_bytes(&region)).unwrap();
        offset = headers.last().unwrap().last_offset() + 1;
    }
    offset
}

#[test]
fn without_write_caching_records_are_visible_only_once_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), synced_config(1 << 20));
    append(&mut log, 5, 1);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.high_watermark(), 0);
    assert!(
        log.read(0, 1 << 20).unwrap().is_none(),
        "unsynced data served"
    );

    let plan = log.sync_plan().unwrap().expect("something to sync");
    assert_eq!(plan.end_offset, 5);
    assert_eq!(plan.files.len(), 1, "one dirty .log file");
    // Appends while the sync is in flight are not covered by it.
    append(&mut log, 3, 2);
    for file in &plan.files {
        file.sync_data().unwrap();
    }
    assert_eq!(log.synced(&plan), 5);
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(
        readable_end(&log, 0),
        5,
        "reads stop at the synced batch boundary"
    );
    assert_eq!(log.sync_now().unwrap(), 8);
    assert_eq!(readable_end(&log, 0), 8);
    assert!(log.sync_plan().unwrap().is_none(), "nothing left to sync");

    // A roll creates a file: the next plan syncs the directory too, and
    // covers both the old and the new segment.
    let (mut log, _) = {
        drop(log);
        open(tmp.path(), synced_config(200))
    };
    let before = log.segment_count();
    append(&mut log, 5, 3);
    append(&mut log, 5, 4);
    let new_segments = log.segment_count() - before;
    assert!(new_segments >= 1, "the appends rolled");
    let plan = log.sync_plan().unwrap().unwrap();
    let dirs = plan
        .files
        .iter()
        .filter(|f| f.metadata().unwrap().is_dir())
        .count();
    assert_eq!(dirs, 1);
    // The two segments written since the last sync (the old active one
    // and a new one, or two new ones), plus the directory.
    assert_eq!(plan.files.len(), 3);
}

#[test]
fn retention_by_time_deletes_expired_sealed_segments_and_never_the_active_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_ms: 1_000,
        ..config(200)
    };
    let (mut log, _) = open(tmp.path(), cfg);
    // Three old segments, then a fresh one.
    for i in 0..3 {
        append(&mut log, 5, NOW - 10_000 + i);
    }
    append(&mut log, 5, NOW);
    let segments = log.segment_count();
    assert!(segments >= 3);
    // Unsynced segments are never deleted: a power loss could still take
    // their records back, and the log would reuse offsets it handed out.
    assert_eq!(log.enforce_retention(NOW).unwrap().segments, 0);
    log.sync_now().unwrap();
    let removed = log.enforce_retention(NOW).unwrap();
    assert_eq!(removed.segments, segments - 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 15);
    assert_eq!(fetch_all(&log, 15, 1 << 20).len(), 1);
    assert!(matches!(
        log.read(0, 1 << 20),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Everything expired, the active segment too: it is rolled, then
    // deleted; the log stays usable and offsets continue.
    let removed = log.enforce_retention(NOW + 5_000).unwrap();
    assert_eq!(removed.segments, 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(log.log_end_offset(), 20);
    assert!(log.read(20, 1 << 20).unwrap().is_none());
    assert_eq!(append(&mut log, 1, NOW).base_offset, 20);

    // The log start offset survives a crash via the checkpoint.
    log.sync_now().unwrap();
    log.write_checkpoint().unwrap();
    drop(log);
    let (log, _) = open(tmp.path(), cfg);
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(log.log_end_offset(), 21);
}

#[test]
fn retention_by_size_keeps_the_newest_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: 400,
        ..config(200)
    };
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..10 {
        append(&mut log, 5, NOW + i);
    }
    assert!(log.size_bytes() > 400);
    let before = log.segment_count();
    log.sync_now().unwrap();
    log.enforce_retention(NOW).unwrap();
    assert!(log.segment_count() < before);
    assert!(
        log.size_bytes() <= 400 + 200,
        "at most one segment over the limit"
    );
    // Deleting one more sealed segment would go under the limit.
    assert!(log.size_bytes() > 400 - 200);
    assert_contiguous(
        &fetch_all(&log, log.log_start_offset(), 1 << 20),
        log.log_start_offset(),
        log.log_end_offset(),
    );
    // Unlimited retention keeps everything.
    log.set_config(config(200));
    assert_eq!(log.enforce_retention(NOW + (1 << 40)).unwrap().segments, 0);
}

#[test]
fn delete_records_moves_the_log_start_and_a_region_being_sent_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(200);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..6 {
        append(&mut log, 5, NOW + i);
    }
    // A fetch got a region of the first segment and is still sending it.
    let region = log.read(0, 1 << 20).unwrap().unwrap();
    let expected = region_bytes(&region);

    // Inside a segment: the start moves, the segment stays.
    assert_eq!(log.delete_records_before(7).unwrap(), 7);
    assert!(matches!(
        log.read(6, 1 << 20),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let first = log.read(7, 1 << 20).unwrap().unwrap();
    assert_eq!(
        validate_batches(&region_bytes(&first)).unwrap()[0].base_offset,
        5,
        "the whole batch holding the new start is served"
    );
    // Past whole segments: they are deleted from disk.
    let files_before = log_files(tmp.path()).len();
    assert_eq!(log.delete_records_before(22).unwrap(), 22);
    assert!(log_files(tmp.path()).len() < files_before);
    assert_eq!(
        region_bytes(&region),
        expected,
        "deleted segment unreadable mid-send"
    );
    // Never backwards, never past the high watermark.
    assert_eq!(log.delete_records_before(3).unwrap(), 22);
    assert!(matches!(
        log.delete_records_before(31),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(30).unwrap(), 30);
    assert_eq!(log.log_start_offset(), 30);

    // Persisted: after a clean close and after a crash.
    log.write_checkpoint().unwrap();
    drop(log);
    let (log, _) = open(tmp.path(), cfg);
    assert_eq!(log.log_start_offset(), 30);
    log.close().unwrap();
    let (log, report) = open(tmp.path(), cfg);
    assert!(report.clean);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.log_end_offset(), 30);
}

#[test]
fn a_wrong_index_entry_is_never_used() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..40 {
        append(&mut log, 3, NOW + i);
    }
    log.close().unwrap();
    // Shift every position of the active segment's index by 8 bytes: the
    // entries stay sorted and inside the file, so they look plausible.
    let index = tmp.path().join(segment_file_name(0, INDEX_SUFFIX));
    let mut bytes = fs::read(&index).unwrap();
    assert!(bytes.len() >= 16);
    for entry in bytes.chunks_mut(8) {
        let pos = u32::from_be_bytes(entry[4..8].try_into().unwrap()) + 8;
        entry[4..8].copy_from_slice(&pos.to_be_bytes());
    }
    fs::write(&index, bytes).unwrap();
    let (log, report) = open(tmp.path(), cfg);
    assert_eq!(
        report.truncated_bytes, 0,
        "valid data cut because of a bad index"
    );
    assert_eq!(
        report.indexes_rebuilt, 1,
        "a mismatching index is rebuilt at open"
    );
    assert_eq!(log.log_end_offset(), 120);
    for offset in [0, 50, 100, 119] {
        let region = log.read(offset, 300).unwrap().unwrap();
        let headers = validate_batches(&region_bytes(&region)).unwrap();
        assert!(headers[0].base_offset <= offset && offset <= headers[0].last_offset());
    }
    assert_contiguous(&fetch_all(&log, 0, 250), 0, 120);
}

fn append_in_epoch(log: &mut PartitionLog, records: usize, epoch: i32) -> AppendInfo {
    let mut buf = make_batch(records, NOW);
    let headers = validate_batches(&buf).unwrap();
    log.append(&mut buf, &headers, epoch, None, NOW).unwrap()
}

fn epoch_file(dir: &Path) -> String {
    fs::read_to_string(dir.join(epochs::LEADER_EPOCH_CHECKPOINT_FILE)).unwrap()
}

/// Records, for every sync, the file synced and how many bytes the
/// partition's `.log` files held at that moment.
#[derive(Debug)]
struct SyncProbe {
    dir: PathBuf,
    syncs: std::sync::Mutex<Vec<(String, u64)>>,
}

impl Syncer for SyncProbe {
    fn sync(&self, file: &File) -> std::io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let target = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log_bytes = log_files(&self.dir)
            .iter()
            .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        self.syncs.lock().unwrap().push((name, log_bytes));
        Ok(())
    }
}

#[test]
fn leader_epochs_are_stamped_and_recorded_before_the_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = Arc::new(SyncProbe {
        dir: tmp.path().to_path_buf(),
        syncs: Default::default(),
    });
    let (mut log, _) =
        PartitionLog::open_with(tmp.path(), config(1 << 20), NOW, probe.clone()).unwrap();
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for_epoch(0), (-1, -1));
    assert!(!tmp
        .path()
        .join(epochs::LEADER_EPOCH_CHECKPOINT_FILE)
        .exists());

    append_in_epoch(&mut log, 3, 0);
    append_in_epoch(&mut log, 3, 0);
    let size_before_epoch_3 = log.size_bytes();
    probe.syncs.lock().unwrap().clear();
    let info = append_in_epoch(&mut log, 2, 3);
    assert_eq!(info.base_offset, 6);
    // The new epoch reached the disk while the log did not hold its
    // records yet: a crash can lose records of an epoch, never the epoch.
    let syncs = probe.syncs.lock().unwrap().clone();
    let epoch_sync = syncs
        .iter()
        .find(|(name, _)| name == epochs::LEADER_EPOCH_CHECKPOINT_TMP_FILE)
        .expect("the epoch checkpoint was synced");
    assert_eq!(epoch_sync.1, size_before_epoch_3, "{syncs:?}");

    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.epoch_entries(), &[(0, 0), (3, 6)]);
    assert_eq!(epoch_file(tmp.path()), "0\n2\n0 0\n3 6\n");
    // Every batch carries the epoch it was appended in, with a valid CRC.
    let epochs: Vec<i32> = fetch_all(&log, 0, 1 << 20)
        .iter()
        .map(|h| h.partition_leader_epoch)
        .collect();
    assert_eq!(epochs, vec![0, 0, 3]);

    // OffsetForLeaderEpoch.
    assert_eq!(log.end_offset_for_epoch(0), (0, 6));
    assert_eq!(log.end_offset_for_epoch(2), (0, 6));
    assert_eq!(log.end_offset_for_epoch(3), (3, 8));
    assert_eq!(log.end_offset_for_epoch(4), (-1, -1));
    assert_eq!(log.end_offset_for_epoch(-1), (-1, -1));

    // A stale leader cannot write; nothing changes.
    let mut buf = make_batch(1, NOW);
    let headers = validate_batches(&buf).unwrap();
    for stale in [2, -1] {
        assert!(matches!(
            log.append(&mut buf, &headers, stale, None, NOW),
            Err(StorageError::InvalidAppend { .. })
        ));
    }
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.epoch_entries(), &[(0, 0), (3, 6)]);

    // The cache survives a crash and a clean close.
    drop(log);
    let (log, _) = open(tmp.path(), config(1 << 20));
    assert_eq!(log.epoch_entries(), &[(0, 0), (3, 6)]);
    log.close().unwrap();
    let (log, _) = open(tmp.path(), config(1 << 20));
    assert_eq!(log.epoch_entries(), &[(0, 0), (3, 6)]);
}

#[test]
fn open_drops_epochs_past_the_log_end_and_ignores_a_garbled_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    append_in_epoch(&mut log, 4, 1);
    append_in_epoch(&mut log, 4, 2);
    drop(log);
    // What a crash between the epoch checkpoint and the records of two new
    // epochs leaves: entries at and past the log end.
    fs::write(
        tmp.path().join(epochs::LEADER_EPOCH_CHECKPOINT_FILE),
        "0\n4\n1 0\n2 4\n5 8\n6 9\n",
    )
    .unwrap();
    let (log, _) = open(tmp.path(), config(1 << 20));
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(
        log.epoch_entries(),
        &[(1, 0), (2, 4), (5, 8)],
        "an epoch starting at the log end has not written yet and stays"
    );
    assert_eq!(epoch_file(tmp.path()), "0\n3\n1 0\n2 4\n5 8\n");
    drop(log);

    fs::write(
        tmp.path().join(epochs::LEADER_EPOCH_CHECKPOINT_FILE),
        "0\n2\n1 0\n",
    )
    .unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    assert_eq!(log.epoch_entries(), &[]);
    assert_eq!(log.end_offset_for_epoch(1), (-1, -1));
    // The next leader append starts the cache again.
    append_in_epoch(&mut log, 1, 7);
    assert_eq!(log.epoch_entries(), &[(7, 8)]);
}

#[test]
fn retention_and_delete_records_move_the_first_epoch_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(200);
    let (mut log, _) = open(tmp.path(), cfg);
    for epoch in 0..6 {
        append_in_epoch(&mut log, 5, epoch);
    }
    assert_eq!(log.epoch_entries().len(), 6);
    // Inside epoch 1 (offsets 5..10).
    log.delete_records_before(7).unwrap();
    assert_eq!(log.epoch_entries()[0], (1, 7));
    assert_eq!(log.epoch_entries().len(), 5);
    assert_eq!(log.end_offset_for_epoch(0), (0, 7));
    log.sync_now().unwrap();
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..cfg
    });
    log.enforce_retention(NOW).unwrap();
    let start = log.log_start_offset();
    assert!(start > 7);
    assert_eq!(log.epoch_entries()[0].1, start);
    let entries = log.epoch_entries().to_vec();
    log.write_checkpoint().unwrap();
    drop(log);
    let (log, _) = open(tmp.path(), cfg);
    assert_eq!(log.epoch_entries(), entries.as_slice());
}

#[test]
fn read_to_end_serves_followers_past_the_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), synced_config(300));
    append(&mut log, 5, 1);
    log.sync_now().unwrap();
    for i in 0..4 {
        append(&mut log, 5, 2 + i);
    }
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.log_end_offset(), 25);
    assert!(log.segment_count() > 1);
    // A consumer stops at the high watermark; a follower reads to the end,
    // across segments, on batch boundaries.
    assert!(log.read(5, 1 << 20).unwrap().is_none());
    let mut offset = 0;
    let mut headers = Vec::new();
    while let Some(region) = log.read_to_end(offset, 1 << 20).unwrap() {
        let got = validate_batches(&region_bytes(&region)).unwrap();
        offset = got.last().unwrap().last_offset() + 1;
        assert_eq!(region.next_offset, offset);
        headers.extend(got);
    }
    assert_contiguous(&headers, 0, 25);
    // The same limits as read: max_bytes still returns one whole batch, and
    // offsets outside the log are out of range.
    let region = log.read_to_end(12, 1).unwrap().unwrap();
    let one = validate_batches(&region_bytes(&region)).unwrap();
    assert_eq!((one.len(), one[0].base_offset), (1, 10));
    assert!(log.read_to_end(25, 1 << 20).unwrap().is_none());
    assert!(matches!(
        log.read_to_end(26, 1 << 20),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

/// Everything `leader` holds from `follower`'s log end on, fetched the way
/// a follower fetches (read_to_end, `max_bytes` at a time) and appended with
/// append_replicated.
fn replicate(leader: &PartitionLog, follower: &mut PartitionLog, max_bytes: u64) {
    while let Some(region) = leader
        .read_to_end(follower.log_end_offset(), max_bytes)
        .unwrap()
    {
        let bytes = region_bytes(&region);
        let headers = validate_batches(&bytes).unwrap();
        let info = follower.append_replicated(&bytes, &headers, NOW).unwrap();
        assert_eq!(info.last_offset + 1, region.next_offset);
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
}

/// The raw bytes of every batch `log` holds, in offset order.
fn all_bytes(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(region) = log.read_to_end(offset, 1 << 20).unwrap() {
        out.extend(region_bytes(&region));
        offset = region.next_offset;
    }
    out
}

/// A batch as a leader wrote it: `records` records from `base_offset`, in
/// `epoch`.
fn leader_batch(base_offset: i64, records: usize, epoch: i32) -> Vec<u8> {
    let mut buf = make_batch(records, NOW);
    buf[0..8].copy_from_slice(&base_offset.to_be_bytes());
    let headers = validate_batches(&buf).unwrap();
    batch::set_partition_leader_epoch(&mut buf, &headers, epoch);
    buf
}

#[test]
fn a_follower_copies_the_leader_byte_for_byte_with_its_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut leader, _) = open(&tmp.path().join("leader"), config(700));
    let (mut follower, _) = open(&tmp.path().join("follower"), config(500));
    for (i, epoch) in [1, 1, 1, 4, 4, 9, 9, 9, 9].into_iter().enumerate() {
        append_in_epoch(&mut leader, 1 + i % 4, epoch);
        if i % 3 == 0 {
            replicate(&leader, &mut follower, 300);
        }
    }
    replicate(&leader, &mut follower, 1 << 20);
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert!(
        follower.segment_count() > 1,
        "the follower rolls as appends do"
    );
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(follower.epoch_entries(), &[(1, 0), (4, 6), (9, 11)]);
    assert_eq!(follower.end_offset_for_epoch(4), (4, 11));
    let batches = fetch_all(&follower, 0, 1 << 20);
    assert_eq!(
        follower.offset_for_timestamp(NOW).unwrap(),
        Some((0, NOW)),
        "indexes are built: {} batches",
        batches.len()
    );
    // The epochs survive a crash of the follower.
    let entries = follower.epoch_entries().to_vec();
    drop(follower);
    let (follower, _) = open(&tmp.path().join("follower"), config(500));
    assert_eq!(follower.epoch_entries(), entries.as_slice());
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
}

#[test]
fn append_replicated_refuses_gaps_overlaps_and_older_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    let first = leader_batch(0, 3, 2);
    let headers = validate_batches(&first).unwrap();
    log.append_replicated(&first, &headers, NOW).unwrap();
    let size = log.size_bytes();

    let refused = |log: &mut PartitionLog, buf: Vec<u8>| {
        let headers = validate_batches(&buf).unwrap();
        let result = log.append_replicated(&buf, &headers, NOW);
        assert!(
            matches!(result, Err(StorageError::InvalidAppend { .. })),
            "{result:?}"
        );
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.size_bytes(), size);
        assert_eq!(log.epoch_entries(), &[(2, 0)]);
    };
    // Not at the log end: a gap, an overlap.
    refused(&mut log, leader_batch(4, 1, 2));
    refused(&mut log, leader_batch(2, 1, 2));
    // Not contiguous inside one fetch.
    let mut gap = leader_batch(3, 2, 2);
    gap.extend(leader_batch(6, 1, 2));
    refused(&mut log, gap);
    // An epoch older than the log's latest, also after a newer batch.
    refused(&mut log, leader_batch(3, 1, 1));
    let mut backwards = leader_batch(3, 1, 5);
    backwards.extend(leader_batch(4, 1, 3));
    refused(&mut log, backwards);
    // The buffer must match its headers.
    let buf = leader_batch(3, 1, 2);
    let headers = validate_batches(&buf).unwrap();
    assert!(matches!(
        log.append_replicated(&buf[..buf.len() - 1], &headers, NOW),
        Err(StorageError::InvalidAppend { .. })
    ));

    // Batches without an epoch are taken and add no entry; several new
    // epochs in one fetch each get theirs.
    let mut ok = leader_batch(3, 1, -1);
    ok.extend(leader_batch(4, 2, 2));
    ok.extend(leader_batch(6, 1, 5));
    ok.extend(leader_batch(7, 1, 7));
    let headers = validate_batches(&ok).unwrap();
    let info = log.append_replicated(&ok, &headers, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 7));
    assert_eq!(info.log_append_time_ms, None);
    assert_eq!(log.epoch_entries(), &[(2, 0), (5, 6), (7, 7)]);
    assert_eq!(all_bytes(&log)[size as usize..], ok[..]);
}

#[test]
fn the_replicated_high_watermark_caps_reads_and_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(300);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..6 {
        append(&mut log, 2, i);
    }
    assert_eq!(log.high_watermark(), 12);
    log.set_replicated_high_watermark(Some(6));
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(readable_end(&log, 0), 6);
    assert!(log.read(6, 1 << 20).unwrap().is_none());
    // Followers still read everything.
    assert!(log.read_to_end(6, 1 << 20).unwrap().is_some());
    // Inside a batch (6..=7): rounded down to its start.
    log.set_replicated_high_watermark(Some(7));
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(readable_end(&log, 0), 6);
    // The cap stays while the log grows and rolls.
    log.set_replicated_high_watermark(Some(10));
    for i in 0..6 {
        append(&mut log, 2, 10 + i);
    }
    assert_eq!(log.high_watermark(), 10);
    assert_eq!(readable_end(&log, 0), 10);
    // Above the log end: clamped to it, and it stays there.
    log.set_replicated_high_watermark(Some(1000));
    assert_eq!(log.high_watermark(), 24);
    append(&mut log, 2, 30);
    assert_eq!(log.high_watermark(), 24);
    assert_eq!(readable_end(&log, 0), 24);
    // None: back to the local high watermark.
    log.set_replicated_high_watermark(None);
    assert_eq!(log.high_watermark(), 26);
    assert_eq!(readable_end(&log, 0), 26);

    // Without write caching the synced end still bounds it.
    log.set_config(synced_config(300));
    log.set_replicated_high_watermark(Some(26));
    assert_eq!(log.high_watermark(), log.synced_offset());
    log.sync_now().unwrap();
    assert_eq!(log.high_watermark(), 26);

    // The checkpoint records the capped high watermark, and the next open
    // hands it back.
    log.set_replicated_high_watermark(Some(14));
    log.write_checkpoint().unwrap();
    assert_eq!(checkpoint::read(tmp.path()).unwrap().high_watermark, 14);
    drop(log);
    let (log, _) = open(tmp.path(), cfg);
    assert_eq!(log.stored_high_watermark(), Some(14));
    // Open itself does not raise the stored value before the engine
    // restores the cap, so a second crash hands back 14 again.
    assert_eq!(checkpoint::read(tmp.path()).unwrap().high_watermark, 14);
    drop(log);
    let (mut log, _) = open(tmp.path(), cfg);
    assert_eq!(log.stored_high_watermark(), Some(14));
    log.set_replicated_high_watermark(log.stored_high_watermark());
    assert_eq!(readable_end(&log, 0), 14);
}

#[test]
fn the_replicated_high_watermark_survives_retention_and_delete_records() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(200);
    let (mut log, _) = open(tmp.path(), cfg);
    for i in 0..8 {
        append(&mut log, 5, NOW + i);
    }
    // At the log end: the point is the end of the active segment, which
    // the next append seals (every append rolls here).
    log.set_replicated_high_watermark(Some(40));
    append(&mut log, 5, NOW + 8);
    append(&mut log, 5, NOW + 9);
    log.sync_now().unwrap();
    assert_eq!(log.high_watermark(), 40);
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..cfg
    });
    // Deletes every segment below the cap, the one the cap pointed into
    // included.
    log.enforce_retention(NOW).unwrap();
    assert_eq!(log.log_start_offset(), 40, "only below the cap");
    assert_eq!(log.high_watermark(), 40);
    assert!(log.read(40, 1 << 20).unwrap().is_none());
    log.set_replicated_high_watermark(Some(47));
    assert_eq!(log.high_watermark(), 45);
    assert_eq!(readable_end(&log, 40), 45);
    assert!(matches!(
        log.delete_records_before(46),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(43).unwrap();
    assert_eq!(readable_end(&log, 43), 45);
    // A cap below the log start is raised to it; nothing is readable.
    log.set_replicated_high_watermark(Some(0));
    assert_eq!(log.high_watermark(), 43);
    assert!(log.read(43, 1 << 20).unwrap().is_none());
    assert_eq!(log.checkpoint().high_watermark, 43);
}

/// (base offset, max timestamp) of every batch appended by
/// `diverging_log`, in offset order.
type Batches = Vec<(i64, i64)>;

/// A log of 30 batches of 3 records over several segments, written in
/// epochs 0 (batches 0..10), 2 (10..20) and 5 (20..30), with timestamps that
/// mostly grow.
fn diverging_log(dir: &Path, cfg: LogConfig) -> (PartitionLog, Batches) {
    let (mut log, _) = open(dir, cfg);
    let mut batches = Vec::new();
    for i in 0..30i64 {
        let epoch = [0, 2, 5][i as usize / 10];
        let ts = if i % 7 == 3 { i * 100 } else { i * 100 + 5_000 };
        let mut buf = make_batch(3, ts);
        let headers = validate_batches(&buf).unwrap();
        let info = log.append(&mut buf, &headers, epoch, None, NOW).unwrap();
        batches.push((info.base_offset, ts));
    }
    (log, batches)
}

/// The files of the active segment hold exactly its in-memory indexes.
fn assert_index_files_match(log: &mut PartitionLog) {
    log.flush().unwrap();
    let seg = log.segments.last().unwrap();
    assert_eq!(
        fs::read(&seg.index_path).unwrap(),
        seg.offset_index.to_bytes()
    );
    assert_eq!(
        fs::read(&seg.time_index_path).unwrap(),
        seg.time_index.to_bytes()
    );
    assert_eq!(fs::metadata(&seg.log_path).unwrap().len(), seg.size);
}

#[test]
fn truncate_to_cuts_inside_a_segment_at_a_batch_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(700);
    cfg.index_interval_bytes = 100;
    let (mut log, batches) = diverging_log(tmp.path(), cfg);
    let segments = log.segment_count();
    assert!(segments >= 5);
    let before = fetch_all(&log, 0, 1 << 20);

    // 37 lies in the batch 36..=38 (the 13th): the log is cut at 36.
    log.truncate_to(37).unwrap();
    assert_eq!(log.log_end_offset(), 36);
    assert!(log.segment_count() < segments);
    assert_eq!(log_files(tmp.path()).len(), log.segment_count());
    assert_eq!(fetch_all(&log, 0, 1 << 20), before[..12]);
    assert_eq!(log.epoch_entries(), &[(0, 0), (2, 30)]);
    assert_eq!(log.end_offset_for_epoch(2), (2, 36));
    assert_eq!(log.end_offset_for_epoch(5), (-1, -1));
    assert_index_files_match(&mut log);
    let kept = &batches[..12];
    check_timestamps(&log, kept);
    let active = log.segments.last().unwrap();
    assert_eq!(active.next_offset, 36);
    let expected_max = kept.iter().filter(|(o, _)| *o >= active.base_offset).fold(
        None,
        |m: Option<(i64, i64)>, &(o, ts)| match m {
            Some((best, _)) if best >= ts => m,
            _ => Some((ts, o)),
        },
    );
    assert_eq!(active.max_timestamp, expected_max);

    // The follower goes on with the leader's records of epoch 6.
    let mut kept: Vec<(i64, i64)> = kept.to_vec();
    for i in 0..8 {
        let mut buf = make_batch(2, 10_000 + i);
        let headers = validate_batches(&buf).unwrap();
        let info = log.append(&mut buf, &headers, 6, None, NOW).unwrap();
        kept.push((info.base_offset, 10_000 + i));
    }
    assert_eq!(log.log_end_offset(), 52);
    assert_eq!(log.epoch_entries(), &[(0, 0), (2, 30), (6, 36)]);
    assert_contiguous(&fetch_all(&log, 0, 300), 0, 52);
    check_timestamps(&log, &kept);

    // The same log after a crash and after a clean close.
    let expected = fetch_all(&log, 0, 1 << 20);
    drop(log);
    let (log, report) = open(tmp.path(), cfg);
    assert_eq!(report.truncated_bytes, 0, "{report:?}");
    assert_eq!(fetch_all(&log, 0, 1 << 20), expected);
    assert_eq!(log.epoch_entries(), &[(0, 0), (2, 30), (6, 36)]);
    check_timestamps(&log, &kept);
    log.close().unwrap();
    let (log, report) = open(tmp.path(), cfg);
    assert!(report.clean);
    assert_eq!(fetch_all(&log, 0, 1 << 20), expected);
    check_timestamps(&log, &kept);
}

#[test]
fn truncate_to_a_segment_start_the_log_end_and_below_the_log_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(700);
    let (mut log, _) = diverging_log(tmp.path(), cfg);
    assert_eq!(log.log_end_offset(), 90);

    // At or past the log end: no record goes.
    let files = log_files(tmp.path());
    log.truncate_to(90).unwrap();
    log.truncate_to(1000).unwrap();
    assert_eq!(log.log_end_offset(), 90);
    assert_eq!(log_files(tmp.path()), files);
    assert!(matches!(
        log.truncate_to(-1),
        Err(StorageError::OffsetOutOfRange { .. })
    ));

    // At a segment's base: that segment stays, empty, as the active one.
    let base = log.segments[2].base_offset;
    log.truncate_to(base).unwrap();
    assert_eq!(log.log_end_offset(), base);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.segments[2].size, 0);
    assert_eq!(log.segments[2].max_timestamp, None);
    assert_index_files_match(&mut log);
    assert_eq!(append_in_epoch(&mut log, 1, 9).base_offset, base);
    assert_contiguous(&fetch_all(&log, 0, 1 << 20), 0, base + 1);

    // Below the log start: nothing of the old log stays.
    log.delete_records_before(10).unwrap();
    log.truncate_to(7).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        log_files(tmp.path()),
        vec![tmp.path().join(segment_file_name(7, LOG_SUFFIX))]
    );
    assert_eq!(log.epoch_entries(), &[]);
    assert_eq!(append_in_epoch(&mut log, 2, 11).base_offset, 7);
    drop(log);
    let (log, _) = open(tmp.path(), cfg);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 9));
    assert_eq!(log.epoch_entries(), &[(11, 7)]);
}

#[test]
fn truncate_to_the_log_end_drops_an_epoch_that_wrote_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    append_in_epoch(&mut log, 3, 4);
    drop(log);
    // A leader recorded epoch 6 at the log end, then its append failed.
    fs::write(
        tmp.path().join(epochs::LEADER_EPOCH_CHECKPOINT_FILE),
        "0\n2\n4 0\n6 3\n",
    )
    .unwrap();
    let (mut log, _) = open(tmp.path(), config(1 << 20));
    assert_eq!(log.epoch_entries(), &[(4, 0), (6, 3)]);
    // As a follower of epoch 7's leader, it truncates to the end of epoch
    // 4 there: no record goes, epoch 6 does.
    log.truncate_to(3).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.epoch_entries(), &[(4, 0)]);
    assert_eq!(epoch_file(tmp.path()), "0\n1\n4 0\n");
    // The leader's epoch-5 records are taken.
    let buf = leader_batch(3, 2, 5);
    let headers = validate_batches(&buf).unwrap();
    log.append_replicated(&buf, &headers, NOW).unwrap();
    assert_eq!(log.epoch_entries(), &[(4, 0), (5, 3)]);
}

#[test]
fn truncate_fully_and_start_at_empties_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(700);
    let (mut log, _) = diverging_log(tmp.path(), cfg);
    let old = log.read(0, 1 << 20).unwrap().unwrap();
    let old_bytes = region_bytes(&old);
    log.set_replicated_high_watermark(Some(60));

    // Far past the end: a follower behind its leader's log start.
    log.truncate_fully_and_start_at(1_000).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (1_000, 1_000)
    );
    assert_eq!((log.high_watermark(), log.synced_offset()), (1_000, 1_000));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        log_files(tmp.path()),
        vec![tmp.path().join(segment_file_name(1_000, LOG_SUFFIX))]
    );
    assert!(!tmp.path().join(segment_file_name(0, INDEX_SUFFIX)).exists());
    assert_eq!(log.epoch_entries(), &[]);
    assert_eq!(epoch_file(tmp.path()), "0\n0\n");
    let cp = checkpoint::read(tmp.path()).unwrap();
    assert_eq!(
        (cp.recovery_point, cp.log_start_offset, cp.high_watermark),
        (1_000, 1_000, 1_000)
    );
    assert!(log.read(1_000, 1 << 20).unwrap().is_none());
    assert!(log.read(999, 1 << 20).is_err());
    // A fetch still sending the old first segment keeps its bytes.
    assert_eq!(region_bytes(&old), old_bytes);

    append_in_epoch(&mut log, 2, 8);
    assert_eq!(
        log.high_watermark(),
        1_000,
        "the cap moved to the new start"
    );
    log.set_replicated_high_watermark(None);
    assert_eq!(fetch_all(&log, 1_000, 1 << 20).len(), 1);
    drop(log);
    let (mut log, _) = open(tmp.path(), cfg);
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (1_000, 1_002)
    );
    assert_eq!(log.epoch_entries(), &[(8, 1_000)]);

    // At the current first segment's base: a fresh segment replaces it.
    log.truncate_fully_and_start_at(1_000).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (1_000, 1_000)
    );
    assert_eq!(log.segments[0].size, 0);
    assert_eq!(append_in_epoch(&mut log, 1, 9).base_offset, 1_000);
}

#[test]
fn truncation_moves_the_synced_point_and_stale_sync_plans_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = synced_config(1 << 20);
    let (mut log, _) = open(tmp.path(), cfg);
    for _ in 0..4 {
        append(&mut log, 5, 1);
    }
    log.sync_now().unwrap();
    append(&mut log, 5, 2);
    let plan = log.sync_plan().unwrap().unwrap();
    assert_eq!(plan.end_offset, 25);
    log.set_replicated_high_watermark(Some(20));
    log.truncate_to(10).unwrap();
    assert_eq!(log.synced_offset(), 10);
    assert_eq!(log.high_watermark(), 10);
    let cp = checkpoint::read(tmp.path()).unwrap();
    assert_eq!((cp.recovery_point, cp.high_watermark), (10, 10));
    // New records at the same offsets; the plan made before the truncation
    // covered other bytes and must not make them visible.
    append(&mut log, 15, 3);
    for file in &plan.files {
        file.sync_data().unwrap();
    }
    assert_eq!(log.synced(&plan), 10);
    assert_eq!(log.high_watermark(), 10);
    log.set_replicated_high_watermark(None);
    assert_eq!(log.sync_now().unwrap(), 25);
    assert_eq!(readable_end(&log, 0), 25);
}

/// Fails the sync of the leader epoch checkpoint while `fail` is set.
#[derive(Debug, Default)]
struct FailEpochSync {
    fail: std::sync::atomic::AtomicBool,
}

impl Syncer for FailEpochSync {
    fn sync(&self, file: &File) -> std::io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let target = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let epoch_file = target.ends_with(epochs::LEADER_EPOCH_CHECKPOINT_TMP_FILE);
        if epoch_file && self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("injected sync failure"));
        }
        OsSync.sync(file)
    }
}

#[test]
fn an_append_whose_epoch_cannot_be_made_durable_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let syncer = Arc::new(FailEpochSync::default());
    let (mut log, _) =
        PartitionLog::open_with(tmp.path(), config(1 << 20), NOW, syncer.clone()).unwrap();
    append_in_epoch(&mut log, 2, 1);
    let size = log.size_bytes();
    syncer
        .fail
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut buf = make_batch(2, NOW);
    let headers = validate_batches(&buf).unwrap();
    assert!(matches!(
        log.append(&mut buf, &headers, 2, None, NOW),
        Err(StorageError::Io { .. })
    ));
    // Nothing of the append, not even its epoch: a record never lands
    // without its epoch on disk.
    assert_eq!((log.log_end_offset(), log.size_bytes()), (2, size));
    assert_eq!(log.epoch_entries(), &[(1, 0)]);
    assert_eq!(epoch_file(tmp.path()), "0\n1\n1 0\n");
    // An append in the known epoch adds no entry, but after a failed write
    // the file counts as stale (had the rename landed before a failed
    // directory sync, it would hold the refused entry): it is rewritten
    // first, and that fails too.
    let mut buf = make_batch(1, NOW);
    let headers = validate_batches(&buf).unwrap();
    assert!(log.append(&mut buf, &headers, 1, None, NOW).is_err());
    assert_eq!(log.log_end_offset(), 2);
    syncer
        .fail
        .store(false, std::sync::atomic::Ordering::Relaxed);
    append_in_epoch(&mut log, 1, 1);
    assert_eq!(epoch_file(tmp.path()), "0\n1\n1 0\n");
    append_in_epoch(&mut log, 1, 2);
    assert_eq!(log.epoch_entries(), &[(1, 0), (2, 3)]);
    assert_eq!(epoch_file(tmp.path()), "0\n2\n1 0\n2 3\n");
}

/// A batch of `records` records from idempotent producer `pid`, epoch
/// `epoch`, starting at sequence `seq` (CRC recomputed).
fn idempotent_batch(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut buf = make_batch(records, NOW);
    buf[43..51].copy_from_slice(&pid.to_be_bytes());
    buf[51..53].copy_from_slice(&epoch.to_be_bytes());
    buf[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn check(log: &PartitionLog, buf: &[u8]) -> crate::producers::SequenceCheck {
    log.check_producers(&validate_batches(buf).unwrap())
}

#[test]
fn producer_state_survives_a_reopen_and_follows_a_truncation() {
    use crate::producers::SequenceCheck;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let (mut log, _) = open(&dir, config(400));
    append(&mut log, 2, NOW); // a plain batch: offsets 0-1
    for seq in [0, 3, 6] {
        let info = append_buf(&mut log, idempotent_batch(3, 42, 1, seq), None);
        assert_eq!(info.base_offset, 2 + i64::from(seq));
    }
    assert!(log.segment_count() > 1, "the state spans segments");
    let retry = idempotent_batch(3, 42, 1, 3);
    let duplicate = SequenceCheck::Duplicate {
        base_offset: 5,
        last_offset: 7,
    };
    assert_eq!(check(&log, &retry), duplicate);
    log.close().unwrap();

    let (mut log, _) = open(&dir, config(400));
    assert_eq!(log.producers().len(), 1);
    assert_eq!(check(&log, &retry), duplicate, "after a reopen");
    assert_eq!(
        check(&log, &idempotent_batch(1, 42, 1, 9)),
        SequenceCheck::Append
    );
    assert_eq!(
        check(&log, &idempotent_batch(1, 42, 0, 9)),
        SequenceCheck::StaleEpoch { current: 1, got: 0 }
    );

    // A follower cut back to offset 8 no longer has sequences 6-8.
    log.truncate_to(8).unwrap();
    assert_eq!(
        check(&log, &idempotent_batch(3, 42, 1, 6)),
        SequenceCheck::Append
    );
    assert_eq!(check(&log, &retry), duplicate);
    log.truncate_fully_and_start_at(100).unwrap();
    assert!(log.producers().is_empty());
}

fn producer_snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "producers"))
        .collect();
    files.sort();
    files
}

/// Snapshots (at rolls and at close) shorten the rebuild; a damaged or
/// stale one is dropped and the state is still right.
#[test]
fn producer_snapshots_are_written_pruned_and_distrusted_when_damaged() {
    use crate::producers::SequenceCheck;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let (mut log, _) = open(&dir, config(300));
    for i in 0..12 {
        append_buf(&mut log, idempotent_batch(2, 7, 0, i * 2), None);
    }
    assert!(log.segment_count() >= 5);
    let retry = idempotent_batch(2, 7, 0, 22);
    let duplicate = SequenceCheck::Duplicate {
        base_offset: 22,
        last_offset: 23,
    };
    assert_eq!(check(&log, &retry), duplicate);
    let end = log.log_end_offset();
    log.close().unwrap();
    let snapshots = producer_snapshots(&dir);
    assert!(
        (1..=3).contains(&snapshots.len()),
        "the newest few are kept: {snapshots:?}"
    );
    assert!(snapshots
        .last()
        .unwrap()
        .to_string_lossy()
        .ends_with(&format!("{end:020}.producers")));

    // The clean-close snapshot alone gives the whole state.
    let (log, _) = open(&dir, config(300));
    assert_eq!(check(&log, &retry), duplicate);
    assert_eq!(
        check(&log, &idempotent_batch(1, 7, 0, 24)),
        SequenceCheck::Append
    );
    log.close().unwrap();

    // A damaged newest snapshot is removed; an older one plus the batches
    // after it rebuild the same state.
    let newest = producer_snapshots(&dir).pop().unwrap();
    fs::write(&newest, b"SPS1 torn").unwrap();
    let (log, _) = open(&dir, config(300));
    assert!(!newest.exists(), "the damaged snapshot is gone");
    assert_eq!(check(&log, &retry), duplicate);
    assert_eq!(
        check(&log, &idempotent_batch(1, 7, 0, 24)),
        SequenceCheck::Append
    );
    drop(log);

    // Without any snapshot, every batch header is read.
    for file in producer_snapshots(&dir) {
        fs::remove_file(file).unwrap();
    }
    let (log, _) = open(&dir, config(300));
    assert_eq!(check(&log, &retry), duplicate);
    log.close().unwrap();
    assert!(producer_snapshots(&dir).iter().any(|p| p
        .to_string_lossy()
        .ends_with(&format!("{end:020}.producers"))));
    // A truncation below a snapshot drops it and keeps what is left.
    let (mut log, _) = open(&dir, config(300));
    log.truncate_to(10).unwrap();
    assert!(producer_snapshots(&dir).iter().all(|p| !p
        .to_string_lossy()
        .ends_with(&format!("{end:020}.producers"))));
    assert_eq!(
        check(&log, &idempotent_batch(2, 7, 0, 10)),
        SequenceCheck::Append
    );
    assert_eq!(
        check(&log, &idempotent_batch(2, 7, 0, 8)),
        SequenceCheck::Duplicate {
            base_offset: 8,
            last_offset: 9
        }
    );
}

/// A transactional batch of `records` records from producer `pid`.
fn txn_batch(records: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut buf = make_batch(records, NOW);
    crate::batch::set_producer(&mut buf, pid, epoch, seq);
    buf
}

fn marker(pid: i64, epoch: i16, kind: crate::batch::Marker) -> Vec<u8> {
    crate::batch::encode_marker(pid, epoch, kind, 0, NOW)
}

fn committed_offsets(log: &PartitionLog, from: i64) -> Vec<i64> {
    let mut offset = from;
    let mut out = Vec::new();
    while let Some(region) = log.read_committed(offset, 1 << 20).unwrap() {
        for h in validate_batches(&region_bytes(&region)).unwrap() {
            out.push(h.base_offset);
        }
        offset = region.next_offset;
    }
    out
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_aborts_are_indexed() {
    use crate::batch::Marker;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let (mut log, _) = open(&dir, config(1 << 20));
    append(&mut log, 2, NOW); // 0-1 plain
    append_buf(&mut log, txn_batch(2, 7, 0, 0), None); // 2-3 pid 7
    append_buf(&mut log, txn_batch(1, 8, 0, 0), None); // 4 pid 8
    append(&mut log, 1, NOW); // 5 plain
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(committed_offsets(&log, 0), vec![0]);

    append_buf(&mut log, marker(7, 0, Marker::Abort), None); // 6
    assert_eq!(log.last_stable_offset(), 4, "pid 8 still open");
    append_buf(&mut log, marker(8, 0, Marker::Commit), None); // 7
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(committed_offsets(&log, 0), vec![0, 2, 4, 5, 6, 7]);
    let aborted = log.aborted_transactions(0, 8);
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset
        ),
        (7, 2, 6)
    );
    assert!(log.aborted_transactions(7, 8).is_empty(), "ended before");
    assert!(log.aborted_transactions(0, 2).is_empty(), "starts after");

    // A transaction open at a crash stays open; the index survives.
    append_buf(&mut log, txn_batch(1, 9, 0, 0), None); // 8 pid 9
    drop(log);
    let (mut log, _) = open(&dir, config(1 << 20));
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.aborted_transactions(0, 9).len(), 1);
    append_buf(&mut log, marker(9, 1, Marker::Abort), None); // 9
    assert_eq!(log.aborted_transactions(0, 10).len(), 2);
    log.close().unwrap();
    let (mut log, _) = open(&dir, config(1 << 20));
    assert_eq!(
        log.aborted_transactions(0, 10).len(),
        2,
        "after a clean close"
    );
    assert_eq!(log.last_stable_offset(), 10);

    // A follower cut before the second abort's marker: open again, and
    // its index entry is gone from memory and file.
    log.truncate_to(9).unwrap();
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);
    drop(log);
    let (log, _) = open(&dir, config(1 << 20));
    assert_eq!(log.aborted_transactions(0, 10).len(), 1);
    assert_eq!(log.last_stable_offset(), 8);
}

#[test]
fn the_abort_index_survives_rolls_and_goes_with_its_segments() {
    use crate::batch::Marker;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let (mut log, _) = open(&dir, config(300));
    for pid in 0..6i64 {
        append_buf(&mut log, txn_batch(2, pid, 0, 0), None);
        append_buf(&mut log, marker(pid, 0, Marker::Abort), None);
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 6);
    // Without snapshots, the files alone bring the entries back.
    for snapshot in producer_snapshots(&dir) {
        fs::remove_file(snapshot).unwrap();
    }
    drop(log);
    let (mut log, _) = open(&dir, config(300));
    let all = log.aborted_transactions(0, i64::MAX);
    assert_eq!(
        all.iter().map(|a| a.producer_id).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    let second = log.segments[1].base_offset;
    log.delete_records_before(second).unwrap();
    log.enforce_retention(NOW).unwrap();
    let left = log.aborted_transactions(0, i64::MAX);
    assert!(left.len() < 6 && left.iter().all(|a| a.last_offset >= log.log_start_offset()));
}
