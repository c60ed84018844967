//! Settings of the log as a whole and of each topic.
//!
//! Node-wide defaults come from the `[log]` table of the node's config file; a topic may override
//! each of them with the Kafka config names (`retention.ms`, `segment.bytes`, ...) when it is
//! created or altered, and those overrides are stored with the topic.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LogError;

/// When appended bytes are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Every append is on disk before it is acknowledged; concurrent appends share one fsync.
    Always,
    /// A background flusher syncs every `fsync_interval_ms`; a crash loses at most that window.
    Interval,
    /// Left to the operating system; segments are still synced when they roll and at shutdown.
    Never,
}

impl FsyncPolicy {
    /// The policy a `headwater.fsync` value names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(Self::Always),
            "interval" => Some(Self::Interval),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
    /// The `headwater.fsync` value of this policy.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Interval => "interval",
            Self::Never => "never",
        }
    }
}

/// Node-wide log settings: the `[log]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Default fsync policy. `interval` is Kafka's trade-off: fast, and a crash loses at most one
    /// interval of acknowledged-but-unsynced writes; choose `always` for no loss at all.
    pub fsync: FsyncPolicy,
    /// Period of the background flusher for topics under the `interval` policy.
    pub fsync_interval_ms: u64,
    /// A segment rolls once it would grow past this many bytes (Kafka's default, 1 GiB).
    pub segment_bytes: u64,
    /// A non-empty segment rolls once it is this old (Kafka's default, 7 days).
    pub segment_ms: u64,
    /// Segments whose newest record is older than this are deleted (7 days); -1 keeps forever.
    pub retention_ms: i64,
    /// Oldest segments are deleted while the partition is larger than this; -1 means no limit.
    pub retention_bytes: i64,
    /// Largest record batch a producer may send to one partition (Kafka's default, 1 MiB + a bit).
    pub max_message_bytes: u64,
    /// A sparse index entry every this many bytes: smaller finds offsets faster, costs memory.
    pub index_interval_bytes: u64,
    /// How often retention and age-based rolls are checked.
    pub retention_check_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            retention_check_interval_ms: 30_000,
        }
    }
}

/// The effective settings of one topic: node defaults with the topic's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// When appends reach the disk (`headwater.fsync`).
    pub fsync: FsyncPolicy,
    /// Size at which the active segment rolls (`segment.bytes`).
    pub segment_bytes: u64,
    /// Age at which the active segment rolls (`segment.ms`).
    pub segment_ms: u64,
    /// Age after which whole segments are deleted; -1 keeps them (`retention.ms`).
    pub retention_ms: i64,
    /// Size per partition above which the oldest segments are deleted; -1 keeps them (`retention.bytes`).
    pub retention_bytes: i64,
    /// Largest record batch accepted (`max.message.bytes`).
    pub max_message_bytes: u64,
    /// Whether produced records are checked against the topic's registered value schema
    /// (`<topic>-value`). Off by default: a plain Kafka topic takes any bytes, as in Kafka.
    pub validation: Validation,
}

/// What happens to records of a produce that break the topic's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Not checked.
    #[default]
    None,
    /// The whole batch is refused with INVALID_RECORD.
    Reject,
    /// Valid records are written, invalid ones go to `<topic>.dlq` with the reason.
    DeadLetter,
}

impl Validation {
    /// The `headwater.validation` value of this mode.
    pub fn as_str(&self) -> &'static str {
        match self {
            Validation::None => "none",
            Validation::Reject => "reject",
            Validation::DeadLetter => "dead-letter",
        }
    }
}

/// A topic setting a client can read and change, in Kafka's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigKey {
    pub name: &'static str,
    pub doc: &'static str,
}

/// Every topic setting a client may set. Anything else is refused with the list of these.
pub const TOPIC_CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "retention.ms",
        doc: "delete segments older than this many ms (-1: keep forever)",
    },
    ConfigKey {
        name: "retention.bytes",
        doc: "delete oldest segments while a partition is larger (-1: no limit)",
    },
    ConfigKey {
        name: "segment.bytes",
        doc: "roll a segment at this size",
    },
    ConfigKey {
        name: "segment.ms",
        doc: "roll a non-empty segment at this age",
    },
    ConfigKey {
        name: "max.message.bytes",
        doc: "largest record batch accepted",
    },
    ConfigKey {
        name: "headwater.fsync",
        doc: "always | interval | never",
    },
    ConfigKey {
        name: "headwater.validation",
        doc: "none | reject | dead-letter: check records against the subject <topic>-value",
    },
    ConfigKey {
        name: "cleanup.policy",
        doc: "only 'delete' is supported",
    },
];

impl TopicConfig {
    /// Applies `overrides` (Kafka config names) on top of the node defaults.
    pub fn resolve(
        defaults: &LogConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, LogError> {
        let mut c = TopicConfig {
            fsync: defaults.fsync,
            segment_bytes: defaults.segment_bytes,
            segment_ms: defaults.segment_ms,
            retention_ms: defaults.retention_ms,
            retention_bytes: defaults.retention_bytes,
            max_message_bytes: defaults.max_message_bytes,
            validation: Validation::None,
        };
        for (key, value) in overrides {
            c.set(key, value)?;
        }
        Ok(c)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), LogError> {
        let bad = |reason: &str| LogError::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("expected an integer"))
        };
        let at_least = |min: i64| match int()? {
            v if v < min => Err(bad(&format!("must be at least {min}"))),
            v => Ok(v as u64),
        };
        match key {
            "retention.ms" => self.retention_ms = int()?.max(-1),
            "retention.bytes" => self.retention_bytes = int()?.max(-1),
            "segment.bytes" => self.segment_bytes = at_least(1024)?,
            "segment.ms" => self.segment_ms = at_least(1)?,
            "max.message.bytes" => self.max_message_bytes = at_least(64)?,
            "headwater.fsync" => {
                self.fsync = FsyncPolicy::parse(value.trim())
                    .ok_or_else(|| bad("expected always, interval or never"))?;
            }
            "headwater.validation" => {
                self.validation = match value.trim() {
                    "none" => Validation::None,
                    "reject" => Validation::Reject,
                    "dead-letter" => Validation::DeadLetter,
                    _ => return Err(bad("expected none, reject or dead-letter")),
                };
            }
            "cleanup.policy" => {
                if value.trim() != "delete" {
                    return Err(bad(
                        "only 'delete' is supported (compaction is not built yet)",
                    ));
                }
            }
            _ => {
                let known: Vec<&str> = TOPIC_CONFIG_KEYS.iter().map(|k| k.name).collect();
                return Err(LogError::UnknownConfig {
                    key: key.to_string(),
                    known: known.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Every setting with its current value, for DescribeConfigs.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("headwater.fsync", self.fsync.as_str().to_string()),
            ("headwater.validation", self.validation.as_str().to_string()),
            ("cleanup.policy", "delete".to_string()),
        ]
    }

    /// [`Self::segment_ms`] as a duration.
    pub fn segment_age(&self) -> Duration {
        Duration::from_millis(self.segment_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_unknown_keys_are_named() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        o.insert("headwater.fsync".to_string(), "always".to_string());
        let c = TopicConfig::resolve(&LogConfig::default(), &o).expect("valid");
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.fsync, FsyncPolicy::Always);

        o.insert("retention.msx".to_string(), "1".to_string());
        let err = TopicConfig::resolve(&LogConfig::default(), &o).expect_err("unknown");
        assert!(err.to_string().contains("retention.msx"));
        assert!(err.to_string().contains("retention.ms,"));
    }
}
