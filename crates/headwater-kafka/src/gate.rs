//! The produce gate: a check a produce request passes before its batches reach the log.
//!
//! The front end does not know contracts; the node plugs in a gate that does (see
//! `headwater-server`). Refused records are reported per record, as KIP-467 defines, and the
//! whole batch is refused: a batch is stored exactly as sent or not at all.

use bytes::Bytes;

/// What the gate says about one partition's batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    Pass,
    /// Dead-letter mode with some invalid records: write `valid` (the valid records re-encoded
    /// with their original offset spans and sequences, and record-less batches where a span had
    /// no valid record, so idempotent producers keep their numbering) and append `dead` to the
    /// dead-letter topic.
    Split {
        valid: Bytes,
        dead: Bytes,
        dead_letter_topic: String,
        message: String,
    },
    /// INVALID_RECORD: (index of the record in the request's batches, why), and a summary.
    Reject {
        record_errors: Vec<(i32, String)>,
        message: String,
    },
}

pub trait ProduceGate: Send + Sync + std::fmt::Debug {
    /// Checks `records` (the request's record batches for `topic`, as sent).
    /// With `dead_letter`, invalid records are split off instead of refusing the batch.
    fn check(&self, topic: &str, partition: i32, records: &Bytes, dead_letter: bool)
        -> GateVerdict;
}
