//! The producer's send schedule. Pure arithmetic on microseconds since the
//! run's epoch; the producer task asks it what is due and sleeps until then.
//!
//! At a fixed rate, message `i` of a producer is *intended* to go out at
//! `start + i / rate`. Latency is measured from that intended time, not from
//! when the producer got round to sending: if the broker stalls, the messages
//! that should have gone out during the stall carry the stall in their
//! latency (no coordinated omission, as in wrk2 and the OpenMessaging
//! Benchmark).

/// A fixed-rate schedule, or none (as fast as the broker takes it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Send as fast as acknowledgements allow; a message's intended time is
    /// when it was created.
    Unlimited,
    /// Message `i` is due at `start_us + i * 1e6 / msgs_per_s`.
    Fixed { start_us: u64, msgs_per_s: f64 },
}

impl Schedule {
    /// A fixed schedule; `msgs_per_s` must be positive.
    pub fn fixed(start_us: u64, msgs_per_s: f64) -> Schedule {
        assert!(
            msgs_per_s > 0.0 && msgs_per_s.is_finite(),
            "rate {msgs_per_s}"
        );
        Schedule::Fixed {
            start_us,
            msgs_per_s,
        }
    }

    /// When message `index` is meant to be sent (for `Unlimited`: `now_us`).
    pub fn intended_us(&self, index: u64, now_us: u64) -> u64 {
        match *self {
            Schedule::Unlimited => now_us,
            Schedule::Fixed {
                start_us,
                msgs_per_s,
            } => start_us + (index as f64 * 1e6 / msgs_per_s) as u64,
        }
    }

    /// How many messages are due by `now_us` (those with an intended time
    /// ≤ now), counting from message 0; `u64::MAX` for `Unlimited`.
    pub fn due_by(&self, now_us: u64) -> u64 {
        match *self {
            Schedule::Unlimited => u64::MAX,
            Schedule::Fixed {
                start_us,
                msgs_per_s,
            } => {
                if now_us < start_us {
                    return 0;
                }
                let mut due = ((now_us - start_us) as f64 * msgs_per_s / 1e6) as u64 + 1;
                // Float rounding must never make a message due before its time
                // or leave one due after it.
                while due > 0 && self.intended_us(due - 1, now_us) > now_us {
                    due -= 1;
                }
                while self.intended_us(due, now_us) <= now_us {
                    due += 1;
                }
                due
            }
        }
    }

    /// Splits a total rate over `producers` so their messages interleave:
    /// producer `k` starts `k / total_rate` later. None for `Unlimited`.
    pub fn share(start_us: u64, total_msgs_per_s: f64, producers: u32, k: u32) -> Schedule {
        if total_msgs_per_s <= 0.0 {
            return Schedule::Unlimited;
        }
        let offset_us = (f64::from(k) * 1e6 / total_msgs_per_s) as u64;
        Schedule::fixed(
            start_us + offset_us,
            total_msgs_per_s / f64::from(producers.max(1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rate_intended_times() {
        let s = Schedule::fixed(1_000, 1_000.0); // one per ms
        assert_eq!(s.intended_us(0, 0), 1_000);
        assert_eq!(s.intended_us(1, 0), 2_000);
        assert_eq!(s.intended_us(1_000, 0), 1_001_000);
    }

    #[test]
    fn due_counts_every_message_whose_time_has_come() {
        let s = Schedule::fixed(1_000, 1_000.0);
        assert_eq!(s.due_by(0), 0);
        assert_eq!(s.due_by(999), 0);
        assert_eq!(s.due_by(1_000), 1);
        assert_eq!(s.due_by(1_999), 1);
        assert_eq!(s.due_by(2_000), 2);
        // A stalled producer that wakes up late owes the whole backlog, and
        // each owed message keeps its own intended time.
        assert_eq!(s.due_by(1_001_000), 1_001);
        assert_eq!(s.intended_us(500, 1_001_000), 501_000);
    }

    #[test]
    fn due_is_consistent_with_intended_for_awkward_rates() {
        for rate in [3.0, 7.7, 33_333.3, 1e6 / 3.0, 2_500_000.0] {
            let s = Schedule::fixed(17, rate);
            for now in (0..200_000).step_by(997) {
                let due = s.due_by(now);
                if due > 0 {
                    assert!(s.intended_us(due - 1, now) <= now);
                }
                assert!(s.intended_us(due, now) > now, "rate {rate} now {now}");
            }
        }
    }

    #[test]
    fn unlimited_sends_now() {
        let s = Schedule::Unlimited;
        assert_eq!(s.intended_us(42, 7), 7);
        assert_eq!(s.due_by(0), u64::MAX);
    }

    #[test]
    fn shares_interleave_and_sum_to_the_total() {
        let shares: Vec<Schedule> = (0..4).map(|k| Schedule::share(0, 4_000.0, 4, k)).collect();
        // Over one second the four producers send 4,000 messages together.
        let total: u64 = shares.iter().map(|s| s.due_by(999_999)).sum();
        assert_eq!(total, 4_000);
        // Their first messages are 250 µs apart.
        let firsts: Vec<u64> = shares.iter().map(|s| s.intended_us(0, 0)).collect();
        assert_eq!(firsts, vec![0, 250, 500, 750]);
        assert_eq!(Schedule::share(0, 0.0, 4, 1), Schedule::Unlimited);
    }
}
