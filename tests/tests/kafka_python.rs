//! kafka-python (a pure-Python Kafka client): LZ4 batches are stored compressed,
//! exactly as produced, and librdkafka (kcat) reads them back.

use strom_tests::*;

#[test]
fn lz4_batches_from_kafka_python_are_stored_compressed_and_readable() {
    require_kafka_python();
    let broker = Broker::start_default();
    let bootstrap = broker.bootstrap();
    let summary = python(
        "kp_produce.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "lz4-topic",
            "--count",
            "500",
        ],
    )
    .json();
    assert_eq!(json_u64(&summary, "produced"), 500);
    assert_eq!(
        stored_codecs(broker.data_dir(), "lz4-topic"),
        std::collections::BTreeSet::from([3u8]),
        "kafka-python's LZ4 batches must be stored as produced"
    );
    let out = kcat(
        &[
            "-b",
            &bootstrap,
            "-t",
            "lz4-topic",
            "-p",
            "0",
            "-C",
            "-e",
            "-q",
            "-f",
            "%k=%s\\n",
        ],
        None,
    );
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 500, "every LZ4 record is read back");
    for (i, line) in lines.iter().enumerate() {
        let expected = format!("key-{i}=value-{i}-{}", "x".repeat(200));
        assert_eq!(line, &expected, "record {i}");
    }
}
