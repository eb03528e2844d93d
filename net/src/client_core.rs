//! The sans-IO core of a Kafka client, shared by the glommio connection in
//! `client.rs` (the load generator, broker-to-broker fetches) and the
//! blocking client of `strom-cli`: ApiVersions negotiation with KIP-511's
//! fallback, the choice of a version per request, correlation ids and
//! request frames, and the checks of a response's size and header. Values in,
//! values out; the transports do the reading and writing.

use crate::request::encode_request;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use std::collections::HashMap;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// The highest version in both ranges.
pub fn common_version(theirs: VersionRange, ours: VersionRange) -> Option<i16> {
    let max = theirs.max.min(ours.max);
    (max >= theirs.min.max(ours.min)).then_some(max)
}

/// The version range of every API one broker serves, by API key.
#[derive(Clone, Debug, Default)]
pub struct ApiTable {
    ranges: HashMap<i16, VersionRange>,
}

impl ApiTable {
    fn from_response(response: &ApiVersionsResponse) -> ApiTable {
        let ranges = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        ApiTable { ranges }
    }

    /// The broker's range of an API; `None` when it does not serve it.
    pub fn range(&self, api_key: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(api_key as i16)).copied()
    }
}

/// What an ApiVersions answer says.
#[derive(Debug)]
pub enum Negotiation {
    /// The broker's APIs.
    Agreed(ApiTable),
    /// The broker does not speak our ApiVersions version (KIP-511): ask
    /// again at this one.
    AskAgainAt(i16),
    /// The broker answered with this error code.
    Refused(i16),
}

/// The ApiVersions request to send at `version` (v3+ names the client).
pub fn api_versions_request(version: i16, software_name: &'static str) -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = StrBytes::from_static_str(software_name);
        request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    }
    request
}

/// Reads the body of the answer to ApiVersions `version`. A broker that does
/// not know that version answers UNSUPPORTED_VERSION in a v0 body naming
/// the versions it does know.
pub fn read_api_versions(body: &Bytes, version: i16) -> Result<Negotiation, String> {
    let response = match ApiVersionsResponse::decode(&mut body.clone(), version) {
        Ok(r) if r.error_code != UNSUPPORTED_VERSION => r,
        // The error answer is always encoded as v0.
        _ => ApiVersionsResponse::decode(&mut body.clone(), 0)
            .map_err(|e| format!("undecodable ApiVersions v{version} answer: {e}"))?,
    };
    Ok(match response.error_code {
        0 => Negotiation::Agreed(ApiTable::from_response(&response)),
        UNSUPPORTED_VERSION if version > 0 => {
            let theirs = response
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .map_or(0, |k| k.max_version);
            Negotiation::AskAgainAt(theirs.min(version - 1).max(0))
        }
        code => Negotiation::Refused(code),
    })
}

/// Numbers the requests of one connection, from 1.
#[derive(Debug)]
pub struct Correlation {
    next: i32,
}

impl Default for Correlation {
    fn default() -> Correlation {
        Correlation { next: 1 }
    }
}

impl Correlation {
    /// Encodes one request frame (size prefix included) with the next
    /// correlation id; returns the id and the frame.
    pub fn frame<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        client_id: &str,
        request: &R,
    ) -> Result<(i32, Bytes), String> {
        let correlation_id = self.next;
        self.next = self.next.wrapping_add(1);
        let frame = encode_request(api_key, version, correlation_id, client_id, request)
            .map_err(|e| format!("cannot encode the request: {e}"))?;
        Ok((correlation_id, frame))
    }
}

/// The size of a response frame from its 4-byte prefix, refused outside
/// 4..=`max_bytes` (garbage, not a size to allocate).
pub fn response_size(prefix: [u8; 4], max_bytes: usize) -> Result<usize, String> {
    let size = i32::from_be_bytes(prefix);
    usize::try_from(size)
        .ok()
        .filter(|s| (4..=max_bytes).contains(s))
        .ok_or_else(|| format!("response size {size}"))
}

/// The body of a response frame to `api_key` v`version`, after its header;
/// with `expected`, the header's correlation id must be that one.
pub fn response_body(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
    expected: Option<i32>,
) -> Result<Bytes, String> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
        .map_err(|e| format!("undecodable response header: {e}"))?;
    match expected {
        Some(id) if header.correlation_id != id => Err(format!(
            "response has correlation id {} instead of {id}",
            header.correlation_id
        )),
        _ => Ok(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn answer(error_code: i16, apis: &[(ApiKey, i16, i16)], version: i16) -> Bytes {
        let mut response = ApiVersionsResponse::default();
        response.error_code = error_code;
        response.api_keys = apis
            .iter()
            .map(|(key, min, max)| {
                let mut api = ApiVersion::default();
                api.api_key = *key as i16;
                api.min_version = *min;
                api.max_version = *max;
                api
            })
            .collect();
        let mut buf = BytesMut::new();
        response.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn picks_the_highest_common_version() {
        let range = |min, max| VersionRange { min, max };
        assert_eq!(common_version(range(0, 5), range(0, 6)), Some(5));
        assert_eq!(common_version(range(2, 9), range(1, 9)), Some(9));
        assert_eq!(common_version(range(1, 10), range(0, 4)), Some(4));
        assert_eq!(common_version(range(5, 9), range(0, 4)), None);
        assert_eq!(common_version(range(0, 0), range(0, 0)), Some(0));
        assert_eq!(common_version(range(0, 3), range(3, 9)), Some(3));
    }

    #[test]
    fn an_old_broker_is_asked_again_at_its_version() {
        let body = answer(UNSUPPORTED_VERSION, &[(ApiKey::ApiVersions, 0, 2)], 0);
        assert!(matches!(
            read_api_versions(&body, 4),
            Ok(Negotiation::AskAgainAt(2))
        ));
        let body = answer(0, &[(ApiKey::Metadata, 0, 12)], 2);
        let Ok(Negotiation::Agreed(table)) = read_api_versions(&body, 2) else {
            panic!("agreed")
        };
        assert_eq!(table.range(ApiKey::Metadata).map(|r| r.max), Some(12));
        assert!(table.range(ApiKey::Fetch).is_none());
        let body = answer(UNSUPPORTED_VERSION, &[], 0);
        assert!(matches!(
            read_api_versions(&body, 0),
            Ok(Negotiation::Refused(UNSUPPORTED_VERSION))
        ));
    }

    #[test]
    fn sizes_and_correlation_ids_are_checked() {
        assert_eq!(response_size(100i32.to_be_bytes(), 1 << 20), Ok(100));
        assert!(response_size((-1i32).to_be_bytes(), 1 << 20).is_err());
        assert!(response_size((2i32 << 20).to_be_bytes(), 1 << 20).is_err());
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(b"body");
        let frame = frame.freeze();
        let body = response_body(frame.clone(), ApiKey::Metadata, 1, Some(7)).unwrap();
        assert_eq!(&body[..], b"body");
        let err = response_body(frame, ApiKey::Metadata, 1, Some(8)).unwrap_err();
        assert!(err.contains("correlation id 7 instead of 8"), "{err}");
    }

    #[test]
    fn request_frames_are_numbered_from_one() {
        let mut ids = Correlation::default();
        let request = api_versions_request(3, "test");
        let (first, frame) = ids.frame(ApiKey::ApiVersions, 3, "test", &request).unwrap();
        let (second, _) = ids.frame(ApiKey::ApiVersions, 3, "test", &request).unwrap();
        assert_eq!((first, second), (1, 2));
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
    }
}
