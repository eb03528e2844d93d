//! Re-compression of produced batches for a topic's `compression.type`.
//!
//! With `compression.type=producer` (the default) batches are stored exactly
//! as produced. With a codec name (`gzip`, `snappy`, `lz4`, `zstd`) or
//! `uncompressed`, a batch produced with another codec is rewritten, as
//! Kafka does: its records section is decompressed and compressed again with
//! the topic's codec, and the header gets the new codec bits, length and
//! CRC. Records themselves are not parsed, so keys, values, headers
//! (duplicates included), offsets deltas and timestamps stay byte for byte.
//!
//! Decompression is bounded by `RECOMPRESS_BATCH_BYTES_MAX`: a batch that
//! inflates beyond it is refused rather than exhausting the shard's memory.

use crate::batch::{compute_crc, BatchHeader};
use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::Compressor;
use std::io::Read;
use strom_tuning::limits::RECOMPRESS_BATCH_BYTES_MAX;

/// Size of a RecordBatch v2 header.
const HEADER_BYTES: usize = 61;
const ATTRIBUTES_OFFSET: usize = 21;
const CRC_OFFSET: usize = 17;
const COMPRESSION_MASK: i16 = 0x07;

/// A Kafka compression codec: the low three bits of a batch's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    None,
    Gzip,
    /// Snappy, in the xerial framing the Java client writes.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    Zstd,
}

impl Codec {
    /// Every codec, by id.
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codec id in batch attributes bits 0-2.
    pub fn id(self) -> i16 {
        self as i16
    }

    pub fn from_id(id: i16) -> Option<Codec> {
        Codec::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The name clients and configs use (`none`, `gzip`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    pub fn parse(name: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The codec id a topic's `compression.type` asks for, or `None` for
/// `producer` (keep batches as produced).
pub fn target_codec(compression_type: &str) -> Option<u8> {
    match compression_type {
        "uncompressed" => Some(0),
        "gzip" => Some(1),
        "snappy" => Some(2),
        "lz4" => Some(3),
        "zstd" => Some(4),
        _ => None,
    }
}

/// Rewrites the batches of `records` (already validated, `headers` in order)
/// whose codec differs from `codec`. Returns `None` when nothing changes.
pub fn recompress_all(
    records: &[u8],
    headers: &[BatchHeader],
    codec: u8,
) -> Result<Option<BytesMut>, String> {
    if headers
        .iter()
        .all(|h| h.compression() == codec || h.is_control())
    {
        return Ok(None);
    }
    let mut out = BytesMut::with_capacity(records.len());
    let mut at = 0usize;
    for header in headers {
        let batch = &records[at..at + header.total_bytes()];
        at += header.total_bytes();
        if header.compression() == codec || header.is_control() {
            out.put_slice(batch);
        } else {
            recompress(batch, header.compression(), codec, &mut out)?;
        }
    }
    Ok(Some(out))
}

/// Appends `batch` (codec `from`) to `out`, re-compressed with `to`.
fn recompress(batch: &[u8], from: u8, to: u8, out: &mut BytesMut) -> Result<(), String> {
    let plain = decompress(from, &batch[HEADER_BYTES..])?;
    let start = out.len();
    out.put_slice(&batch[..HEADER_BYTES]);
    compress(to, &plain, out)?;
    let total = out.len() - start;
    let batch_length = i32::try_from(total - 12)
        .map_err(|_| format!("re-compressed batch of {total} bytes is too large"))?;
    let new = &mut out[start..];
    new[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = i16::from_be_bytes([new[ATTRIBUTES_OFFSET], new[ATTRIBUTES_OFFSET + 1]]);
    let attributes = (attributes & !COMPRESSION_MASK) | i16::from(to);
    new[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(new);
    new[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn too_large() -> String {
    format!(
        "batch decompresses to more than {RECOMPRESS_BATCH_BYTES_MAX} bytes, the most the \
         broker re-compresses for the topic's compression.type"
    )
}

/// Reads a decompressing stream to its end, at most the limit.
fn read_bounded(reader: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut plain = Vec::new();
    reader
        .take(RECOMPRESS_BATCH_BYTES_MAX as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| format!("cannot decompress {what} batch: {e}"))?;
    if plain.len() > RECOMPRESS_BATCH_BYTES_MAX {
        return Err(too_large());
    }
    Ok(plain)
}

/// The records section of a batch, uncompressed.
pub fn decompress(codec: u8, data: &[u8]) -> Result<Vec<u8>, String> {
    match codec {
        0 => Ok(data.to_vec()),
        1 => read_bounded(flate2::read::GzDecoder::new(data), "gzip"),
        2 => snappy_decompress(data),
        3 => {
            let decoder =
                lz4::Decoder::new(data).map_err(|e| format!("cannot decompress lz4 batch: {e}"))?;
            read_bounded(decoder, "lz4")
        }
        4 => {
            let decoder = zstd::stream::read::Decoder::new(data)
                .map_err(|e| format!("cannot decompress zstd batch: {e}"))?;
            read_bounded(decoder, "zstd")
        }
        other => Err(format!("unknown compression codec {other}")),
    }
}

/// Kafka's snappy: the xerial stream format (a 16-byte magic header, then
/// blocks each prefixed by its compressed length), or a raw snappy block
/// from clients that do not frame it (as the Java client accepts).
fn snappy_decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    const MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
    const HEADER: usize = 16;
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let len = snap::raw::decompress_len(raw)
            .map_err(|e| format!("cannot decompress snappy batch: {e}"))?;
        if out.len() + len > RECOMPRESS_BATCH_BYTES_MAX {
            return Err(too_large());
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(raw, &mut out[start..])
            .map_err(|e| format!("cannot decompress snappy batch: {e}"))?;
        Ok(())
    };
    let mut out = Vec::new();
    if data.len() < HEADER || &data[..MAGIC.len()] != MAGIC {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut at = HEADER;
    while at < data.len() {
        let Some(len_bytes) = data.get(at..at + 4) else {
            return Err("cannot decompress snappy batch: truncated block length".into());
        };
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        at += 4;
        let Some(raw) = data.get(at..at.saturating_add(len)) else {
            return Err("cannot decompress snappy batch: truncated block".into());
        };
        block(raw, &mut out)?;
        at += len;
    }
    Ok(out)
}

/// Appends `plain` compressed with `codec` (Kafka's framing for each).
pub fn compress(codec: u8, plain: &[u8], out: &mut BytesMut) -> Result<(), String> {
    let fill = |buf: &mut BytesMut| -> anyhow::Result<()> {
        buf.put_slice(plain);
        Ok(())
    };
    let result = match codec {
        0 => {
            out.put_slice(plain);
            Ok(())
        }
        1 => kafka_protocol::compression::Gzip::compress(out, fill),
        2 => kafka_protocol::compression::Snappy::compress(out, fill),
        3 => kafka_protocol::compression::Lz4::compress(out, fill),
        4 => kafka_protocol::compression::Zstd::compress(out, fill),
        other => return Err(format!("unknown compression codec {other}")),
    };
    result.map_err(|e| format!("cannot compress the batch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{encode_batch, records, validate_batches, KeyValue};

    fn sample() -> Vec<u8> {
        let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..50)
            .map(|i| {
                (
                    format!("key-{i}").into_bytes(),
                    format!("value-{i}-{}", "x".repeat(100)).into_bytes(),
                )
            })
            .collect();
        let values: Vec<KeyValue> = owned
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
            .collect();
        encode_batch(0, 1_700_000_000_000, &values)
    }

    #[test]
    fn every_codec_round_trips_records_byte_for_byte() {
        let plain = sample();
        let headers = validate_batches(&plain).unwrap();
        let original = records(&plain).unwrap();
        for codec in 1..=4u8 {
            let packed = recompress_all(&plain, &headers, codec).unwrap().unwrap();
            let packed_headers = validate_batches(&packed).unwrap();
            assert_eq!(packed_headers[0].compression(), codec);
            assert_eq!(packed_headers[0].records_count, headers[0].records_count);
            assert_eq!(
                packed_headers[0].last_offset_delta,
                headers[0].last_offset_delta
            );
            assert!(
                packed.len() < plain.len(),
                "codec {codec} shrinks repetitive data"
            );
            // Back to uncompressed: the very same bytes as produced.
            let back = recompress_all(&packed, &packed_headers, 0)
                .unwrap()
                .unwrap();
            assert_eq!(&back[..], &plain[..], "codec {codec}");
            assert_eq!(records(&back).unwrap(), original);
            // Already in the target codec: untouched.
            assert!(recompress_all(&packed, &packed_headers, codec)
                .unwrap()
                .is_none());
        }
    }

    #[test]
    fn codec_ids_and_names_round_trip() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_id(codec.id()), Some(codec));
            assert_eq!(Codec::parse(codec.name()), Some(codec));
        }
        assert_eq!(Codec::Zstd.id(), 4);
        assert_eq!(Codec::from_id(5), None);
        assert_eq!(Codec::from_id(-1), None);
        assert_eq!(Codec::parse("zip"), None);
    }

    #[test]
    fn raw_snappy_blocks_are_accepted() {
        let plain = b"hello hello hello hello".to_vec();
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        assert_eq!(decompress(2, &raw).unwrap(), plain);
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![0u8; RECOMPRESS_BATCH_BYTES_MAX + 1024];
        let mut packed = BytesMut::new();
        compress(4, &zeros, &mut packed).unwrap();
        let err = decompress(4, &packed).unwrap_err();
        assert!(err.contains("decompresses to more than"), "{err}");
        assert!(decompress(1, b"not gzip").is_err());
    }
}
