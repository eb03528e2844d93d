//! Record batches on the client side of `strom produce` / `strom consume`:
//! building a RecordBatch v2 (optionally compressed) from records with keys
//! and headers, and reading the batches of a Fetch answer back into records.
//!
//! Why not `kafka_protocol::records`: its `Record` keeps headers in a map keyed
//! by UTF-8 strings, so two headers with the same key (legal in Kafka) collapse
//! into one and a non-UTF-8 header key fails the whole batch. Here headers are
//! a list of byte pairs, as on the wire. The codecs themselves are
//! `kafka_protocol::compression`'s (gzip, xerial-framed snappy as the Java
//! client writes it, raw snappy on read, LZ4 frame, zstd).
//!
//! Batch layout: see `strom_storage::batch::BatchHeader` (61-byte header). One
//! record, after the header (or inside the compressed payload), is:
//!
//! | field          | type                | notes                              |
//! |----------------|---------------------|------------------------------------|
//! | length         | varint              | bytes of the record after this     |
//! | attributes     | int8                | unused, 0                          |
//! | timestampDelta | varlong             | from the batch's base timestamp    |
//! | offsetDelta    | varint              | from the batch's base offset       |
//! | keyLength      | varint              | -1: null key                       |
//! | key            | bytes               |                                    |
//! | valueLength    | varint              | -1: null value (a tombstone)       |
//! | value          | bytes               |                                    |
//! | headerCount    | varint              |                                    |
//! | headers        | [keyLen varint, key, valueLen varint (-1 null), value] |  |
//!
//! Varints are zigzag-encoded (protobuf `sint64`).

use bytes::{Bytes, BytesMut};
use strom_storage::batch::{
    compute_crc, get_varint, parse_header, put_bytes, put_varint, seal, BatchError, NewBatch,
    BATCH_HEADER_BYTES, LOG_OVERHEAD,
};
/// Compression codec of a batch (`--compression`): the storage layer's.
pub use strom_storage::compression::Codec;

/// Parses `--compression`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
pub fn parse_codec(name: &str) -> Result<Codec, String> {
    Codec::parse(name)
        .ok_or_else(|| format!("'{name}' is not a codec; one of: none, gzip, snappy, lz4, zstd"))
}

/// A record header: key and value bytes (None: a null value).
pub type Header = (Bytes, Option<Bytes>);

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl OutRecord {
    /// Upper bound of the record's encoded size (used to fill batches).
    pub fn encoded_size_max(&self) -> usize {
        let field = |b: &Option<Bytes>| 5 + b.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 5 + k.len() + field(v))
            .sum();
        // length, attributes, timestamp delta, offset delta, header count.
        5 + 1 + 10 + 5 + 5 + field(&self.key) + field(&self.value) + headers
    }
}

/// A record read from a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// One batch of a Fetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// A transaction marker: carries no user records, only moves the position.
    pub is_control: bool,
    /// Empty for control batches.
    pub records: Vec<InRecord>,
}

/// Why consumed bytes are not valid batches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("batch at offset {offset}: {source}")]
    Batch { offset: i64, source: BatchError },
    #[error(
        "batch at offset {offset}: CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
    )]
    Crc {
        offset: i64,
        stored: u32,
        computed: u32,
    },
    #[error("batch at offset {offset}: unknown compression codec {codec}")]
    Codec { offset: i64, codec: i16 },
    #[error("batch at offset {offset}: cannot decompress ({codec:?}): {reason}")]
    Decompress {
        offset: i64,
        codec: Codec,
        reason: String,
    },
    #[error("batch at offset {offset}: malformed record {index}: {reason}")]
    Record {
        offset: i64,
        index: i32,
        reason: &'static str,
    },
}

/// Encodes records as one RecordBatch v2 with base offset 0 (the broker
/// assigns offsets), every record stamped `timestamp_ms` (CreateTime), no
/// producer id (not idempotent), compressed with `codec`.
pub fn encode_batch(
    records: &[OutRecord],
    timestamp_ms: i64,
    codec: Codec,
) -> Result<Vec<u8>, String> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let count = i32::try_from(records.len()).map_err(|_| "too many records for one batch")?;
    let mut plain = Vec::new();
    let mut body = Vec::new();
    for (delta, record) in records.iter().enumerate() {
        body.clear();
        body.push(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64);
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(&mut body, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_bytes(&mut body, Some(key));
            put_bytes(&mut body, value.as_deref());
        }
        put_varint(&mut plain, body.len() as i64);
        plain.extend_from_slice(&body);
    }
    let payload = compress(codec, plain)?;
    if BATCH_HEADER_BYTES + payload.len() > i32::MAX as usize {
        return Err("batch larger than 2 GiB".into());
    }
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + payload.len());
    NewBatch {
        attributes: codec.id(),
        ..NewBatch::new(0, count, timestamp_ms)
    }
    .put_header(&mut out);
    out.extend_from_slice(&payload);
    seal(&mut out);
    Ok(out)
}

/// Compression and bounded decompression are the broker's own
/// (`strom_storage::compression`, Kafka's framing for each codec).
fn compress(codec: Codec, plain: Vec<u8>) -> Result<Vec<u8>, String> {
    if codec == Codec::None {
        return Ok(plain);
    }
    let mut out = BytesMut::new();
    strom_storage::compression::compress(codec.id() as u8, &plain, &mut out)
        .map_err(|e| format!("{codec:?} compression failed: {e}"))?;
    Ok(out.to_vec())
}

fn decompress(codec: Codec, payload: Bytes) -> Result<Bytes, String> {
    if codec == Codec::None {
        return Ok(payload);
    }
    strom_storage::compression::decompress(codec.id() as u8, &payload).map(Bytes::from)
}

/// Decodes the batches of a Fetch answer's `records`. A batch cut off at the
/// end (the broker may return a partial last batch) is left out; everything
/// before it is returned.
pub fn decode_batches(buf: &Bytes) -> Result<Vec<InBatch>, RecordError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= LOG_OVERHEAD {
        let rest = &buf[pos..];
        let base_offset = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
        let header = match parse_header(rest) {
            Ok(h) => h,
            Err(BatchError::Truncated) => break,
            Err(source) => {
                return Err(RecordError::Batch {
                    offset: base_offset,
                    source,
                })
            }
        };
        let total = header.total_bytes();
        if rest.len() < total {
            break;
        }
        let batch = buf.slice(pos..pos + total);
        pos += total;
        let computed = compute_crc(&batch);
        if computed != header.crc {
            return Err(RecordError::Crc {
                offset: base_offset,
                stored: header.crc,
                computed,
            });
        }
        if header.is_control() {
            out.push(InBatch {
                base_offset,
                last_offset: header.last_offset(),
                is_control: true,
                records: Vec::new(),
            });
            continue;
        }
        let codec_id = header.attributes & 0x07;
        let codec = Codec::from_id(codec_id).ok_or(RecordError::Codec {
            offset: base_offset,
            codec: codec_id,
        })?;
        let payload = decompress(codec, batch.slice(BATCH_HEADER_BYTES..)).map_err(|reason| {
            RecordError::Decompress {
                offset: base_offset,
                codec,
                reason,
            }
        })?;
        let records = decode_records(&header, &payload)?;
        out.push(InBatch {
            base_offset,
            last_offset: header.last_offset(),
            is_control: false,
            records,
        });
    }
    Ok(out)
}

/// A cursor over record bytes.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<i64> {
        get_varint(&self.buf[..self.end], &mut self.pos)
    }

    fn bytes(&mut self) -> Option<Option<Bytes>> {
        let len = self.varint()?;
        if len < 0 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let stop = self.pos.checked_add(len).filter(|s| *s <= self.end)?;
        let field = self.buf.slice(self.pos..stop);
        self.pos = stop;
        Some(Some(field))
    }
}

fn decode_records(
    header: &strom_storage::batch::BatchHeader,
    payload: &Bytes,
) -> Result<Vec<InRecord>, RecordError> {
    let bad = |index: i32, reason: &'static str| RecordError::Record {
        offset: header.base_offset,
        index,
        reason,
    };
    if header.records_count < 0 {
        return Err(bad(0, "negative record count"));
    }
    // Each record takes at least 7 bytes: never reserve more than the bytes allow.
    let mut records = Vec::with_capacity((header.records_count as usize).min(payload.len() / 7));
    let mut reader = Reader {
        buf: payload,
        pos: 0,
        end: payload.len(),
    };
    for index in 0..header.records_count {
        let length = reader.varint().ok_or(bad(index, "truncated length"))?;
        let length = usize::try_from(length).map_err(|_| bad(index, "negative length"))?;
        let end = reader
            .pos
            .checked_add(length)
            .filter(|e| *e <= payload.len())
            .ok_or(bad(index, "longer than its batch"))?;
        let mut r = Reader {
            buf: payload,
            pos: reader.pos,
            end,
        };
        r.pos += 1; // attributes
        if r.pos > end {
            return Err(bad(index, "truncated attributes"));
        }
        let timestamp_delta = r.varint().ok_or(bad(index, "truncated timestamp"))?;
        let offset_delta = r.varint().ok_or(bad(index, "truncated offset delta"))?;
        let key = r.bytes().ok_or(bad(index, "truncated key"))?;
        let value = r.bytes().ok_or(bad(index, "truncated value"))?;
        let header_count = r.varint().ok_or(bad(index, "truncated header count"))?;
        if header_count < 0 || header_count as usize > length {
            return Err(bad(index, "impossible header count"));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let k = r
                .bytes()
                .ok_or(bad(index, "truncated header key"))?
                .ok_or(bad(index, "null header key"))?;
            let v = r.bytes().ok_or(bad(index, "truncated header value"))?;
            headers.push((k, v));
        }
        let timestamp_ms = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(timestamp_delta)
        };
        records.push(InRecord {
            offset: header.base_offset.saturating_add(offset_delta),
            timestamp_ms,
            key,
            value,
            headers,
        });
        reader.pos = end;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_storage::batch::{ATTRIBUTES_OFFSET, CRC_OFFSET};

    #[test]
    fn an_unknown_codec_is_refused_naming_the_choices() {
        assert_eq!(parse_codec("lz4"), Ok(Codec::Lz4));
        let err = parse_codec("zip").unwrap_err();
        assert!(
            err.contains("'zip'") && err.contains("none, gzip, snappy, lz4, zstd"),
            "{err}"
        );
    }

    fn record(key: Option<&str>, value: &str, headers: &[(&str, Option<&str>)]) -> OutRecord {
        OutRecord {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        Bytes::copy_from_slice(k.as_bytes()),
                        v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                    )
                })
                .collect(),
        }
    }

    /// Sets a batch's base offset as the broker would.
    fn at_offset(mut batch: Vec<u8>, base: i64) -> Vec<u8> {
        batch[..8].copy_from_slice(&base.to_be_bytes());
        batch
    }

    #[test]
    fn every_codec_round_trips_keys_values_and_duplicate_headers() {
        let records = vec![
            record(Some("k1"), "v1", &[("h", Some("1")), ("h", Some("2"))]),
            record(None, "", &[("null", None)]),
            record(Some(""), &"x".repeat(5000), &[]),
        ];
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let batch = at_offset(
                encode_batch(&records, 1_700_000_000_000, codec).unwrap(),
                40,
            );
            let header = parse_header(&batch).unwrap();
            assert_eq!(header.compression() as i16, codec.id());
            assert_eq!(header.records_count, 3);
            assert_eq!(header.total_bytes(), batch.len());
            let batches = decode_batches(&Bytes::from(batch)).unwrap();
            assert_eq!(batches.len(), 1, "{codec:?}");
            let got = &batches[0];
            assert_eq!(
                (got.base_offset, got.last_offset, got.is_control),
                (40, 42, false)
            );
            assert_eq!(got.records.len(), 3);
            for (i, (in_rec, out_rec)) in got.records.iter().zip(&records).enumerate() {
                assert_eq!(in_rec.offset, 40 + i as i64);
                assert_eq!(in_rec.timestamp_ms, 1_700_000_000_000);
                assert_eq!(in_rec.key, out_rec.key, "{codec:?}");
                assert_eq!(in_rec.value, out_rec.value, "{codec:?}");
                assert_eq!(in_rec.headers, out_rec.headers, "{codec:?}");
            }
        }
    }

    #[test]
    fn storage_validates_what_we_encode() {
        let batch = encode_batch(&[record(Some("a"), "b", &[])], 5, Codec::Zstd).unwrap();
        let headers = strom_storage::batch::validate_batches(&batch).unwrap();
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_cut_off_last_batch_is_left_out() {
        let one = at_offset(
            encode_batch(&[record(None, "a", &[])], 1, Codec::None).unwrap(),
            0,
        );
        let two = at_offset(
            encode_batch(&[record(None, "b", &[])], 1, Codec::Gzip).unwrap(),
            1,
        );
        let mut bytes = one.clone();
        bytes.extend_from_slice(&two[..two.len() - 3]);
        let batches = decode_batches(&Bytes::from(bytes)).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records[0].value.as_deref(), Some(&b"a"[..]));
        // Fewer bytes than a header: nothing, no error.
        assert_eq!(
            decode_batches(&Bytes::from(one[..20].to_vec())).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_flipped_byte_is_a_crc_error() {
        let mut batch = encode_batch(&[record(None, "abc", &[])], 1, Codec::None).unwrap();
        let last = batch.len() - 5;
        batch[last] ^= 1;
        let err = decode_batches(&Bytes::from(batch)).unwrap_err();
        assert!(matches!(err, RecordError::Crc { .. }), "{err}");
    }

    #[test]
    fn control_batches_carry_no_records() {
        let mut batch = encode_batch(&[record(None, "marker", &[])], 1, Codec::None).unwrap();
        batch[ATTRIBUTES_OFFSET + 1] |= 0x20 | 0x10; // control + transactional
        let crc = compute_crc(&batch);
        batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        let batches = decode_batches(&Bytes::from(at_offset(batch, 7))).unwrap();
        assert!(batches[0].is_control);
        assert!(batches[0].records.is_empty());
        assert_eq!(batches[0].last_offset, 7);
    }

    #[test]
    fn log_append_time_gives_every_record_the_max_timestamp() {
        let mut batch = encode_batch(
            &[record(None, "a", &[]), record(None, "b", &[])],
            10,
            Codec::None,
        )
        .unwrap();
        batch[ATTRIBUTES_OFFSET + 1] |= 0x08;
        batch[35..43].copy_from_slice(&99i64.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        let batches = decode_batches(&Bytes::from(batch)).unwrap();
        let stamps: Vec<i64> = batches[0].records.iter().map(|r| r.timestamp_ms).collect();
        assert_eq!(stamps, vec![99, 99]);
    }

    #[test]
    fn size_estimate_is_an_upper_bound() {
        let r = record(
            Some("key"),
            &"v".repeat(300),
            &[("a", Some("b")), ("c", None)],
        );
        let batch = encode_batch(std::slice::from_ref(&r), 0, Codec::None).unwrap();
        assert!(batch.len() - BATCH_HEADER_BYTES <= r.encoded_size_max());
    }
}
