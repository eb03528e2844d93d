//! Response encoding: `size: i32 BE`, response header, body.
//!
//! Response header v0 is `correlation_id: i32`; v1 (flexible APIs) adds an empty
//! tagged-field section (one `0x00` byte). ApiVersions always uses header v0 so a
//! client that does not know our versions can still read it.

use crate::header::{api_name, HeaderPrefix};
use crate::versions::ApiSupport;
use crate::NetError;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// Kafka error code UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Writes the size prefix placeholder and the response header; returns the buffer.
pub fn start_response(api_key: ApiKey, api_version: i16, correlation_id: i32) -> BytesMut {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // patched by finish_response
    buf.put_i32(correlation_id);
    if api_key.response_header_version(api_version) >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    buf
}

/// Patches the size prefix once the body has been appended.
pub fn finish_response(mut buf: BytesMut) -> Bytes {
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// Encodes a whole response message built with the kafka-protocol types.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, NetError> {
    let mut buf = start_response(api_key, api_version, correlation_id);
    body.encode(&mut buf, api_version)
        .map_err(|err| NetError::Encode {
            api_name: api_name(api_key),
            reason: err.to_string(),
        })?;
    Ok(finish_response(buf))
}

/// The ApiVersions response body listing every served API.
pub fn api_versions_body(support: &ApiSupport, error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = support
        .entries()
        .iter()
        .map(|e| {
            let mut v = kafka_protocol::messages::api_versions_response::ApiVersion::default();
            v.api_key = e.api_key as i16;
            v.min_version = e.advertised.min;
            v.max_version = e.advertised.max;
            v
        })
        .collect();
    response
}

/// KIP-511: an ApiVersions request newer than we know gets UNSUPPORTED_VERSION with
/// a v0-encoded body that lists our ApiVersions range; the client then retries with
/// a version we support.
pub fn api_versions_too_new(prefix: HeaderPrefix, support: &ApiSupport) -> Result<Bytes, NetError> {
    let mut body = api_versions_body(support, UNSUPPORTED_VERSION);
    body.api_keys
        .retain(|k| k.api_key == ApiKey::ApiVersions as i16);
    encode_response(ApiKey::ApiVersions, 0, prefix.correlation_id, &body)
}

/// Convenience for optional strings in responses.
pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn too_new_api_versions_answer_is_a_v0_body() {
        let prefix = HeaderPrefix {
            api_key: 18,
            api_version: 99,
            correlation_id: 5,
        };
        let mut wire = api_versions_too_new(prefix, &ApiSupport::kafka_4_0()).unwrap();
        let size = wire.get_i32();
        assert_eq!(size as usize, wire.len());
        assert_eq!(wire.get_i32(), 5);
        let body = ApiVersionsResponse::decode(&mut wire, 0).unwrap();
        assert_eq!(body.error_code, UNSUPPORTED_VERSION);
        assert_eq!(body.api_keys.len(), 1);
        assert_eq!(body.api_keys[0].max_version, 4);
    }

    #[test]
    fn v3_api_versions_writes_no_default_tagged_fields() {
        let body = api_versions_body(&ApiSupport::kafka_4_0(), 0);
        let wire = encode_response(ApiKey::ApiVersions, 3, 1, &body).unwrap();
        // header v0 (no tagged byte), and the body ends with throttle_time then a zero
        // tagged-field count: librdkafka < 2.2 mis-skips non-empty tagged sections.
        assert_eq!(*wire.last().unwrap(), 0);
        assert_eq!(&wire[4..8], &1i32.to_be_bytes());
    }
}
