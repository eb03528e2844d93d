//! Producer state (idempotence) and transactions: sequence checks, snapshots, the aborted-transaction index and the last stable offset.

use super::*;

impl PartitionLog {
    /// Checks a client's batches against the idempotent producers' state
    /// before they are appended (see [`crate::producers`]).
    pub fn check_producers(&self, headers: &[BatchHeader]) -> SequenceCheck {
        self.producers.check(headers)
    }

    /// The idempotent producers this partition knows.
    pub fn producers(&self) -> &ProducerStates {
        &self.producers
    }

    /// Forgets producers idle for `expiration_ms`; returns how many.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// Records written batches in the producer state (`batches`: their
    /// bytes, for the markers of control batches); an abort marker adds the
    /// transaction it ends to the aborted-transaction index. `first_offset`:
    /// the offset the leader assigned to the first batch (`None`: the
    /// headers carry their offsets, as replicated batches do).
    pub(super) fn record_producers(
        &mut self,
        batches: &[u8],
        headers: &[BatchHeader],
        first_offset: Option<i64>,
    ) -> Result<(), StorageError> {
        let mut next = first_offset;
        let mut at = 0usize;
        for header in headers {
            let base = next.unwrap_or(header.base_offset);
            let end = at + header.total_bytes();
            let marker = if header.is_control() {
                batches.get(at..end).and_then(batch::marker_of)
            } else {
                None
            };
            if let Some(ended) = self.producers.record_at(header, base, marker) {
                self.transaction_ended(ended)?;
            }
            at = end;
            next = next.map(|_| base + i64::from(header.last_offset_delta) + 1);
        }
        Ok(())
    }

    /// A marker ended a transaction: an aborted one goes into the index
    /// (memory and the `.txnindex` of the marker's segment), unless it is
    /// there already (a rebuild finds markers the files also hold).
    pub(super) fn transaction_ended(&mut self, ended: EndedTxn) -> Result<(), StorageError> {
        if ended.marker != batch::Marker::Abort
            || self
                .aborted
                .last()
                .is_some_and(|a| a.last_offset >= ended.last_offset)
        {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: ended.producer_id,
            first_offset: ended.first_offset,
            last_offset: ended.last_offset,
            last_stable_offset: self
                .producers
                .first_unstable_offset()
                .unwrap_or(ended.last_offset + 1),
        };
        let base = self.segments[self.segment_index(ended.last_offset)].base_offset;
        let path = self.dir.join(segment_file_name(base, TXN_INDEX_SUFFIX));
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&entry.encode()));
        if let Err(e) = written {
            // The marker is written already: not a disk-full refusal.
            return Err(StorageError::io(&path, std::io::Error::other(e)));
        }
        self.aborted.push(entry);
        Ok(())
    }

    /// Loads the segments' aborted-transaction indexes, keeping the entries
    /// below the log end (a file holding others is rewritten without them).
    pub(super) fn load_aborted(&mut self) -> Result<(), StorageError> {
        self.aborted.clear();
        for seg in &self.segments {
            let path = self
                .dir
                .join(segment_file_name(seg.base_offset, TXN_INDEX_SUFFIX));
            let bytes = read_optional(&path)?;
            if bytes.is_empty() {
                continue;
            }
            let entries = txn_index::decode(&bytes);
            let kept: Vec<AbortedTxn> = entries
                .iter()
                .copied()
                .filter(|a| a.last_offset < self.log_end_offset)
                .collect();
            if kept.len() * txn_index::ENTRY_BYTES != bytes.len() {
                // Replaced whole (temp file, sync, rename, sync the
                // directory): a crash never leaves it without entries the
                // rebuild cannot find again.
                let out: Vec<u8> = kept.iter().flat_map(|a| a.encode()).collect();
                let tmp = path.with_extension(TXN_INDEX_TMP_EXTENSION);
                File::create(&tmp)
                    .and_then(|mut f| f.write_all(&out).and_then(|()| self.syncer.sync(&f)))
                    .and_then(|()| fs::rename(&tmp, &path))
                    .map_err(|e| StorageError::io(&path, e))?;
                sync_dir(&self.dir, &*self.syncer)?;
            }
            self.aborted.extend(kept);
        }
        Ok(())
    }

    /// Makes the active segment's aborted-transaction index durable (before
    /// a producer snapshot says the markers before it need no scan).
    pub(super) fn sync_txn_index(&self) -> Result<(), StorageError> {
        let base = self.segments[self.segments.len() - 1].base_offset;
        let path = self.dir.join(segment_file_name(base, TXN_INDEX_SUFFIX));
        match File::open(&path) {
            Ok(f) => self.syncer.sync(&f).map_err(|e| StorageError::io(&path, e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// The last stable offset: the high watermark, or the first offset of
    /// the oldest open transaction if that is lower. read_committed
    /// consumers read up to here.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.producers
            .first_unstable_offset()
            .map_or(hw, |first| first.clamp(self.log_start_offset, hw))
    }

    /// [`Self::read`] for a read_committed consumer: up to the
    /// [last stable offset](Self::last_stable_offset).
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<FileRegion>, StorageError> {
        let visible = self.visible_point();
        let limit = match self.producers.first_unstable_offset() {
            Some(first) if first < visible.offset => {
                self.boundary_at_or_below(first.max(self.log_start_offset))?
            }
            _ => visible,
        };
        self.read_below(offset, max_bytes, limit)
    }

    /// The aborted transactions overlapping offsets `[from, to)`, oldest
    /// marker first: what a read_committed fetch of that range must drop.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Rebuilds the producer state (at open, and after a truncation removed
    /// batches): the newest snapshot at or below the log end, then the
    /// batch headers after it (every segment's when there is none).
    /// Snapshots past the log end (written before a crash lost records, or
    /// cut by a truncation) and damaged ones are removed.
    pub(super) fn rebuild_producers(&mut self) -> Result<(), StorageError> {
        self.load_aborted()?;
        let (from, mut states) = self.newest_producer_snapshot();
        let mut ended = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            let next_base = self.segments.get(i + 1).map(|s| s.base_offset);
            if next_base.is_some_and(|next| next <= from) {
                continue;
            }
            let mut position = if from > segment.base_offset {
                match segment.find_batch(from)? {
                    Some((at, _)) => at,
                    None => continue,
                }
            } else {
                0
            };
            while position < segment.size {
                let header = segment.read_header(position)?;
                position += header.total_bytes() as u64;
                if header.base_offset >= from {
                    let marker = if header.is_control() {
                        segment.read_batch(position - header.total_bytes() as u64, &header)?
                    } else {
                        None
                    };
                    ended.extend(states.record_at(&header, header.base_offset, marker));
                }
            }
        }
        self.producers = states;
        for txn in ended {
            self.transaction_ended(txn)?;
        }
        Ok(())
    }

    /// The newest usable producer snapshot: (its offset, its state), or
    /// (`i64::MIN`, empty) when there is none.
    pub(super) fn newest_producer_snapshot(&self) -> (i64, ProducerStates) {
        let mut offsets = self.producer_snapshot_offsets();
        while let Some(offset) = offsets.pop() {
            let path = self
                .dir
                .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
            if offset <= self.log_end_offset {
                let decoded = fs::read(&path)
                    .ok()
                    .and_then(|bytes| ProducerStates::decode_snapshot(&bytes));
                match decoded {
                    Some((at, states)) if at == offset => return (offset, states),
                    _ => {
                        warn!(file = %path.display(), "damaged producer state snapshot, removing it")
                    }
                }
            }
            if let Err(err) = fs::remove_file(&path) {
                warn!(file = %path.display(), "cannot remove a producer state snapshot: {err}");
            }
        }
        (i64::MIN, ProducerStates::new())
    }

    /// Offsets of the producer snapshots in the directory, oldest first.
    pub(super) fn producer_snapshot_offsets(&self) -> Vec<i64> {
        let mut offsets: Vec<i64> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        parse_segment_file_name(e.file_name().to_str()?, PRODUCER_SNAPSHOT_SUFFIX)
                    })
                    .collect()
            })
            .unwrap_or_default();
        offsets.sort_unstable();
        offsets
    }

    /// Snapshots the producer state at the log end (at a roll and at a
    /// clean close) and removes all but the newest few. Best effort: a
    /// snapshot only shortens the rebuild, it is never needed, so it is not
    /// synced and a failure is only logged (a torn one fails its CRC).
    pub(super) fn snapshot_producers(&self) {
        if self.producers.is_empty() && self.producer_snapshot_offsets().is_empty() {
            return;
        }
        let offset = self.log_end_offset;
        let path = self
            .dir
            .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
        if let Err(err) = fs::write(&path, self.producers.encode_snapshot(offset)) {
            warn!(file = %path.display(), "cannot write a producer state snapshot: {err}");
            let _ = fs::remove_file(&path);
            return;
        }
        let offsets = self.producer_snapshot_offsets();
        let old = offsets.len().saturating_sub(PRODUCER_SNAPSHOTS_KEPT);
        for offset in &offsets[..old] {
            let path = self
                .dir
                .join(segment_file_name(*offset, PRODUCER_SNAPSHOT_SUFFIX));
            let _ = fs::remove_file(path);
        }
    }

    /// Removes every producer snapshot (the log was emptied).
    pub(super) fn remove_producer_snapshots(&self) {
        for offset in self.producer_snapshot_offsets() {
            let path = self
                .dir
                .join(segment_file_name(offset, PRODUCER_SNAPSHOT_SUFFIX));
            let _ = fs::remove_file(path);
        }
    }
}
