//! Network time (`onion.md` §10.5).
//!
//! The client keeps a clock offset: the median, over the last
//! [`CLOCK_SAMPLES`] (5) successful storage replies, of `t − local_receive_time`,
//! seeded from the guard `info` tests. Timestamps the client puts in requests
//! and messages are `local_time + offset` ([`NetworkClock::network_now`]).
//! After an inner `406`/`425` the client asks `info` of 2 nodes and
//! recomputes the offset from those answers alone
//! ([`NetworkClock::resync`]).

use std::collections::VecDeque;

use super::CLOCK_SAMPLES;

/// The clock offset between this client and the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkClock {
    /// `t − local_receive_time` of the last replies, oldest first.
    samples: VecDeque<i64>,
}

impl NetworkClock {
    /// Adds the offset of one reply: the node's `t` and the local time the
    /// reply was received. Keeps the last [`CLOCK_SAMPLES`].
    pub fn add_sample(&mut self, node_time_ms: u64, local_receive_ms: u64) {
        let offset = i128::from(node_time_ms) - i128::from(local_receive_ms);
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        if self.samples.len() == CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(offset);
    }

    /// Replaces every sample with these `(node_time_ms, local_receive_ms)`
    /// pairs (a resync after a clock error). An empty list keeps the current
    /// samples.
    pub fn resync(&mut self, samples: &[(u64, u64)]) {
        if samples.is_empty() {
            return;
        }
        self.samples.clear();
        for &(t, local) in samples {
            self.add_sample(t, local);
        }
    }

    /// The median offset in milliseconds (the mean of the two middle values
    /// for an even count, rounded down); 0 before any sample.
    pub fn offset_ms(&self) -> i64 {
        let mut v: Vec<i64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        let n = v.len();
        let lo = n.checked_sub(1).and_then(|i| v.get(i / 2)).copied();
        let hi = v.get(n / 2).copied();
        match (lo, hi) {
            (Some(lo), Some(hi)) => {
                // For an odd count lo == hi. The mean of two i64s is an i64.
                let mean = (i128::from(lo) + i128::from(hi)).div_euclid(2);
                i64::try_from(mean).unwrap_or(lo)
            }
            _ => 0,
        }
    }

    /// How many samples the median is taken over.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// The network time for local time `local_now_ms`: `local + offset`,
    /// saturating at 0 and `u64::MAX`.
    pub fn network_now(&self, local_now_ms: u64) -> u64 {
        local_now_ms.saturating_add_signed(self.offset_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_of_last_five() {
        let mut c = NetworkClock::default();
        assert_eq!(c.offset_ms(), 0);
        assert_eq!(c.network_now(1000), 1000);
        c.add_sample(1_100, 1_000); // +100
        assert_eq!(c.offset_ms(), 100);
        c.add_sample(1_000, 1_300); // -300
        assert_eq!(c.offset_ms(), -100);
        c.add_sample(5_000, 5_000); // 0
        assert_eq!(c.offset_ms(), 0);
        c.add_sample(9_050, 9_000); // +50
        c.add_sample(2_000, 1_000); // +1000  → {-300, 0, 50, 100, 1000}
        assert_eq!(c.offset_ms(), 50);
        assert_eq!(c.network_now(10_000), 10_050);
        c.add_sample(3_000, 1_000); // drops +100 → {-300, 0, 50, 1000, 2000}
        assert_eq!(c.sample_count(), 5);
        assert_eq!(c.offset_ms(), 50);
        c.add_sample(4_000, 1_000); // drops -300 → {0, 50, 1000, 2000, 3000}
        assert_eq!(c.offset_ms(), 1000);
    }

    #[test]
    fn resync_replaces_samples() {
        let mut c = NetworkClock::default();
        for _ in 0..5 {
            c.add_sample(0, 60_000);
        }
        assert_eq!(c.offset_ms(), -60_000);
        c.resync(&[]);
        assert_eq!(c.offset_ms(), -60_000);
        c.resync(&[(10_010, 10_000), (10_030, 10_000)]);
        assert_eq!(c.sample_count(), 2);
        assert_eq!(c.offset_ms(), 20);
    }

    #[test]
    fn extremes_saturate() {
        let mut c = NetworkClock::default();
        c.add_sample(0, u64::MAX);
        assert_eq!(c.offset_ms(), i64::MIN);
        assert_eq!(c.network_now(5), 0);
        c.resync(&[(u64::MAX, 0)]);
        assert_eq!(c.offset_ms(), i64::MAX);
        assert_eq!(c.network_now(u64::MAX), u64::MAX);
    }

    proptest! {
        #[test]
        fn median_is_a_middle_value(offsets in proptest::collection::vec(-1_000_000i64..1_000_000, 1..12)) {
            let mut c = NetworkClock::default();
            let base = 10_000_000u64;
            for o in &offsets {
                c.add_sample(base.saturating_add_signed(*o), base);
            }
            let mut last: Vec<i64> = offsets.iter().rev().take(CLOCK_SAMPLES).copied().collect();
            last.sort_unstable();
            let m = c.offset_ms();
            let below = last.iter().filter(|&&x| x <= m).count();
            let above = last.iter().filter(|&&x| x >= m).count();
            prop_assert!(below * 2 >= last.len() && above * 2 >= last.len());
            prop_assert!(m >= last[0] && m <= last[last.len() - 1]);
        }
    }
}
