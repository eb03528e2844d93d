//! Strom's storage layer: Kafka RecordBatch v2 headers ([`batch`]), sparse
//! offset/time indexes ([`index`]), and one partition's segmented log with
//! crash recovery ([`log`]). Files use Kafka's on-disk layout.

pub mod batch;
pub mod error;
pub mod index;
pub mod log;

pub use error::StorageError;
