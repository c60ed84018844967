//! `GET /metrics`: the node in Prometheus' text format (OpenMetrics).
//!
//! Counters (produce and fetch per topic, refusals per rule, dead letters, access refusals) are
//! kept as traffic passes; lag, freshness and pipeline states are read from the status service
//! at each scrape, as `headwater status` reads them.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use headwater_governance::{PipelineService, RefusalCounts, StatusService};
use headwater_kafka::Broker;
use headwater_streams::ContractGate;

/// Everything `/metrics` reports: counters kept as traffic passes, and the services read at
/// each scrape.
#[derive(Debug)]
pub struct NodeMetrics {
    counters: Registry,
    http_refusals: crate::HttpRefusals,
    status: Arc<StatusService>,
    pipelines: Arc<PipelineService>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
    domain: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriberLabel {
    stream: String,
    subscriber: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabel {
    pipeline: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineStateLabel {
    pipeline: String,
    state: String,
}

impl NodeMetrics {
    /// The metrics of `broker` and `gate` (produce, fetch, invalid records), access `refusals`,
    /// and what `status` and `pipelines` say at each scrape.
    pub fn new(
        broker: &Broker,
        gate: &ContractGate,
        refusals: &RefusalCounts,
        status: Arc<StatusService>,
        pipelines: Arc<PipelineService>,
    ) -> Self {
        let mut counters = Registry::default();
        broker.metrics().register(&mut counters);
        gate.register_metrics(&mut counters);
        counters.register(
            "headwater_access_refusals",
            "Requests refused by access control (outcome access.refused) and failed sign-ins (auth.failed), by what was refused",
            refusals.clone(),
        );
        let http_refusals = crate::HttpRefusals::default();
        counters.register(
            "headwater_http_refused",
            "HTTP connections and event streams refused by the [http] limits, by reason (connection_limit, event_stream_limit)",
            http_refusals.clone(),
        );
        NodeMetrics {
            counters,
            http_refusals,
            status,
            pipelines,
        }
    }

    /// The counter of what the HTTP port's limits refused.
    pub fn http_refusals(&self) -> &crate::HttpRefusals {
        &self.http_refusals
    }

    /// The exposition of every metric.
    pub async fn render(&self) -> Result<String, std::fmt::Error> {
        let mut now = Registry::default();
        let lag_records = Family::<SubscriberLabel, Gauge>::default();
        let lag_seconds =
            Family::<SubscriberLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let newest_age = Family::<StreamLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let sla = Family::<StreamLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let fresh = Family::<StreamLabel, Gauge>::default();
        let now_ms = headwater_log::now_ms();
        for st in self.status.all().await {
            let stream = StreamLabel {
                stream: st.stream.clone(),
                domain: st.domain.clone(),
            };
            if let Some(newest) = st.newest_ms {
                newest_age
                    .get_or_create(&stream)
                    .set((now_ms - newest).max(0) as f64 / 1000.0);
            }
            if let Some(f) = st.freshness_ms {
                sla.get_or_create(&stream).set(f as f64 / 1000.0);
            }
            if let Some(ok) = st.fresh {
                fresh.get_or_create(&stream).set(i64::from(ok));
            }
            for sub in &st.subscribers {
                let label = SubscriberLabel {
                    stream: st.stream.clone(),
                    subscriber: sub.name.clone(),
                    kind: sub.kind.to_string(),
                };
                lag_records.get_or_create(&label).set(sub.lag_records);
                lag_seconds.get_or_create(&label).set(sub.lag_seconds);
            }
        }
        now.register(
            "headwater_lag_records",
            "Records a consumer group or pipeline has not processed yet",
            lag_records,
        );
        now.register(
            "headwater_lag_seconds",
            "Age of the oldest record a consumer group or pipeline has not processed",
            lag_seconds,
        );
        now.register(
            "headwater_stream_newest_age_seconds",
            "Age of a stream's newest record",
            newest_age,
        );
        now.register(
            "headwater_stream_freshness_sla_seconds",
            "A stream's declared freshness",
            sla,
        );
        now.register(
            "headwater_stream_fresh",
            "1 while a stream's newest record is within its freshness SLA, 0 in breach",
            fresh,
        );

        let state = Family::<PipelineStateLabel, Gauge>::default();
        let failures = Family::<PipelineLabel, Gauge>::default();
        let records_in = Family::<PipelineLabel, Gauge>::default();
        let records_out = Family::<PipelineLabel, Gauge>::default();
        for p in self.pipelines.supervisor().statuses() {
            let pipeline = format!("{}.{}", p.domain, p.name);
            let (name, counts) = match &p.state {
                headwater_pipelines::State::Waiting { .. } => ("waiting", None),
                headwater_pipelines::State::Running { .. } => ("running", None),
                headwater_pipelines::State::Streaming {
                    records_in,
                    records_out,
                    ..
                } => ("streaming", Some((*records_in, *records_out))),
                headwater_pipelines::State::BackingOff { .. } => ("backing_off", None),
                headwater_pipelines::State::Stopped { .. } => ("stopped", None),
                headwater_pipelines::State::Stuck { .. } => ("stuck", None),
            };
            state
                .get_or_create(&PipelineStateLabel {
                    pipeline: pipeline.clone(),
                    state: name.to_string(),
                })
                .set(1);
            let label = PipelineLabel { pipeline };
            failures
                .get_or_create(&label)
                .set(i64::try_from(p.failures).unwrap_or(i64::MAX));
            if let Some((i, o)) = counts {
                records_in
                    .get_or_create(&label)
                    .set(i64::try_from(i).unwrap_or(i64::MAX));
                records_out
                    .get_or_create(&label)
                    .set(i64::try_from(o).unwrap_or(i64::MAX));
            }
        }
        now.register(
            "headwater_pipeline_state",
            "1 for the state a pipeline is in",
            state,
        );
        now.register(
            "headwater_pipeline_failures",
            "Failures (each followed by a restart) since the pipeline was deployed",
            failures,
        );
        now.register(
            "headwater_pipeline_records_in",
            "Records a streaming pipeline has read since it last started",
            records_in,
        );
        now.register(
            "headwater_pipeline_records_out",
            "Records a streaming pipeline has written since it last started",
            records_out,
        );

        let mut out = String::new();
        encode(&mut out, &self.counters)?;
        // One exposition: the first part's end marker goes.
        if let Some(cut) = out.rfind("# EOF\n") {
            out.truncate(cut);
        }
        encode(&mut out, &now)?;
        Ok(out)
    }
}

pub(crate) fn router(metrics: Arc<NodeMetrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics)
}

async fn scrape(
    axum::extract::State(m): axum::extract::State<Arc<NodeMetrics>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match m.render().await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics could not be encoded: {e}"),
        )
            .into_response(),
    }
}
