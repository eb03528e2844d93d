//! Randomized robustness of everything that parses untrusted request bytes:
//! header classification, the structural bounds check and the kafka-protocol
//! decoders, fed with valid requests of every served API and version after random
//! mutation (bit flips, byte overwrites with length-like values, truncation,
//! insertions). Passing means: no panic and no allocation abort, whatever the
//! bytes. The seed is printed; `STROM_MUTATION_SEED=<n>` replays a run.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom_net::header::{classify, decode_body, Classified};
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

fn frame<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("mutation-test"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api_key.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    buf.to_vec()
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
        topic.partition_data = vec![partition];
        let mut r = ProduceRequest::default();
        r.acks = -1;
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
        topic.partitions = vec![partition];
        let mut r = FetchRequest::default();
        r.topics = vec![topic];
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
        r.topics = Some(vec![topic]);
        out.push(frame(ApiKey::Metadata, v, &r));
    }
    for v in 2..=7 {
        let mut config = create_topics_request::CreatableTopicConfig::default();
        config.name = StrBytes::from_static_str("segment.bytes");
        config.value = Some(StrBytes::from_static_str("1048576"));
        let mut topic = create_topics_request::CreatableTopic::default();
        topic.name = name("orders");
        topic.num_partitions = 3;
        topic.replication_factor = 1;
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
            r.topic_names = vec![name("orders")];
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
    let Ok(Classified::Request(info, body)) = classify(Bytes::from(frame), support) else {
        return;
    };
    let (api_key, version) = (info.api_key, info.api_version);
    let _ = match api_key {
        ApiKey::Produce => decode_body::<ProduceRequest>(body, api_key, version).map(drop),
        ApiKey::Fetch => decode_body::<FetchRequest>(body, api_key, version).map(drop),
        ApiKey::ListOffsets => decode_body::<ListOffsetsRequest>(body, api_key, version).map(drop),
        ApiKey::Metadata => decode_body::<MetadataRequest>(body, api_key, version).map(drop),
        ApiKey::CreateTopics => {
            decode_body::<CreateTopicsRequest>(body, api_key, version).map(drop)
        }
        ApiKey::DeleteTopics => {
            decode_body::<DeleteTopicsRequest>(body, api_key, version).map(drop)
        }
        ApiKey::ApiVersions => decode_body::<ApiVersionsRequest>(body, api_key, version).map(drop),
        ApiKey::FindCoordinator => {
            decode_body::<FindCoordinatorRequest>(body, api_key, version).map(drop)
        }
        _ => Ok(()),
    };
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

#[test]
fn valid_requests_of_every_served_version_decode() {
    let support = ApiSupport::kafka_4_0();
    for original in corpus() {
        match classify(Bytes::from(original.clone()), &support) {
            Ok(Classified::Request(info, body)) => {
                let mut buf = BytesMut::new();
                buf.put_slice(&body);
                assert!(
                    strom_net::shape::check_request(info.api_key, info.api_version, &buf).is_ok(),
                    "{:?} v{} rejected by the bounds check",
                    info.api_key,
                    info.api_version
                );
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
