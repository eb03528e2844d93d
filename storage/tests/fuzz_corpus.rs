//! The cargo-fuzz corpus of `tests/fuzz` (target `record_batches`) replays here, so
//! every input the fuzzer kept is checked by `cargo test`. `STROM_WRITE_CORPUS=1`
//! (re)writes the seed batches.

use strom_storage::batch::{
    assign_offsets, encode_simple_batch, record_timestamps, validate_batches,
};

/// The same steps as the fuzz target.
fn exercise(data: &[u8]) {
    let _ = record_timestamps(data);
    if let Ok(headers) = validate_batches(data) {
        let mut copy = data.to_vec();
        assign_offsets(&mut copy, 1 << 40, &headers, Some(1_700_000_000_000));
        assert!(
            validate_batches(&copy).is_ok(),
            "offset assignment broke a valid batch"
        );
    }
}

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/corpus/record_batches");
    if std::env::var_os("STROM_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let seeds: Vec<Vec<u8>> = vec![
            encode_simple_batch(0, 1_000, &[b"a".as_slice()]),
            encode_simple_batch(5, 2_000, &[b"one".as_slice(), b"two", b"three"]),
            [
                encode_simple_batch(0, 1, &[b"x".as_slice(); 4]),
                encode_simple_batch(4, 2, &[b"yy".as_slice(); 2]),
            ]
            .concat(),
        ];
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
        }
    }
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz/corpus/record_batches exists") {
        let path = entry.expect("corpus entry").path();
        exercise(&std::fs::read(&path).expect("read corpus file"));
        replayed += 1;
    }
    assert!(replayed >= 3, "only {replayed} corpus files");
}
