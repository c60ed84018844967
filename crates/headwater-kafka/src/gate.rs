//! The produce gate: a check a produce request passes before its batches reach the log.
//!
//! The front end does not know contracts; the node plugs in a gate that does (see
//! `headwater-streams`). Refused records are reported per record, as KIP-467 defines, and the
//! whole batch is refused: a batch is stored exactly as sent or not at all.

use bytes::Bytes;

/// What the gate says about one partition's batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Every record is valid: the batches are written as sent.
    Pass,
    /// Dead-letter mode with some invalid records: write `valid` (the valid records re-encoded
    /// with their original offset spans and sequences, and record-less batches where a span had
    /// no valid record, so idempotent producers keep their numbering) and append `dead` to the
    /// dead-letter topic.
    Split {
        /// The batches to write to the partition.
        valid: Bytes,
        /// Plain batches of dead letters (the invalid records with headers saying why).
        dead: Bytes,
        /// Where the dead letters go (`<topic>.dlq`).
        dead_letter_topic: String,
        /// A summary of what was refused, for the log.
        message: String,
    },
    /// INVALID_RECORD: (index of the record in the request's batches, why), and a summary.
    Reject {
        /// Each invalid record's index and why.
        record_errors: Vec<(i32, String)>,
        /// The summary told to the client.
        message: String,
    },
}

/// The check a produce to a validated topic (`headwater.validation` other than `none`) passes
/// before it is written. It runs on the CPU pool, off the connection's task.
pub trait ProduceGate: Send + Sync + std::fmt::Debug {
    /// Checks `records` (the request's record batches for `topic`, as sent).
    /// With `dead_letter`, invalid records are split off instead of refusing the batch.
    fn check(&self, topic: &str, partition: i32, records: &Bytes, dead_letter: bool)
        -> GateVerdict;
}
