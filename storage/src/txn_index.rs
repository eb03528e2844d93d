//! The aborted-transaction index of a segment (`<base offset>.txnindex`,
//! Kafka's layout): one 34-byte entry per transaction aborted by a marker in
//! that segment, in marker order:
//!
//! | size | field                  |
//! |-----:|------------------------|
//! |    2 | version i16 (0)        |
//! |    8 | producer id i64        |
//! |    8 | first offset i64       |
//! |    8 | last offset i64 (the marker's) |
//! |    8 | last stable offset i64 (when the marker was written) |
//!
//! A read_committed fetch is told which of these overlap the records it
//! gets, so the client drops the aborted records. The log keeps every
//! segment's entries in memory (see `PartitionLog` in `log.rs`); the
//! files exist so the list survives a restart without scanning every
//! segment for markers.

/// Bytes of one entry.
pub const ENTRY_BYTES: usize = 34;

/// A transaction aborted on this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }
}

/// The entries of an index file's bytes; a torn last entry (a crash in the
/// middle of its write) and entries of an unknown version are left out.
pub fn decode(buf: &[u8]) -> Vec<AbortedTxn> {
    let i64_at =
        |e: &[u8], at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
    buf.chunks_exact(ENTRY_BYTES)
        .filter(|e| e[0] == 0 && e[1] == 0)
        .map(|e| AbortedTxn {
            producer_id: i64_at(e, 2),
            first_offset: i64_at(e, 10),
            last_offset: i64_at(e, 18),
            last_stable_offset: i64_at(e, 26),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_one_is_dropped() {
        let a = AbortedTxn {
            producer_id: 9,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 10,
        };
        let b = AbortedTxn {
            producer_id: 4,
            first_offset: 15,
            last_offset: 30,
            last_stable_offset: 15,
        };
        let mut bytes = a.encode().to_vec();
        bytes.extend_from_slice(&b.encode());
        assert_eq!(decode(&bytes), vec![a, b]);
        assert_eq!(decode(&bytes[..ENTRY_BYTES + 20]), vec![a]);
    }
}
