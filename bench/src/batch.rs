//! RecordBatch v2 bytes as the load generator writes and reads them. Pure
//! functions over buffers, no I/O.
//!
//! Every record the generator produces carries its *intended* send time in the
//! first 8 bytes of its value, so a consumer can compute end-to-end latency from
//! the same schedule the producer measured against (see `schedule.rs`):
//!
//! | value bytes | content                                                       |
//! |------------:|---------------------------------------------------------------|
//! |       0..8  | intended send time, µs since the run's epoch (u64 big-endian) |
//! |       8..   | payload (text-like pseudo-random bytes, see [`payload`])      |
//!
//! The batch layout is Kafka's (documented byte by byte on
//! `strom_storage::batch::BatchHeader`); records have no headers and a
//! timestamp delta of 0 (the batch timestamp is the wall clock when it closes).

use bytes::BytesMut;
use strom_storage::batch::{
    get_varint, parse_header, put_bytes, put_varint, seal, varint_len, NewBatch, BATCH_HEADER_BYTES,
};
pub use strom_storage::compression::Codec;
use strom_storage::compression::{compress, decompress};

/// Bytes of a value the generator needs for its timestamp.
pub const VALUE_STAMP_BYTES: usize = 8;

/// A `value_bytes`-long payload source: text-like pseudo-random bytes from a
/// fixed seed (a 32-letter alphabet in words), which compresses roughly as
/// log lines do, so the codecs have something to do. Records slice into it at
/// varying offsets, so no two neighbouring records are identical.
pub fn payload(value_bytes: usize) -> Vec<u8> {
    let len = value_bytes * 2 + 4096;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = 2 + (state % 9) as usize;
        for i in 0..word {
            out.push(b'a' + ((state >> (8 + 5 * i)) & 31) as u8 % 26);
        }
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// The records of one partition's open batch. Lives in one producer task;
/// the buffers are reused from batch to batch.
#[derive(Default)]
pub struct BatchBuilder {
    /// Encoded records (uncompressed).
    records: Vec<u8>,
    count: i32,
    /// Intended send time of each record, µs since the run's epoch.
    intended_us: Vec<u64>,
}

impl BatchBuilder {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Uncompressed bytes the batch would take on the wire.
    pub fn bytes(&self) -> usize {
        BATCH_HEADER_BYTES + self.records.len()
    }

    /// Adds one record: `key` (None = null), and a value of
    /// `VALUE_STAMP_BYTES + payload.len()` bytes starting with `intended_us`.
    pub fn push(&mut self, key: Option<&[u8]>, intended_us: u64, payload: &[u8]) {
        let offset_delta = i64::from(self.count);
        let value_len = (VALUE_STAMP_BYTES + payload.len()) as i64;
        let key_part = match key {
            Some(k) => varint_len(k.len() as i64) + k.len(),
            None => 1,
        };
        let body_len = 1 // attributes
            + 1 // timestamp delta 0
            + varint_len(offset_delta)
            + key_part
            + varint_len(value_len)
            + value_len as usize
            + 1; // header count 0
        let r = &mut self.records;
        put_varint(r, body_len as i64);
        r.push(0);
        put_varint(r, 0);
        put_varint(r, offset_delta);
        put_bytes(r, key);
        put_varint(r, value_len);
        r.extend_from_slice(&intended_us.to_be_bytes());
        r.extend_from_slice(payload);
        put_varint(r, 0);
        self.count += 1;
        self.intended_us.push(intended_us);
    }

    /// Writes the batch (header, records compressed with `codec`) to `out`,
    /// moves the intended send times to `intended_out`, and empties the
    /// builder for the next batch.
    pub fn finish(
        &mut self,
        codec: Codec,
        timestamp_ms: i64,
        out: &mut BytesMut,
        intended_out: &mut Vec<u64>,
    ) -> Result<(), String> {
        assert!(self.count > 0, "an empty batch is never sent");
        let start = out.len();
        NewBatch {
            attributes: codec.id(),
            ..NewBatch::new(0, self.count, timestamp_ms)
        }
        .put_header(out);
        compress(codec.id() as u8, &self.records, out)?;
        seal(&mut out[start..]);
        intended_out.extend_from_slice(&self.intended_us);
        self.records.clear();
        self.intended_us.clear();
        self.count = 0;
        Ok(())
    }
}

/// What a consumer learns from one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenRecord {
    pub offset: i64,
    /// The stamp of a record the generator wrote; None for a foreign or short value.
    pub intended_us: Option<u64>,
    pub value_bytes: usize,
}

/// Why fetched bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error("batch at offset {base_offset}: {reason}")]
    Batch { base_offset: i64, reason: String },
    #[error("unreadable batch header: {0}")]
    Header(String),
}

/// Calls `seen` for every record of every complete batch in `buf` (a Fetch
/// response's records; a partial batch at the end is skipped, as clients do).
/// Control batches are skipped but returned in the last offset. Returns the
/// offset after the last complete batch, or None if there was none.
pub fn walk_batches(
    buf: &[u8],
    mut seen: impl FnMut(SeenRecord),
) -> Result<Option<i64>, WalkError> {
    let mut pos = 0;
    let mut next_offset = None;
    while buf.len() - pos >= BATCH_HEADER_BYTES {
        let header = parse_header(&buf[pos..]).map_err(|e| WalkError::Header(e.to_string()))?;
        let total = header.total_bytes();
        if buf.len() - pos < total {
            break;
        }
        let fail = |reason: String| WalkError::Batch {
            base_offset: header.base_offset,
            reason,
        };
        if !header.is_control() {
            let body = &buf[pos + BATCH_HEADER_BYTES..pos + total];
            let mut walk = |records: &[u8]| {
                walk_records(records, header.base_offset, &mut seen)
                    .ok_or_else(|| fail("records do not parse".to_string()))
            };
            match header.compression() {
                0 => walk(body)?,
                codec => walk(&decompress(codec, body).map_err(fail)?)?,
            }
        }
        next_offset = Some(header.last_offset() + 1);
        pos += total;
    }
    Ok(next_offset)
}

/// Walks uncompressed records; None if they do not parse.
fn walk_records(records: &[u8], base_offset: i64, seen: &mut impl FnMut(SeenRecord)) -> Option<()> {
    let mut pos = 0;
    while pos < records.len() {
        let length = usize::try_from(get_varint(records, &mut pos)?).ok()?;
        let end = pos.checked_add(length)?;
        if end > records.len() {
            return None;
        }
        let mut field = pos + 1; // attributes
        get_varint(records, &mut field)?; // timestamp delta
        let offset_delta = get_varint(records, &mut field)?;
        let key_len = get_varint(records, &mut field)?;
        if key_len > 0 {
            field = field.checked_add(key_len as usize)?;
        }
        let value_len = get_varint(records, &mut field)?;
        let value_len = usize::try_from(value_len).unwrap_or(0);
        if field.checked_add(value_len)? > end {
            return None;
        }
        let intended_us = (value_len >= VALUE_STAMP_BYTES).then(|| {
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&records[field..field + VALUE_STAMP_BYTES]);
            u64::from_be_bytes(stamp)
        });
        seen(SeenRecord {
            offset: base_offset + offset_delta,
            intended_us,
            value_bytes: value_len,
        });
        pos = end;
    }
    Some(())
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), which its
/// default partitioner applies to keys.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) as u32 % partitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_storage::batch::validate_batches;

    fn build(codec: Codec, n: u64, key: bool) -> (BytesMut, Vec<u64>) {
        let payload = payload(100);
        let mut b = BatchBuilder::default();
        for i in 0..n {
            let k = format!("key-{i}");
            b.push(key.then_some(k.as_bytes()), 1000 + i, &payload[..92]);
        }
        let mut out = BytesMut::new();
        let mut intended = Vec::new();
        b.finish(codec, 1_700_000_000_000, &mut out, &mut intended)
            .unwrap();
        assert!(b.is_empty());
        (out, intended)
    }

    #[test]
    fn batches_validate_and_walk_back_in_every_codec() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let (buf, intended) = build(codec, 50, codec == Codec::Lz4);
            let headers = validate_batches(&buf).unwrap();
            assert_eq!(headers.len(), 1);
            assert_eq!(headers[0].records_count, 50);
            assert_eq!(headers[0].compression(), codec.id() as u8);
            assert_eq!(intended, (1000..1050).collect::<Vec<_>>());
            let mut seen = Vec::new();
            let next = walk_batches(&buf, |r| seen.push(r)).unwrap();
            assert_eq!(next, Some(50), "{codec:?}");
            assert_eq!(seen.len(), 50);
            for (i, r) in seen.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.intended_us, Some(1000 + i as u64));
                assert_eq!(r.value_bytes, 100);
            }
        }
    }

    #[test]
    fn a_partial_trailing_batch_is_skipped() {
        let (mut buf, _) = build(Codec::None, 3, false);
        let (second, _) = build(Codec::None, 3, false);
        buf.extend_from_slice(&second[..second.len() - 5]);
        let mut count = 0;
        assert_eq!(walk_batches(&buf, |_| count += 1).unwrap(), Some(3));
        assert_eq!(count, 3);
    }

    #[test]
    fn the_uncompressed_encoding_matches_the_storage_reference() {
        let mut b = BatchBuilder::default();
        b.push(Some(b"k"), 7, b"payload");
        let mut out = BytesMut::new();
        b.finish(Codec::None, 5, &mut out, &mut Vec::new()).unwrap();
        let records = strom_storage::batch::records(&out).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].key.as_deref(), Some(b"k".as_slice()));
        let value = records[0].value.as_deref().unwrap();
        assert_eq!(&value[..8], &7u64.to_be_bytes());
        assert_eq!(&value[8..], b"payload");
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), want, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), Some(v));
        }
    }
}
