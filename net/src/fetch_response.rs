//! Fetch responses, encoded by hand so that record bytes are never copied: the
//! response becomes a list of owned byte chunks interleaved with file regions that
//! are handed to `sendfile`.
//!
//! Wire format (v4-v17; "flexible" = v12+, where arrays/strings/bytes use unsigned
//! varint length+1 and every struct ends with a tagged-field section):
//! ```text
//! size                     i32
//! correlation_id           i32            response header (+ tagged section in v12+)
//! throttle_time_ms         i32
//! error_code               i16            v7+
//! session_id               i32            v7+
//! responses                array
//!   topic                  string         v4-v12
//!   topic_id               uuid (16)      v13+
//!   partitions             array
//!     partition_index      i32
//!     error_code           i16
//!     high_watermark       i64
//!     last_stable_offset   i64
//!     log_start_offset     i64            v5+
//!     aborted_transactions nullable array of (producer_id i64, first_offset i64)
//!     preferred_read_replica i32          v11+
//!     records              nullable bytes (RecordBatch v2 bytes, straight from the log)
//! ```

use crate::send::{FileSlice, SendItem};
use bytes::{BufMut, BytesMut};
use uuid::Uuid;

const FLEXIBLE_FROM: i16 = 12;
const TOPIC_ID_FROM: i16 = 13;

/// One partition's part of a fetch response.
#[derive(Debug, Clone)]
pub struct FetchPartitionData {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The aborted transactions overlapping the records, as (producer id,
    /// first offset); sent to read_committed fetches only.
    pub aborted_transactions: Vec<(i64, i64)>,
    /// `None` sends an empty record set.
    pub records: Option<FileSlice>,
}

/// One topic's part of a fetch response.
#[derive(Debug, Clone)]
pub struct FetchTopicData {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<FetchPartitionData>,
}

/// Top-level fields of a fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchResponseData {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    /// read_committed fetches get each partition's aborted-transactions
    /// list, others null.
    pub read_committed: bool,
    pub topics: Vec<FetchTopicData>,
}

fn put_uvarint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_uvarint(buf, len as u64 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

/// Encodes a fetch response; the result is ready for [`crate::send::write_items`].
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    data: &FetchResponseData,
) -> Vec<SendItem> {
    let flexible = version >= FLEXIBLE_FROM;
    let mut chunks: Vec<(BytesMut, Option<FileSlice>)> = Vec::new();
    let mut buf = BytesMut::with_capacity(512);
    buf.put_i32(0); // size, patched below
    buf.put_i32(correlation_id);
    if flexible {
        buf.put_u8(0);
    }
    buf.put_i32(data.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(data.error_code);
        buf.put_i32(data.session_id);
    }
    put_array_len(&mut buf, flexible, data.topics.len());
    for topic in &data.topics {
        if version >= TOPIC_ID_FROM {
            buf.put_slice(topic.topic_id.as_bytes());
        } else if flexible {
            put_uvarint(&mut buf, topic.name.len() as u64 + 1);
            buf.put_slice(topic.name.as_bytes());
        } else {
            buf.put_i16(topic.name.len() as i16);
            buf.put_slice(topic.name.as_bytes());
        }
        put_array_len(&mut buf, flexible, topic.partitions.len());
        for partition in &topic.partitions {
            buf.put_i32(partition.partition_index);
            buf.put_i16(partition.error_code);
            buf.put_i64(partition.high_watermark);
            buf.put_i64(partition.last_stable_offset);
            if version >= 5 {
                buf.put_i64(partition.log_start_offset);
            }
            match (data.read_committed, flexible) {
                (true, _) => {
                    put_array_len(&mut buf, flexible, partition.aborted_transactions.len());
                    for (producer_id, first_offset) in &partition.aborted_transactions {
                        buf.put_i64(*producer_id);
                        buf.put_i64(*first_offset);
                        if flexible {
                            buf.put_u8(0);
                        }
                    }
                }
                (false, true) => put_uvarint(&mut buf, 0),
                (false, false) => buf.put_i32(-1),
            }
            if version >= 11 {
                buf.put_i32(-1);
            }
            let records_len = partition.records.as_ref().map_or(0, |r| r.len);
            if flexible {
                put_uvarint(&mut buf, records_len + 1);
            } else {
                buf.put_i32(records_len as i32);
            }
            if let Some(region) = partition.records.as_ref().filter(|r| r.len > 0) {
                let full = std::mem::replace(&mut buf, BytesMut::with_capacity(256));
                chunks.push((full, Some(region.clone())));
            }
            if flexible {
                buf.put_u8(0); // partition tagged fields
            }
        }
        if flexible {
            buf.put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        buf.put_u8(0); // top-level tagged fields
    }
    chunks.push((buf, None));

    let total: u64 = chunks
        .iter()
        .map(|(bytes, file)| bytes.len() as u64 + file.as_ref().map_or(0, |f| f.len))
        .sum();
    let size = (total - 4) as i32;
    chunks[0].0[..4].copy_from_slice(&size.to_be_bytes());
    let mut items = Vec::with_capacity(chunks.len() * 2);
    for (bytes, file) in chunks {
        if !bytes.is_empty() {
            items.push(SendItem::Bytes(bytes.freeze()));
        }
        if let Some(file) = file {
            items.push(SendItem::File(file));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData as KpPartitionData,
    };
    use kafka_protocol::messages::{ApiKey, FetchResponse, ProducerId, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    fn materialize(items: &[SendItem]) -> Vec<u8> {
        let mut out = Vec::new();
        for item in items {
            match item {
                SendItem::Bytes(b) => out.extend_from_slice(b),
                SendItem::File(f) => {
                    let mut buf = vec![0u8; f.len as usize];
                    f.file.read_exact_at(&mut buf, f.position).unwrap();
                    out.extend_from_slice(&buf);
                }
            }
        }
        out
    }

    /// Our hand encoding must equal the kafka-protocol crate's for every version.
    #[test]
    fn matches_the_reference_codec_for_every_version() {
        let path = std::env::temp_dir().join(format!("strom-fetch-enc-{}", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"0123456789abcdefghij").unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let topic_id = Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        for (version, read_committed) in (4..=17i16).flat_map(|v| [(v, false), (v, true)]) {
            let ours = FetchResponseData {
                throttle_time_ms: 0,
                error_code: 0,
                session_id: 0,
                read_committed,
                topics: vec![FetchTopicData {
                    name: "orders".into(),
                    topic_id,
                    partitions: vec![
                        FetchPartitionData {
                            partition_index: 0,
                            error_code: 0,
                            high_watermark: 10,
                            last_stable_offset: 10,
                            log_start_offset: 0,
                            aborted_transactions: vec![(7, 2), (9, 5)],
                            records: Some(FileSlice {
                                file: file.clone(),
                                position: 3,
                                len: 7,
                            }),
                        },
                        FetchPartitionData {
                            partition_index: 1,
                            error_code: 1,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            aborted_transactions: Vec::new(),
                            records: None,
                        },
                    ],
                }],
            };
            let items = encode_fetch_response(version, 99, &ours);
            // Zero copy: the records stay a file region for sendfile, never bytes.
            let regions: Vec<(u64, u64)> = items
                .iter()
                .filter_map(|item| match item {
                    SendItem::File(f) => Some((f.position, f.len)),
                    SendItem::Bytes(_) => None,
                })
                .collect();
            assert_eq!(regions, vec![(3, 7)], "fetch v{version}");
            let wire = materialize(&items);

            let mut reference = FetchResponse::default();
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_static_str("orders"));
            topic.topic_id = topic_id;
            let mut p0 = KpPartitionData::default();
            p0.partition_index = 0;
            p0.high_watermark = 10;
            p0.last_stable_offset = 10;
            p0.log_start_offset = 0;
            p0.aborted_transactions = read_committed.then(|| {
                [(7, 2), (9, 5)]
                    .into_iter()
                    .map(|(pid, first)| {
                        let mut a = AbortedTransaction::default();
                        a.producer_id = ProducerId(pid);
                        a.first_offset = first;
                        a
                    })
                    .collect()
            });
            p0.records = Some(Bytes::from_static(b"3456789"));
            let mut p1 = KpPartitionData::default();
            p1.partition_index = 1;
            p1.error_code = 1;
            p1.high_watermark = -1;
            p1.last_stable_offset = -1;
            p1.log_start_offset = -1;
            p1.aborted_transactions = read_committed.then(Vec::new);
            p1.records = Some(Bytes::new());
            topic.partitions = vec![p0, p1];
            reference.responses = vec![topic];
            let mut expected = BytesMut::new();
            expected.put_i32(0);
            expected.put_i32(99);
            if ApiKey::Fetch.response_header_version(version) >= 1 {
                expected.put_u8(0);
            }
            reference.encode(&mut expected, version).unwrap();
            let size = (expected.len() - 4) as i32;
            expected[..4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(wire, expected.to_vec(), "fetch v{version}");
            let mut check = Bytes::from(wire);
            assert_eq!(check.get_i32() as usize, check.len());
        }
    }
}
