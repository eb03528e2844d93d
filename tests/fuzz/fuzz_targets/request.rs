//! A request frame body (after the size prefix) from an untrusted client:
//! header classification, the bounds check and the decoder of every served API
//! must never panic or allocate without bound.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_net::header::{classify, Classified};
use strom_net::request::decode_request;
use strom_net::versions::ApiSupport;

fuzz_target!(|data: &[u8]| {
    let support = ApiSupport::kafka_4_0();
    if let Ok(Classified::Request(info, body)) = classify(Bytes::copy_from_slice(data), &support) {
        let _ = decode_request(&info, body);
    }
});
