//! Named limits: hard caps and fixed sizes used across Strom.
//!
//! These are not configurable (yet). Each constant documents its meaning,
//! unit and value; code should refer to these names rather than repeating
//! the numbers.

/// Bytes of request frames one shard may hold at once, over all its
/// connections. A connection whose next frame does not fit waits (back-pressure
/// on that client) until other requests finish; a frame larger than the whole
/// budget waits until it is the only one. Bounds memory no matter how many
/// clients send `socket.request.max.bytes` frames at once.
///
/// Unit: bytes. Value: 268 435 456 (256 MiB).
pub const REQUEST_MEMORY_PER_SHARD_BYTES: usize = 268_435_456;

/// Capacity of each channel carrying work between two shards (cores). A
/// sender that finds the channel full waits, which is the back-pressure
/// between shards.
///
/// Unit: messages. Value: 1024.
pub const CROSS_SHARD_CHANNEL_DEPTH: usize = 1024;

/// Most data work (a request's share of partitions sent by another shard:
/// append, read, offsets) one shard runs at once. Beyond it the shard stops
/// taking work off its channels, which fill, and senders wait.
///
/// Unit: tasks. Value: 256.
pub const MESH_DATA_TASKS_PER_SHARD_MAX: usize = 256;

/// Fetch response size used when a client does not set `max_bytes` (or sets
/// it to a non-positive value). Same as Kafka's `fetch.max.bytes` default.
///
/// Unit: bytes. Value: 52 428 800 (50 MiB).
pub const FETCH_RESPONSE_BYTES_DEFAULT_MAX: usize = 52_428_800;

/// Longest legal topic name, as in Kafka (255 minus room for a partition
/// suffix in directory names).
///
/// Unit: bytes (topic names are ASCII). Value: 249.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Most partitions one topic may have; CreateTopics / CreatePartitions asking
/// for more are refused.
///
/// Unit: partitions. Value: 10 000.
pub const PARTITIONS_PER_TOPIC_MAX: usize = 10_000;

/// Longest a client may take to send the body of a request once its size prefix
/// has arrived; a connection that stalls longer is closed, releasing the request
/// memory it reserved (see [`REQUEST_MEMORY_PER_SHARD_BYTES`]).
///
/// Unit: milliseconds. Value: 30 000.
pub const REQUEST_BODY_READ_TIMEOUT_MS: u64 = 30_000;

/// Most client connections one shard accepts at once; further connections
/// are closed right after accept.
///
/// Unit: connections. Value: 10 000.
pub const CONNECTIONS_PER_SHARD_MAX: usize = 10_000;

/// Largest uncompressed size of one record batch the broker decompresses
/// to re-compress it for a topic's `compression.type`; a batch that
/// inflates beyond it is refused (INVALID_RECORD) instead of exhausting
/// memory.
///
/// Unit: bytes. Value: 67 108 864 (64 MiB).
pub const RECOMPRESS_BATCH_BYTES_MAX: usize = 67_108_864;

/// Check a topic name against Kafka's rules: non-empty, not `.` or `..`, at
/// most [`TOPIC_NAME_LENGTH_MAX`] characters, and only ASCII letters, digits,
/// `.`, `_` and `-`.
///
/// The error is a human-readable reason suitable for a client error message.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is illegal, it can't be empty".to_string());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(format!(
            "topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, \
             topic name: {name}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} is illegal, it contains {bad:?}; only ASCII alphanumerics, \
             '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Requests of one connection whose responses are not written yet: while
/// acks=all produce requests wait for their replicas, the connection reads
/// and handles the next ones (answers still go out in request order). A
/// client with more in flight waits for the oldest answer.
///
/// Unit: requests. Value: 16.
pub const REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders").is_ok());
        assert!(validate_topic_name("a.b_c-D9").is_ok());
        assert!(validate_topic_name("...").is_ok());
        assert!(validate_topic_name(&"x".repeat(TOPIC_NAME_LENGTH_MAX)).is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name(&"x".repeat(TOPIC_NAME_LENGTH_MAX + 1)).is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name("caf\u{e9}").is_err());
    }
}
