//! Failed sign-ins by source address. A stranger can fail to sign in as often as it likes, so
//! each failure is counted but only the 1st, 10th, 100th, ... of each minute from an address is
//! audited, each entry carrying how many failures it stands for (so the counts add up to every
//! failure, the ones after the last entry of a minute carried by the next minute's first), the
//! names it claims are cut short, and a user name that keeps
//! failing from one address is refused there without its password being checked until its
//! minute is over: a burst of bad sign-ins can neither fill the audit trail nor keep the node
//! hashing passwords for one guessed account. The cool-down is per address and name, not per
//! address alone, so the other users behind one address (a NAT, a CI machine) still sign in.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long failures are counted together.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Failures of one name from one address in a window after which its sign-ins there are
/// refused unchecked until the window ends. Thirty: more than a misconfigured client retries in
/// a minute (librdkafka reconnects within a second at first, backing off to ten), far fewer
/// than a guesser needs.
pub(crate) const FAILURES_BEFORE_COOL_DOWN: u64 = 30;
/// The longest claimed name kept in the audit trail, in bytes.
pub(crate) const MAX_NAME_KEPT: usize = 256;
/// Windows remembered at once; expired ones are forgotten first beyond this.
const MAX_WINDOWS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u64,
    /// `failures` when the last entry was audited.
    audited_through: u64,
}

/// Failures counted per key in windows of [`WINDOW`].
#[derive(Debug)]
struct Windows<K> {
    by_key: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            by_key: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Windows<K> {
    /// Counts a failure of `key`; when it is to be audited (the 1st, 10th, 100th, ... of its
    /// window), returns how many failures it stands for: itself and those since the last
    /// audited one, in this window or the key's last.
    fn fail(&self, key: K, now: Instant) -> Option<u64> {
        let mut by_key = self.by_key.lock();
        if by_key.len() >= MAX_WINDOWS && !by_key.contains_key(&key) {
            by_key.retain(|_, w| now.duration_since(w.started) < WINDOW);
            if by_key.len() >= MAX_WINDOWS {
                // Every key failing at once: nothing is tracked (or audited) individually.
                return None;
            }
        }
        let window = by_key.entry(key).or_insert(Window {
            started: now,
            failures: 0,
            audited_through: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            let unaudited = window.failures - window.audited_through;
            *window = Window {
                started: now,
                failures: 1,
                audited_through: 1,
            };
            return Some(unaudited + 1);
        }
        window.failures += 1;
        let milestone = window.failures == 10u64.pow(window.failures.ilog10());
        if !milestone {
            return None;
        }
        let since = window.failures - window.audited_through;
        window.audited_through = window.failures;
        Some(since)
    }

    /// The rest of `key`'s window, if it failed too often in it.
    fn cool_down(&self, key: &K, now: Instant) -> Option<Duration> {
        let by_key = self.by_key.lock();
        let window = by_key.get(key)?;
        let elapsed = now.duration_since(window.started);
        (window.failures >= FAILURES_BEFORE_COOL_DOWN && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }
}

/// Failed sign-ins: per source address for the audit trail, per address and name for the
/// cool-down.
#[derive(Debug, Default)]
pub(crate) struct SignInFailures {
    by_source: Windows<IpAddr>,
    by_name: Windows<(IpAddr, String)>,
}

/// What to do with one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Audit it, as standing for `failures` failures (itself and those from the address since
    /// the last one audited).
    Audit { failures: u64 },
    /// Count it only.
    Quiet,
}

impl SignInFailures {
    /// Counts a failure from `source` claiming `name` at `now`.
    pub(crate) fn failed(&self, source: Option<IpAddr>, name: &str, now: Instant) -> Verdict {
        let Some(source) = source else {
            return Verdict::Audit { failures: 1 };
        };
        let _ = self.by_name.fail((source, kept_name(name)), now);
        match self.by_source.fail(source, now) {
            Some(failures) => Verdict::Audit { failures },
            None => Verdict::Quiet,
        }
    }

    /// How long sign-ins from `source` claiming `name` must wait before they are checked
    /// again, if that name failed too often from there in its current window.
    pub(crate) fn cool_down(
        &self,
        source: Option<IpAddr>,
        name: &str,
        now: Instant,
    ) -> Option<Duration> {
        self.by_name.cool_down(&(source?, kept_name(name)), now)
    }
}

/// `name` cut to at most [`MAX_NAME_KEPT`] bytes (on a character boundary), marked when cut.
pub(crate) fn kept_name(name: &str) -> String {
    if name.len() <= MAX_NAME_KEPT {
        return name.to_string();
    }
    let mut end = MAX_NAME_KEPT;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &name[..end], name.len())
}

/// The address of a peer written `host:port` (Kafka's peers), if it reads as one.
pub(crate) fn source_of(peer: &str) -> Option<IpAddr> {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_audit_per_address_and_window_carrying_the_rest() {
        let f = SignInFailures::default();
        let (a, b) = (source_of("10.0.0.1:5000"), source_of("10.0.0.2:6000"));
        let t0 = Instant::now();
        let audited: Vec<u64> = (0..300)
            .filter_map(|i| match f.failed(a, &format!("user{i}"), t0) {
                Verdict::Audit { failures } => Some(failures),
                Verdict::Quiet => None,
            })
            .collect();
        assert_eq!(
            audited,
            [1, 9, 90],
            "the 1st, 10th and 100th, with what each stands for"
        );
        assert_eq!(
            f.failed(b, "x", t0),
            Verdict::Audit { failures: 1 },
            "another address"
        );
        assert_eq!(
            f.failed(a, "x", t0 + WINDOW),
            Verdict::Audit { failures: 201 },
            "the next window's first carries the 200 after the 100th"
        );
    }

    #[test]
    fn a_name_failing_too_often_from_an_address_cools_down_there_only() {
        let f = SignInFailures::default();
        let (a, b) = (source_of("10.0.0.1:5000"), source_of("10.0.0.2:5000"));
        let t0 = Instant::now();
        for _ in 0..FAILURES_BEFORE_COOL_DOWN - 1 {
            f.failed(a, "alice", t0);
        }
        assert_eq!(f.cool_down(a, "alice", t0), None);
        f.failed(a, "alice", t0);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            f.cool_down(a, "alice", later),
            Some(WINDOW - Duration::from_secs(10))
        );
        assert_eq!(f.cool_down(a, "bob", later), None, "another name");
        assert_eq!(f.cool_down(b, "alice", later), None, "another address");
        assert_eq!(
            f.cool_down(a, "alice", t0 + WINDOW),
            None,
            "the window is over"
        );
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let kept = kept_name(&long);
        assert!(kept.len() < MAX_NAME_KEPT + 40, "{}", kept.len());
        assert!(kept.ends_with("(2000 bytes)"));
        assert_eq!(kept_name("alice"), "alice");
    }
}
