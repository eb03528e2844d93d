//! Randomized robustness of everything that parses untrusted request bytes:
//! header classification, the structural bounds check and the kafka-protocol
//! decoders, fed with valid requests of every served API and version after random
//! mutation (bit flips, byte overwrites with length-like values, truncation,
//! insertions). Passing means: no panic and no allocation abort, whatever the
//! bytes. The seed is printed; `STROM_MUTATION_SEED=<n>` replays a run.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom_net::header::{classify, Classified};
use strom_net::request::{decode_request, encode_request};
use strom_net::versions::ApiSupport;

const MUTATIONS_PER_REQUEST: usize = 150;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A request frame as `classify` sees it (after the size prefix).
fn frame<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Vec<u8> {
    encode_request(api_key, version, 7, "mutation-test", body)
        .unwrap_or_else(|e| panic!("encoding {api_key:?} v{version}: {e:?}"))[4..]
        .to_vec()
}

fn name(text: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(text))
}

/// One valid request frame (without size prefix) of every served API and version.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in 3..=12 {
        let mut partition = produce_request::PartitionProduceData::default();
        partition.records = Some(Bytes::from_static(&[0u8; 70]));
        let mut topic = produce_request::TopicProduceData::default();
        topic.name = name("orders");
        topic.partition_data = vec![partition.clone(), partition];
        let mut r = ProduceRequest::default();
        r.acks = -1;
        r.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx")));
        r.topic_data = vec![topic];
        out.push(frame(ApiKey::Produce, v, &r));
    }
    for v in 4..=17 {
        let mut partition = fetch_request::FetchPartition::default();
        partition.partition_max_bytes = 1 << 20;
        let mut topic = fetch_request::FetchTopic::default();
        if v <= 12 {
            topic.topic = name("orders");
        }
        topic.partitions = vec![partition.clone(), partition];
        let mut forgotten = fetch_request::ForgottenTopic::default();
        if (7..=12).contains(&v) {
            forgotten.topic = name("old");
        }
        forgotten.partitions = vec![1, 2, 3];
        let mut r = FetchRequest::default();
        r.topics = vec![topic];
        if v >= 7 {
            r.forgotten_topics_data = vec![forgotten];
        }
        if v >= 11 {
            r.rack_id = StrBytes::from_static_str("rack-a");
        }
        if v >= 12 {
            r.cluster_id = Some(StrBytes::from_static_str("cluster"));
        }
        out.push(frame(ApiKey::Fetch, v, &r));
    }
    for v in 1..=10 {
        let mut partition = list_offsets_request::ListOffsetsPartition::default();
        partition.timestamp = -2;
        let mut topic = list_offsets_request::ListOffsetsTopic::default();
        topic.name = name("orders");
        topic.partitions = vec![partition];
        let mut r = ListOffsetsRequest::default();
        r.topics = vec![topic];
        out.push(frame(ApiKey::ListOffsets, v, &r));
    }
    for v in 0..=13 {
        let mut topic = metadata_request::MetadataRequestTopic::default();
        topic.name = Some(name("orders"));
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![topic.clone(), topic]);
        out.push(frame(ApiKey::Metadata, v, &r));
    }
    for v in 2..=7 {
        let mut assignment = create_topics_request::CreatableReplicaAssignment::default();
        assignment.broker_ids = vec![BrokerId(1), BrokerId(2)];
        let mut config = create_topics_request::CreatableTopicConfig::default();
        config.name = StrBytes::from_static_str("segment.bytes");
        config.value = Some(StrBytes::from_static_str("1048576"));
        let mut topic = create_topics_request::CreatableTopic::default();
        topic.name = name("orders");
        topic.num_partitions = 3;
        topic.replication_factor = 1;
        topic.assignments = vec![assignment];
        topic.configs = vec![config];
        let mut r = CreateTopicsRequest::default();
        r.topics = vec![topic];
        out.push(frame(ApiKey::CreateTopics, v, &r));
    }
    for v in 1..=6 {
        let mut r = DeleteTopicsRequest::default();
        if v >= 6 {
            let mut state = delete_topics_request::DeleteTopicState::default();
            state.name = Some(name("orders"));
            r.topics = vec![state];
        } else {
            r.topic_names = vec![name("orders"), name("x")];
        }
        out.push(frame(ApiKey::DeleteTopics, v, &r));
    }
    for v in 0..=4 {
        out.push(frame(
            ApiKey::ApiVersions,
            v,
            &ApiVersionsRequest::default(),
        ));
    }
    for v in 0..=6 {
        let mut r = FindCoordinatorRequest::default();
        if v <= 3 {
            r.key = StrBytes::from_static_str("group-a");
        } else {
            r.coordinator_keys = vec![
                StrBytes::from_static_str("group-a"),
                StrBytes::from_static_str("group-b"),
            ];
        }
        out.push(frame(ApiKey::FindCoordinator, v, &r));
    }
    for v in 0..=2 {
        let mut partition = delete_records_request::DeleteRecordsPartition::default();
        partition.partition_index = 2;
        partition.offset = 1_000;
        let mut topic = delete_records_request::DeleteRecordsTopic::default();
        topic.name = name("orders");
        topic.partitions = vec![partition.clone(), partition];
        let mut r = DeleteRecordsRequest::default();
        r.topics = vec![topic];
        r.timeout_ms = 30_000;
        out.push(frame(ApiKey::DeleteRecords, v, &r));
    }
    let group = || GroupId(name("orders-group").0);
    for v in 0..=9 {
        let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str("range");
        protocol.metadata = bytes::Bytes::from_static(&[
            0, 1, 0, 0, 0, 1, 0, 6, b'o', b'r', b'd', b'e', b'r', b's',
        ]);
        let mut r = JoinGroupRequest::default();
        r.group_id = group();
        r.session_timeout_ms = 10_000;
        r.rebalance_timeout_ms = 30_000;
        r.member_id = StrBytes::from_static_str("m-1");
        if v >= 5 {
            r.group_instance_id = Some(StrBytes::from_static_str("i-1"));
        }
        r.protocol_type = StrBytes::from_static_str("consumer");
        r.protocols = vec![protocol];
        if v >= 8 {
            r.reason = Some(StrBytes::from_static_str("because"));
        }
        out.push(frame(ApiKey::JoinGroup, v, &r));
    }
    for v in 0..=5 {
        let mut a = sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = StrBytes::from_static_str("m-1");
        a.assignment = bytes::Bytes::from_static(b"assignment");
        let mut r = SyncGroupRequest::default();
        r.group_id = group();
        r.generation_id = 3;
        r.member_id = StrBytes::from_static_str("m-1");
        if v >= 5 {
            r.protocol_type = Some(StrBytes::from_static_str("consumer"));
            r.protocol_name = Some(StrBytes::from_static_str("range"));
        }
        r.assignments = vec![a];
        out.push(frame(ApiKey::SyncGroup, v, &r));
    }
    for v in 0..=4 {
        let mut r = HeartbeatRequest::default();
        r.group_id = group();
        r.generation_id = 3;
        r.member_id = StrBytes::from_static_str("m-1");
        out.push(frame(ApiKey::Heartbeat, v, &r));
    }
    for v in 0..=5 {
        let mut r = LeaveGroupRequest::default();
        r.group_id = group();
        if v <= 2 {
            r.member_id = StrBytes::from_static_str("m-1");
        } else {
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = StrBytes::from_static_str("m-1");
            r.members = vec![m];
        }
        out.push(frame(ApiKey::LeaveGroup, v, &r));
    }
    for v in 2..=9 {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = 42;
        p.committed_metadata = Some(StrBytes::from_static_str("meta"));
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = name("orders");
        t.partitions = vec![p];
        let mut r = OffsetCommitRequest::default();
        r.group_id = group();
        r.generation_id_or_member_epoch = 3;
        r.member_id = StrBytes::from_static_str("m-1");
        r.topics = vec![t];
        out.push(frame(ApiKey::OffsetCommit, v, &r));
    }
    for v in 1..=9 {
        let mut r = OffsetFetchRequest::default();
        if v <= 7 {
            let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = name("orders");
            t.partition_indexes = vec![0, 1];
            r.group_id = group();
            r.topics = Some(vec![t]);
        } else {
            let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
            t.name = name("orders");
            t.partition_indexes = vec![0, 1];
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = group();
            g.topics = Some(vec![t]);
            r.groups = vec![g];
        }
        out.push(frame(ApiKey::OffsetFetch, v, &r));
    }
    for v in 0..=5 {
        let mut r = DescribeGroupsRequest::default();
        r.groups = vec![group(), GroupId(name("other").0)];
        out.push(frame(ApiKey::DescribeGroups, v, &r));
    }
    for v in 0..=5 {
        let mut r = ListGroupsRequest::default();
        if v >= 4 {
            r.states_filter = vec![StrBytes::from_static_str("Stable")];
        }
        out.push(frame(ApiKey::ListGroups, v, &r));
    }
    for v in 0..=2 {
        let mut r = DeleteGroupsRequest::default();
        r.groups_names = vec![group()];
        out.push(frame(ApiKey::DeleteGroups, v, &r));
    }
    {
        let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
        p.partition_index = 1;
        let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = name("orders");
        t.partitions = vec![p];
        let mut r = OffsetDeleteRequest::default();
        r.group_id = group();
        r.topics = vec![t];
        out.push(frame(ApiKey::OffsetDelete, 0, &r));
    }
    for v in 2..=4 {
        let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.partition = 3;
        p.current_leader_epoch = 7;
        p.leader_epoch = 6;
        let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
        t.topic = name("orders");
        t.partitions = vec![p];
        let mut r = OffsetForLeaderEpochRequest::default();
        r.replica_id = BrokerId(2);
        r.topics = vec![t];
        out.push(frame(ApiKey::OffsetForLeaderEpoch, v, &r));
    }
    for v in 0..=2 {
        let mut t = elect_leaders_request::TopicPartitions::default();
        t.topic = name("orders");
        t.partitions = vec![0, 1];
        let mut r = ElectLeadersRequest::default();
        r.election_type = if v >= 1 { 1 } else { 0 };
        r.topic_partitions = Some(vec![t]);
        r.timeout_ms = 5000;
        out.push(frame(ApiKey::ElectLeaders, v, &r));
    }
    for v in 0..=2 {
        let mut p = describe_quorum_request::PartitionData::default();
        p.partition_index = 0;
        let mut t = describe_quorum_request::TopicData::default();
        t.topic_name = name("__cluster_metadata");
        t.partitions = vec![p];
        let mut r = DescribeQuorumRequest::default();
        r.topics = vec![t];
        out.push(frame(ApiKey::DescribeQuorum, v, &r));
    }
    let text = StrBytes::from_static_str;
    for v in 1..=4 {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = text("orders");
        res.configuration_keys = Some(vec![text("retention.ms")]);
        let mut r = DescribeConfigsRequest::default();
        r.resources = vec![res];
        r.include_synonyms = true;
        r.include_documentation = v >= 3;
        out.push(frame(ApiKey::DescribeConfigs, v, &r));
    }
    for v in 0..=2 {
        let mut config = alter_configs_request::AlterableConfig::default();
        config.name = text("retention.ms");
        config.value = Some(text("1000"));
        let mut res = alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = text("orders");
        res.configs = vec![config];
        let mut r = AlterConfigsRequest::default();
        r.resources = vec![res];
        out.push(frame(ApiKey::AlterConfigs, v, &r));
    }
    for v in 0..=1 {
        let mut config = incremental_alter_configs_request::AlterableConfig::default();
        config.name = text("cleanup.policy");
        config.config_operation = 2;
        config.value = Some(text("delete"));
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = text("orders");
        res.configs = vec![config];
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = vec![res];
        r.validate_only = true;
        out.push(frame(ApiKey::IncrementalAlterConfigs, v, &r));
    }
    for v in 1..=4 {
        let mut t = describe_log_dirs_request::DescribableLogDirTopic::default();
        t.topic = name("orders");
        t.partitions = vec![0, 2];
        let mut r = DescribeLogDirsRequest::default();
        r.topics = Some(vec![t]);
        out.push(frame(ApiKey::DescribeLogDirs, v, &r));
    }
    for v in 0..=3 {
        let mut a = create_partitions_request::CreatePartitionsAssignment::default();
        a.broker_ids = vec![BrokerId(1)];
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = name("orders");
        t.count = 4;
        t.assignments = Some(vec![a]);
        let mut r = CreatePartitionsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 5000;
        out.push(frame(ApiKey::CreatePartitions, v, &r));
    }
    for v in 0..=2 {
        let mut r = DescribeClusterRequest::default();
        r.include_cluster_authorized_operations = true;
        r.endpoint_type = 1;
        r.include_fenced_brokers = v >= 2;
        out.push(frame(ApiKey::DescribeCluster, v, &r));
    }
    {
        let mut t = describe_topic_partitions_request::TopicRequest::default();
        t.name = name("orders");
        let mut cursor = describe_topic_partitions_request::Cursor::default();
        cursor.topic_name = name("orders");
        cursor.partition_index = 1;
        let mut r = DescribeTopicPartitionsRequest::default();
        r.topics = vec![t];
        r.response_partition_limit = 100;
        r.cursor = Some(cursor);
        out.push(frame(ApiKey::DescribeTopicPartitions, 0, &r));
    }
    for v in 0..=4 {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = if v % 2 == 0 {
            None
        } else {
            Some(TransactionalId(StrBytes::from_static_str("tx")))
        };
        r.transaction_timeout_ms = 60_000;
        out.push(frame(ApiKey::InitProducerId, v, &r));
    }
    {
        let mut t = describe_producers_request::TopicRequest::default();
        t.name = name("orders");
        t.partition_indexes = vec![0, 1];
        let mut r = DescribeProducersRequest::default();
        r.topics = vec![t];
        out.push(frame(ApiKey::DescribeProducers, 0, &r));
    }
    let tx = || TransactionalId(StrBytes::from_static_str("tx"));
    for v in 0..=3 {
        let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
        t.name = name("orders");
        t.partitions = vec![0, 2];
        let mut r = AddPartitionsToTxnRequest::default();
        r.v3_and_below_transactional_id = tx();
        r.v3_and_below_producer_id = ProducerId(7);
        r.v3_and_below_producer_epoch = 1;
        r.v3_and_below_topics = vec![t];
        out.push(frame(ApiKey::AddPartitionsToTxn, v, &r));

        let mut r = AddOffsetsToTxnRequest::default();
        r.transactional_id = tx();
        r.producer_id = ProducerId(7);
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        out.push(frame(ApiKey::AddOffsetsToTxn, v, &r));

        let mut r = EndTxnRequest::default();
        r.transactional_id = tx();
        r.producer_id = ProducerId(7);
        r.committed = v % 2 == 0;
        out.push(frame(ApiKey::EndTxn, v, &r));

        let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = 42;
        p.committed_metadata = Some(StrBytes::from_static_str("m"));
        let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
        t.name = name("orders");
        t.partitions = vec![p];
        let mut r = TxnOffsetCommitRequest::default();
        r.transactional_id = tx();
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        r.producer_id = ProducerId(7);
        r.generation_id = -1;
        r.topics = vec![t];
        out.push(frame(ApiKey::TxnOffsetCommit, v, &r));
    }
    {
        let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
        t.name = name("orders");
        t.partition_indexes = vec![0, 1];
        let mut m = write_txn_markers_request::WritableTxnMarker::default();
        m.producer_id = ProducerId(7);
        m.transaction_result = true;
        m.topics = vec![t];
        let mut r = WriteTxnMarkersRequest::default();
        r.markers = vec![m];
        out.push(frame(ApiKey::WriteTxnMarkers, 1, &r));

        let mut r = DescribeTransactionsRequest::default();
        r.transactional_ids = vec![tx()];
        out.push(frame(ApiKey::DescribeTransactions, 0, &r));
    }
    for v in 0..=1 {
        let mut r = ListTransactionsRequest::default();
        r.state_filters = vec![StrBytes::from_static_str("Ongoing")];
        r.producer_id_filters = vec![ProducerId(7)];
        r.duration_filter = if v == 1 { 1000 } else { -1 };
        out.push(frame(ApiKey::ListTransactions, v, &r));
    }
    out
}

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
            2 => {
                // A 4-byte length-like value: huge, negative or zero.
                let value = [i32::MAX, -1, 0, 0x0fff_ffff][rng.below(4)].to_be_bytes();
                for (i, b) in value.iter().enumerate() {
                    if at + i < bytes.len() {
                        bytes[at + i] = *b;
                    }
                }
            }
            3 => bytes.truncate(at),
            4 => bytes.insert(at, rng.next() as u8),
            _ => {
                // A runaway unsigned varint (flexible versions' lengths).
                for i in 0..5 {
                    if at + i < bytes.len() {
                        bytes[at + i] = 0xff;
                    }
                }
            }
        }
    }
    bytes
}

/// Runs one frame through the same steps as a connection, never panicking.
fn parse(frame: Vec<u8>, support: &ApiSupport) {
    if let Ok(Classified::Request(info, body)) = classify(Bytes::from(frame), support) {
        let _ = decode_request(&info, body);
    }
}

#[test]
fn mutated_requests_never_panic_or_abort() {
    let seed = std::env::var("STROM_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("request mutation seed: {seed} (replay with STROM_MUTATION_SEED={seed})");
    let mut rng = Rng(seed);
    let support = ApiSupport::kafka_4_0();
    let corpus = corpus();
    assert!(
        corpus.len() > 60,
        "every served API version is in the corpus"
    );
    let mut cases = 0;
    for original in &corpus {
        // The unmutated request must classify and decode.
        parse(original.clone(), &support);
        for _ in 0..MUTATIONS_PER_REQUEST {
            parse(mutate(&mut rng, original), &support);
            cases += 1;
        }
    }
    println!("{cases} mutated requests parsed without panic");
}

/// Every real request of every served version passes the bounds check and
/// decodes: the walk must never reject what the decoder accepts.
#[test]
fn valid_requests_of_every_served_version_decode() {
    let support = ApiSupport::kafka_4_0();
    let corpus = corpus();
    // Every version the broker accepts has a request here (a served API
    // missing from the corpus would go unchecked), and nothing else.
    let served: std::collections::BTreeSet<(i16, i16)> = support
        .entries()
        .iter()
        .flat_map(|e| (e.accepted.min..=e.accepted.max).map(move |v| (e.api_key as i16, v)))
        .collect();
    let covered: std::collections::BTreeSet<(i16, i16)> = corpus
        .iter()
        .map(|f| {
            let key = i16::from_be_bytes([f[0], f[1]]);
            let version = i16::from_be_bytes([f[2], f[3]]);
            (key, version)
        })
        .collect();
    assert_eq!(
        covered, served,
        "every served (api key, version) is in the corpus"
    );
    for original in corpus {
        match classify(Bytes::from(original.clone()), &support) {
            Ok(Classified::Request(info, body)) => {
                let (key, version) = (info.api_key, info.api_version);
                assert!(
                    strom_net::shape::check_request(key, version, &body).is_ok(),
                    "{key:?} v{version} rejected by the bounds check"
                );
                if let Err(err) = decode_request(&info, body) {
                    panic!("{key:?} v{version} does not decode: {err}");
                }
            }
            other => panic!("valid request not classified: {other:?}"),
        }
    }
}

/// The cargo-fuzz corpus of `tests/fuzz` (target `request`) replays here, so every
/// input the fuzzer kept is checked by `cargo test`. `STROM_WRITE_CORPUS=1`
/// (re)writes the seed frames of every served API version into it.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/corpus/request");
    if std::env::var_os("STROM_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (i, frame) in corpus().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), frame).expect("write seed");
        }
    }
    let support = ApiSupport::kafka_4_0();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz/corpus/request exists") {
        let path = entry.expect("corpus entry").path();
        parse(std::fs::read(&path).expect("read corpus file"), &support);
        replayed += 1;
    }
    assert!(replayed >= corpus().len(), "only {replayed} corpus files");
}
