//! Wall-clock time for the node and the client.
//!
//! Protocol code takes `now_ms: u64` (unix milliseconds) as a parameter
//! (`shared/spec/storage-rpc.md` §4 tolerances, `shared/spec/swarms.md` §8.3
//! request timestamps). This module is the one place in the workspace that
//! reads the system clock; everything else asks a [`Clock`], so tests can
//! substitute a [`TestClock`] with a fixed time or a skew.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }
}

/// Reads the system clock; a clock set before 1970 reads as 0.
fn system_now_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the system clock
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock for tests: either the system clock or a fixed time, plus an
/// adjustable offset (to simulate a skewed or advancing clock).
#[derive(Debug)]
pub struct TestClock {
    /// `None`: follow the system clock; `Some`: a fixed base time.
    fixed_ms: Option<AtomicU64>,
    offset_ms: AtomicI64,
}

impl TestClock {
    /// A clock frozen at `now_ms` until [`TestClock::advance_ms`] or
    /// [`TestClock::set_ms`] moves it.
    pub fn fixed(now_ms: u64) -> Self {
        Self {
            fixed_ms: Some(AtomicU64::new(now_ms)),
            offset_ms: AtomicI64::new(0),
        }
    }

    /// The system clock shifted by `offset_ms` (negative: behind).
    pub fn skewed(offset_ms: i64) -> Self {
        Self {
            fixed_ms: None,
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    /// Replaces the offset.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }

    /// The current offset.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                Some(o.saturating_add(ms))
            });
    }

    /// Sets the time so that [`Clock::now_ms`] reads `now_ms` (for a fixed
    /// clock: sets the base and clears the offset; for a skewed clock: sets
    /// the offset from the current system time).
    pub fn set_ms(&self, now_ms: u64) {
        match &self.fixed_ms {
            Some(base) => {
                base.store(now_ms, Ordering::SeqCst);
                self.set_offset_ms(0);
            }
            None => {
                let diff = i128::from(now_ms) - i128::from(system_now_ms());
                let diff =
                    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX });
                self.set_offset_ms(diff);
            }
        }
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        let base = match &self.fixed_ms {
            Some(base) => base.load(Ordering::SeqCst),
            None => system_now_ms(),
        };
        let offset = self.offset_ms();
        if offset >= 0 {
            base.saturating_add(offset.unsigned_abs())
        } else {
            base.saturating_sub(offset.unsigned_abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2024() {
        // 2024-01-01T00:00:00Z
        assert!(SystemClock.now_ms() > 1_704_067_200_000);
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = TestClock::fixed(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance_ms(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set_offset_ms(-2_000);
        assert_eq!(clock.now_ms(), 0, "saturates at the epoch");
        clock.set_ms(42);
        assert_eq!(clock.now_ms(), 42);
        assert_eq!(clock.offset_ms(), 0);
    }

    #[test]
    fn skewed_clock_follows_the_system_clock() {
        let clock = TestClock::skewed(-60_000);
        let sys = SystemClock.now_ms();
        let skewed = clock.now_ms();
        assert!(skewed + 60_000 >= sys && skewed + 60_000 < sys + 5_000);
        clock.set_ms(5);
        assert!(clock.now_ms() < 5_000);
    }

    #[test]
    fn clocks_work_behind_arc_dyn() {
        let clock: Arc<dyn Clock> = Arc::new(TestClock::fixed(7));
        assert_eq!(clock.now_ms(), 7);
    }
}
