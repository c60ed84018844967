//! The state of one key of a feature view, and the features computed from it.
//!
//! A sliding window of length W is kept as buckets of W/64 (at least one second) of event
//! time: an event adds to its bucket, and a lookup at time T combines the buckets that overlap
//! `(T - W, T]`. So a window's edge is exact to one bucket (about 1.6 % of its length), the
//! state of a key is bounded by 64 buckets per feature whatever the event rate, and features
//! age as time passes even when no event arrives. A feature without a window has one bucket.

use std::collections::BTreeMap;

use headwater_domains::{Aggregation, FeatureSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sketch::{hash, Sketch};

/// Buckets per sliding window.
const BUCKETS: u64 = 64;
const MIN_BUCKET_MS: u64 = 1_000;

/// One declared feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feature {
    /// Its name in the view's answers.
    pub name: String,
    /// How it aggregates.
    pub agg: Aggregation,
    /// The record field it aggregates; `None` for a count of events.
    pub of: Option<String>,
    /// The sliding window's length; `None` for everything seen.
    pub window_ms: Option<u64>,
}

impl Feature {
    /// The features a manifest declares, in name order.
    pub fn from_spec(specs: &BTreeMap<String, FeatureSpec>) -> Vec<Feature> {
        specs
            .iter()
            .map(|(name, f)| Feature {
                name: name.clone(),
                agg: f.agg,
                of: f.of.clone(),
                window_ms: f.window.map(|w| w.millis),
            })
            .collect()
    }

    /// The width of this feature's buckets; `None` for a feature over everything seen.
    pub fn bucket_ms(&self) -> Option<u64> {
        self.window_ms.map(|w| (w / BUCKETS).max(MIN_BUCKET_MS))
    }

    fn bucket_of(&self, ts: i64) -> i64 {
        match self.bucket_ms() {
            Some(b) => ts - ts.rem_euclid(b as i64),
            None => 0,
        }
    }

    /// Whether a bucket still overlaps the window ending at `now`.
    fn live(&self, bucket: i64, now: i64) -> bool {
        match (self.window_ms, self.bucket_ms()) {
            (Some(w), Some(b)) => bucket + b as i64 > now - w as i64,
            _ => true,
        }
    }
}

/// What one bucket of one feature has accumulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Partial {
    Count(u64),
    Sum(f64),
    Min(f64),
    Max(f64),
    Avg {
        sum: f64,
        count: u64,
    },
    /// The value with the latest event time (as JSON text: the store's encoding is not
    /// self-describing).
    Last {
        ts: i64,
        json: String,
    },
    Distinct(Sketch),
}

impl Partial {
    fn new(agg: Aggregation) -> Partial {
        match agg {
            Aggregation::Count => Partial::Count(0),
            Aggregation::Sum => Partial::Sum(0.0),
            Aggregation::Min => Partial::Min(f64::INFINITY),
            Aggregation::Max => Partial::Max(f64::NEG_INFINITY),
            Aggregation::Avg => Partial::Avg { sum: 0.0, count: 0 },
            Aggregation::Last => Partial::Last {
                ts: i64::MIN,
                json: "null".into(),
            },
            Aggregation::ApproxDistinct => Partial::Distinct(Sketch::default()),
        }
    }

    fn add(&mut self, ts: i64, value: &Value) {
        let number = || match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match self {
            Partial::Count(c) => *c += 1,
            Partial::Sum(s) => *s += number().unwrap_or(0.0),
            Partial::Min(m) => *m = number().map_or(*m, |x| m.min(x)),
            Partial::Max(m) => *m = number().map_or(*m, |x| m.max(x)),
            Partial::Avg { sum, count } => {
                if let Some(x) = number() {
                    *sum += x;
                    *count += 1;
                }
            }
            Partial::Last { ts: at, json } => {
                if ts >= *at {
                    *at = ts;
                    *json = value.to_string();
                }
            }
            Partial::Distinct(s) => s.insert(hash(value.to_string().as_bytes())),
        }
    }

    fn merge(&mut self, other: &Partial) {
        match (self, other) {
            (Partial::Count(a), Partial::Count(b)) => *a += b,
            (Partial::Sum(a), Partial::Sum(b)) => *a += b,
            (Partial::Min(a), Partial::Min(b)) => *a = a.min(*b),
            (Partial::Max(a), Partial::Max(b)) => *a = a.max(*b),
            (Partial::Avg { sum, count }, Partial::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Partial::Last { ts, json }, Partial::Last { ts: t, json: j }) if t > ts => {
                *ts = *t;
                json.clone_from(j);
            }
            (Partial::Distinct(a), Partial::Distinct(b)) => a.merge(b),
            _ => {}
        }
    }

    fn value(&self) -> Value {
        let float = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        match self {
            Partial::Count(c) => Value::from(*c),
            Partial::Sum(s) => float(*s),
            Partial::Min(m) | Partial::Max(m) if m.is_infinite() => Value::Null,
            Partial::Min(m) | Partial::Max(m) => float(*m),
            Partial::Avg { count: 0, .. } => Value::Null,
            Partial::Avg { sum, count } => float(sum / *count as f64),
            Partial::Last { json, .. } => serde_json::from_str(json).unwrap_or(Value::Null),
            Partial::Distinct(s) => Value::from(s.estimate()),
        }
    }
}

/// Everything a view keeps for one key: per feature, its buckets by start time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyState {
    buckets: Vec<Vec<(i64, Partial)>>,
    /// Event time of the latest event seen for this key.
    pub last_event_ms: i64,
    /// Events ever aggregated for this key.
    pub events: u64,
}

impl KeyState {
    /// Adds one event at event time `ts` to every feature; buckets that left their window by
    /// `now` are dropped, and an event older than its window is not kept.
    pub(crate) fn add(&mut self, features: &[Feature], ts: i64, record: &Value, now: i64) {
        self.buckets.resize_with(features.len(), Vec::new);
        for (feature, buckets) in features.iter().zip(&mut self.buckets) {
            let value = match &feature.of {
                Some(field) => match record.get(field) {
                    None | Some(Value::Null) => continue,
                    Some(v) => v,
                },
                None => &Value::Null,
            };
            let bucket = feature.bucket_of(ts);
            buckets.retain(|(b, _)| feature.live(*b, now));
            if !feature.live(bucket, now) {
                continue;
            }
            let at = match buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
                Ok(i) => i,
                Err(i) => {
                    buckets.insert(i, (bucket, Partial::new(feature.agg)));
                    i
                }
            };
            buckets[at].1.add(ts, value);
        }
        self.last_event_ms = self.last_event_ms.max(ts);
        self.events += 1;
    }

    /// When [`KeyState::values`] computed at `now` may first change without a new event: the
    /// earliest time a bucket counted at `now` leaves its window.
    pub(crate) fn answer_stands_until(&self, features: &[Feature], now: i64) -> i64 {
        let mut until = i64::MAX;
        for (feature, buckets) in features.iter().zip(&self.buckets) {
            let (Some(w), Some(b)) = (feature.window_ms, feature.bucket_ms()) else {
                continue;
            };
            for (start, _) in buckets {
                if feature.live(*start, now) {
                    until = until.min(start.saturating_add(b as i64).saturating_add(w as i64));
                }
            }
        }
        until
    }

    /// The features' values over their windows ending at `now`.
    pub(crate) fn values(&self, features: &[Feature], now: i64) -> serde_json::Map<String, Value> {
        features
            .iter()
            .enumerate()
            .map(|(i, feature)| {
                let mut total = Partial::new(feature.agg);
                for (b, partial) in self.buckets.get(i).map(Vec::as_slice).unwrap_or_default() {
                    if feature.live(*b, now) {
                        total.merge(partial);
                    }
                }
                (feature.name.clone(), total.value())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_domains::HumanDuration;
    use serde_json::json;

    const DAY: i64 = 86_400_000;

    fn features() -> Vec<Feature> {
        let spec = |agg, of: Option<&str>, window: Option<u64>| FeatureSpec {
            agg,
            of: of.map(String::from),
            window: window.map(|millis| HumanDuration { millis }),
        };
        let mut specs = BTreeMap::new();
        specs.insert(
            "txn_7d".into(),
            spec(Aggregation::Count, None, Some(7 * DAY as u64)),
        );
        specs.insert(
            "spend_30d".into(),
            spec(Aggregation::Sum, Some("amount"), Some(30 * DAY as u64)),
        );
        specs.insert("min".into(), spec(Aggregation::Min, Some("amount"), None));
        specs.insert("max".into(), spec(Aggregation::Max, Some("amount"), None));
        specs.insert("avg".into(), spec(Aggregation::Avg, Some("amount"), None));
        specs.insert(
            "last_merchant".into(),
            spec(Aggregation::Last, Some("merchant"), None),
        );
        specs.insert(
            "merchants".into(),
            spec(Aggregation::ApproxDistinct, Some("merchant"), None),
        );
        Feature::from_spec(&specs)
    }

    #[test]
    fn windows_slide_with_time() {
        let f = features();
        let now = 100 * DAY;
        let mut s = KeyState::default();
        // 10 days ago (outside 7d, inside 30d), 1 day ago, and 40 days ago (outside both).
        s.add(
            &f,
            now - 10 * DAY,
            &json!({"amount": 10.0, "merchant": "a"}),
            now,
        );
        s.add(&f, now - DAY, &json!({"amount": 5.5, "merchant": "b"}), now);
        s.add(
            &f,
            now - 40 * DAY,
            &json!({"amount": 99, "merchant": "c"}),
            now,
        );
        let v = s.values(&f, now);
        assert_eq!(v["txn_7d"], json!(1));
        assert_eq!(v["spend_30d"], json!(15.5));
        assert_eq!(v["min"], json!(5.5));
        assert_eq!(v["max"], json!(99.0));
        assert_eq!(v["avg"], json!((10.0 + 5.5 + 99.0) / 3.0));
        assert_eq!(v["last_merchant"], json!("b"));
        assert_eq!(v["merchants"], json!(3));
        // Six days later the transaction of a day ago is a week old.
        let later = s.values(&f, now + 6 * DAY + DAY / 10);
        assert_eq!(later["txn_7d"], json!(0));
        assert_eq!(later["spend_30d"], json!(15.5));
    }

    #[test]
    fn late_events_do_not_replace_the_latest_and_missing_fields_are_skipped() {
        let f = features();
        let now = 10 * DAY;
        let mut s = KeyState::default();
        s.add(&f, now, &json!({"amount": 1, "merchant": "new"}), now);
        s.add(&f, now - 1000, &json!({"merchant": "old"}), now);
        let v = s.values(&f, now);
        assert_eq!(v["last_merchant"], json!("new"));
        assert_eq!(v["avg"], json!(1.0));
        assert_eq!(v["txn_7d"], json!(2));
    }

    #[test]
    fn state_is_bounded_by_the_bucket_count() {
        let f = features();
        let mut s = KeyState::default();
        let start = 1_000 * DAY;
        for i in 0..5_000 {
            let ts = start + i * DAY / 50;
            s.add(&f, ts, &json!({"amount": 1}), ts);
        }
        assert!(
            s.buckets.iter().all(|b| b.len() <= 65),
            "{:?}",
            s.buckets.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
}
