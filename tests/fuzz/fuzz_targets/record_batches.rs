//! The records of a Produce request: batch validation, offset assignment and the
//! record walk used by ListOffsets must never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_storage::batch::{assign_offsets, record_timestamps, validate_batches};

fuzz_target!(|data: &[u8]| {
    let _ = record_timestamps(data);
    if let Ok(headers) = validate_batches(data) {
        let mut copy = data.to_vec();
        assign_offsets(&mut copy, 1 << 40, &headers, Some(1_700_000_000_000));
        // Assigning offsets (and log-append time) keeps every batch valid.
        assert!(validate_batches(&copy).is_ok());
    }
});
