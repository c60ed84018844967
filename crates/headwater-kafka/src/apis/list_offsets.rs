//! ListOffsets: the earliest and latest offsets of partitions, or the first at a timestamp.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{client_topic, Api, Call};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::log_error_code;
use crate::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// ListOffsets by timestamp, earliest (-2) and latest (-1).
impl Api for ListOffsetsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 1..=6;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_topics(TopicOp::Consume, &mut self.topics, |t| {
            (
                &t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<ListOffsetsResponse> {
        Some(list_offsets(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response
            .topics
            .extend(answer_topics(refused, |name, partitions, _| {
                ListOffsetsTopicResponse::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p)
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                    .with_offset(-1)
                                    .with_timestamp(-1)
                            })
                            .collect(),
                    )
            }));
        response
    }
}

fn list_offsets(broker: &Arc<Broker>, req: ListOffsetsRequest) -> ListOffsetsResponse {
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
