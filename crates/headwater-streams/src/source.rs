//! Streams as the pipeline runtime reads them: the embedded backing of
//! [`headwater_pipelines::StreamSource`], decoding records with the same code as `headwater tail`.

use std::sync::Arc;

use headwater_contracts::registry::VersionRef;
use headwater_contracts::Contract;
use headwater_log::Log;
use headwater_pipelines::{Offsets, SourceError, StreamRecord, StreamSource};

use crate::read::Positions;
use crate::sink::refused;
use crate::{SchemaRegistry, StreamError, StreamService};

/// Streams as the pipeline runtime reads them: decoded by the same code as `headwater tail`.
#[derive(Debug)]
pub struct NodeStreams {
    streams: Arc<StreamService>,
    registry: Arc<SchemaRegistry>,
    log: Arc<Log>,
}

impl NodeStreams {
    /// The streams `streams` serves, for the pipeline runtime.
    pub fn new(streams: Arc<StreamService>) -> Self {
        NodeStreams {
            registry: streams.registry().clone(),
            log: streams.broker().log().clone(),
            streams,
        }
    }
}

impl StreamSource for NodeStreams {
    fn contract(&self, topic: &str) -> Option<Contract> {
        let reg = self.registry.read();
        reg.version(&format!("{topic}-value"), VersionRef::Latest)
            .ok()
            .map(|(_, _, s)| s.contract.clone())
    }

    fn end_offsets(&self, topic: &str) -> Option<Offsets> {
        self.streams.end_positions(topic).ok().map(|p| p.0)
    }

    fn start_offsets(&self, topic: &str) -> Option<Offsets> {
        let t = self.log.topic(topic)?;
        Some(
            t.partitions()
                .iter()
                .map(|p| (p.index(), p.watermarks().log_start_offset))
                .collect(),
        )
    }

    fn read(
        &self,
        topic: &str,
        positions: &mut Offsets,
        end: &Offsets,
        max: usize,
    ) -> Result<Vec<StreamRecord>, SourceError> {
        let mut at = Positions(positions.clone());
        let events = self
            .streams
            .read(topic, &mut at, Some(&Positions(end.clone())), None, max)
            .map_err(|e| match e {
                e @ (StreamError::UnknownStream(_) | StreamError::InternalTopic(_)) => {
                    refused(topic, e).into()
                }
                StreamError::Read {
                    topic,
                    partition,
                    offset,
                    source,
                } => SourceError::ReadFailed {
                    stream: topic,
                    partition,
                    offset,
                    reason: source.to_string(),
                },
                StreamError::Undecodable {
                    topic,
                    partition,
                    offset,
                    reason,
                } => SourceError::ReadFailed {
                    stream: topic,
                    partition,
                    offset,
                    reason: format!("undecodable batch: {reason}"),
                },
                other => SourceError::Backing {
                    stream: topic.to_string(),
                    reason: other.to_string(),
                },
            })?;
        *positions = at.0;
        Ok(events
            .into_iter()
            .map(|e| StreamRecord {
                partition: e.partition,
                offset: e.offset,
                timestamp: e.timestamp,
                key: e.key,
                value: e.value,
            })
            .collect())
    }
}
