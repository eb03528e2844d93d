//! Malformed input on raw TCP connections: the broker must close the offending
//! connection (without answering) and keep serving everyone else.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use strom_tests::*;

const API_VERSIONS: i16 = 18;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Request header v1 (non-flexible): key, version, correlation id, client id.
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    let client = b"strom-e2e";
    out.extend_from_slice(&(client.len() as i16).to_be_bytes());
    out.extend_from_slice(client);
    out
}

/// Request header v2 (flexible versions): v1 + empty tagged fields.
fn header_v2(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = header_v1(api_key, version, correlation_id);
    out.push(0);
    out
}

/// A valid ApiVersions request at `version` (v3+ body with client software name/version).
fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut payload = header_v2(API_VERSIONS, version, correlation_id);
    for s in [&b"strom-e2e"[..], &b"1.0"[..]] {
        payload.push(s.len() as u8 + 1); // compact string: uvarint(len + 1)
        payload.extend_from_slice(s);
    }
    payload.push(0); // tagged fields
    frame(&payload)
}

/// Reads one size-prefixed response frame.
fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .expect("reading a response size (broker closed or timed out)");
    let size = i32::from_be_bytes(size);
    assert!(
        (4..=10_000_000).contains(&size),
        "implausible response size {size}"
    );
    let mut body = vec![0u8; size as usize];
    stream
        .read_exact(&mut body)
        .expect("reading a response body");
    body
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Asserts the broker closes the connection within 5 s without sending anything.
fn assert_closed(mut stream: TcpStream, case: &str) {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    Instant::now() < deadline,
                    "{case}: the broker did not close the connection within 5 s \
                     (received {} bytes)",
                    received.len()
                );
            }
            Err(e) => panic!("{case}: unexpected read error {e}"),
        }
    }
    assert!(
        received.is_empty(),
        "{case}: the broker answered {} bytes before closing: {:02x?}",
        received.len(),
        &received[..received.len().min(64)]
    );
}

/// One ApiVersions v3 exchange on a new connection: (correlation id, error code).
fn api_versions_exchange(bootstrap: &str) -> std::io::Result<(i32, i16)> {
    let mut stream = TcpStream::connect(bootstrap)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(&api_versions_request(3, 77))?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut body = vec![0u8; (i32::from_be_bytes(size).clamp(6, 1 << 20)) as usize];
    stream.read_exact(&mut body)?;
    Ok((be_i32(&body, 0), be_i16(&body, 4)))
}

/// A fresh connection gets an ApiVersions answer, and kcat still lists the broker.
fn assert_healthy(broker: &mut Broker) {
    broker.assert_running();
    match api_versions_exchange(&broker.bootstrap()) {
        Ok((correlation_id, error)) => {
            assert_eq!(correlation_id, 77, "correlation id");
            assert_eq!(error, 0, "ApiVersions v3 error code");
        }
        Err(e) => {
            // Most likely the broker died: say so, with its stderr.
            std::thread::sleep(Duration::from_millis(300));
            broker.assert_running();
            panic!("ApiVersions on a new connection failed: {e}");
        }
    }
    let md = kcat_metadata(&broker.bootstrap());
    assert_eq!(md["brokers"][0]["id"], 1, "kcat -L after bad input: {md}");
    broker.assert_running();
}

/// Sends `bytes` on a new connection, asserts it is closed, then that the broker
/// still serves others.
fn check_case(broker: &mut Broker, case: &str, bytes: &[u8], half_close: bool) {
    let mut stream = raw_connect(&broker.bootstrap());
    // The broker may close while we are still writing: that is fine.
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    assert_closed(stream, case);
    assert_healthy(broker);
}

#[test]
fn frame_larger_than_socket_request_max_bytes() {
    let mut broker = Broker::start_default();
    // Default socket.request.max.bytes is 104857600.
    let mut bytes = 104_857_601i32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&header_v1(API_VERSIONS, 0, 1));
    check_case(&mut broker, "size 104857601", &bytes, false);
}

#[test]
fn frame_larger_than_configured_limit() {
    let mut broker =
        Broker::start(BrokerOpts::default().config("socket.request.max.bytes = 1024\n"));
    // A well-formed 2 KB CreateTopics-ish frame is over the configured 1 KB.
    let mut payload = header_v1(19, 4, 5);
    payload.resize(2048, 0);
    check_case(
        &mut broker,
        "2 KB frame, 1 KB limit",
        &frame(&payload),
        false,
    );
    // ...while a small request is still served.
    assert_healthy(&mut broker);
}

#[test]
fn negative_frame_size() {
    let mut broker = Broker::start_default();
    check_case(&mut broker, "size -1", &(-1i32).to_be_bytes(), false);
    check_case(&mut broker, "size i32::MIN", &i32::MIN.to_be_bytes(), false);
}

#[test]
fn zero_frame_size() {
    let mut broker = Broker::start_default();
    let mut bytes = 0i32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&api_versions_request(3, 1));
    check_case(&mut broker, "size 0", &bytes, false);
}

#[test]
fn garbage_bytes() {
    let mut broker = Broker::start_default();
    check_case(
        &mut broker,
        "HTTP request",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
    );
    // A plausible size followed by junk: API key -1.
    let mut junk = frame(&[0xff; 40]);
    junk.extend_from_slice(&[0xff; 8]);
    check_case(&mut broker, "40 bytes of 0xff", &junk, false);
}

#[test]
fn unknown_api_key() {
    let mut broker = Broker::start_default();
    check_case(
        &mut broker,
        "api key 9999",
        &frame(&header_v1(9999, 0, 3)),
        false,
    );
    // A real Kafka API that Strom does not serve yet (JoinGroup = 11).
    let mut payload = header_v1(11, 5, 4);
    payload.extend_from_slice(&[0, 1, b'g', 0, 0, 0x75, 0x30]);
    check_case(&mut broker, "JoinGroup v5", &frame(&payload), false);
}

#[test]
fn unsupported_version_of_a_served_api() {
    let mut broker = Broker::start_default();
    let mut payload = header_v2(1, 99, 5); // Fetch v99
    payload.extend_from_slice(&[0; 32]);
    check_case(&mut broker, "Fetch v99", &frame(&payload), false);
}

#[test]
fn produce_v2_closes_connection() {
    let mut broker = Broker::start_default();
    let mut payload = header_v1(0, 2, 6);
    payload.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    payload.extend_from_slice(&30_000i32.to_be_bytes()); // timeout
    payload.extend_from_slice(&0i32.to_be_bytes()); // no topics
    check_case(&mut broker, "Produce v2", &frame(&payload), false);
}

#[test]
fn truncated_request() {
    let mut broker = Broker::start_default();
    let mut bytes = 100i32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&header_v1(API_VERSIONS, 3, 7)[..10]);
    check_case(&mut broker, "size 100, 10 bytes sent", &bytes, true);
}

#[test]
fn valid_header_garbage_body_create_topics() {
    let mut broker = Broker::start_default();
    // CreateTopics v7 (flexible): the topic array length is a run of 0xff
    // varint bytes, i.e. a huge count with no data behind it.
    let mut payload = header_v2(19, 7, 8);
    payload.extend_from_slice(&[0xff; 32]);
    check_case(
        &mut broker,
        "CreateTopics v7, 0xff body",
        &frame(&payload),
        false,
    );
}

#[test]
fn valid_header_garbage_body_metadata() {
    let mut broker = Broker::start_default();
    // Metadata v9 whose topic array claims 1000 entries but has none.
    let mut payload = header_v2(3, 9, 9);
    payload.extend_from_slice(&[0xe9, 0x07]); // uvarint 1001 = 1000 topics
    check_case(
        &mut broker,
        "Metadata v9, short array",
        &frame(&payload),
        false,
    );
    // Metadata v4 (non-flexible) claiming 2^31-1 topics.
    let mut payload = header_v1(3, 4, 10);
    payload.extend_from_slice(&i32::MAX.to_be_bytes());
    payload.extend_from_slice(&[0x00; 8]);
    check_case(
        &mut broker,
        "Metadata v4, 2^31-1 topics",
        &frame(&payload),
        false,
    );
}

#[test]
fn valid_header_garbage_body_produce() {
    let mut broker = Broker::start_default();
    // Produce v9: null transactional id, acks -1, timeout 30000, then junk.
    let mut payload = header_v2(0, 9, 11);
    payload.extend_from_slice(&[0x00, 0xff, 0xff, 0x00, 0x00, 0x75, 0x30]);
    payload.extend_from_slice(&[0xff; 12]);
    check_case(&mut broker, "Produce v9, garbage", &frame(&payload), false);
}

#[test]
fn valid_request_then_garbage_on_same_connection() {
    let mut broker = Broker::start_default();
    let mut stream = raw_connect(&broker.bootstrap());
    let mut bytes = api_versions_request(3, 11);
    bytes.extend_from_slice(&frame(&header_v1(9999, 0, 12)));
    stream.write_all(&bytes).unwrap();
    let response = read_frame(&mut stream);
    assert_eq!(be_i32(&response, 0), 11, "the valid request is answered");
    assert_eq!(be_i16(&response, 4), 0);
    assert_closed(stream, "garbage after a valid request");
    assert_healthy(&mut broker);
}

#[test]
fn api_versions_too_new_gets_kip511_answer() {
    let mut broker = Broker::start_default();
    let mut stream = raw_connect(&broker.bootstrap());
    stream.write_all(&api_versions_request(99, 4242)).unwrap();
    let r = read_frame(&mut stream);
    // Response header v0 + ApiVersionsResponse v0:
    // correlation id, error 35, [ {key 18, min 0, max 4} ].
    assert_eq!(r.len(), 4 + 2 + 4 + 6, "response {r:02x?}");
    assert_eq!(be_i32(&r, 0), 4242, "correlation id");
    assert_eq!(be_i16(&r, 4), 35, "UNSUPPORTED_VERSION");
    assert_eq!(be_i32(&r, 6), 1, "api_keys count");
    assert_eq!(be_i16(&r, 10), API_VERSIONS, "api key");
    assert_eq!(be_i16(&r, 12), 0, "min version");
    assert_eq!(be_i16(&r, 14), 4, "max version");
    // The client retries with a version from that range on the same connection.
    stream.write_all(&api_versions_request(3, 4243)).unwrap();
    let r = read_frame(&mut stream);
    assert_eq!(be_i32(&r, 0), 4243, "correlation id of the retry");
    assert_eq!(be_i16(&r, 4), 0, "retry error code");
    assert_healthy(&mut broker);
}

#[test]
fn many_garbage_connections_do_not_crash_the_broker() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut sent = 0;
    for i in 0..200u32 {
        assert!(Instant::now() < deadline, "only {i} connections in 40 s");
        let len = 1 + (next() % 600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 == 0 && len > 8 {
            // A plausible small size so the junk reaches the header parser.
            let size = (len - 4) as i32;
            bytes[..4].copy_from_slice(&size.to_be_bytes());
        }
        let mut stream = raw_connect(&broker.bootstrap());
        let _ = stream.write_all(&bytes);
        if i % 2 == 0 {
            let _ = stream.shutdown(Shutdown::Write);
        }
        // Every 10th, wait for the broker to close; else just hang up.
        if i % 10 == 0 {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 1024];
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        drop(stream);
        sent += 1;
    }
    assert_eq!(sent, 200);
    assert_healthy(&mut broker);
    // And real traffic still works.
    let out = kcat(
        &["-b", &broker.bootstrap(), "-P", "-t", "after-garbage"],
        Some(b"one\ntwo\n"),
    );
    assert!(out.success());
    let out = kcat(
        &[
            "-b",
            &broker.bootstrap(),
            "-C",
            "-t",
            "after-garbage",
            "-e",
            "-f",
            "%s\n",
        ],
        None,
    );
    assert_eq!(out.stdout, "one\ntwo\n");
}

/// Not bad input: the exact all-topics Metadata v13 request that librdkafka
/// 2.16 (python confluent-kafka 2.16) sends. Its body carries 3 bytes after the
/// fields Strom decodes; Apache Kafka ignores trailing bytes and answers, so a
/// broker must too, or every confluent_kafka client fails to get metadata.
#[test]
fn librdkafka_2_16_metadata_v13_request_is_answered() {
    let mut broker = Broker::start_default();
    let payload: &[u8] = &[
        0x00, 0x03, 0x00, 0x0d, // Metadata v13
        0x00, 0x00, 0x00, 0x03, // correlation id 3
        0x00, 0x07, b'r', b'd', b'k', b'a', b'f', b'k', b'a', // client id
        0x00, // header tagged fields
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, // body as sent by librdkafka 2.16
    ];
    let mut stream = raw_connect(&broker.bootstrap());
    stream.write_all(&frame(payload)).unwrap();
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) => panic!(
            "the broker did not answer librdkafka 2.16's Metadata v13 request ({e}); \
             see its stderr for the reason"
        ),
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).unwrap();
    assert_eq!(be_i32(&body, 0), 3, "correlation id");
    assert_healthy(&mut broker);
}

/// Clients that announce near-limit frames and then send nothing hold part of the
/// shard's request memory budget, not all of it: others are still served, and
/// nothing is allocated for bytes that never arrive.
#[test]
fn stalled_big_frames_do_not_block_other_clients() {
    let mut broker = Broker::start_default();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = raw_connect(&broker.bootstrap());
        // A 100,000,000-byte frame (under the 100 MiB limit): prefix and header only.
        let mut partial = 100_000_000i32.to_be_bytes().to_vec();
        partial.extend_from_slice(&header_v1(0, 7, 1));
        stream.write_all(&partial).expect("send partial frame");
        stalled.push(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_healthy(&mut broker);
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.pid())).expect("status");
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    assert!(
        rss_kib < 150 * 1024,
        "two announced-but-unsent 100 MB frames must not be resident: {rss_kib} KiB"
    );
    drop(stalled);
}
