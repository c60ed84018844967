//! When a unit runs next: at its cron schedule, or after a failure, when its backoff ends.

use std::str::FromStr;
use std::time::Duration;

/// The next time `schedule` (a cron expression, in UTC) fires after `now`, in ms since the
/// epoch; `None` without a schedule or for one that does not parse (the manifest check
/// refuses those before they are applied).
pub(super) fn next_run(schedule: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let cron = croner::Cron::from_str(schedule?).ok()?;
    cron.find_next_occurrence(&now, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Retry delay after `attempt` consecutive failures (the first failure is attempt 1): 2 s,
/// 4 s, 8 s ... at most 256 s, so a pipeline fixed by a redeploy or a returning input is back
/// within minutes.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("a valid time")
    }

    #[test]
    fn backoff_doubles_from_two_seconds_and_stops_growing() {
        let secs: Vec<u64> = (1..=10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(256));
    }

    #[test]
    fn next_run_is_the_next_cron_time_after_now() {
        let now = utc(2026, 11, 25, 8, 20, 0);
        let at = |ms: Option<i64>| ms.and_then(|ms| chrono::Utc.timestamp_millis_opt(ms).single());
        // Every hour at :15 → 09:15 the same day.
        assert_eq!(
            at(next_run(Some("15 * * * *"), now)),
            Some(utc(2026, 11, 25, 9, 15, 0))
        );
        // Daily at 02:00 → the next day.
        assert_eq!(
            at(next_run(Some("0 2 * * *"), now)),
            Some(utc(2026, 11, 26, 2, 0, 0))
        );
        // Exactly at a firing time: the next one, not now.
        assert_eq!(
            at(next_run(Some("20 8 * * *"), now)),
            Some(utc(2026, 11, 26, 8, 20, 0))
        );
        assert_eq!(next_run(None, now), None);
        assert_eq!(next_run(Some("not cron"), now), None);
    }
}
