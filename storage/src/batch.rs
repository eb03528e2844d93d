//! Kafka RecordBatch (magic v2) headers: parsing, validation of what a
//! producer sent, and in-place offset assignment. Pure functions, no I/O.
//!
//! The broker never parses individual records: everything it needs (offsets,
//! timestamps, CRC) lives in the fixed 61-byte batch header.
//!
//! The byte layout is documented on [`BatchHeader`].

use thiserror::Error;

/// Size of the fixed RecordBatch v2 header (everything before the records).
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before and including `batchLength` (baseOffset + batchLength); a
/// batch occupies `LOG_OVERHEAD + batchLength` bytes.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength`: the header minus the log overhead, i.e. a
/// batch with no record bytes at all.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i32;

/// Stamped by the leader; outside the CRC.
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
/// Where the CRC-32C of a batch sits.
pub const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub const ATTRIBUTES_OFFSET: usize = 21;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
/// Highest compression codec id Kafka defines (zstd).
const MAX_COMPRESSION: u8 = 4;

/// Why a buffer is not a sequence of valid v2 batches.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared batch length needs.
    #[error("record batch is truncated")]
    Truncated,
    /// Not a v2 batch (v0/v1 message sets are not supported).
    #[error("unsupported record batch magic {0}")]
    BadMagic(i8),
    /// `batchLength` smaller than a bare header.
    #[error("invalid record batch length {0}")]
    BadLength(i32),
    /// Stored CRC does not match the CRC-32C of the batch contents.
    #[error("record batch CRC mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    /// Some other structural problem.
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
}

/// The decoded fixed header of a RecordBatch v2.
///
/// On-disk / on-wire layout of one batch (all integers big-endian); the
/// `.log` files hold such batches back to back:
///
/// | offset | size | field                | notes                                              |
/// |-------:|-----:|----------------------|----------------------------------------------------|
/// |      0 |    8 | baseOffset i64       | rewritten by the broker; NOT covered by the CRC    |
/// |      8 |    4 | batchLength i32      | bytes after this field (total = 12 + batchLength)  |
/// |     12 |    4 | partitionLeaderEpoch | not covered by the CRC                             |
/// |     16 |    1 | magic i8             | must be 2                                          |
/// |     17 |    4 | crc u32              | CRC-32C (Castagnoli) of bytes 21..end of batch     |
/// |     21 |    2 | attributes i16       | bits 0-2 compression (0..=4), bit 3 timestamp type |
/// |        |      |                      | (1 = LogAppendTime), bit 4 transactional, bit 5    |
/// |        |      |                      | control batch                                      |
/// |     23 |    4 | lastOffsetDelta i32  | last offset = baseOffset + lastOffsetDelta         |
/// |     27 |    8 | baseTimestamp i64    |                                                    |
/// |     35 |    8 | maxTimestamp i64     |                                                    |
/// |     43 |    8 | producerId i64       |                                                    |
/// |     51 |    2 | producerEpoch i16    |                                                    |
/// |     53 |    4 | baseSequence i32     |                                                    |
/// |     57 |    4 | recordsCount i32     |                                                    |
/// |     61 |    … | records              | opaque to the broker (maybe compressed)            |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Bytes the whole batch occupies, header included.
    pub fn total_bytes(&self) -> usize {
        // batch_length is validated >= MIN_BATCH_LENGTH by parse_header, so
        // the conversion cannot fail for parsed headers; clamp defensively.
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record of the batch.
    pub fn last_offset(&self) -> i64 {
        // Saturating: a corrupt header read during recovery must not panic.
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// True when the broker stamped the batch with its own append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn be_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_be_bytes(b)
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Parses the 61-byte header at the start of `buf`. Checks only what the
/// header alone can tell: magic == 2 and a plausible `batchLength`.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    // Check the magic before the length: an old-format (v0/v1) message can
    // be shorter than a v2 header, and should be reported as the wrong
    // format rather than as truncated. The magic sits at byte 16 in all
    // formats.
    if buf.len() > MAGIC_OFFSET {
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
    }
    if buf.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated);
    }
    let batch_length = be_i32(buf, 8);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::BadLength(batch_length));
    }
    Ok(BatchHeader {
        base_offset: be_i64(buf, 0),
        batch_length,
        partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
        magic: buf[MAGIC_OFFSET] as i8,
        crc: be_u32(buf, CRC_OFFSET),
        attributes: be_i16(buf, ATTRIBUTES_OFFSET),
        last_offset_delta: be_i32(buf, 23),
        base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
        max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
        producer_id: be_i64(buf, 43),
        producer_epoch: be_i16(buf, 51),
        base_sequence: be_i32(buf, 53),
        records_count: be_i32(buf, 57),
    })
}

/// CRC-32C of a complete batch's covered region (attributes to the end).
/// `batch` must be exactly one whole batch of at least header size.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// Checks the header fields that need no CRC: used both for producer input
/// and for log recovery.
pub fn check_header_fields(header: &BatchHeader) -> Result<(), BatchError> {
    if header.records_count < 0 {
        return Err(BatchError::Corrupt("negative records count"));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::Corrupt("negative last offset delta"));
    }
    if header.compression() > MAX_COMPRESSION {
        return Err(BatchError::Corrupt("unknown compression codec"));
    }
    Ok(())
}

/// Validates the records a producer sent for one partition: one or more
/// complete v2 batches back to back, exactly tiling `buf`, each with a
/// correct CRC-32C. Returns the parsed headers in order.
pub fn validate_batches(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Truncated);
    }
    let mut headers = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let header = parse_header(rest)?;
        let total = header.total_bytes();
        if total > rest.len() {
            return Err(BatchError::Truncated);
        }
        check_header_fields(&header)?;
        let actual = compute_crc(&rest[..total]);
        if actual != header.crc {
            return Err(BatchError::CrcMismatch {
                expected: header.crc,
                actual,
            });
        }
        headers.push(header);
        pos += total;
    }
    Ok(headers)
}

/// Rewrites the base offset of each batch in `buf` so that the batches get
/// consecutive offsets starting at `first_offset`; batch k gets
/// `first_offset + Σ (last_offset_delta + 1)` of the batches before it.
///
/// With `log_append_time_ms`, also marks each batch as LogAppendTime and
/// sets its base and max timestamps to that time; since the attributes and
/// timestamps are covered by the CRC, the CRC is recomputed. (The base
/// offset is outside the CRC, so plain offset assignment needs no CRC work.)
///
/// `headers` must come from [`validate_batches`] on this same buffer; a
/// header that would run past the end of `buf` stops the rewrite there.
/// Returns the next offset to assign.
pub fn assign_offsets(
    buf: &mut [u8],
    first_offset: i64,
    headers: &[BatchHeader],
    log_append_time_ms: Option<i64>,
) -> i64 {
    let mut next = first_offset;
    let mut pos = 0usize;
    for header in headers {
        let total = header.total_bytes();
        let Some(batch) = buf.get_mut(pos..pos + total) else {
            break;
        };
        if batch.len() < BATCH_HEADER_BYTES {
            break;
        }
        batch[0..8].copy_from_slice(&next.to_be_bytes());
        if let Some(ts) = log_append_time_ms {
            let attributes = header.attributes | LOG_APPEND_TIME_FLAG;
            batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .copy_from_slice(&attributes.to_be_bytes());
            batch[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
                .copy_from_slice(&ts.to_be_bytes());
            batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
                .copy_from_slice(&ts.to_be_bytes());
            let crc = compute_crc(batch);
            batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        }
        next += i64::from(header.last_offset_delta) + 1;
        pos += total;
    }
    next
}

/// Writes `leader_epoch` into the partitionLeaderEpoch field (bytes 12..16)
/// of every batch of `buf`, as a leader does when it appends. The field is
/// outside the CRC, so the batches stay valid without CRC work.
///
/// `headers` must come from [`validate_batches`] on this same buffer; a
/// header that would run past the end of `buf` stops the rewrite there.
pub fn set_partition_leader_epoch(buf: &mut [u8], headers: &[BatchHeader], leader_epoch: i32) {
    let mut pos = 0usize;
    for header in headers {
        let total = header.total_bytes();
        let Some(batch) = buf.get_mut(pos..pos + total) else {
            break;
        };
        if batch.len() < BATCH_HEADER_BYTES {
            break;
        }
        batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&leader_epoch.to_be_bytes());
        pos += total;
    }
}

/// Appends `value` as a zigzag varint: Kafka's record fields (protobuf
/// `sint64`), 1 to 10 bytes.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes [`put_varint`] writes for `value`.
pub fn varint_len(value: i64) -> usize {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    let mut len = 1;
    while v >= 0x80 {
        v >>= 7;
        len += 1;
    }
    len
}

/// Appends a record's bytes field: its length as a varint (-1: null), then
/// the bytes.
pub fn put_bytes(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
        None => put_varint(out, -1),
    }
}

/// The header fields of a batch being written (layout: [`BatchHeader`]).
/// [`NewBatch::put_header`] writes them with the batch length and CRC left
/// zero; [`seal`] fills both in once the records follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewBatch {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Codec (bits 0-2), timestamp type, transactional and control flags.
    pub attributes: i16,
    pub records_count: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl NewBatch {
    /// `records_count` uncompressed records from `base_offset`, all stamped
    /// `timestamp_ms` (CreateTime), no producer, no leader epoch (-1, as
    /// clients send it).
    pub fn new(base_offset: i64, records_count: i32, timestamp_ms: i64) -> NewBatch {
        NewBatch {
            base_offset,
            partition_leader_epoch: -1,
            attributes: 0,
            records_count,
            base_timestamp: timestamp_ms,
            max_timestamp: timestamp_ms,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    /// Appends the 61-byte header; batch length and CRC are zero until
    /// [`seal`].
    pub fn put_header(&self, out: &mut impl bytes::BufMut) {
        out.put_i64(self.base_offset);
        out.put_i32(0); // batch length, by seal
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(2); // magic
        out.put_u32(0); // crc, by seal
        out.put_i16(self.attributes);
        out.put_i32((self.records_count - 1).max(0)); // last offset delta
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.records_count);
    }
}

/// Fills in the batch length and CRC of one whole batch (header written by
/// [`NewBatch::put_header`], records after it).
///
/// Panics if `batch` is shorter than a header or longer than 2 GiB: callers
/// bound their batches far below.
pub fn seal(batch: &mut [u8]) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "a batch holds its header"
    );
    let batch_length =
        i32::try_from(batch.len() - LOG_OVERHEAD).expect("batches are bounded far below 2 GiB");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads a zigzag varint (Kafka record fields) at `*pos`, advancing it.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// The (offset, timestamp) of every record of an uncompressed batch, in order.
/// Record layout (v2, after the 61-byte batch header), each field a zigzag varint
/// unless noted: length, attributes (i8), timestampDelta, offsetDelta, then key,
/// value and headers, skipped via `length`. Returns None for a compressed batch
/// or one whose records do not parse.
pub fn record_timestamps(batch: &[u8]) -> Option<Vec<(i64, i64)>> {
    Some(
        records(batch)?
            .into_iter()
            .map(|r| (r.offset, r.timestamp))
            .collect(),
    )
}

/// Builds a valid, uncompressed v2 batch holding one record per value (no
/// key, no headers), all with timestamp `timestamp_ms`. Meant for tests and
/// tools.
pub fn encode_simple_batch(base_offset: i64, timestamp_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    let records: Vec<KeyValue> = values.iter().map(|v| (None, Some(*v))).collect();
    encode_batch(base_offset, timestamp_ms, &records)
}

/// A record's key and value for [`encode_batch`]; None is null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One record of an uncompressed batch, as [`records`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    /// None: a tombstone.
    pub value: Option<Vec<u8>>,
}

/// The records of an uncompressed batch (keys and values; headers skipped).
/// None for a compressed batch or records that do not parse.
pub fn records(batch: &[u8]) -> Option<Vec<Record>> {
    let header = parse_header(batch).ok()?;
    if header.compression() != 0 || batch.len() < header.total_bytes() {
        return None;
    }
    let body = &batch[BATCH_HEADER_BYTES..header.total_bytes()];
    let mut out = Vec::new();
    let mut pos = 0;
    let bytes_field = |pos: &mut usize, end: usize| -> Option<Option<Vec<u8>>> {
        let len = get_varint(body, pos)?;
        if len < 0 {
            return Some(None);
        }
        let stop = pos.checked_add(usize::try_from(len).ok()?)?;
        if stop > end {
            return None;
        }
        let field = body[*pos..stop].to_vec();
        *pos = stop;
        Some(Some(field))
    };
    while pos < body.len() {
        let length = usize::try_from(get_varint(body, &mut pos)?).ok()?;
        let end = pos.checked_add(length)?;
        if end > body.len() {
            return None;
        }
        let mut field = pos + 1; // attributes
        let timestamp_delta = get_varint(body, &mut field)?;
        let offset_delta = get_varint(body, &mut field)?;
        let key = bytes_field(&mut field, end)?;
        let value = bytes_field(&mut field, end)?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(timestamp_delta)
        };
        out.push(Record {
            offset: header.base_offset.saturating_add(offset_delta),
            timestamp,
            key,
            value,
        });
        pos = end;
    }
    Some(out)
}

/// Builds a valid, uncompressed v2 batch of (key, value) records (None =
/// null; a null value is a tombstone), no headers, all with timestamp
/// `timestamp_ms`. The broker uses it for its internal topics.
pub fn encode_batch(base_offset: i64, timestamp_ms: i64, values: &[KeyValue]) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, (key, value)) in values.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0u8); // record attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i as i64); // offset delta
        put_bytes(&mut body, *key);
        put_bytes(&mut body, *value);
        put_varint(&mut body, 0); // header count
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    NewBatch {
        partition_leader_epoch: 0,
        ..NewBatch::new(base_offset, values.len() as i32, timestamp_ms)
    }
    .put_header(&mut out);
    out.extend_from_slice(&records);
    seal(&mut out);
    out
}

/// The kind of a transaction marker (a control batch's one record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

/// Sets a batch's producer fields (id, epoch, base sequence) and its
/// transactional flag, and recomputes the CRC; for the batches the broker
/// writes on behalf of a transactional producer (TxnOffsetCommit).
pub fn set_producer(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | TRANSACTIONAL_FLAG;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A transaction marker for `producer_id` at `epoch`: a control batch of
/// one record whose key is (version 0, type: 0 abort, 1 commit) and whose
/// value is (version 0, coordinator epoch), as Kafka writes them.
pub fn encode_marker(
    producer_id: i64,
    epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let kind: i16 = match marker {
        Marker::Abort => 0,
        Marker::Commit => 1,
    };
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = 0i16.to_be_bytes().to_vec();
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut out = encode_batch(0, timestamp_ms, &[(Some(&key), Some(&value))]);
    out[21..23].copy_from_slice(&(TRANSACTIONAL_FLAG | CONTROL_FLAG).to_be_bytes());
    set_producer(&mut out, producer_id, epoch, -1);
    out
}

/// The marker a control batch carries, from its first record's key, and
/// the coordinator epoch from its value (-1 if the value has none); `None`
/// when the batch is not a control batch or its key is not a marker's.
pub fn marker_of(batch: &[u8]) -> Option<(Marker, i32)> {
    let header = parse_header(batch).ok()?;
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let body = batch.get(BATCH_HEADER_BYTES..header.total_bytes())?;
    let mut pos = 0;
    get_varint(body, &mut pos)?; // record length
    pos += 1; // record attributes
    get_varint(body, &mut pos)?; // timestamp delta
    get_varint(body, &mut pos)?; // offset delta
    let key_len = get_varint(body, &mut pos)?;
    if key_len < 4 {
        return None;
    }
    let key = body.get(pos..pos + 4)?;
    let marker = match i16::from_be_bytes([key[2], key[3]]) {
        0 => Marker::Abort,
        1 => Marker::Commit,
        _ => return None,
    };
    pos += usize::try_from(key_len).ok()?;
    let value_len = get_varint(body, &mut pos)?;
    let coordinator_epoch = match body.get(pos..pos + 6) {
        Some(v) if value_len >= 6 => i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
        _ => -1,
    };
    Some((marker, coordinator_epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_keys_and_tombstones() {
        let b = encode_batch(
            7,
            42,
            &[
                (Some(b"k1".as_slice()), Some(b"v1".as_slice())),
                (Some(b"k2"), None),
                (None, Some(b"")),
            ],
        );
        assert!(validate_batches(&b).is_ok());
        let got = records(&b).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].offset, 7);
        assert_eq!(got[0].key.as_deref(), Some(b"k1".as_slice()));
        assert_eq!(got[1].value, None);
        assert_eq!(got[2].key, None);
        assert_eq!(got[2].value.as_deref(), Some(b"".as_slice()));
        assert_eq!(got[2].timestamp, 42);
    }

    #[test]
    fn record_timestamps_of_an_uncompressed_batch() {
        let mut b = encode_simple_batch(100, 5_000, &[b"a", b"b", b"c"]);
        assert_eq!(
            record_timestamps(&b),
            Some(vec![(100, 5_000), (101, 5_000), (102, 5_000)])
        );
        // A compressed batch is not parsed.
        b[ATTRIBUTES_OFFSET + 1] |= 1;
        assert_eq!(record_timestamps(&b), None);
        // Garbage records are not trusted.
        let mut bad = encode_simple_batch(0, 1, &[b"xyz"]);
        let last = bad.len() - 6;
        bad[BATCH_HEADER_BYTES] = 0x7e;
        bad[last] = 0xff;
        assert_eq!(record_timestamps(&bad), None);
    }

    fn batch(n: usize, ts: i64) -> Vec<u8> {
        let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        encode_simple_batch(0, ts, &refs)
    }

    #[test]
    fn parse_and_validate_round_trip() {
        let mut buf = batch(3, 1000);
        buf.extend_from_slice(&batch(2, 2000));
        let headers = validate_batches(&buf).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].last_offset_delta, 2);
        assert_eq!(headers[0].records_count, 3);
        assert_eq!(headers[1].max_timestamp, 2000);
        assert_eq!(
            headers[0].total_bytes() + headers[1].total_bytes(),
            buf.len()
        );
        assert_eq!(headers[0].compression(), 0);
        assert!(!headers[0].is_log_append_time());
    }

    #[test]
    fn rejects_bad_magic() {
        let mut buf = batch(1, 0);
        buf[16] = 1;
        assert_eq!(validate_batches(&buf), Err(BatchError::BadMagic(1)));
        // A short old-format message is still reported as a format problem.
        assert_eq!(validate_batches(&buf[..30]), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn rejects_bad_crc() {
        let mut buf = batch(2, 0);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&buf),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn base_offset_and_epoch_are_outside_the_crc() {
        let mut buf = batch(2, 0);
        buf[0..8].copy_from_slice(&77i64.to_be_bytes());
        buf[12..16].copy_from_slice(&5i32.to_be_bytes());
        assert!(validate_batches(&buf).is_ok());
    }

    #[test]
    fn rejects_truncated_and_trailing_bytes() {
        let buf = batch(2, 0);
        assert_eq!(
            validate_batches(&buf[..buf.len() - 1]),
            Err(BatchError::Truncated)
        );
        assert_eq!(validate_batches(&buf[..40]), Err(BatchError::Truncated));
        assert_eq!(validate_batches(&[]), Err(BatchError::Truncated));
        let mut trailing = buf.clone();
        trailing.extend_from_slice(&[0u8; 5]);
        assert!(validate_batches(&trailing).is_err());
        let mut two = buf.clone();
        two.extend_from_slice(&buf[..buf.len() - 3]);
        assert_eq!(validate_batches(&two), Err(BatchError::Truncated));
    }

    #[test]
    fn rejects_bad_length_and_fields() {
        let mut buf = batch(1, 0);
        buf[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(validate_batches(&buf), Err(BatchError::BadLength(10)));

        let mut buf = batch(1, 0);
        buf[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = compute_crc(&buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batches(&buf),
            Err(BatchError::Corrupt(_))
        ));

        let mut buf = batch(1, 0);
        buf[21..23].copy_from_slice(&7i16.to_be_bytes());
        let crc = compute_crc(&buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batches(&buf),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn assigns_offsets_without_touching_crc() {
        let mut buf = batch(3, 10);
        buf.extend_from_slice(&batch(1, 20));
        buf.extend_from_slice(&batch(4, 30));
        let headers = validate_batches(&buf).unwrap();
        let next = assign_offsets(&mut buf, 100, &headers, None);
        assert_eq!(next, 108);
        let after = validate_batches(&buf).unwrap();
        let bases: Vec<i64> = after.iter().map(|h| h.base_offset).collect();
        assert_eq!(bases, vec![100, 103, 104]);
        assert_eq!(after[2].last_offset(), 107);
        assert_eq!(after[0].crc, headers[0].crc);
    }

    #[test]
    fn leader_epoch_is_stamped_on_every_batch_without_touching_crc() {
        let mut buf = batch(3, 10);
        buf.extend_from_slice(&batch(1, 20));
        let headers = validate_batches(&buf).unwrap();
        set_partition_leader_epoch(&mut buf, &headers, 0x0102_0304);
        let after = validate_batches(&buf).expect("the CRC does not cover the epoch");
        let pos = headers[0].total_bytes();
        assert_eq!(&buf[12..16], &[1, 2, 3, 4]);
        assert_eq!(&buf[pos + 12..pos + 16], &[1, 2, 3, 4]);
        for (h, before) in after.iter().zip(&headers) {
            assert_eq!(h.partition_leader_epoch, 0x0102_0304);
            assert_eq!(h.crc, before.crc);
        }
    }

    #[test]
    fn log_append_time_rewrites_timestamps_and_crc() {
        let mut buf = batch(3, 10);
        buf.extend_from_slice(&batch(2, 20));
        let headers = validate_batches(&buf).unwrap();
        let next = assign_offsets(&mut buf, 5, &headers, Some(123_456));
        assert_eq!(next, 10);
        let after = validate_batches(&buf).expect("CRC must be recomputed");
        for h in &after {
            assert!(h.is_log_append_time());
            assert_eq!(h.max_timestamp, 123_456);
            assert_eq!(h.base_timestamp, 123_456);
        }
        assert_eq!(after[1].base_offset, 8);
    }

    #[test]
    fn markers_round_trip_and_validate() {
        for marker in [Marker::Abort, Marker::Commit] {
            let bytes = encode_marker(42, 3, marker, 7, 1_000);
            let headers = validate_batches(&bytes).expect("a valid batch");
            assert_eq!(headers.len(), 1);
            let h = headers[0];
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 3, -1)
            );
            assert_eq!(marker_of(&bytes), Some((marker, 7)));
        }
        let plain = encode_simple_batch(0, 1_000, &[b"v"]);
        assert_eq!(marker_of(&plain), None);
    }
}
