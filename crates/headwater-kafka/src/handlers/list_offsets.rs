use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::client_topic;
use crate::error::log_error_code;
use crate::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) fn handle(
    broker: &Arc<Broker>,
    req: ListOffsetsRequest,
    _version: i16,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let topic = client_topic(broker, &name, false);
            let partitions = t
                .partitions
                .iter()
                .map(|lp| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(p) = topic
                        .as_ref()
                        .ok()
                        .and_then(|t| t.partition(lp.partition_index))
                    else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let marks = p.watermarks();
                    match lp.timestamp {
                        LATEST => base.with_offset(marks.high_watermark),
                        EARLIEST => base.with_offset(marks.log_start_offset),
                        ts if ts >= 0 => match p.offset_for_timestamp(ts) {
                            Ok(Some((offset, found_ts))) => {
                                base.with_offset(offset).with_timestamp(found_ts)
                            }
                            Ok(None) => base,
                            Err(e) => base.with_error_code(log_error_code(&e).code()),
                        },
                        _ => base.with_error_code(ResponseError::UnsupportedVersion.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
