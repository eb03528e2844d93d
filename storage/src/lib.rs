//! Strom's storage layer: Kafka RecordBatch v2 headers ([`batch`]), sparse
//! offset/time indexes ([`index`]), one partition's segmented log with crash
//! recovery, retention and sync plans ([`log`]), its checkpoint file
//! ([`checkpoint`]), batch (re-)compression in Kafka's framing of each codec
//! ([`compression`]), its leader epoch cache ([`epochs`]), the sync hook
//! ([`durability`]) and counters ([`metrics`]). Files use Kafka's on-disk layout.

pub mod batch;
pub mod checkpoint;
pub mod compression;
pub mod durability;
pub mod epochs;
pub mod error;
pub mod index;
pub mod log;
pub mod metrics;
pub mod producers;
pub mod txn_index;

pub use error::StorageError;
