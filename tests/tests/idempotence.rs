//! Idempotent producers (KIP-98): InitProducerId, and per partition a
//! retried batch written once (answered with its first offsets), gaps and
//! fenced epochs refused, the state kept across a broker crash. Raw
//! protocol exchanges for the exact error codes; real clients (librdkafka,
//! kafka-python) for retries after lost answers.

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_tests::*;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_REQUEST: i16 = 42;

fn init_producer_id(bootstrap: &str, version: i16) -> (i64, i16) {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = 60_000;
    let r: InitProducerIdResponse = exchange(bootstrap, ApiKey::InitProducerId, version, &request);
    assert_eq!(r.error_code, 0, "v{version}: {r:?}");
    (r.producer_id.0, r.producer_epoch)
}

/// A batch of `records` records from producer `pid` at `epoch`, starting at
/// sequence `seq` (the CRC covers those fields, so it is recomputed).
fn batch(pid: i64, epoch: i16, seq: i32, records: usize) -> bytes::Bytes {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|i| format!("p{pid}-e{epoch}-s{}", seq + i as i32).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut buf = strom_storage::batch::encode_simple_batch(0, now, &refs);
    buf[43..51].copy_from_slice(&pid.to_be_bytes());
    buf[51..53].copy_from_slice(&epoch.to_be_bytes());
    buf[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes::Bytes::from(buf)
}

/// Produces one batch (acks=all); returns (error code, base offset).
fn produce(bootstrap: &str, topic: &str, records: bytes::Bytes) -> (i16, i64) {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let r: ProduceResponse = exchange(bootstrap, ApiKey::Produce, 9, &request);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// DescribeProducers for partition 0 of `topic` (and partition 99, which
/// does not exist): (error code, [(id, epoch, last sequence)]).
fn describe_producers(bootstrap: &str, topic: &str) -> (i16, Vec<(i64, i32, i32)>) {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
    let mut t = TopicRequest::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes = vec![0, 99];
    let mut request = DescribeProducersRequest::default();
    request.topics = vec![t];
    let r: DescribeProducersResponse = exchange(bootstrap, ApiKey::DescribeProducers, 0, &request);
    let partitions = &r.topics[0].partitions;
    assert_eq!(partitions[1].error_code, 3, "partition 99: {r:?}");
    let p = &partitions[0];
    let rows = p
        .active_producers
        .iter()
        .map(|s| {
            assert_eq!(s.coordinator_epoch, -1);
            assert_eq!(s.current_txn_start_offset, -1);
            assert!(s.last_timestamp > 0, "{s:?}");
            (s.producer_id.0, s.producer_epoch, s.last_sequence)
        })
        .collect();
    (p.error_code, rows)
}

fn create_topic(bootstrap: &str, topic: &str) {
    let out = run_command(
        {
            let mut c = std::process::Command::new(strom_bin());
            c.args(["topic", "create", topic, "-p", "1", "--brokers", bootstrap]);
            c
        },
        None,
        std::time::Duration::from_secs(30),
    );
    assert!(out.success(), "strom topic create failed\n{out}");
}

#[test]
fn init_producer_id_hands_out_distinct_ids_at_every_version() {
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    let mut seen = std::collections::BTreeSet::new();
    for version in 0..=4 {
        for _ in 0..3 {
            let (id, epoch) = init_producer_id(&b, version);
            assert!(id >= 0, "v{version}: id {id}");
            assert_eq!(epoch, 0, "v{version}");
            assert!(seen.insert(id), "id {id} handed out twice");
        }
    }
    // An empty transactional id is malformed, as in Kafka.
    let mut request = InitProducerIdRequest::default();
    request.transaction_timeout_ms = 60_000;
    request.transactional_id = Some(TransactionalId(StrBytes::from_static_str("")));
    let r: InitProducerIdResponse = exchange(&b, ApiKey::InitProducerId, 4, &request);
    assert_eq!(r.error_code, INVALID_REQUEST, "{r:?}");
    // v3+: an id without an epoch is malformed.
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.producer_id = ProducerId(5);
    request.producer_epoch = -1;
    let r: InitProducerIdResponse = exchange(&b, ApiKey::InitProducerId, 3, &request);
    assert_eq!(r.error_code, INVALID_REQUEST, "{r:?}");

    // Ids come from blocks recorded in the metadata log: never again after
    // a restart.
    let mut broker = broker;
    broker.restart();
    let b = broker.bootstrap();
    let (id, _) = init_producer_id(&b, 4);
    assert!(
        !seen.contains(&id),
        "id {id} handed out again after a restart"
    );
}

#[test]
fn a_retried_batch_is_written_once_and_gaps_and_old_epochs_are_refused() {
    let mut broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = "idem-raw";
    create_topic(&b, topic);
    let (pid, epoch) = init_producer_id(&b, 4);

    assert_eq!(produce(&b, topic, batch(pid, epoch, 0, 3)), (0, 0));
    assert_eq!(produce(&b, topic, batch(pid, epoch, 3, 2)), (0, 3));
    // Retries of either batch: answered with their first offsets.
    assert_eq!(produce(&b, topic, batch(pid, epoch, 0, 3)), (0, 0));
    assert_eq!(produce(&b, topic, batch(pid, epoch, 3, 2)), (0, 3));
    // A gap (sequence 5 is next) and a partial overlap.
    assert_eq!(
        produce(&b, topic, batch(pid, epoch, 7, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&b, topic, batch(pid, epoch, 4, 2)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A newer epoch starts at 0; then the older one is fenced.
    assert_eq!(produce(&b, topic, batch(pid, 1, 0, 1)), (0, 5));
    assert_eq!(
        produce(&b, topic, batch(pid, 0, 5, 1)).0,
        INVALID_PRODUCER_EPOCH
    );
    // Another producer has its own sequences.
    let (other, _) = init_producer_id(&b, 4);
    assert_ne!(other, pid);
    assert_eq!(produce(&b, topic, batch(other, 0, 0, 1)), (0, 6));

    // A crash: the state is rebuilt from the log, a retry is still known.
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(produce(&b, topic, batch(pid, 1, 0, 1)), (0, 5));
    assert_eq!(produce(&b, topic, batch(other, 0, 0, 1)), (0, 6));
    assert_eq!(
        produce(&b, topic, batch(pid, 0, 5, 1)).0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(produce(&b, topic, batch(pid, 1, 1, 1)), (0, 7));
    let mut expected = vec![(pid, 1, 1), (other, 0, 0)];
    expected.sort_unstable();
    assert_eq!(describe_producers(&b, topic), (0, expected));

    let stored = stored_batches(broker.data_dir(), topic);
    let records: i32 = stored.iter().map(|h| h.records_count).sum();
    assert_eq!(records, 8, "every record once: {stored:?}");
}

/// `producer.id.expiration.ms`: a producer idle that long is forgotten; its
/// old sequence is then new to the partition (Kafka accepts an unknown
/// producer at any sequence, KIP-360).
#[test]
fn idle_producers_expire() {
    let broker = Broker::start(
        BrokerOpts::default()
            .config("producer.id.expiration.ms = 1500\nlog.retention.check.interval.ms = 200\n"),
    );
    let b = broker.bootstrap();
    let topic = "idem-expiry";
    create_topic(&b, topic);
    let (pid, _) = init_producer_id(&b, 4);
    assert_eq!(produce(&b, topic, batch(pid, 0, 0, 2)), (0, 0));
    assert_eq!(produce(&b, topic, batch(pid, 0, 0, 2)), (0, 0), "a retry");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let stderr = broker.stderr();
        if stderr.contains("forgot idle idempotent producers") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the producer was never expired\n{stderr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        produce(&b, topic, batch(pid, 0, 0, 2)),
        (0, 2),
        "the forgotten producer's batch is new again"
    );
}

/// Arguments of `idempotence.py` for `client` (`confluent`: librdkafka, or
/// `kafka-python`) against `broker`, after checking the client is there.
fn script_args(client: &str, broker: &Broker, topic: &str) -> Vec<String> {
    require_confluent_kafka();
    if client == "kafka-python" {
        require_kafka_python();
    }
    let bootstrap = broker.bootstrap();
    let port = broker.port().to_string();
    let metrics = format!("{}/metrics", broker.admin_url());
    [
        "--client",
        client,
        "--bootstrap",
        &bootstrap,
        "--topic",
        topic,
        "--port",
        &port,
        "--metrics",
        &metrics,
    ]
    .map(String::from)
    .to_vec()
}

/// What `idempotence.py` read back is `expected`: every record once, in
/// order, and no delivery error.
fn assert_read_back_once(out: &serde_json::Value, expected: &[String]) {
    assert_eq!(
        out["errors"],
        serde_json::json!([]),
        "delivery errors\n{out}"
    );
    let got: Vec<&str> = out["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_str().expect("a string value"))
        .collect();
    assert_eq!(got.len(), expected.len(), "every record once\n{out}");
    assert_eq!(got, expected, "every record once, in order");
}

/// A real client whose produce answers are lost (dropped by the firewall)
/// retries; the broker must write each batch once.
fn lost_answers_are_retried_without_duplicates(client: &str) {
    let broker = Broker::start_default();
    let topic = format!("idem-{client}");
    let args = script_args(client, &broker, &topic);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python("idempotence.py", &args).json();
    let expected: Vec<String> = (0..20)
        .map(|i| format!("before-{i}"))
        .chain((0..20).map(|i| format!("during-{i}")))
        .collect();
    assert_read_back_once(&out, &expected);
    assert!(
        json_u64(&out, "duplicates") >= 1,
        "the client never retried a written batch, so the test proved nothing\n{out}"
    );
}

#[test]
fn librdkafka_retries_after_lost_answers_write_each_record_once() {
    lost_answers_are_retried_without_duplicates("confluent");
}

#[test]
fn kafka_python_retries_after_lost_answers_write_each_record_once() {
    lost_answers_are_retried_without_duplicates("kafka-python");
}

/// Producer state is replicated with the log: after the leader dies, the
/// new leader (a former follower) still knows a retried batch and answers
/// it with its first offsets.
#[test]
fn a_new_leader_knows_the_batches_of_the_old_one() {
    use std::time::Duration;
    let mut cluster = strom_tests::cluster::Cluster::start(3, 1, "");
    let b = cluster.bootstrap();
    let topic = "idem-failover";
    let out = run_command(
        {
            let mut c = std::process::Command::new(strom_bin());
            c.args([
                "topic",
                "create",
                topic,
                "-p",
                "1",
                "-r",
                "3",
                "--brokers",
                &b,
            ]);
            c.args(["-c", "min.insync.replicas=2"]);
            c
        },
        None,
        Duration::from_secs(30),
    );
    assert!(out.success(), "creating the topic failed\n{out}");
    let in_sync = |c: &mut strom_tests::cluster::Cluster| {
        c.partition(topic, 0)
            .filter(|p| p.leader > 0 && p.isr.len() == 3)
            .map(|p| p.leader)
    };
    let leader = cluster.wait_until("all replicas in sync", Duration::from_secs(30), in_sync);
    let at = cluster.address(leader);
    let (pid, epoch) = init_producer_id(&at, 4);
    assert_eq!(produce(&at, topic, batch(pid, epoch, 0, 3)), (0, 0));
    assert_eq!(produce(&at, topic, batch(pid, epoch, 3, 3)), (0, 3));

    cluster.kill9(leader);
    let new_leader = cluster.wait_until("a new leader", Duration::from_secs(30), |c| {
        c.partition(topic, 0)
            .map(|p| p.leader)
            .filter(|l| *l > 0 && *l != leader)
    });
    let at = cluster.address(new_leader);
    // The new leader may take a moment to accept writes at its epoch.
    let answer = cluster.wait_until("the retry answered", Duration::from_secs(30), |_| {
        let answer = produce(&at, topic, batch(pid, epoch, 3, 3));
        (answer.0 == 0).then_some(answer)
    });
    assert_eq!(answer, (0, 3), "the retry is a duplicate of offsets 3-5");
    assert_eq!(produce(&at, topic, batch(pid, epoch, 6, 1)), (0, 6));
    assert_eq!(
        describe_producers(&at, topic),
        (0, vec![(pid, i32::from(epoch), 6)])
    );
    let follower = (1..=3).find(|n| *n != leader && *n != new_leader).unwrap();
    assert_eq!(
        describe_producers(&cluster.address(follower), topic).0,
        6,
        "a follower sends the client to the leader (NOT_LEADER_OR_FOLLOWER)"
    );
    assert_eq!(
        produce(&at, topic, batch(pid, epoch, 8, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
}

/// A real idempotent producer keeps sending while the broker is killed
/// (SIGKILL) and started again on the same port: batches whose answers
/// died with the broker are sent again, and the rebuilt producer state
/// must neither write them twice nor refuse the sequences that follow.
fn broker_crash_while_producing(client: &str) {
    let mut broker = Broker::start(BrokerOpts::default().fixed_port());
    let b = broker.bootstrap();
    let count = 2000;
    let mut args = script_args(client, &broker, &format!("idem-crash-{client}"));
    args.extend(["--mode", "restart", "--count", &count.to_string()].map(String::from));
    let producer = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        try_python(
            "idempotence.py",
            &args,
            &[],
            std::time::Duration::from_secs(180),
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(2500));
    broker.kill9();
    std::thread::sleep(std::time::Duration::from_millis(300));
    broker.restart();
    assert_eq!(
        broker.bootstrap(),
        b,
        "the broker is back where clients look"
    );
    let out = producer.join().expect("producer thread");
    assert!(out.success(), "idempotence.py failed\n{out}");
    let expected: Vec<String> = (0..count).map(|i| format!("n-{i}")).collect();
    assert_read_back_once(&out.json(), &expected);
}

#[test]
fn librdkafka_producing_through_a_broker_crash_writes_each_record_once() {
    broker_crash_while_producing("confluent");
}

#[test]
fn kafka_python_producing_through_a_broker_crash_writes_each_record_once() {
    broker_crash_while_producing("kafka-python");
}
