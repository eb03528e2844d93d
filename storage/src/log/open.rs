//! Opening a partition log: the segments on disk, crash recovery of the unsynced tail, indexes checked or rebuilt.

use super::*;

impl PartitionLog {
    /// Opens (creating if needed) the partition directory `dir` and runs
    /// recovery. `now_ms` is the wall clock, injected for tests.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        Self::open_with(dir, config, now_ms, Arc::new(OsSync))
    }

    /// [`PartitionLog::open`] with the syncer every sync of this log goes
    /// through (the power-loss tests pass one that records durability).
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        syncer: Arc<dyn Syncer>,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean {
            // Remove the marker before touching anything, so a crash from
            // here on is never mistaken for a clean shutdown.
            fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
            sync_dir(dir, &*syncer)?;
        }
        let stored = checkpoint::read(dir);
        let recovery_point = stored.map(|c| c.recovery_point);
        let bases = list_segments(dir)?;
        let mut report = RecoveryReport {
            clean,
            ..RecoveryReport::default()
        };
        let interval = u64::from(config.index_interval_bytes);
        let mut dir_dirty = false;
        // A checkpoint that claims more than the files hold is stale or
        // forged: keep the log start offset inside the log.

        let mut segments = Vec::with_capacity(bases.len().max(1));
        for base in bases {
            segments.push(Segment::open(dir, base)?);
        }
        if segments.is_empty() {
            // An empty log continues from the recovery point, if any, so
            // offsets never go backwards.
            let base = stored
                .map_or(0, |c| c.recovery_point.max(c.log_start_offset))
                .max(0);
            segments.push(Segment::open(dir, base)?);
            dir_dirty = true;
        }

        // Segments before `scan_from` are trusted (indexes loaded and
        // sanity-checked); from `scan_from` on, every batch is checked.
        let last = segments.len() - 1;
        let scan_from = if clean {
            last
        } else {
            match recovery_point {
                Some(rp) => segments
                    .partition_point(|s| s.base_offset <= rp)
                    .saturating_sub(1),
                None => 0,
            }
        };

        let mut keep = segments.len();
        // Later segments are dropped because the one before lost its tail
        // (a power loss kept a new segment's file but not the old one's last
        // writes): expected after a crash, not corruption.
        let mut lost_tail = false;
        for i in 0..segments.len() {
            if i > 0 && segments[i].base_offset != segments[i - 1].next_offset {
                let previous_end = segments[i - 1].next_offset;
                lost_tail = segments[i].base_offset > previous_end;
                warn!(
                    file = %segments[i].log_path.display(),
                    previous_end,
                    "segment does not start where the previous one ends, removing it and later segments"
                );
                keep = i;
                break;
            }
            let next_base = segments.get(i + 1).map(|s| s.base_offset);
            let seg = &mut segments[i];
            let truncated = if i < scan_from || (clean && i == last) {
                if seg.load_indexes(next_base)? {
                    let start = seg.offset_index.lookup(i64::MAX);
                    if i == last
                        && start.position != 0
                        && !seg.index_entry_matches(start.offset, u64::from(start.position))
                    {
                        // Scanning from a wrong entry would cut valid data.
                        seg.rebuild(interval, &mut report)?
                    } else if i == last {
                        // Only the tail after the last index entry is
                        // unknown: scan it to find the log end offset.
                        let truncated = seg.scan(
                            u64::from(start.position),
                            start.offset,
                            interval,
                            &mut report,
                        )?;
                        if truncated {
                            // The cut may have removed batches that index
                            // entries point at; rebuild from the now-valid
                            // file rather than patch the indexes.
                            seg.rebuild(interval, &mut report)?;
                        }
                        truncated
                    } else {
                        seg.next_offset = next_base.unwrap_or(seg.base_offset);
                        false
                    }
                } else {
                    seg.rebuild(interval, &mut report)?
                }
            } else {
                seg.rebuild(interval, &mut report)?
            };
            if truncated {
                keep = i + 1;
                break;
            }
        }
        if keep < segments.len() && !lost_tail {
            // Later segments existed, so the cut was not a torn tail.
            if report.corrupt_batches == 0 {
                metrics::CORRUPT_BATCH_TRUNCATIONS.add(1);
                report.corrupt_batches += 1;
            }
            error!(
                dir = %dir.display(),
                segments = segments.len() - keep,
                "CORRUPT LOG: an invalid batch is followed by later segments; deleting them"
            );
        }
        for seg in segments.drain(keep..) {
            let bytes = seg
                .log
                .metadata()
                .map_err(|e| StorageError::io(&seg.log_path, e))?
                .len();
            warn!(file = %seg.log_path.display(), bytes, "deleting segment after the end of the valid log");
            report.truncated_bytes += bytes;
            metrics::TRUNCATED_BYTES.add(bytes);
            seg.remove_files()?;
            dir_dirty = true;
        }

        let active = segments.len() - 1;
        let log_end_offset = segments[active].next_offset;
        // The checkpoint's log start offset may lie inside the first segment
        // (DeleteRecords); never outside the log.
        let log_start_offset = stored
            .map_or(0, |c| c.log_start_offset)
            .max(segments[0].base_offset)
            .min(log_end_offset);
        if !segments[active].is_empty() {
            // The append wall clock of a segment is not persisted; count the
            // segment's age from now, which can only delay a time roll.
            segments[active].first_append_ms = Some(now_ms);
        }
        report.segments = segments.len();
        for seg in &mut segments {
            // Segments recovery did not touch were synced before: below the
            // recovery point, or everything after a clean shutdown. The
            // others are synced by the flush below.
            if !seg.dirty {
                seg.synced_size = seg.size;
            }
        }
        let first_base = segments[0].base_offset;
        // The cache is written before the batches of a new epoch, so after a
        // crash it may name epochs whose records were lost: drop entries
        // past the recovered end. An entry starting exactly at the end is
        // kept (an epoch that has not written yet).
        let mut epochs = epochs::read(dir);
        let mut epochs_changed = epochs.truncate_from_end(log_end_offset.saturating_add(1));
        epochs_changed |= epochs.truncate_from_start(log_start_offset);

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            synced: LogPoint {
                offset: first_base,
                segment_base: first_base,
                position: 0,
            },
            replicated_high_watermark: None,
            stored_high_watermark: stored.map(|c| c.high_watermark.min(log_end_offset)),
            truncations: 0,
            checkpointed: stored,
            dir_changes: u64::from(dir_dirty),
            dir_synced: 0,
            syncer,
            epochs,
            epochs_stale: epochs_changed,
            producers: ProducerStates::new(),
            aborted: Vec::new(),
        };
        log.rebuild_producers()?;
        // Make whatever recovery found durable and record the new recovery
        // point, so the next crash need not scan this again.
        log.flush()?;
        match log.write_open_checkpoint() {
            // The old checkpoint stays valid (it only makes the next
            // recovery scan more); it is written again later.
            Err(e) if e.is_no_space() => {
                warn!(dir = %dir.display(), error = %e, "disk full: checkpoint not updated")
            }
            other => other?,
        }
        if log.epochs_stale {
            log.persist_epochs_or_defer()?;
        }
        let sealed = log.segments.len().saturating_sub(1);
        let syncer = Arc::clone(&log.syncer);
        for seg in &mut log.segments[..sealed] {
            seg.release_index_files(&*syncer)?;
        }
        Ok((log, report))
    }
}
