//! The pure parts of `strom group reset-offsets`: `--topic T[:P,P...]` specs,
//! `--to-datetime` parsing, and the new offset of each reset mode, clamped to
//! `[log start, high watermark]` as `kafka-consumer-groups` does.

/// `--topic T` (every partition) or `--topic T:0,2` (those partitions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    /// `None`: every partition of the topic.
    pub partitions: Option<Vec<i32>>,
}

/// Parses `T` or `T:P,P...` (Kafka topic names cannot contain ':').
pub fn parse_topic_spec(text: &str) -> Result<TopicSpec, String> {
    let (topic, partitions) = match text.split_once(':') {
        None => (text, None),
        Some((topic, list)) => {
            let mut partitions = Vec::new();
            for item in list.split(',') {
                let item = item.trim();
                let p: i32 = item.parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
                    format!(
                        "'{item}' in '{text}' is not a partition number (expected TOPIC:P,P...)"
                    )
                })?;
                if !partitions.contains(&p) {
                    partitions.push(p);
                }
            }
            partitions.sort_unstable();
            (topic, Some(partitions))
        }
    };
    let topic = topic.trim();
    if topic.is_empty() {
        return Err(format!(
            "'{text}' names no topic (expected TOPIC or TOPIC:P,P...)"
        ));
    }
    Ok(TopicSpec {
        topic: topic.to_string(),
        partitions,
    })
}

/// Where `reset-offsets` moves each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetMode {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// This offset.
    Offset(i64),
    /// The first offset whose timestamp is at or after this many ms since the epoch
    /// (the high watermark when there is none).
    Datetime(i64),
    /// The committed offset plus this (may be negative).
    ShiftBy(i64),
}

/// What is known about one partition when computing its new offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// Log start offset.
    pub start: i64,
    /// High watermark (log end offset as consumers see it).
    pub end: i64,
    /// ListOffsets by timestamp (for `Datetime`): the offset, or `None` when no
    /// record has that timestamp or a later one.
    pub by_time: Option<i64>,
}

/// The new offset of a partition, within `[start, end]`.
pub fn new_offset(mode: ResetMode, state: &PartitionState) -> Result<i64, String> {
    let target = match mode {
        ResetMode::Earliest => state.start,
        ResetMode::Latest => state.end,
        ResetMode::Offset(offset) => offset,
        ResetMode::Datetime(_) => state.by_time.unwrap_or(state.end),
        ResetMode::ShiftBy(delta) => match state.committed {
            Some(committed) => committed.saturating_add(delta),
            None => {
                return Err("it has no committed offset to shift (use --to-earliest, \
                     --to-latest or --to-offset for it)"
                    .to_string())
            }
        },
    };
    Ok(clamp(target, state.start, state.end))
}

/// Kafka's range check: below the log start → log start, above the high
/// watermark → high watermark.
pub fn clamp(offset: i64, start: i64, end: i64) -> i64 {
    if offset > end {
        end
    } else if offset < start {
        start
    } else {
        offset
    }
}

/// Parses `--to-datetime`: `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by a time zone
/// (`Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH`); returns milliseconds since the
/// Unix epoch.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!("'{text}' is not a datetime like 2026-11-21T10:00:00Z or 2026-11-21T10:00:00.000+01:00 ({why})")
    };
    let (date, rest) = text
        .split_once(['T', 't', ' '])
        .ok_or_else(|| bad("no 'T' between date and time"))?;
    let mut date_parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (
        date_parts.next(),
        date_parts.next(),
        date_parts.next(),
        date_parts.next(),
    ) else {
        return Err(bad("the date is not YYYY-MM-DD"));
    };
    let year = number(y, 4, 4).ok_or_else(|| bad("bad year"))?;
    let month = number(mo, 2, 2)
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| bad("bad month"))?;
    let day = number(d, 2, 2)
        .filter(|d| *d >= 1 && *d <= days_in_month(year, month))
        .ok_or_else(|| bad("bad day"))?;

    // The time ends where the zone starts.
    let zone_at = rest
        .find(['Z', 'z', '+', '-'])
        .ok_or_else(|| bad("no time zone: add Z for UTC or an offset like +01:00"))?;
    let (time, zone) = rest.split_at(zone_at);
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (time, None),
    };
    let mut time_parts = hms.split(':');
    let hour = time_parts
        .next()
        .and_then(|h| number(h, 2, 2))
        .filter(|h| *h < 24)
        .ok_or_else(|| bad("bad hour"))?;
    let minute = time_parts
        .next()
        .and_then(|m| number(m, 2, 2))
        .filter(|m| *m < 60)
        .ok_or_else(|| bad("bad minute"))?;
    let second = match time_parts.next() {
        None => 0,
        Some(s) => number(s, 2, 2)
            .filter(|s| *s < 60)
            .ok_or_else(|| bad("bad second"))?,
    };
    if time_parts.next().is_some() {
        return Err(bad("bad time"));
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            // First three digits are milliseconds; finer digits are dropped.
            let padded = format!("{f:0<3}");
            padded[..3]
                .parse::<i64>()
                .map_err(|_| bad("bad fraction"))?
        }
        Some(_) => return Err(bad("bad fraction of a second")),
    };
    let zone_offset_minutes = parse_zone(zone).ok_or_else(|| bad("bad time zone"))?;

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - zone_offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// `Z` → 0; `+HH:MM`, `+HHMM`, `+HH` (or `-`) → minutes east of UTC.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &zone[1..];
    let (h, m) = match (body.len(), body.split_once(':')) {
        (_, Some((h, m))) => (h, m),
        (4, None) => body.split_at(2),
        (2, None) => (body, "00"),
        _ => return None,
    };
    let hours = number(h, 2, 2).filter(|h| *h <= 18)?;
    let minutes = number(m, 2, 2).filter(|m| *m < 60)?;
    Some(sign * (hours * 60 + minutes))
}

/// A decimal of `min..=max` ASCII digits.
fn number(text: &str, min: usize, max: usize) -> Option<i64> {
    if text.len() < min || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(topic: &str, partitions: Option<Vec<i32>>) -> TopicSpec {
        TopicSpec {
            topic: topic.to_string(),
            partitions,
        }
    }

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("orders"), Ok(spec("orders", None)));
        assert_eq!(
            parse_topic_spec("orders:2,0,2"),
            Ok(spec("orders", Some(vec![0, 2])))
        );
        assert_eq!(
            parse_topic_spec("a.b-c_d:7"),
            Ok(spec("a.b-c_d", Some(vec![7])))
        );
        for bad in [
            "",
            ":1",
            "orders:",
            "orders:x",
            "orders:1,",
            "orders:-1",
            "orders:1:2",
        ] {
            assert!(parse_topic_spec(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn state(committed: Option<i64>, start: i64, end: i64, by_time: Option<i64>) -> PartitionState {
        PartitionState {
            committed,
            start,
            end,
            by_time,
        }
    }

    #[test]
    fn each_mode_and_its_clamp() {
        let s = state(Some(40), 10, 100, Some(55));
        assert_eq!(new_offset(ResetMode::Earliest, &s), Ok(10));
        assert_eq!(new_offset(ResetMode::Latest, &s), Ok(100));
        assert_eq!(new_offset(ResetMode::Offset(50), &s), Ok(50));
        assert_eq!(new_offset(ResetMode::Offset(5), &s), Ok(10));
        assert_eq!(new_offset(ResetMode::Offset(500), &s), Ok(100));
        assert_eq!(new_offset(ResetMode::Offset(100), &s), Ok(100));
        assert_eq!(new_offset(ResetMode::Datetime(0), &s), Ok(55));
        assert_eq!(new_offset(ResetMode::ShiftBy(-5), &s), Ok(35));
        assert_eq!(new_offset(ResetMode::ShiftBy(-35), &s), Ok(10));
        assert_eq!(new_offset(ResetMode::ShiftBy(70), &s), Ok(100));
        assert_eq!(new_offset(ResetMode::ShiftBy(i64::MAX), &s), Ok(100));
        assert_eq!(new_offset(ResetMode::ShiftBy(i64::MIN), &s), Ok(10));
    }

    #[test]
    fn datetime_after_the_last_record_goes_to_the_end() {
        let s = state(None, 0, 7, None);
        assert_eq!(new_offset(ResetMode::Datetime(1), &s), Ok(7));
    }

    #[test]
    fn shift_needs_a_committed_offset() {
        let s = state(None, 0, 7, None);
        let err = new_offset(ResetMode::ShiftBy(1), &s).unwrap_err();
        assert!(err.contains("no committed offset"), "{err}");
        // Every other mode works without one.
        assert_eq!(new_offset(ResetMode::Earliest, &s), Ok(0));
        assert_eq!(new_offset(ResetMode::Offset(3), &s), Ok(3));
    }

    #[test]
    fn empty_partition_clamps_everything_to_its_end() {
        let s = state(Some(0), 5, 5, None);
        for mode in [
            ResetMode::Earliest,
            ResetMode::Latest,
            ResetMode::Offset(0),
            ResetMode::Offset(9),
            ResetMode::ShiftBy(-1),
            ResetMode::Datetime(0),
        ] {
            assert_eq!(new_offset(mode, &s), Ok(5), "{mode:?}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_datetime("1970-01-01T00:00:00.123456Z"), Ok(123));
        // 2020-09-13T12:26:40Z is 1_600_000_000 s.
        assert_eq!(
            parse_datetime("2020-09-13T12:26:40Z"),
            Ok(1_600_000_000_000)
        );
        assert_eq!(
            parse_datetime("2020-09-13T12:26:40.000Z"),
            Ok(1_600_000_000_000)
        );
        assert_eq!(
            parse_datetime("2020-09-13T14:26:40+02:00"),
            Ok(1_600_000_000_000)
        );
        assert_eq!(
            parse_datetime("2020-09-13T14:26:40+0200"),
            Ok(1_600_000_000_000)
        );
        assert_eq!(
            parse_datetime("2020-09-13T10:26:40-02"),
            Ok(1_600_000_000_000)
        );
        assert_eq!(parse_datetime("2020-09-13T12:26Z"), Ok(1_599_999_960_000));
        // 2026-11-21T10:00:00Z
        assert_eq!(
            parse_datetime("2026-11-21T10:00:00Z"),
            Ok(1_795_255_200_000)
        );
        // Leap day, and before the epoch.
        assert_eq!(
            parse_datetime("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Ok(-1000));
    }

    #[test]
    fn bad_datetimes_are_refused_with_the_expected_form() {
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:60:00Z",
            "2026-11-21T10:00:60Z",
            "2026-11-21T10:00:00.Z",
            "2026-11-21T10:00:00+25:00",
            "2026-11-21T10:00:00+1",
            "26-11-21T10:00:00Z",
            "2026-11-21T10:00:00:00Z",
            "yesterday",
        ] {
            let err = parse_datetime(bad).expect_err(bad);
            assert!(err.contains("2026-11-21T10:00:00Z"), "{err}");
        }
        let err = parse_datetime("2026-11-21T10:00:00").unwrap_err();
        assert!(err.contains("no time zone"), "{err}");
    }
}
