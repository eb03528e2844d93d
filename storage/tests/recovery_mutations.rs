//! Randomized recovery tests: build a log of several segments (clean closes
//! and crashes in between), damage its files the ways disks and crashes do
//! (torn tails, appended garbage, flipped bits, zeroed ranges, truncated or
//! garbled or missing indexes, checkpoints and markers), reopen, and check
//! that the log is exactly the longest undamaged prefix, that appends go on
//! from there, and that a second reopen agrees.
//!
//! Segments before the checkpoint's recovery point (or, after a clean
//! shutdown, everything before the last segment's last index entry) are
//! trusted without a CRC scan by design, so data bytes are only damaged
//! where recovery scans them; index files, the checkpoint and the marker are
//! damaged anywhere.
//!
//! Damage to a batch's base offset (which the CRC does not cover) and a
//! segment cut cleanly at a batch boundary in front of later segments are
//! part of the mix: recovery must notice both, because offsets are
//! contiguous (each batch starts where the previous one ended, and each
//! segment where the previous segment ended). The one header field nobody
//! checks, by design, is the partition leader epoch: damage confined to it
//! changes nothing recovery can see, so it does not count as damage here.
//!
//! `STROM_RECOVERY_SEED=<n>` replays one case, `STROM_RECOVERY_CASES=<n>`
//! changes the number of cases, `STROM_RECOVERY_TRACE=1` prints what a case
//! does.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{
    append_to, check_log, random_config, random_produce, run_cases, seeds, NoSync, Rng, NOW,
};
use strom_storage::batch::parse_header;
use strom_storage::checkpoint::{self, Checkpoint};
use strom_storage::log::{LogConfig, PartitionLog, RecoveryReport};

const MARKER: &str = "clean-shutdown";

/// What the cases exercised, summed over all of them (printed, and checked
/// so that the test cannot silently stop testing anything).
#[derive(Debug, Default)]
struct Stats {
    cases: AtomicU64,
    lost_records: AtomicU64,
    cut_but_nothing_lost: AtomicU64,
    later_segments_dropped: AtomicU64,
    corrupt_batches: AtomicU64,
    indexes_rebuilt: AtomicU64,
    clean_opens: AtomicU64,
    trusted_segments: AtomicU64,
    /// Scanned batches whose base offset was changed.
    base_offsets_damaged: AtomicU64,
    /// Sealed segments cut exactly at a batch boundary (no torn bytes, but
    /// the next segment no longer starts where this one ends).
    clean_cuts_before_later_segments: AtomicU64,
}

static STATS: Stats = Stats {
    cases: AtomicU64::new(0),
    lost_records: AtomicU64::new(0),
    cut_but_nothing_lost: AtomicU64::new(0),
    later_segments_dropped: AtomicU64::new(0),
    corrupt_batches: AtomicU64::new(0),
    indexes_rebuilt: AtomicU64::new(0),
    clean_opens: AtomicU64::new(0),
    trusted_segments: AtomicU64::new(0),
    base_offsets_damaged: AtomicU64::new(0),
    clean_cuts_before_later_segments: AtomicU64::new(0),
};

fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn trace(what: std::fmt::Arguments) {
    if std::env::var_os("STROM_RECOVERY_TRACE").is_some() {
        eprintln!("{what}");
    }
}

fn open(dir: &Path, cfg: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open_with(dir, cfg, NOW, Arc::new(NoSync))
        .unwrap_or_else(|e| panic!("open failed: {e}"))
}

/// Where the partition leader epoch lies in a batch header: the one field
/// neither the CRC nor recovery checks.
const EPOCH_FIELD: std::ops::Range<u64> = 12..16;

/// One batch of a segment file as written.
#[derive(Debug, Clone, Copy)]
struct BatchAt {
    position: u64,
    base_offset: i64,
}

/// One segment as it was before the damage.
#[derive(Debug)]
struct SegmentFile {
    base: i64,
    path: PathBuf,
    bytes: Vec<u8>,
    batches: Vec<BatchAt>,
    /// Offset after the last batch.
    end_offset: i64,
}

impl SegmentFile {
    fn with_ext(&self, ext: &str) -> PathBuf {
        self.path.with_extension(ext)
    }

    /// The batch holding byte `position`.
    fn batch_at(&self, position: u64) -> Option<BatchAt> {
        let i = self.batches.partition_point(|b| b.position <= position);
        i.checked_sub(1).map(|i| self.batches[i])
    }

    /// Whether byte `position` belongs to a batch's leader epoch.
    fn in_epoch(&self, position: u64) -> bool {
        self.batch_at(position)
            .is_some_and(|b| EPOCH_FIELD.contains(&(position - b.position)))
    }

    /// The first byte where `now` differs from the segment as written in a
    /// way recovery can see (a changed byte outside the leader epochs, or
    /// the end of a shorter file), or `None` if only bytes after the end
    /// were added (or nothing visible changed at all).
    fn first_visible_change(&self, now: &[u8]) -> Option<u64> {
        let common = self.bytes.len().min(now.len());
        (0..common)
            .find(|&i| self.bytes[i] != now[i] && !self.in_epoch(i as u64))
            .or((now.len() < self.bytes.len()).then_some(common))
            .map(|i| i as u64)
    }
}

/// The segments in `dir`, parsed (they must be whole valid batches).
fn segment_files(dir: &Path) -> Vec<SegmentFile> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let base: i64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let bytes = fs::read(&path).unwrap();
            let mut batches = Vec::new();
            let mut position = 0usize;
            let mut end_offset = base;
            while position < bytes.len() {
                let h = parse_header(&bytes[position..]).expect("undamaged segment");
                batches.push(BatchAt {
                    position: position as u64,
                    base_offset: h.base_offset,
                });
                end_offset = h.last_offset() + 1;
                position += h.total_bytes();
            }
            assert_eq!(position, bytes.len(), "segment {base} ends mid-batch");
            SegmentFile {
                base,
                path,
                bytes,
                batches,
                end_offset,
            }
        })
        .collect()
}

fn write_at(path: &Path, at: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Damages an index or time-index file (or the checkpoint) in one of many
/// ways; `entry` is the entry size (1 for text).
fn garble_file(path: &Path, entry: usize, rng: &mut Rng) -> &'static str {
    let bytes = fs::read(path).unwrap_or_default();
    match rng.below(9) {
        0 => {
            let _ = fs::remove_file(path);
            "deleted"
        }
        1 => {
            set_len_or_create(path, rng.range(0, bytes.len() as u64));
            "truncated"
        }
        2 if !bytes.is_empty() => {
            // Truncated to whole entries: still well-formed.
            let entries = bytes.len() / entry;
            set_len_or_create(path, (rng.range(0, entries as u64) as usize * entry) as u64);
            "truncated to whole entries"
        }
        3 if !bytes.is_empty() => {
            let at = rng.index(bytes.len());
            let mut b = bytes.clone();
            b[at] ^= 1 << rng.below(8);
            fs::write(path, b).unwrap();
            "bit flipped"
        }
        4 => {
            let len = rng.range(1, 64) as usize;
            fs::write(path, rng.bytes(len)).unwrap();
            "replaced with garbage"
        }
        5 => {
            let mut b = bytes.clone();
            let len = rng.range(1, 3) as usize * entry;
            b.extend(rng.bytes(len));
            fs::write(path, b).unwrap();
            "garbage entries appended"
        }
        6 if bytes.len() >= 2 * entry => {
            // Two entries swapped: well-formed sizes, order broken.
            let n = bytes.len() / entry;
            let (i, j) = (rng.index(n), rng.index(n));
            let mut b = bytes.clone();
            for k in 0..entry {
                b.swap(i * entry + k, j * entry + k);
            }
            fs::write(path, b).unwrap();
            "entries swapped"
        }
        7 if bytes.len() >= entry => {
            // Plausible but wrong: one entry's last byte nudged (for the
            // offset index, a position a few bytes off a batch boundary).
            let n = bytes.len() / entry;
            let at = rng.index(n) * entry + entry - 1;
            let mut b = bytes.clone();
            b[at] = b[at].wrapping_add(rng.range(1, 9) as u8);
            fs::write(path, b).unwrap();
            "entry nudged"
        }
        _ => {
            fs::write(path, vec![0u8; bytes.len()]).unwrap();
            "zeroed"
        }
    }
}

fn set_len_or_create(path: &Path, len: u64) {
    if path.exists() {
        set_len(path, len);
    } else {
        fs::write(path, vec![0u8; len as usize]).unwrap();
    }
}

/// Builds a log, writes `model`, and leaves it closed or crashed. Returns
/// the config.
fn build(dir: &Path, rng: &mut Rng, model: &mut Vec<Vec<u8>>) -> LogConfig {
    let cfg = random_config(rng);
    let (mut log, _) = open(dir, cfg);
    let phases = rng.range(1, 3);
    let mut clock = 0;
    for phase in 0..phases {
        for _ in 0..rng.range(3, 30) {
            clock += rng.range(0, 500) as i64;
            let (buf, values) = random_produce(rng, 3, 4, 80, NOW + clock);
            append_to(&mut log, model, buf, values, NOW).unwrap();
            match rng.below(100) {
                0..=9 => {
                    log.sync_now().unwrap();
                }
                10..=14 => log.write_checkpoint().unwrap(),
                15 => {
                    let (start, hw) = (log.log_start_offset(), log.high_watermark());
                    let to = rng.range(start as u64, hw as u64) as i64;
                    log.delete_records_before(to).unwrap();
                }
                16 => {
                    let mut c = cfg;
                    c.retention_bytes = rng.range(500, 5000) as i64;
                    log.set_config(c);
                    log.enforce_retention(NOW + clock).unwrap();
                    log.set_config(cfg);
                }
                _ => {}
            }
        }
        let ending = rng.below(3);
        trace(format_args!(
            "phase {phase}: end {} segments {} -> {}",
            log.log_end_offset(),
            log.segment_count(),
            ["close", "flush+checkpoint, crash", "crash"][ending as usize]
        ));
        match ending {
            0 => log.close().unwrap(),
            1 => {
                log.flush().unwrap();
                log.write_checkpoint().unwrap();
                drop(log);
            }
            _ => drop(log),
        }
        if phase + 1 == phases {
            return cfg;
        }
        let (reopened, report) = open(dir, cfg);
        assert_eq!(report.truncated_bytes, 0, "{report:?}");
        assert_eq!(reopened.log_end_offset() as usize, model.len());
        check_log(&reopened, model, rng);
        log = reopened;
    }
    unreachable!()
}

fn mutation_case(seed: u64) {
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    let mut model = Vec::new();
    let cfg = build(&dir, &mut rng, &mut model);
    let segments = segment_files(&dir);
    let last = segments.len() - 1;

    // Metadata first: indexes, checkpoint, marker, leftovers.
    for _ in 0..rng.range(0, 3) {
        let what = match rng.below(7) {
            0 | 1 => {
                let seg = &segments[rng.index(segments.len())];
                let (ext, entry) = if rng.chance(50) {
                    ("index", 8)
                } else {
                    ("timeindex", 12)
                };
                let how = garble_file(&seg.with_ext(ext), entry, &mut rng);
                format!("{ext} of {}: {how}", seg.base)
            }
            2 => {
                let how = garble_file(&dir.join(checkpoint::CHECKPOINT_FILE), 1, &mut rng);
                format!("checkpoint: {how}")
            }
            3 => {
                // A well-formed checkpoint with made-up values.
                let end = model.len() as u64 + 10;
                let forged = Checkpoint {
                    recovery_point: rng.range(0, 2 * end) as i64,
                    log_start_offset: rng.range(0, end) as i64,
                    high_watermark: rng.range(0, 2 * end) as i64,
                };
                fs::write(dir.join(checkpoint::CHECKPOINT_FILE), forged.encode()).unwrap();
                format!("checkpoint forged: {forged:?}")
            }
            4 => {
                let marker = dir.join(MARKER);
                if marker.exists() {
                    fs::remove_file(marker).unwrap();
                    "marker deleted".to_string()
                } else {
                    fs::write(marker, b"").unwrap();
                    "marker forged".to_string()
                }
            }
            5 => {
                fs::write(dir.join(checkpoint::CHECKPOINT_TMP_FILE), rng.bytes(30)).unwrap();
                let stray = format!("{:020}.index", 1_000_000 + rng.below(1000));
                fs::write(dir.join(stray), rng.bytes(16)).unwrap();
                "leftover checkpoint.tmp and stray index".to_string()
            }
            _ => {
                let text = if rng.chance(50) {
                    format!("{}\n", rng.range(0, model.len() as u64 + 5))
                } else {
                    "garbage".to_string()
                };
                fs::write(dir.join(checkpoint::LEGACY_RECOVERY_POINT_FILE), &text).unwrap();
                format!("legacy recovery point {text:?}")
            }
        };
        trace(format_args!("mutation: {what}"));
    }

    // Which segments recovery will scan, given the metadata as it now is.
    let clean = dir.join(MARKER).exists();
    let scan_from = if clean {
        last + 1 // only the tail of the last one, see below
    } else {
        match checkpoint::read(&dir) {
            Some(cp) => segments
                .partition_point(|s| s.base <= cp.recovery_point)
                .saturating_sub(1),
            None => 0,
        }
    };
    trace(format_args!(
        "{} segments {:?}, clean {clean}, scan from #{scan_from}, log end {}",
        segments.len(),
        segments.iter().map(|s| s.base).collect::<Vec<_>>(),
        model.len()
    ));

    // Data damage, only where it is scanned. The last segment's tail is
    // always scanned: cutting it or appending to it is fair even after a
    // clean shutdown.
    for _ in 0..rng.range(0, 3) {
        let target = if scan_from <= last && rng.chance(70) {
            rng.range(scan_from as u64, last as u64) as usize
        } else {
            last
        };
        let seg = &segments[target];
        let size = fs::metadata(&seg.path).unwrap().len();
        let scanned_whole = target >= scan_from;
        let kind = if scanned_whole {
            rng.below(7)
        } else {
            rng.below(2)
        };
        let what = match kind {
            0 if target == last => {
                let at = rng.range(0, size);
                set_len(&seg.path, at);
                format!("last segment truncated to {at}")
            }
            1 => {
                let len = rng.range(1, 200) as usize;
                let bytes = if rng.chance(30) {
                    vec![0u8; len]
                } else {
                    rng.bytes(len)
                };
                write_at(&seg.path, size, &bytes);
                format!("{len} garbage bytes appended to {}", seg.base)
            }
            0 => {
                // Anywhere, batch boundaries included: a segment that ends
                // early but cleanly makes the next one start past its end.
                let at = rng.range(0, size);
                if seg.batches.iter().any(|b| b.position == at) {
                    count(&STATS.clean_cuts_before_later_segments, 1);
                }
                set_len(&seg.path, at);
                format!("segment {} truncated to {at}", seg.base)
            }
            2 if size > 0 => {
                // A bit flip anywhere but in the leader epoch, which nobody
                // checks, by design. A flipped base offset (outside the CRC)
                // breaks the contiguous offsets.
                let mut at = rng.range(0, size - 1);
                if let Some(b) = seg.batch_at(at) {
                    let rel = at - b.position;
                    if EPOCH_FIELD.contains(&rel) {
                        at = b.position + EPOCH_FIELD.end + rng.range(0, 4);
                    } else if rel < 8 {
                        count(&STATS.base_offsets_damaged, 1);
                    }
                }
                if at < size {
                    let mut byte = [0u8];
                    let f = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&seg.path)
                        .unwrap();
                    f.read_exact_at(&mut byte, at).unwrap();
                    byte[0] ^= 1 << rng.below(8);
                    f.write_all_at(&byte, at).unwrap();
                }
                format!("bit flipped at {at} of {}", seg.base)
            }
            5 if !seg.batches.is_empty() => {
                // Change one batch's base offset by a little: the CRC does
                // not cover it, the offsets no longer line up.
                let b = seg.batches[rng.index(seg.batches.len())];
                let at = b.position + 7 - rng.range(0, 2);
                let mut byte = [0u8];
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&seg.path)
                    .unwrap();
                if at >= f.metadata().unwrap().len() {
                    // An earlier mutation already cut the file before it.
                    format!("batch at {} already cut off", b.position)
                } else {
                    f.read_exact_at(&mut byte, at).unwrap();
                    byte[0] = byte[0].wrapping_add(1 << rng.below(7)) | 1;
                    f.write_all_at(&byte, at).unwrap();
                    count(&STATS.base_offsets_damaged, 1);
                    format!("base offset of the batch at {} changed", b.position)
                }
            }
            6 if target != last && !seg.batches.is_empty() => {
                let at = seg.batches[rng.index(seg.batches.len())].position;
                set_len(&seg.path, at);
                count(&STATS.clean_cuts_before_later_segments, 1);
                format!("segment {} cut at the batch boundary {at}", seg.base)
            }
            3 if size > 0 => {
                let at = rng.range(0, size - 1);
                let len = rng.range(1, (size - at).min(600));
                write_at(&seg.path, at, &vec![0u8; len as usize]);
                format!("{len} bytes zeroed at {at} of {}", seg.base)
            }
            _ => {
                let at = rng.range(0, size);
                let len = rng.range(1, 100) as usize;
                let garbage = rng.bytes(len);
                if size > 0 && at < size {
                    // Overwrite within the file (it may grow).
                    write_at(&seg.path, at, &garbage);
                } else {
                    write_at(&seg.path, size, &garbage);
                }
                format!("{len} garbage bytes written at {at} of {}", seg.base)
            }
        };
        trace(format_args!("mutation: {what}"));
    }

    // What recovery must keep: everything before the first changed byte's
    // batch. Work it out from the files, not from the intent (zeroing a zero
    // byte changes nothing, and a changed leader epoch goes unseen).
    let mut expected_end = model.len() as i64;
    let mut expected_cut = 0u64;
    for (i, seg) in segments.iter().enumerate() {
        let now = fs::read(&seg.path).unwrap();
        // Where the log gets cut, and the first offset lost.
        let (cut, lost) = match seg.first_visible_change(&now) {
            Some(at) => {
                let b = seg.batch_at(at).expect("a batch holds every byte");
                (b.position, Some(b.base_offset))
            }
            None if now.len() > seg.bytes.len() => {
                // Only bytes after the end: the file grew.
                let lost = if i == last {
                    None
                } else {
                    Some(seg.end_offset)
                };
                (seg.bytes.len() as u64, lost)
            }
            None => continue,
        };
        expected_end = lost.unwrap_or(expected_end);
        expected_cut = now.len() as u64 - cut.min(now.len() as u64)
            + segments[i + 1..]
                .iter()
                .map(|s| fs::metadata(&s.path).unwrap().len())
                .sum::<u64>();
        break;
    }
    trace(format_args!(
        "expecting log end {expected_end}, {expected_cut} bytes cut"
    ));

    let (mut log, report) = open(&dir, cfg);
    trace(format_args!("recovered: {report:?}"));
    assert_eq!(
        log.log_end_offset(),
        expected_end,
        "recovery kept the wrong prefix ({report:?})"
    );
    assert_eq!(report.truncated_bytes, expected_cut, "{report:?}");
    assert!(report.corrupt_batches <= 1, "{report:?}");
    if expected_cut == 0 {
        assert_eq!(report.corrupt_batches, 0, "{report:?}");
    }
    assert_eq!(report.clean, clean);
    check_log(&log, &model, &mut rng);
    count(&STATS.cases, 1);
    count(
        &STATS.lost_records,
        model.len() as u64 - expected_end as u64,
    );
    count(
        &STATS.cut_but_nothing_lost,
        u64::from(expected_cut > 0 && expected_end as usize == model.len()),
    );
    count(
        &STATS.later_segments_dropped,
        (segments.len() - report.segments) as u64,
    );
    count(&STATS.corrupt_batches, report.corrupt_batches as u64);
    count(&STATS.indexes_rebuilt, report.indexes_rebuilt as u64);
    count(&STATS.clean_opens, u64::from(clean));
    count(
        &STATS.trusted_segments,
        scan_from.min(segments.len()) as u64,
    );
    model.truncate(expected_end as usize);

    // Appends continue at the log end, and a second reopen agrees.
    for _ in 0..rng.range(1, 4) {
        let (buf, values) = random_produce(&mut rng, 2, 3, 60, NOW);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    match rng.below(3) {
        0 => log.close().unwrap(),
        1 => {
            log.sync_now().unwrap();
            drop(log);
        }
        _ => drop(log),
    }
    let (log, report) = open(&dir, cfg);
    assert_eq!(log.log_end_offset() as usize, model.len(), "{report:?}");
    assert_eq!(report.truncated_bytes, 0, "{report:?}");
    assert_eq!(report.corrupt_batches, 0, "{report:?}");
    check_log(&log, &model, &mut rng);
}

#[test]
fn recovery_keeps_the_undamaged_prefix() {
    let seeds = seeds("STROM_RECOVERY_SEED", "STROM_RECOVERY_CASES", 1, 600);
    run_cases("STROM_RECOVERY_SEED", &seeds, mutation_case);
    eprintln!("recovery mutations: {STATS:?}");
    if seeds.len() >= 100 {
        for (what, counter) in [
            ("records lost to damage", &STATS.lost_records),
            ("tails cut without loss", &STATS.cut_but_nothing_lost),
            ("later segments dropped", &STATS.later_segments_dropped),
            ("corrupt batches", &STATS.corrupt_batches),
            ("indexes rebuilt", &STATS.indexes_rebuilt),
            ("clean opens", &STATS.clean_opens),
            ("trusted segments", &STATS.trusted_segments),
            ("damaged base offsets", &STATS.base_offsets_damaged),
            (
                "clean cuts before later segments",
                &STATS.clean_cuts_before_later_segments,
            ),
        ] {
            assert!(counter.load(Ordering::Relaxed) > 0, "no {what}: {STATS:?}");
        }
    }
}

/// Regression test: the batch CRC does not cover the base offset (Kafka's
/// format), so recovery must check that each batch starts exactly where the
/// previous one ended (the first at the segment's base offset); this log
/// never has holes (no compaction). A flipped bit that raises a base offset
/// must cut the log at that batch, not serve the batch with wrong offsets
/// (moving the log end offset), and, for a batch in the middle, must not
/// take the later, intact batches for the damage and keep the bad one.
#[test]
fn a_damaged_base_offset_cuts_the_log_there() {
    for middle in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("topic-0");
        let mut rng = Rng::new(11);
        let mut model = Vec::new();
        let cfg = LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let (mut log, _) = open(&dir, cfg);
        for _ in 0..6 {
            let (buf, values) = random_produce(&mut rng, 1, 3, 40, NOW);
            append_to(&mut log, &mut model, buf, values, NOW).unwrap();
        }
        drop(log); // crash: no checkpoint beyond 0, so the segment is scanned
        let seg = &segment_files(&dir)[0];
        let victim = if middle {
            seg.batches[2]
        } else {
            seg.batches[5]
        };
        // Bit 0 of byte 4 of the base offset: base + 2^24.
        let path = &seg.path;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        f.read_exact_at(&mut byte, victim.position + 4).unwrap();
        byte[0] ^= 1;
        f.write_all_at(&byte, victim.position + 4).unwrap();

        let (log, report) = open(&dir, cfg);
        let end = log.log_end_offset();
        assert_eq!(
            end, victim.base_offset,
            "recovery accepted a batch whose base offset was raised by 2^24 ({report:?})"
        );
        assert_eq!(
            report.truncated_bytes,
            seg.bytes.len() as u64 - victim.position,
            "{report:?}"
        );
        let intact = check_log(&log, &model, &mut rng);
        assert_eq!(intact as i64, victim.base_offset);
    }
}
