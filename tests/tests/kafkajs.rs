//! KafkaJS (a pure JavaScript Kafka client with its own protocol code and its own
//! choice of API versions): topic admin, gzip produce with headers, offsets.

use std::collections::BTreeSet;
use strom_tests::*;

#[test]
fn kafkajs_admin_produce_and_offsets() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let summary = node("kafkajs_admin_produce.js", &[&b, "js-topic", "300"]).json();
    assert_eq!(summary["created"], true, "{summary}");
    assert_eq!(
        summary["again"], false,
        "a second create reports the topic exists: {summary}"
    );
    assert_eq!(summary["listed"], true, "{summary}");
    assert_eq!(summary["partitions"], 3, "{summary}");
    assert_eq!(summary["sent_errors"], 0, "{summary}");
    assert_eq!(json_u64(&summary, "high"), 300, "{summary}");
    assert_eq!(
        summary["by_time"],
        serde_json::json!([0, 0, 0]),
        "{summary}"
    );
    assert_eq!(
        stored_codecs(broker.data_dir(), "js-topic"),
        BTreeSet::from([1u8]),
        "KafkaJS gzip batches are stored as produced"
    );
    // librdkafka reads back exactly what KafkaJS wrote, partition by partition.
    for p in 0..3 {
        let partition = p.to_string();
        let out = kcat(
            &[
                "-b",
                &b,
                "-t",
                "js-topic",
                "-p",
                &partition,
                "-C",
                "-e",
                "-q",
                "-f",
                "%k=%s %h\\n",
            ],
            None,
        );
        let expected: Vec<String> = (0..300)
            .filter(|i| i % 3 == p)
            .map(|i| format!("k{i}=v{i} seq={i}"))
            .collect();
        let got: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(got, expected, "partition {p}");
    }
}
