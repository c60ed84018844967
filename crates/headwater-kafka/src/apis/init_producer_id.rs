//! InitProducerId: ids for idempotent producers (transactional ids are refused).

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::{Api, Call};
use crate::Broker;

/// InitProducerId for idempotent producers.
impl Api for InitProducerIdRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=4;

    async fn handle(self, call: &Call<'_>) -> Option<InitProducerIdResponse> {
        Some(init_producer_id(call.broker, self))
    }
}

/// Hands idempotent producers an id that is never reused, or bumps the epoch of an id a producer
/// already holds (KIP-360), so its sequence numbers start over without being fenced.
fn init_producer_id(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let base = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        tracing::info!(
            "refusing InitProducerId with a transactional id: transactions are not built yet"
        );
        return base.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return base
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match broker.log.allocate_producer_id() {
        Ok(id) => base.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::error!("could not allocate a producer id: {e}");
            base.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}
