//! Structural bounds check of a request body, run before the `kafka-protocol`
//! decoder sees it.
//!
//! Why: that decoder reserves `Vec::with_capacity(n)` for an array as soon as it reads
//! the count `n`, before checking that `n` elements are there; a 30-byte request
//! claiming 2^31 elements makes the allocator abort the whole broker. This walk reads
//! every field of the request versions Strom serves, the way the decoder will, and
//! proves that every array's elements are really present in the frame (and every
//! string, byte field and tagged field fits). Only then is the request decoded, so
//! the decoder never allocates more than the frame actually holds.
//!
//! It is lenient where the decoder is strict (nullability, UTF-8): those errors are
//! left to the decoder, which reports them without allocating.

use kafka_protocol::messages::ApiKey;

type Check = Result<(), String>;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{what} needs {n} bytes at byte {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn skip(&mut self, n: usize, what: &str) -> Check {
        self.take(n, what).map(|_| ())
    }

    fn int16(&mut self, what: &str) -> Result<i16, String> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn int32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..5 {
            let byte = self.take(1, what)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what}: unsigned varint longer than 5 bytes"))
    }

    /// A string (nullable or not): i16 length, or uvarint length+1 when flexible.
    fn string(&mut self, what: &str) -> Check {
        let len = if self.flexible {
            self.uvarint(what)? as i64 - 1
        } else {
            i64::from(self.int16(what)?)
        };
        if len > 0 {
            self.skip(len as usize, what)?;
        }
        Ok(())
    }

    /// Bytes / records: i32 length, or uvarint length+1 when flexible.
    fn bytes(&mut self, what: &str) -> Check {
        let len = if self.flexible {
            self.uvarint(what)? as i64 - 1
        } else {
            i64::from(self.int32(what)?)
        };
        if len > 0 {
            self.skip(len as usize, what)?;
        }
        Ok(())
    }

    /// An array whose elements each take at least `element_min_bytes`; every element
    /// is walked by `element`.
    fn array(
        &mut self,
        what: &str,
        element_min_bytes: usize,
        mut element: impl FnMut(&mut Cursor<'a>) -> Check,
    ) -> Check {
        let count = if self.flexible {
            self.uvarint(what)? as i64 - 1
        } else {
            i64::from(self.int32(what)?)
        };
        if count <= 0 {
            return Ok(());
        }
        let needed = (count as u64).saturating_mul(element_min_bytes.max(1) as u64);
        if needed > self.remaining() as u64 {
            return Err(format!(
                "{what} claims {count} elements but only {} bytes remain",
                self.remaining()
            ));
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    /// The tagged-field section of a flexible struct with no tags known to the
    /// decoder (every field is skipped by its declared size, as the decoder does).
    fn tagged(&mut self, what: &str) -> Check {
        self.tagged_known(what, |_, _| None)
    }

    /// A tagged-field section where `known` walks the tags the decoder parses
    /// itself. The decoder reads a known tag's field from the stream without
    /// looking at the declared size, so a size that disagrees with the field
    /// would make it read elsewhere than this walk: such a section is rejected.
    fn tagged_known(
        &mut self,
        what: &str,
        known: impl Fn(&mut Cursor<'a>, u64) -> Option<Check>,
    ) -> Check {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint(what)?;
        if count > self.remaining() as u64 {
            return Err(format!("{what}: {count} tagged fields cannot fit"));
        }
        for _ in 0..count {
            let tag = self.uvarint(what)?;
            let size = self.uvarint(what)?;
            let start = self.pos;
            match known(self, tag) {
                Some(walked) => {
                    walked?;
                    if (self.pos - start) as u64 != size {
                        return Err(format!(
                            "{what}: tag {tag} declares {size} bytes but its field has {}",
                            self.pos - start
                        ));
                    }
                }
                None => self.skip(size as usize, what)?,
            }
        }
        Ok(())
    }
}

/// The first version of each served API with flexible (compact, tagged)
/// encoding; `None` for an API this walk does not check.
fn flexible_from(api_key: ApiKey) -> Option<i16> {
    Some(match api_key {
        ApiKey::Produce => 9,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets => 6,
        ApiKey::Metadata => 9,
        ApiKey::ApiVersions => 3,
        ApiKey::CreateTopics => 5,
        ApiKey::DeleteTopics => 4,
        ApiKey::FindCoordinator => 3,
        ApiKey::DeleteRecords => 2,
        ApiKey::JoinGroup => 6,
        ApiKey::SyncGroup => 4,
        ApiKey::Heartbeat => 4,
        ApiKey::LeaveGroup => 4,
        ApiKey::OffsetCommit => 8,
        ApiKey::OffsetFetch => 6,
        ApiKey::DescribeGroups => 5,
        ApiKey::ListGroups => 3,
        ApiKey::DeleteGroups => 2,
        ApiKey::OffsetDelete => i16::MAX,
        ApiKey::DescribeConfigs => 4,
        ApiKey::AlterConfigs => 2,
        ApiKey::IncrementalAlterConfigs => 1,
        ApiKey::CreatePartitions => 2,
        ApiKey::DescribeCluster => 0,
        ApiKey::DescribeLogDirs => 2,
        ApiKey::DescribeTopicPartitions => 0,
        ApiKey::OffsetForLeaderEpoch => 4,
        ApiKey::ElectLeaders => 2,
        ApiKey::DescribeQuorum => 0,
        ApiKey::InitProducerId => 2,
        ApiKey::DescribeProducers => 0,
        ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit => 3,
        ApiKey::WriteTxnMarkers => 1,
        ApiKey::DescribeTransactions | ApiKey::ListTransactions => 0,
        _ => return None,
    })
}

/// Checks that a request body of a served API and version is structurally
/// sound: one walk per API, each mirroring its schema.
pub fn check_request(api_key: ApiKey, version: i16, body: &[u8]) -> Check {
    let Some(flexible_from) = flexible_from(api_key) else {
        return Ok(());
    };
    let c = &mut Cursor {
        buf: body,
        pos: 0,
        flexible: version >= flexible_from,
    };
    let v = version;
    match api_key {
        ApiKey::Produce => produce(c, v),
        ApiKey::Fetch => fetch(c, v),
        ApiKey::ListOffsets => list_offsets(c, v),
        ApiKey::Metadata => metadata(c, v),
        ApiKey::CreateTopics => create_topics(c, v),
        ApiKey::DeleteTopics => delete_topics(c, v),
        ApiKey::JoinGroup => join_group(c, v),
        ApiKey::SyncGroup => sync_group(c, v),
        ApiKey::Heartbeat => heartbeat(c, v),
        ApiKey::LeaveGroup => leave_group(c, v),
        ApiKey::OffsetCommit => offset_commit(c, v),
        ApiKey::OffsetFetch => offset_fetch(c, v),
        ApiKey::DescribeGroups => describe_groups(c, v),
        ApiKey::ListGroups => list_groups(c, v),
        ApiKey::DeleteGroups => delete_groups(c, v),
        ApiKey::OffsetDelete => offset_delete(c, v),
        ApiKey::DeleteRecords => delete_records(c, v),
        ApiKey::DescribeConfigs => describe_configs(c, v),
        ApiKey::AlterConfigs => alter_configs(c, false),
        ApiKey::IncrementalAlterConfigs => alter_configs(c, true),
        ApiKey::CreatePartitions => create_partitions(c, v),
        ApiKey::DescribeCluster => describe_cluster(c, v),
        ApiKey::DescribeLogDirs => describe_log_dirs(c, v),
        ApiKey::DescribeTopicPartitions => describe_topic_partitions(c, v),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch(c, v),
        ApiKey::ElectLeaders => elect_leaders(c, v),
        ApiKey::DescribeQuorum => describe_quorum(c, v),
        ApiKey::FindCoordinator => find_coordinator(c, v),
        ApiKey::DescribeProducers => describe_producers(c, v),
        ApiKey::InitProducerId => init_producer_id(c, v),
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn(c, v),
        ApiKey::AddOffsetsToTxn | ApiKey::EndTxn => add_offsets_to_txn_or_end_txn(c, v),
        ApiKey::TxnOffsetCommit => txn_offset_commit(c, v),
        ApiKey::WriteTxnMarkers => write_txn_markers(c, v),
        ApiKey::DescribeTransactions => describe_transactions(c, v),
        ApiKey::ListTransactions => list_transactions(c, v),
        _ => Ok(()),
    }
}

/// Produce.
fn produce(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("transactional_id")?;
    c.skip(2 + 4, "acks, timeout")?;
    c.array("topic_data", 2, |c| {
        if v <= 12 {
            c.string("topic name")?;
        } else {
            c.skip(16, "topic id")?;
        }
        c.array("partition_data", 5, |c| {
            c.skip(4, "partition index")?;
            c.bytes("records")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// Fetch.
fn fetch(c: &mut Cursor<'_>, v: i16) -> Check {
    if v <= 14 {
        c.skip(4, "replica_id")?;
    }
    c.skip(4 + 4 + 4 + 1, "wait, min, max, isolation")?;
    if v >= 7 {
        c.skip(4 + 4, "session")?;
    }
    c.array("topics", 2, |c| {
        if v <= 12 {
            c.string("topic")?;
        }
        if v >= 13 {
            c.skip(16, "topic id")?;
        }
        c.array("partitions", 16, |c| {
            c.skip(4, "partition")?;
            if v >= 9 {
                c.skip(4, "current_leader_epoch")?;
            }
            c.skip(8, "fetch_offset")?;
            if v >= 12 {
                c.skip(4, "last_fetched_epoch")?;
            }
            if v >= 5 {
                c.skip(8, "log_start_offset")?;
            }
            c.skip(4, "partition_max_bytes")?;
            c.tagged_known("partition tags", |c, tag| match tag {
                0 if v >= 17 => Some(c.skip(16, "replica_directory_id")),
                1 if v >= 18 => Some(c.skip(8, "high_watermark")),
                _ => None,
            })
        })?;
        c.tagged("topic tags")
    })?;
    if v >= 7 {
        c.array("forgotten_topics_data", 2, |c| {
            if v <= 12 {
                c.string("topic")?;
            }
            if v >= 13 {
                c.skip(16, "topic id")?;
            }
            c.array("partitions", 4, |c| c.skip(4, "partition"))?;
            c.tagged("forgotten tags")
        })?;
    }
    if v >= 11 {
        c.string("rack_id")?;
    }
    c.tagged_known("request tags", |c, tag| match tag {
        0 => Some(c.string("cluster_id")),
        1 if v >= 15 => Some((|| {
            c.skip(4 + 8, "replica_state")?;
            c.tagged("replica_state tags")
        })()),
        _ => None,
    })?;
    Ok(())
}

/// ListOffsets.
fn list_offsets(c: &mut Cursor<'_>, v: i16) -> Check {
    c.skip(4, "replica_id")?;
    if v >= 2 {
        c.skip(1, "isolation_level")?;
    }
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partitions", 12, |c| {
            c.skip(4, "partition_index")?;
            if v >= 4 {
                c.skip(4, "current_leader_epoch")?;
            }
            c.skip(8, "timestamp")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    if v >= 10 {
        c.skip(4, "timeout_ms")?;
    }
    Ok(())
}

/// Metadata.
fn metadata(c: &mut Cursor<'_>, v: i16) -> Check {
    c.array("topics", 1, |c| {
        if v >= 10 {
            c.skip(16, "topic id")?;
        }
        c.string("name")?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// CreateTopics.
fn create_topics(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 8, |c| {
        c.string("name")?;
        c.skip(4 + 2, "partitions, replication")?;
        c.array("assignments", 5, |c| {
            c.skip(4, "partition_index")?;
            c.array("broker_ids", 4, |c| c.skip(4, "broker id"))?;
            c.tagged("assignment tags")
        })?;
        c.array("configs", 2, |c| {
            c.string("config name")?;
            c.string("config value")?;
            c.tagged("config tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// DeleteTopics.
fn delete_topics(c: &mut Cursor<'_>, v: i16) -> Check {
    if v >= 6 {
        c.array("topics", 17, |c| {
            c.string("name")?;
            c.skip(16, "topic id")?;
            c.tagged("topic tags")
        })?;
    } else {
        c.array("topic_names", 1, |c| c.string("name"))?;
    }
    Ok(())
}

/// JoinGroup.
fn join_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("group_id")?;
    c.skip(4, "session_timeout_ms")?;
    if v >= 1 {
        c.skip(4, "rebalance_timeout_ms")?;
    }
    c.string("member_id")?;
    if v >= 5 {
        c.string("group_instance_id")?;
    }
    c.string("protocol_type")?;
    c.array("protocols", 2, |c| {
        c.string("protocol name")?;
        c.bytes("protocol metadata")?;
        c.tagged("protocol tags")
    })?;
    if v >= 8 {
        c.string("reason")?;
    }
    Ok(())
}

/// SyncGroup.
fn sync_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("group_id")?;
    c.skip(4, "generation_id")?;
    c.string("member_id")?;
    if v >= 3 {
        c.string("group_instance_id")?;
    }
    if v >= 5 {
        c.string("protocol_type")?;
        c.string("protocol_name")?;
    }
    c.array("assignments", 2, |c| {
        c.string("member_id")?;
        c.bytes("assignment")?;
        c.tagged("assignment tags")
    })?;
    Ok(())
}

/// Heartbeat.
fn heartbeat(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("group_id")?;
    c.skip(4, "generation_id")?;
    c.string("member_id")?;
    if v >= 3 {
        c.string("group_instance_id")?;
    }
    Ok(())
}

/// LeaveGroup.
fn leave_group(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("group_id")?;
    if v <= 2 {
        c.string("member_id")?;
    } else {
        c.array("members", 2, |c| {
            c.string("member_id")?;
            c.string("group_instance_id")?;
            if v >= 5 {
                c.string("reason")?;
            }
            c.tagged("member tags")
        })?;
    }
    Ok(())
}

/// OffsetCommit.
fn offset_commit(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("group_id")?;
    c.skip(4, "generation_id")?;
    c.string("member_id")?;
    if v >= 7 {
        c.string("group_instance_id")?;
    }
    if v <= 4 {
        c.skip(8, "retention_time_ms")?;
    }
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partitions", 14, |c| {
            c.skip(4 + 8, "partition_index, committed_offset")?;
            if v >= 6 {
                c.skip(4, "committed_leader_epoch")?;
            }
            c.string("committed_metadata")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// OffsetFetch.
fn offset_fetch(c: &mut Cursor<'_>, v: i16) -> Check {
    fn topics(c: &mut Cursor<'_>) -> Check {
        c.array("topics", 2, |c| {
            c.string("name")?;
            c.array("partition_indexes", 4, |c| c.skip(4, "partition"))?;
            c.tagged("topic tags")
        })
    }
    if v <= 7 {
        c.string("group_id")?;
        topics(c)?;
    } else {
        c.array("groups", 2, |c| {
            c.string("group_id")?;
            if v >= 9 {
                c.string("member_id")?;
                c.skip(4, "member_epoch")?;
            }
            topics(c)?;
            c.tagged("group tags")
        })?;
    }
    if v >= 7 {
        c.skip(1, "require_stable")?;
    }
    Ok(())
}

/// DescribeGroups.
fn describe_groups(c: &mut Cursor<'_>, v: i16) -> Check {
    c.array("groups", 1, |c| c.string("group"))?;
    if v >= 3 {
        c.skip(1, "include_authorized_operations")?;
    }
    Ok(())
}

/// ListGroups.
fn list_groups(c: &mut Cursor<'_>, v: i16) -> Check {
    if v >= 4 {
        c.array("states_filter", 1, |c| c.string("state"))?;
    }
    if v >= 5 {
        c.array("types_filter", 1, |c| c.string("type"))?;
    }
    Ok(())
}

/// DeleteGroups.
fn delete_groups(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("groups_names", 1, |c| c.string("group"))?;
    Ok(())
}

/// OffsetDelete.
fn offset_delete(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.string("group_id")?;
    c.array("topics", 6, |c| {
        c.string("name")?;
        c.array("partitions", 4, |c| c.skip(4, "partition_index"))
    })?;
    Ok(())
}

/// DeleteRecords.
fn delete_records(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partitions", 12, |c| {
            c.skip(4 + 8, "partition_index, offset")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    c.skip(4, "timeout_ms")?;
    Ok(())
}

/// DescribeConfigs.
fn describe_configs(c: &mut Cursor<'_>, v: i16) -> Check {
    c.array("resources", 3, |c| {
        c.skip(1, "resource_type")?;
        c.string("resource_name")?;
        c.array("configuration_keys", 1, |c| c.string("key"))?;
        c.tagged("resource tags")
    })?;
    c.skip(1, "include_synonyms")?;
    if v >= 3 {
        c.skip(1, "include_documentation")?;
    }
    Ok(())
}

/// AlterConfigs and (with `incremental`) IncrementalAlterConfigs.
fn alter_configs(c: &mut Cursor<'_>, incremental: bool) -> Check {
    c.array("resources", 3, |c| {
        c.skip(1, "resource_type")?;
        c.string("resource_name")?;
        c.array("configs", 2, |c| {
            c.string("config name")?;
            if incremental {
                c.skip(1, "config_operation")?;
            }
            c.string("config value")?;
            c.tagged("config tags")
        })?;
        c.tagged("resource tags")
    })?;
    c.skip(1, "validate_only")?;
    Ok(())
}

/// CreatePartitions.
fn create_partitions(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 6, |c| {
        c.string("name")?;
        c.skip(4, "count")?;
        c.array("assignments", 1, |c| {
            c.array("broker_ids", 4, |c| c.skip(4, "broker id"))?;
            c.tagged("assignment tags")
        })?;
        c.tagged("topic tags")
    })?;
    c.skip(4 + 1, "timeout_ms, validate_only")?;
    Ok(())
}

/// DescribeCluster.
fn describe_cluster(c: &mut Cursor<'_>, v: i16) -> Check {
    c.skip(1, "include_cluster_authorized_operations")?;
    if v >= 1 {
        c.skip(1, "endpoint_type")?;
    }
    if v >= 2 {
        c.skip(1, "include_fenced_brokers")?;
    }
    Ok(())
}

/// DescribeLogDirs.
fn describe_log_dirs(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 1, |c| {
        c.string("topic")?;
        c.array("partitions", 4, |c| c.skip(4, "partition"))?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// DescribeTopicPartitions.
fn describe_topic_partitions(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 1, |c| {
        c.string("name")?;
        c.tagged("topic tags")
    })?;
    c.skip(4, "response_partition_limit")?;
    let present = c.take(1, "cursor")?[0] as i8;
    if present >= 0 {
        c.string("cursor topic_name")?;
        c.skip(4, "cursor partition_index")?;
        c.tagged("cursor tags")?;
    }
    Ok(())
}

/// OffsetForLeaderEpoch.
fn offset_for_leader_epoch(c: &mut Cursor<'_>, v: i16) -> Check {
    if v >= 3 {
        c.skip(4, "replica_id")?;
    }
    c.array("topics", 2, |c| {
        c.string("topic")?;
        c.array("partitions", 8, |c| {
            c.skip(4, "partition")?;
            if v >= 2 {
                c.skip(4, "current_leader_epoch")?;
            }
            c.skip(4, "leader_epoch")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// ElectLeaders.
fn elect_leaders(c: &mut Cursor<'_>, v: i16) -> Check {
    if v >= 1 {
        c.skip(1, "election_type")?;
    }
    c.array("topic_partitions", 2, |c| {
        c.string("topic")?;
        c.array("partitions", 4, |c| c.skip(4, "partition"))?;
        c.tagged("topic tags")
    })?;
    c.skip(4, "timeout_ms")?;
    Ok(())
}

/// DescribeQuorum.
fn describe_quorum(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 2, |c| {
        c.string("topic_name")?;
        c.array("partitions", 4, |c| {
            c.skip(4, "partition_index")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// FindCoordinator.
fn find_coordinator(c: &mut Cursor<'_>, v: i16) -> Check {
    if v <= 3 {
        c.string("key")?;
    }
    if v >= 1 {
        c.skip(1, "key_type")?;
    }
    if v >= 4 {
        c.array("coordinator_keys", 1, |c| c.string("key"))?;
    }
    Ok(())
}

/// DescribeProducers.
fn describe_producers(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partition_indexes", 4, |c| c.skip(4, "partition_index"))?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// InitProducerId.
fn init_producer_id(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("transactional_id")?;
    c.skip(4, "transaction_timeout_ms")?;
    if v >= 3 {
        c.skip(8 + 2, "producer_id, producer_epoch")?;
    }
    Ok(())
}

/// AddPartitionsToTxn.
fn add_partitions_to_txn(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.string("transactional_id")?;
    c.skip(8 + 2, "producer_id, producer_epoch")?;
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partitions", 4, |c| c.skip(4, "partition"))?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// AddOffsetsToTxn and EndTxn.
fn add_offsets_to_txn_or_end_txn(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.string("transactional_id")?;
    c.skip(8 + 2, "producer_id, producer_epoch")?;
    Ok(())
}

/// TxnOffsetCommit.
fn txn_offset_commit(c: &mut Cursor<'_>, v: i16) -> Check {
    c.string("transactional_id")?;
    c.string("group_id")?;
    c.skip(8 + 2, "producer_id, producer_epoch")?;
    if v >= 3 {
        c.skip(4, "generation_id")?;
        c.string("member_id")?;
        c.string("group_instance_id")?;
    }
    c.array("topics", 2, |c| {
        c.string("name")?;
        c.array("partitions", 14, |c| {
            c.skip(4 + 8, "partition_index, committed_offset")?;
            if v >= 2 {
                c.skip(4, "committed_leader_epoch")?;
            }
            c.string("committed_metadata")?;
            c.tagged("partition tags")
        })?;
        c.tagged("topic tags")
    })?;
    Ok(())
}

/// WriteTxnMarkers.
fn write_txn_markers(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("markers", 16, |c| {
        c.skip(8 + 2 + 1, "producer_id, producer_epoch, transaction_result")?;
        c.array("topics", 2, |c| {
            c.string("name")?;
            c.array("partition_indexes", 4, |c| c.skip(4, "partition"))?;
            c.tagged("topic tags")
        })?;
        c.skip(4, "coordinator_epoch")?;
        c.tagged("marker tags")
    })?;
    Ok(())
}

/// DescribeTransactions.
fn describe_transactions(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("transactional_ids", 1, |c| c.string("transactional_id"))?;
    Ok(())
}

/// ListTransactions.
fn list_transactions(c: &mut Cursor<'_>, _v: i16) -> Check {
    c.array("state_filters", 1, |c| c.string("state"))?;
    c.array("producer_id_filters", 8, |c| c.skip(8, "producer_id"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn rejects_arrays_that_claim_more_than_the_frame_holds() {
        // CreateTopics v7 whose topic count is a huge varint: the decoder would
        // reserve hundreds of GB before noticing.
        let garbage = [0xffu8; 32];
        assert!(check_request(ApiKey::CreateTopics, 7, &garbage).is_err());
        // Metadata v4 claiming i32::MAX topics.
        let mut metadata = i32::MAX.to_be_bytes().to_vec();
        metadata.push(1);
        assert!(check_request(ApiKey::Metadata, 4, &metadata).is_err());
        // Produce v9 with junk after acks and timeout.
        let mut produce = vec![0u8]; // null transactional id (compact)
        produce.extend_from_slice(&[0, 1, 0, 0, 0, 100]);
        produce.extend_from_slice(&[0xff; 16]);
        assert!(check_request(ApiKey::Produce, 9, &produce).is_err());
    }

    #[test]
    fn every_prefix_of_a_real_request_is_handled_without_panic() {
        let mut topic = metadata_request::MetadataRequestTopic::default();
        topic.name = Some(TopicName(StrBytes::from_static_str("orders")));
        let mut request = MetadataRequest::default();
        request.topics = Some(vec![topic]);
        let mut full = bytes::BytesMut::new();
        request.encode(&mut full, 12).expect("encode");
        for len in 0..full.len() {
            let _ = check_request(ApiKey::Metadata, 12, &full[..len]);
        }
    }
}
