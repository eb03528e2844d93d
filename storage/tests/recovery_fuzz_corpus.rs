//! The cargo-fuzz corpus of `tests/fuzz` (target `recovery`) replays here
//! through the fuzz target's own steps (`common/recovery_exercise.rs`), so
//! every input the fuzzer kept is checked by `cargo test`.
//! `STROM_WRITE_CORPUS=1` (re)writes the seed inputs, built from logs the
//! real code wrote.

mod common;
#[path = "common/recovery_exercise.rs"]
mod recovery_exercise;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::NoSync;
use recovery_exercise::{
    exercise, Files, F_CHECKPOINT, F_CLEAN, F_CLOSE, F_CP_FIELDS, F_DENSE_INDEX, F_INDEX,
    F_TIME_INDEX,
};
use strom_storage::batch::{encode_simple_batch, validate_batches};
use strom_storage::log::{LogConfig, PartitionLog};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/corpus/recovery")
}

/// A one-segment log of `batches` small batches written by the real code,
/// closed (clean) or dropped (crash); returns its files.
fn written_log(batches: usize, close: bool, extra_flags: u8) -> Files {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p-0");
    let cfg = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open_with(&dir, cfg, 1_000, Arc::new(NoSync)).unwrap();
    for i in 0..batches {
        let values: Vec<Vec<u8>> = (0..=i % 3)
            .map(|k| format!("v{i}.{k}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        let mut buf = encode_simple_batch(0, 1_000 + i as i64, &refs);
        let headers = validate_batches(&buf).unwrap();
        log.append(&mut buf, &headers, 0, None, 1_000).unwrap();
    }
    if close {
        log.close().unwrap();
    } else {
        log.flush().unwrap();
        drop(log);
    }
    Files::read_dir(&dir, extra_flags)
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let valid = written_log(6, true, F_DENSE_INDEX);
    let crashed = written_log(6, false, F_DENSE_INDEX);
    let mut torn = crashed.clone();
    torn.log.truncate(torn.log.len() - 5);
    let mut flipped = crashed.clone();
    let mid = flipped.log.len() / 2;
    flipped.log[mid] ^= 0x10;
    // Clean shutdown, but the bytes before the last index entry are garbage:
    // trusted by design, must still not panic anywhere.
    let mut trusted_garbage = valid.clone();
    for b in &mut trusted_garbage.log[..40] {
        *b = 0xa5;
    }
    let mut fields = crashed.clone();
    fields.checkpoint = None;
    let mut fields_input = fields.encode();
    fields_input[0] |= F_CP_FIELDS;
    // recovery point, log start offset, high watermark (u64 LE each),
    // inserted before the log bytes.
    let cp: Vec<u8> = [3u64, 2, 1_000_000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let at = fields_input.len() - fields.log.len();
    fields_input.splice(at..at, cp);
    let mut closed_twice = valid.clone();
    closed_twice.flags |= F_CLOSE;
    vec![
        ("seed-empty", Vec::new()),
        ("seed-clean-log", valid.encode()),
        ("seed-crashed-log", crashed.encode()),
        ("seed-torn-tail", torn.encode()),
        ("seed-flipped-bit", flipped.encode()),
        ("seed-clean-trusted-garbage", trusted_garbage.encode()),
        ("seed-checkpoint-fields", fields_input),
        ("seed-clean-close-again", closed_twice.encode()),
        (
            "seed-marker-only",
            Files {
                flags: F_CLEAN,
                ..Files::default()
            }
            .encode(),
        ),
    ]
}

#[test]
fn recovery_fuzz_corpus_replays() {
    let dir = corpus_dir();
    if std::env::var_os("STROM_WRITE_CORPUS").is_some() {
        fs::create_dir_all(&dir).expect("corpus dir");
        for (name, input) in seeds() {
            fs::write(dir.join(name), input).expect("write seed");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("p-0");
    let mut replayed = 0;
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/fuzz/corpus/recovery exists")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let data = fs::read(&path).expect("read corpus file");
        let result = std::panic::catch_unwind(|| exercise(&work, &data));
        assert!(result.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(replayed >= 9, "only {replayed} corpus files");
}

/// The seeds are what their names say (so the corpus starts in the right
/// places).
#[test]
fn recovery_seeds_parse_back() {
    for (name, input) in seeds() {
        let files = Files::parse(&input);
        let again = Files::parse(&files.encode());
        // Re-encoding keeps the files (checkpoint fields become raw bytes).
        let mode = !(F_INDEX | F_TIME_INDEX | F_CHECKPOINT | F_CP_FIELDS);
        assert_eq!(again.flags & mode, files.flags & mode, "{name}");
        assert_eq!(
            (again.index, again.time_index, again.checkpoint, again.log),
            (
                files.index.clone(),
                files.time_index.clone(),
                files.checkpoint.clone(),
                files.log.clone()
            ),
            "{name}"
        );
        if name == "seed-clean-log" {
            assert!(files.flags & F_CLEAN != 0);
            assert!(!files.index.is_empty() && !files.time_index.is_empty());
            assert!(files.checkpoint.is_some());
            assert!(validate_batches(&files.log).is_ok());
        }
        if name == "seed-checkpoint-fields" {
            let text = String::from_utf8(files.checkpoint.unwrap()).unwrap();
            assert!(
                text.contains("recovery-point 3\nlog-start-offset 2\n"),
                "{text}"
            );
        }
    }
}
