//! Raw Kafka protocol exchanges for APIs no stock client here exercises directly,
//! with requests and responses encoded and decoded by the kafka-protocol crate.

use bytes::Buf;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::io::{Read, Write};
use strom_net::request::encode_request;
use strom_tests::*;

#[test]
fn find_coordinator_names_this_broker_for_groups_and_transactional_ids() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let port = i32::from(broker.port());
    for version in 0..=3 {
        let mut request = FindCoordinatorRequest::default();
        request.key = StrBytes::from_static_str("orders-consumers");
        let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, version, &request);
        assert_eq!(r.error_code, 0, "v{version}: {r:?}");
        assert_eq!(r.node_id.0, 1, "v{version}");
        assert_eq!(r.host.as_str(), "127.0.0.1", "v{version}");
        assert_eq!(r.port, port, "v{version}");
    }
    for version in 4..=6 {
        let mut request = FindCoordinatorRequest::default();
        request.coordinator_keys = vec![
            StrBytes::from_static_str("group-a"),
            StrBytes::from_static_str(""),
        ];
        let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, version, &request);
        assert_eq!(r.coordinators.len(), 2, "v{version}");
        assert_eq!(r.coordinators[0].error_code, 0, "v{version}: {r:?}");
        assert_eq!(r.coordinators[0].node_id.0, 1);
        assert_eq!(r.coordinators[0].port, port);
        assert_eq!(
            r.coordinators[1].error_code, 42,
            "empty group id: INVALID_REQUEST"
        );
        // Transactional ids: the leader of their __transaction_state
        // partition, this broker; an empty id is malformed.
        let mut request = FindCoordinatorRequest::default();
        request.key_type = 1;
        request.coordinator_keys = vec![
            StrBytes::from_static_str("my-transactional-id"),
            StrBytes::from_static_str(""),
        ];
        let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, version, &request);
        assert_eq!(r.coordinators[0].error_code, 0, "v{version}: {r:?}");
        assert_eq!(
            (r.coordinators[0].node_id.0, r.coordinators[0].port),
            (1, port)
        );
        assert_eq!(r.coordinators[1].error_code, 42, "INVALID_REQUEST: {r:?}");
        // An unknown key type.
        request.key_type = 7;
        let r: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, version, &request);
        assert_eq!(r.coordinators[0].error_code, 42, "INVALID_REQUEST: {r:?}");
    }
}

/// A client that pipelines acks=all produce requests on one connection (as
/// librdkafka does) gets every answer, in request order, with the records
/// appended in request order; a request of another API sent behind them is
/// answered after them.
#[test]
fn pipelined_produce_requests_are_answered_in_order() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
    };
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    kcat(&["-b", &b, "-t", "pipe", "-P"], Some(b"first\n"));
    let mut stream = raw_connect(&b);
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    const REQUESTS: i32 = 12;
    for n in 0..REQUESTS {
        let batch = strom_storage::batch::encode_simple_batch(0, 1, &[format!("r{n}").as_bytes()]);
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(bytes::Bytes::from(batch));
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("pipe"));
        t.partition_data = vec![p];
        let mut request = ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 10_000;
        request.topic_data = vec![t];
        let frame =
            encode_request(ApiKey::Produce, 9, 100 + n, "pipeline-test", &request).expect("encode");
        stream.write_all(&frame).expect("send");
    }
    let frame = encode_request(
        ApiKey::Metadata,
        12,
        999,
        "pipeline-test",
        &MetadataRequest::default(),
    )
    .expect("encode");
    stream.write_all(&frame).expect("send");
    let mut read = |version: i16, api_key: ApiKey| {
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body).expect("response body");
        let mut buf = bytes::Bytes::from(body);
        let correlation = buf.get_i32();
        if api_key.response_header_version(version) >= 1 {
            buf.get_u8();
        }
        (correlation, buf)
    };
    let mut last_offset = 0;
    for n in 0..REQUESTS {
        let (correlation, mut buf) = read(9, ApiKey::Produce);
        assert_eq!(correlation, 100 + n, "answers come in request order");
        let response = ProduceResponse::decode(&mut buf, 9).expect("decode");
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{p:?}");
        assert_eq!(p.base_offset, last_offset + 1, "appended in request order");
        last_offset = p.base_offset;
    }
    let (correlation, mut buf) = read(12, ApiKey::Metadata);
    assert_eq!(correlation, 999);
    MetadataResponse::decode(&mut buf, 12).expect("decode metadata");
}
