//! Kafka error codes, and the one place internal errors become them.
//!
//! Codes are Apache Kafka's (`org.apache.kafka.common.protocol.Errors`).

use strom_storage::batch::BatchError;
use strom_storage::error::StorageError;

/// A Kafka error code on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub const NONE: KafkaCode = KafkaCode(0);
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    pub const CORRUPT_MESSAGE: KafkaCode = KafkaCode(2);
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    pub const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    pub const INVALID_TOPIC_EXCEPTION: KafkaCode = KafkaCode(17);
    pub const INVALID_REQUIRED_ACKS: KafkaCode = KafkaCode(21);
    pub const REQUEST_TIMED_OUT: KafkaCode = KafkaCode(7);
    pub const OFFSET_METADATA_TOO_LARGE: KafkaCode = KafkaCode(12);
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    pub const INCONSISTENT_GROUP_PROTOCOL: KafkaCode = KafkaCode(23);
    pub const INVALID_GROUP_ID: KafkaCode = KafkaCode(24);
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    pub const INVALID_SESSION_TIMEOUT: KafkaCode = KafkaCode(26);
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    pub const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
    pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);
    pub const GROUP_SUBSCRIBED_TO_TOPIC: KafkaCode = KafkaCode(86);
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    pub const INVALID_PARTITIONS: KafkaCode = KafkaCode(37);
    pub const INVALID_REPLICATION_FACTOR: KafkaCode = KafkaCode(38);
    pub const INVALID_REPLICA_ASSIGNMENT: KafkaCode = KafkaCode(39);
    pub const INVALID_CONFIG: KafkaCode = KafkaCode(40);
    pub const INVALID_REQUEST: KafkaCode = KafkaCode(42);
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: KafkaCode = KafkaCode(43);
    pub const KAFKA_STORAGE_ERROR: KafkaCode = KafkaCode(56);
    pub const FETCH_SESSION_ID_NOT_FOUND: KafkaCode = KafkaCode(70);
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);
    pub const UNKNOWN_SERVER_ERROR: KafkaCode = KafkaCode(-1);
    pub const NOT_ENOUGH_REPLICAS: KafkaCode = KafkaCode(19);
    pub const INVALID_RECORD: KafkaCode = KafkaCode(87);
    pub const UNSUPPORTED_ENDPOINT_TYPE: KafkaCode = KafkaCode(120);
    pub const LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(5);
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    pub const BROKER_NOT_AVAILABLE: KafkaCode = KafkaCode(8);
    pub const REPLICA_NOT_AVAILABLE: KafkaCode = KafkaCode(9);
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: KafkaCode = KafkaCode(20);
    pub const NOT_CONTROLLER: KafkaCode = KafkaCode(41);
    pub const FENCED_LEADER_EPOCH: KafkaCode = KafkaCode(74);
    pub const UNKNOWN_LEADER_EPOCH: KafkaCode = KafkaCode(75);
    pub const STALE_BROKER_EPOCH: KafkaCode = KafkaCode(77);
    pub const PREFERRED_LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(80);
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: KafkaCode = KafkaCode(83);
    pub const ELECTION_NOT_NEEDED: KafkaCode = KafkaCode(84);
    pub const INVALID_UPDATE_VERSION: KafkaCode = KafkaCode(95);
    pub const INELIGIBLE_REPLICA: KafkaCode = KafkaCode(107);
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: KafkaCode = KafkaCode(45);
    pub const INVALID_PRODUCER_EPOCH: KafkaCode = KafkaCode(47);
    pub const INVALID_TXN_STATE: KafkaCode = KafkaCode(48);
    pub const TRANSACTIONAL_ID_NOT_FOUND: KafkaCode = KafkaCode(105);
    pub const INVALID_PRODUCER_ID_MAPPING: KafkaCode = KafkaCode(49);
    pub const INVALID_TRANSACTION_TIMEOUT: KafkaCode = KafkaCode(50);
    pub const CONCURRENT_TRANSACTIONS: KafkaCode = KafkaCode(51);
    pub const TRANSACTION_COORDINATOR_FENCED: KafkaCode = KafkaCode(52);
    pub const OPERATION_NOT_ATTEMPTED: KafkaCode = KafkaCode(55);
    pub const PRODUCER_FENCED: KafkaCode = KafkaCode(90);
    pub const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);

    pub fn is_ok(self) -> bool {
        self == KafkaCode::NONE
    }
}

/// Produce-time batch validation failures.
pub fn batch_error_code(err: &BatchError) -> KafkaCode {
    match err {
        BatchError::BadMagic(_) => KafkaCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        _ => KafkaCode::CORRUPT_MESSAGE,
    }
}

/// Storage failures as a client sees them.
pub fn storage_error_code(err: &StorageError) -> KafkaCode {
    match err {
        StorageError::OffsetOutOfRange { .. } => KafkaCode::OFFSET_OUT_OF_RANGE,
        _ => KafkaCode::KAFKA_STORAGE_ERROR,
    }
}

/// Whether a storage failure is the process running out of file descriptors.
pub fn is_out_of_file_descriptors(err: &StorageError) -> bool {
    let source = match err {
        StorageError::Io { source, .. } | StorageError::IoAt { source, .. } => source,
        _ => return false,
    };
    matches!(source.raw_os_error(), Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE)
}

/// The error message of a produce refused for lack of disk space.
pub const DISK_FULL_MESSAGE: &str =
    "The broker's data directory is out of disk space; retry once space is freed";
