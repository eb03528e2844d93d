//! Transactions (KIP-98) end to end: real transactional clients
//! (librdkafka through confluent-kafka; kafka-python's read_committed
//! consumer) driven by `clients/transactions.py`, and raw protocol
//! exchanges for the coordinator's error codes and for what survives a
//! broker crash (the coordinator's state, open transactions, the
//! aborted-transaction index).

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_tests::*;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const INVALID_RECORD: i16 = 87;

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn init(b: &str, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = Some(txn_id(id));
    request.transaction_timeout_ms = timeout_ms;
    exchange(b, ApiKey::InitProducerId, 4, &request)
}

/// AddPartitionsToTxn at `version`: the error code of each partition.
fn add(b: &str, version: i16, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> Vec<i16> {
    let mut request = AddPartitionsToTxnRequest::default();
    request.v3_and_below_transactional_id = txn_id(id);
    request.v3_and_below_producer_id = ProducerId(pid);
    request.v3_and_below_producer_epoch = epoch;
    for (topic, p) in parts {
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = topic_name(topic);
        t.partitions = vec![*p];
        request.v3_and_below_topics.push(t);
    }
    let r: AddPartitionsToTxnResponse = exchange(b, ApiKey::AddPartitionsToTxn, version, &request);
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

fn end(b: &str, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let mut request = EndTxnRequest::default();
    request.transactional_id = txn_id(id);
    request.producer_id = ProducerId(pid);
    request.producer_epoch = epoch;
    request.committed = commit;
    let r: EndTxnResponse = exchange(b, ApiKey::EndTxn, 3, &request);
    r.error_code
}

/// A transactional batch of `records` records (values "<tag>-<i>").
fn txn_batch(pid: i64, epoch: i16, seq: i32, records: usize, tag: &str) -> bytes::Bytes {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|i| format!("{tag}-{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let mut buf = strom_storage::batch::encode_simple_batch(0, 1_700_000_000_000, &refs);
    if pid >= 0 {
        strom_storage::batch::set_producer(&mut buf, pid, epoch, seq);
    }
    bytes::Bytes::from(buf)
}

/// Produces one batch to partition 0 (acks=all): (error code, base offset).
fn produce(b: &str, topic: &str, records: bytes::Bytes) -> (i16, i64) {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![p];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let r: ProduceResponse = exchange(b, ApiKey::Produce, 9, &request);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// ListOffsets latest of partition 0 at an isolation level.
fn latest(b: &str, topic: &str, read_committed: bool) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions = vec![p];
    let mut request = ListOffsetsRequest::default();
    request.replica_id = kafka_protocol::messages::BrokerId(-1);
    request.isolation_level = i8::from(read_committed);
    request.topics = vec![t];
    let r: ListOffsetsResponse = exchange(b, ApiKey::ListOffsets, 7, &request);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{r:?}");
    p.offset
}

/// A read_committed fetch of partition 0 from offset 0: (last stable
/// offset, aborted transactions as (producer id, first offset)).
fn fetch_committed(b: &str, topic: &str) -> (i64, Vec<(i64, i64)>) {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.replica_id = kafka_protocol::messages::BrokerId(-1);
    request.max_wait_ms = 0;
    request.max_bytes = 1 << 20;
    request.isolation_level = 1;
    request.topics = vec![t];
    let r: FetchResponse = exchange(b, ApiKey::Fetch, 12, &request);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "{r:?}");
    let aborted = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed fetches get a list")
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    (p.last_stable_offset, aborted)
}

/// DescribeTransactions of one id: (error, state, epoch, topics).
fn describe(b: &str, id: &str) -> (i16, String, i16, Vec<(String, Vec<i32>)>) {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![txn_id(id)];
    let r: DescribeTransactionsResponse = exchange(b, ApiKey::DescribeTransactions, 0, &request);
    let s = &r.transaction_states[0];
    let topics = s
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    (
        s.error_code,
        s.transaction_state.to_string(),
        s.producer_epoch,
        topics,
    )
}

fn create_topic(b: &str, topic: &str) {
    let out = run_command(
        {
            let mut c = std::process::Command::new(strom_bin());
            c.args(["topic", "create", topic, "-p", "1", "--brokers", b]);
            c
        },
        None,
        std::time::Duration::from_secs(30),
    );
    assert!(out.success(), "strom topic create failed\n{out}");
}

/// What a broker crash must not lose: the coordinator's state of each
/// transactional id, a transaction open on a partition (it keeps holding
/// the last stable offset), and the aborted-transaction index that tells
/// read_committed consumers which records to drop.
#[test]
fn transactions_survive_a_broker_crash() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    let topic = "txn-crash";
    create_topic(&b, topic);
    let id = "tx-crash";
    let r = init(&b, id, 60_000);
    assert_eq!(r.error_code, 0, "{r:?}");
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    assert_eq!(add(&b, 3, id, pid, epoch, &[(topic, 0)]), vec![0]);
    assert_eq!(produce(&b, topic, txn_batch(pid, epoch, 0, 3, "a")), (0, 0));
    assert_eq!(
        produce(&b, topic, txn_batch(-1, -1, -1, 1, "plain")),
        (0, 3)
    );
    assert_eq!(latest(&b, topic, false), 4);
    assert_eq!(
        latest(&b, topic, true),
        0,
        "the open transaction holds the LSO"
    );

    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(latest(&b, topic, true), 0, "still open after the crash");
    let (code, state, _, topics) = describe(&b, id);
    assert_eq!((code, state.as_str()), (0, "Ongoing"));
    assert_eq!(topics, vec![(topic.to_string(), vec![0])]);

    assert_eq!(end(&b, id, pid, epoch, false), 0);
    assert_eq!(latest(&b, topic, true), 5, "the abort marker is offset 4");
    assert_eq!(fetch_committed(&b, topic), (5, vec![(pid, 0)]));
    // The next transaction of the same producer commits.
    assert_eq!(add(&b, 3, id, pid, epoch, &[(topic, 0)]), vec![0]);
    assert_eq!(produce(&b, topic, txn_batch(pid, epoch, 3, 1, "c")), (0, 5));
    assert_eq!(end(&b, id, pid, epoch, true), 0);

    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(
        fetch_committed(&b, topic),
        (7, vec![(pid, 0)]),
        "the aborted transaction is still indexed after a crash"
    );
    // A retried EndTxn of the same outcome succeeds; the other one not.
    assert_eq!(end(&b, id, pid, epoch, true), 0);
    assert_eq!(end(&b, id, pid, epoch, false), INVALID_TXN_STATE);
    let (_, state, _, _) = describe(&b, id);
    assert_eq!(state, "CompleteCommit");

    // A new producer with the same id gets the next epoch; the old one is
    // fenced (INVALID_PRODUCER_EPOCH for clients before v2).
    let r = init(&b, id, 60_000);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, epoch + 1)
    );
    assert_eq!(
        add(&b, 3, id, pid, epoch, &[(topic, 0)]),
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        add(&b, 1, id, pid, epoch, &[(topic, 0)]),
        vec![INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(end(&b, id, pid, epoch, true), PRODUCER_FENCED);
    let stored = stored_batches(broker.data_dir(), topic);
    let markers = stored.iter().filter(|h| h.is_control()).count();
    assert_eq!(markers, 2, "one marker per ended transaction: {stored:?}");
}

/// Bad input to the coordinator gets Kafka's error codes; nothing changes.
#[test]
fn the_coordinator_refuses_bad_requests_clearly() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let topic = "txn-bad";
    create_topic(&b, topic);
    // FindCoordinator for a transactional id: this broker; empty id: refused.
    let mut request = FindCoordinatorRequest::default();
    request.key = StrBytes::from_static_str("tx-bad");
    request.key_type = 1;
    let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, 3, &request);
    assert_eq!((r.error_code, r.node_id.0), (0, 1), "{r:?}");
    request.key = StrBytes::from_static_str("");
    let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, 3, &request);
    assert_eq!(r.error_code, INVALID_REQUEST, "{r:?}");

    // Timeouts above transaction.max.timeout.ms (15 min) or not positive.
    assert_eq!(
        init(&b, "tx-bad", 900_001).error_code,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(
        init(&b, "tx-bad", 0).error_code,
        INVALID_TRANSACTION_TIMEOUT
    );
    // Requests for an id the coordinator never initialised.
    assert_eq!(
        add(&b, 3, "tx-none", 5, 0, &[(topic, 0)]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(end(&b, "tx-none", 5, 0, true), INVALID_PRODUCER_ID_MAPPING);

    let r = init(&b, "tx-bad", 10_000);
    assert_eq!(r.error_code, 0);
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    // EndTxn without a transaction: nothing to end.
    assert_eq!(end(&b, "tx-bad", pid, epoch, true), INVALID_TXN_STATE);
    // The wrong producer id for the transactional id.
    assert_eq!(
        add(&b, 3, "tx-bad", pid + 1, epoch, &[(topic, 0)]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    // An unknown partition fails alone; the others are not attempted, and
    // the transaction did not start.
    assert_eq!(
        add(
            &b,
            3,
            "tx-bad",
            pid,
            epoch,
            &[(topic, 0), (topic, 7), ("txn-missing", 0)]
        ),
        vec![
            OPERATION_NOT_ATTEMPTED,
            UNKNOWN_TOPIC_OR_PARTITION,
            UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    let (code, state, _, topics) = describe(&b, "tx-bad");
    assert_eq!((code, state.as_str(), topics.len()), (0, "Empty", 0));
    let (code, _, _, _) = describe(&b, "tx-unknown");
    assert_eq!(code, 105, "TRANSACTIONAL_ID_NOT_FOUND");

    // A client's control batch (a forged commit marker for this producer)
    // is refused: markers are the coordinator's to write.
    assert_eq!(add(&b, 3, "tx-bad", pid, epoch, &[(topic, 0)]), vec![0]);
    assert_eq!(produce(&b, topic, txn_batch(pid, epoch, 0, 2, "t")), (0, 0));
    let forged = strom_storage::batch::encode_marker(
        pid,
        epoch,
        strom_storage::batch::Marker::Commit,
        0,
        1_700_000_000_000,
    );
    assert_eq!(
        produce(&b, topic, bytes::Bytes::from(forged)).0,
        INVALID_RECORD
    );
    assert_eq!(latest(&b, topic, true), 0, "the transaction is still open");
    assert_eq!(end(&b, "tx-bad", pid, epoch, false), 0);
    assert_eq!(fetch_committed(&b, topic), (3, vec![(pid, 0)]));
}

fn transactions_py(args: &[&str]) -> serde_json::Value {
    require_confluent_kafka();
    let out = python("transactions.py", args);
    assert!(out.success(), "transactions.py {args:?} failed\n{out}");
    out.json()
}

/// librdkafka's transactional producer: committed transactions are seen
/// by read_committed consumers (librdkafka and kafka-python), an aborted
/// one only by read_uncommitted ones.
#[test]
fn read_committed_consumers_see_committed_transactions_only() {
    require_kafka_python();
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let summary = transactions_py(&[
        "commit-abort",
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "txn-ca",
    ]);
    let committed: Vec<String> = (1..=2)
        .flat_map(|t| (0..10).map(move |i| format!("c{t}-{i}")))
        .collect();
    assert_eq!(summary["committed_view"], serde_json::json!(committed));
    assert_eq!(
        summary["kafka_python_committed_view"],
        serde_json::json!(committed)
    );
    assert_eq!(
        summary["uncommitted_view"].as_array().map(Vec::len),
        Some(30)
    );
}

/// A transaction over 3 partitions of 2 topics plus a group's offsets is
/// all or nothing: aborted, none of it is visible; committed, all of it.
#[test]
fn a_transaction_with_group_offsets_is_all_or_nothing() {
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let summary = transactions_py(&[
        "multi",
        "--bootstrap",
        &broker.bootstrap(),
        "--topic-a",
        "txn-in",
        "--topic-b",
        "txn-out",
        "--group",
        "txn-group",
        "--join",
    ]);
    assert_eq!(
        summary["committed_after_abort"],
        serde_json::json!({"0": -1001, "1": -1001})
    );
    assert_eq!(
        summary["committed_after_commit"],
        serde_json::json!({"0": 11, "1": 13})
    );
}

/// Two producers with one transactional id: the newer fences the older,
/// whose open transaction is aborted.
#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    let broker = Broker::start_default();
    let summary = transactions_py(&[
        "fence",
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "txn-fence",
    ]);
    assert_eq!(summary["fenced_error"], "_FENCED", "{summary}");
    assert_eq!(
        summary["committed_view"],
        serde_json::json!(["new-0", "new-1", "new-2", "new-3", "new-4"])
    );
}

/// A transaction left open past its timeout is aborted by the coordinator:
/// it stops holding back read_committed consumers, and its producer is
/// fenced.
#[test]
fn a_transaction_open_past_its_timeout_is_aborted() {
    let broker = Broker::start(
        BrokerOpts::default()
            .config("transaction.abort.timed.out.transaction.cleanup.interval.ms = 500\n"),
    );
    let summary = transactions_py(&[
        "timeout",
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "txn-timeout",
    ]);
    assert_eq!(
        summary["committed_view"],
        serde_json::json!(["fresh-0", "fresh-1", "fresh-2", "fresh-3", "fresh-4"])
    );
    assert_eq!(summary["stale_commit_error"], "_FENCED", "{summary}");
    assert!(broker
        .stderr()
        .contains("aborting a transaction open longer than its timeout"));
    // The coordinator counted it (scraped with prometheus-client's parser).
    let url = format!("{}/metrics", broker.admin_url());
    let scrape = python("ops_metrics.py", &["scrape", "--url", &url]).json();
    let samples = scrape["samples"].as_array().expect("samples");
    let total = |name: &str, label: &str, value: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s[0] == name && s[1][label] == value)
            .filter_map(|s| s[2].as_f64())
            .sum()
    };
    assert_eq!(
        total("strom_transactions_ended_total", "outcome", "timeout"),
        1.0,
        "{scrape}"
    );
    assert!(
        total("strom_transactions_ended_total", "outcome", "commit") >= 1.0,
        "{scrape}"
    );
    let lso = total("strom_partition_last_stable_offset", "topic", "txn-timeout");
    assert!(lso >= 12.0, "5 stale + marker + 5 fresh + marker: {lso}");
    assert_eq!(
        total("strom_partition_open_transactions", "topic", "txn-timeout"),
        0.0
    );
}

fn strom_txn(args: &[&str]) -> Output {
    let mut c = std::process::Command::new(strom_bin());
    c.arg("txn").args(args);
    run_command(c, None, std::time::Duration::from_secs(60))
}

/// `strom txn list|describe`: the coordinator's view of each id, as
/// `kafka-transactions` shows it; clear errors for unknown ids and states.
#[test]
fn strom_txn_lists_and_describes_transactions() {
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    create_topic(&b, "txn-cli");
    let r = init(&b, "tx-cli-open", 45_000);
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    assert_eq!(
        add(&b, 3, "tx-cli-open", pid, epoch, &[("txn-cli", 0)]),
        vec![0]
    );
    let done = init(&b, "tx-cli-done", 60_000);
    assert_eq!(done.error_code, 0);

    let out = strom_txn(&["list", "--brokers", &b, "--format", "json"]);
    assert!(out.success(), "{out}");
    let listed = out.json();
    let rows = listed["transactions"].as_array().expect("rows");
    let state_of = |id: &str| {
        rows.iter()
            .find(|r| r["transactional_id"] == id)
            .map(|r| r["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        state_of("tx-cli-open").as_deref(),
        Some("Ongoing"),
        "{listed}"
    );
    assert_eq!(
        state_of("tx-cli-done").as_deref(),
        Some("Empty"),
        "{listed}"
    );

    let out = strom_txn(&["list", "--brokers", &b, "--state", "ongoing"]);
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.contains("tx-cli-open") && !out.stdout.contains("tx-cli-done"),
        "{out}"
    );
    assert!(out.stdout.starts_with("TRANSACTIONAL-ID"), "{out}");

    let out = strom_txn(&[
        "describe",
        "tx-cli-open",
        "--brokers",
        &b,
        "--format",
        "json",
    ]);
    assert!(out.success(), "{out}");
    let d = out.json();
    assert_eq!(d["state"], "Ongoing", "{d}");
    assert_eq!(d["producer_id"], pid);
    assert_eq!(d["timeout_ms"], 45_000);
    assert_eq!(d["partitions"], serde_json::json!(["txn-cli-0"]));
    assert!(d["start_time_ms"].as_i64() > Some(0), "{d}");

    let out = strom_txn(&["describe", "tx-cli-missing", "--brokers", &b]);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(out.stderr.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{out}");
    let out = strom_txn(&["list", "--brokers", &b, "--state", "Running"]);
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out}");
    assert!(out.stderr.contains("unknown state 'Running'"), "{out}");
}

/// `transactional.id.expiration.ms`: an id idle that long (no transaction
/// open) is forgotten; an id with an open transaction is not.
#[test]
fn idle_transactional_ids_expire() {
    let broker = Broker::start(BrokerOpts::default().config(
        "transactional.id.expiration.ms = 1500\n\
         transaction.abort.timed.out.transaction.cleanup.interval.ms = 200\n",
    ));
    let b = broker.bootstrap();
    create_topic(&b, "txn-expire");
    let idle = init(&b, "tx-idle", 60_000);
    assert_eq!(idle.error_code, 0);
    let open = init(&b, "tx-open", 60_000);
    assert_eq!(
        add(
            &b,
            3,
            "tx-open",
            open.producer_id.0,
            0,
            &[("txn-expire", 0)]
        ),
        vec![0]
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while describe(&b, "tx-idle").0 == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "tx-idle was never forgotten"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(describe(&b, "tx-idle").0, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    let (code, state, _, _) = describe(&b, "tx-open");
    assert_eq!(
        (code, state.as_str()),
        (0, "Ongoing"),
        "an open transaction is kept"
    );
    // The forgotten id starts afresh: a new producer id, epoch 0.
    let again = init(&b, "tx-idle", 60_000);
    assert_eq!(again.error_code, 0);
    assert_ne!(again.producer_id.0, idle.producer_id.0);
    assert_eq!(again.producer_epoch, 0);
    assert!(broker.stderr().contains("forgot an idle transactional id"));
}

/// OffsetFetch of a group whose offsets a transaction holds: with
/// `require_stable` (what consumers send since KIP-447) the partition
/// answers UNSTABLE_OFFSET_COMMIT until the transaction ends; without it,
/// the last committed offset. After the commit both see the new offset.
#[test]
fn offsets_in_an_open_transaction_are_unstable_until_it_ends() {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, GroupId, OffsetFetchRequest,
        OffsetFetchResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    };
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    let topic = "txn-stable";
    create_topic(&b, topic);
    let (id, group) = ("tx-stable", "stable-group");
    let r = init(&b, id, 60_000);
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    let mut request = AddOffsetsToTxnRequest::default();
    request.transactional_id = txn_id(id);
    request.producer_id = ProducerId(pid);
    request.producer_epoch = epoch;
    request.group_id = GroupId(StrBytes::from_static_str("stable-group"));
    let r: AddOffsetsToTxnResponse = exchange(&b, ApiKey::AddOffsetsToTxn, 3, &request);
    assert_eq!(r.error_code, 0, "{r:?}");
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 5;
    p.committed_leader_epoch = -1;
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions = vec![p];
    let mut request = TxnOffsetCommitRequest::default();
    request.transactional_id = txn_id(id);
    request.group_id = GroupId(StrBytes::from_static_str("stable-group"));
    request.producer_id = ProducerId(pid);
    request.producer_epoch = epoch;
    request.generation_id = -1;
    request.topics = vec![t];
    let r: TxnOffsetCommitResponse = exchange(&b, ApiKey::TxnOffsetCommit, 3, &request);
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");

    let fetch = |require_stable: bool| {
        let mut t = OffsetFetchRequestTopics::default();
        t.name = topic_name(topic);
        t.partition_indexes = vec![0];
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(StrBytes::from_string(group.to_string()));
        g.topics = Some(vec![t]);
        let mut request = OffsetFetchRequest::default();
        request.groups = vec![g];
        request.require_stable = require_stable;
        let r: OffsetFetchResponse = exchange(&b, ApiKey::OffsetFetch, 8, &request);
        let p = &r.groups[0].topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(fetch(true), (88, -1), "UNSTABLE_OFFSET_COMMIT while open");
    assert_eq!(fetch(false), (0, -1), "not visible before the commit");
    assert_eq!(end(&b, id, pid, epoch, true), 0);
    assert_eq!(fetch(true), (0, 5));
    assert_eq!(fetch(false), (0, 5));
}
