//! A request frame body (after the size prefix) from an untrusted client:
//! header classification, the bounds check and the decoder of every served API
//! must never panic or allocate without bound.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::*;
use libfuzzer_sys::fuzz_target;
use strom_net::header::{classify, decode_body, Classified};
use strom_net::versions::ApiSupport;

fuzz_target!(|data: &[u8]| {
    let support = ApiSupport::kafka_4_0();
    let Ok(Classified::Request(info, body)) = classify(Bytes::copy_from_slice(data), &support)
    else {
        return;
    };
    let (key, version) = (info.api_key, info.api_version);
    let _ = match key {
        ApiKey::Produce => decode_body::<ProduceRequest>(body, key, version).map(drop),
        ApiKey::Fetch => decode_body::<FetchRequest>(body, key, version).map(drop),
        ApiKey::ListOffsets => decode_body::<ListOffsetsRequest>(body, key, version).map(drop),
        ApiKey::Metadata => decode_body::<MetadataRequest>(body, key, version).map(drop),
        ApiKey::CreateTopics => decode_body::<CreateTopicsRequest>(body, key, version).map(drop),
        ApiKey::DeleteTopics => decode_body::<DeleteTopicsRequest>(body, key, version).map(drop),
        ApiKey::ApiVersions => decode_body::<ApiVersionsRequest>(body, key, version).map(drop),
        ApiKey::FindCoordinator => {
            decode_body::<FindCoordinatorRequest>(body, key, version).map(drop)
        }
        _ => Ok(()),
    };
});
