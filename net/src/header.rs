//! Request headers.
//!
//! Wire format (all big-endian):
//! ```text
//! request_api_key      i16
//! request_api_version  i16
//! correlation_id       i32
//! client_id            i16 length + bytes (nullable string; -1 = null)
//! tagged_fields        uvarint count + fields   (header v2 only: flexible API versions)
//! ```
//! The first 8 bytes are the same in every header version, so the correlation id
//! can be read even when the API or its version is unknown (needed to answer an
//! ApiVersions request of a newer version, KIP-511).

use crate::versions::ApiSupport;
use crate::NetError;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// The fixed prefix of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// A decoded request header of a known API and a version this broker serves.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// What the connection should do with a frame, decided from its header alone.
#[derive(Debug)]
pub enum Classified {
    /// Known API, supported version: decode the body.
    Request(RequestInfo, Bytes),
    /// ApiVersions of a version we do not know: answer UNSUPPORTED_VERSION with a
    /// v0 body listing our ApiVersions range (KIP-511) so the client can retry.
    ApiVersionsTooNew(HeaderPrefix),
}

/// Reads the fixed 8-byte prefix.
pub fn parse_prefix(frame: &[u8]) -> Result<HeaderPrefix, NetError> {
    if frame.len() < 8 {
        return Err(NetError::BadHeader {
            len_bytes: frame.len(),
        });
    }
    Ok(HeaderPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Classifies a frame: unknown API keys and unsupported versions are errors that
/// close the connection (as Apache Kafka does), except ApiVersions, which always
/// gets an answer.
pub fn classify(frame: Bytes, support: &ApiSupport) -> Result<Classified, NetError> {
    let prefix = parse_prefix(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| NetError::UnknownApiKey {
        api_key: prefix.api_key,
    })?;
    let Some(range) = support.range(api_key) else {
        return Err(NetError::UnknownApiKey {
            api_key: prefix.api_key,
        });
    };
    if api_key == ApiKey::ApiVersions && prefix.api_version > range.max {
        return Ok(Classified::ApiVersionsTooNew(prefix));
    }
    if !support.accepts(api_key, prefix.api_version) {
        return Err(NetError::UnsupportedVersion {
            api_name: api_name(api_key),
            api_version: prefix.api_version,
        });
    }
    let header_version = api_key.request_header_version(prefix.api_version);
    let mut body = frame;
    let len_bytes = body.len();
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|_| NetError::BadHeader { len_bytes })?;
    let client_id = header.client_id.map(|id| id.to_string());
    Ok(Classified::Request(
        RequestInfo {
            api_key,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
            client_id,
        },
        body,
    ))
}

/// Decodes a request body, turning any decoder failure (truncation, bad lengths)
/// into a connection-closing error. Bytes left over after the fields of the
/// version are ignored, as Apache Kafka does: librdkafka 2.16 sends Metadata v13
/// requests with three such bytes.
pub fn decode_body<T: Decodable>(
    mut body: Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<T, NetError> {
    crate::shape::check_request(api_key, api_version, &body).map_err(|reason| {
        NetError::Malformed {
            api_name: api_name(api_key),
            api_version,
            reason,
        }
    })?;
    let request = T::decode(&mut body, api_version).map_err(|err| NetError::Malformed {
        api_name: api_name(api_key),
        api_version,
        reason: err.to_string(),
    })?;
    if body.has_remaining() {
        tracing::debug!(
            api = api_name(api_key),
            api_version,
            trailing_bytes = body.remaining(),
            "ignoring bytes after the request fields"
        );
    }
    Ok(request)
}

/// Kafka's name for an API, for logs and errors.
pub fn api_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        _ => "unsupported API",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn header_bytes(api_key: i16, api_version: i16, correlation_id: i32) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(api_key);
        buf.put_i16(api_version);
        buf.put_i32(correlation_id);
        buf.put_i16(4);
        buf.put_slice(b"test");
        buf.freeze()
    }

    #[test]
    fn short_frames_are_bad_headers() {
        assert!(parse_prefix(&[0, 1, 2]).is_err());
    }

    #[test]
    fn unknown_api_keys_and_versions_are_rejected() {
        let support = ApiSupport::kafka_4_0();
        assert!(matches!(
            classify(header_bytes(9999, 0, 1), &support),
            Err(NetError::UnknownApiKey { api_key: 9999 })
        ));
        assert!(matches!(
            classify(header_bytes(1, 99, 1), &support),
            Err(NetError::UnsupportedVersion { .. })
        ));
        // An API Kafka knows but Strom does not serve yet is not advertised and not served.
        // ConsumerGroupHeartbeat (68): the KIP-848 group protocol is not served.
        assert!(matches!(
            classify(header_bytes(68, 0, 1), &support),
            Err(NetError::UnknownApiKey { api_key: 68 })
        ));
    }

    #[test]
    fn api_versions_from_the_future_gets_an_answer() {
        let support = ApiSupport::kafka_4_0();
        match classify(header_bytes(18, 99, 42), &support).unwrap() {
            Classified::ApiVersionsTooNew(prefix) => assert_eq!(prefix.correlation_id, 42),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_v1_header_is_decoded() {
        let support = ApiSupport::kafka_4_0();
        match classify(header_bytes(3, 4, 7), &support).unwrap() {
            Classified::Request(info, body) => {
                assert_eq!(info.correlation_id, 7);
                assert_eq!(info.client_id.as_deref(), Some("test"));
                assert!(body.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
