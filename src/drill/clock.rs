//! A host's clock mapped onto this machine's, so that a change is timed by when the host saw
//! it, not by when its answer came back.

use std::time::{Duration, Instant};

use crate::ssh::Session;

/// A host's clock mapped onto this machine's, as NTP does: from the round trip that took the
/// least time, whose error is at most half of it. An answer is only known to describe some
/// moment between sending and answering, which on a busy machine or a slow link can be
/// long; the host's own clock says when, and lbctl times changes by it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    /// The host's milliseconds since the epoch minus ours since `base`.
    offset_ms: f64,
}

fn signed_ms(base: Instant, at: Instant) -> f64 {
    if at >= base {
        (at - base).as_secs_f64() * 1000.0
    } else {
        -((base - at).as_secs_f64() * 1000.0)
    }
}

impl Clock {
    /// From round trips `(sent, answered, host's clock)`; `None` without any clock.
    pub fn from_round_trips(
        trips: impl IntoIterator<Item = (Instant, Instant, u64)>,
    ) -> Option<Clock> {
        let (sent, answered, clock) = trips.into_iter().min_by_key(|(s, a, _)| *a - *s)?;
        let base = sent;
        Some(Clock {
            base,
            offset_ms: clock as f64 - signed_ms(base, answered) / 2.0,
        })
    }

    /// When the host's clock read `clock_ms`, on ours, kept within `[sent, answered]` (the
    /// only moments the host can have meant).
    pub fn local(&self, clock_ms: u64, sent: Instant, answered: Instant) -> Instant {
        let ms = (clock_ms as f64 - self.offset_ms)
            .clamp(signed_ms(self.base, sent), signed_ms(self.base, answered));
        if ms >= 0.0 {
            self.base + Duration::from_secs_f64(ms / 1000.0)
        } else {
            self.base - Duration::from_secs_f64(-ms / 1000.0)
        }
    }
}

/// Asks the host for its clock a few times and maps it onto ours; `None` when the host has
/// no GNU `date` (callers then time by the round trip, later but never early).
pub async fn sync_clock(session: &Session) -> Option<Clock> {
    let mut trips = Vec::new();
    for _ in 0..3 {
        let sent = Instant::now();
        let out = session.run("date +%s%3N\n").await.ok()?;
        let answered = Instant::now();
        let clock = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        trips.push((sent, answered, clock));
    }
    Clock::from_round_trips(trips)
}

/// Milliseconds between two instants, for reports (0 when `to` is earlier).
pub fn millis(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_millis() as u64
}
