//! Where HTTP requests run. Connections are read and answered by one thread with its own
//! event loop, which answers view lookups itself; every other request is handed to the node's
//! worker runtime and its answer written back when ready.
//!
//! A lookup is a few microseconds of work, and its tail latency was set by scheduling: with
//! connections spread over the multi-threaded runtime, a request often waited for a worker
//! busy elsewhere (the pipelines, the Kafka listener, another connection). One thread that
//! only reads requests and answers lookups, as Redis does, keeps that wait out. SQL, rebuilds,
//! publishing and the registry keep both cores, since they run on the workers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::{ready, Either, Ready};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower_service::Service;

use headwater_governance::{NodeAccess, PipelineService};

use crate::limits::HttpLimits;

/// Serves `lookups` on a dedicated thread and hands every other request to `api` on the
/// current runtime, until `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    pipelines: Arc<PipelineService>,
    access: Option<Arc<NodeAccess>>,
    lookups: Router,
    api: Router,
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let front = Front {
        pipelines,
        access,
        rest: lookups.fallback_service(OnWorkers {
            api,
            workers: tokio::runtime::Handle::current(),
        }),
        peer: None,
    };
    let listener = listener.into_std()?;
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("headwater-http".into())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        accept(listener, front, limits, shutdown).await;
                        Ok(())
                    })
                });
            let _ = done.send(served);
        })?;
    finished
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the HTTP thread stopped")))
}

/// Accepts connections and serves each with `front` under `limits` until `shutdown`; then
/// lets the requests under way finish for a moment (event streams never do, so not longer).
async fn accept(
    listener: tokio::net::TcpListener,
    front: Front,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving what is open.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limits.connection() else {
            tracing::warn!(%peer, limit = limits.config.max_connections, "closing a new HTTP connection: the node serves [http] max_connections already");
            continue;
        };
        // Answers go out as soon as they are written, as Redis does: Nagle's algorithm would
        // hold a small answer back while the previous one is unacknowledged.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set on an HTTP connection: {e}");
        }
        let front = Front {
            peer: Some(peer),
            ..front.clone()
        };
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut front = front.clone();
            front.call(req.map(Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
            drop(slot);
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), graceful.shutdown()).await;
}

/// The HTTP thread's service: a single-key lookup is answered straight from the request's
/// path; the batch lookup and everything else go through `rest` (a router whose fallback runs
/// requests on the workers). Matching routes and extracting the path into owned strings is
/// work a lookup of a few microseconds does not need.
#[derive(Clone)]
struct Front {
    pipelines: Arc<PipelineService>,
    /// With auth, a lookup is signed in and checked here too.
    access: Option<Arc<NodeAccess>>,
    rest: Router,
    /// The connection's peer, given to every request on a node with auth (as axum's
    /// `ConnectInfo`).
    peer: Option<SocketAddr>,
}

impl Service<Request<Body>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future =
        Either<Ready<Result<Response, Infallible>>, <Router as Service<Request<Body>>>::Future>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // Only sign-in needs the peer (to count failures per address); a node without auth
        // spares the lookups the allocation.
        if let (Some(peer), Some(_)) = (self.peer, &self.access) {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        if req.method() == Method::GET {
            if let Some((domain, view, key)) = key_lookup(req.uri().path()) {
                if let Some(Err(refused)) = self
                    .access
                    .as_ref()
                    .map(|a| crate::sign_in::check_request(a, &req))
                {
                    return Either::Left(ready(Ok(*refused)));
                }
                let answer = crate::routes::views::one_key(&self.pipelines, domain, view, key);
                return Either::Left(ready(Ok(answer)));
            }
        }
        Either::Right(self.rest.call(req))
    }
}

/// `/v1/views/{domain}/{view}/{key}` with three plain segments. A path with percent-escapes
/// takes the router, which decodes them.
fn key_lookup(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/v1/views/")?;
    if rest.contains('%') {
        return None;
    }
    let mut parts = rest.split('/');
    let (domain, view, key) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = parts.next().is_none() && ![domain, view, key].iter().any(|p| p.is_empty());
    plain.then_some((domain, view, key))
}

/// Runs a request on the worker runtime.
#[derive(Clone)]
struct OnWorkers {
    api: Router,
    workers: tokio::runtime::Handle,
}

impl Service<Request<Body>> for OnWorkers {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let mut api = self.api.clone();
        let answer = self.workers.spawn(async move {
            let Ok(response) = api.call(req).await;
            produced_on_workers(response)
        });
        Box::pin(async move {
            Ok(match answer.await {
                Ok(response) => response,
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the request's handler failed: {e}"),
                )
                    .into_response(),
            })
        })
    }
}

/// An event stream's body is produced on the workers too: reading and decoding the records it
/// carries is work, and the HTTP thread only moves the bytes.
fn produced_on_workers(response: Response) -> Response {
    let streaming = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        return response;
    }
    let (parts, body) = response.into_parts();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, axum::Error>>(16);
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            if tx.send(chunk).await.is_err() {
                // The client went away.
                return;
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use super::key_lookup;

    #[test]
    fn only_plain_three_segment_paths_take_the_direct_lookup() {
        assert_eq!(
            key_lookup("/v1/views/ml/customer_spend/c-042"),
            Some(("ml", "customer_spend", "c-042"))
        );
        for routed in [
            "/v1/views/ml/customer_spend",
            "/v1/views/ml/customer_spend/",
            "/v1/views/ml/customer_spend/c%2D1",
            "/v1/views/ml//c-1",
            "/v1/views/ml/customer_spend/c-1/x",
            "/v1/viewsx/ml/customer_spend/c-1",
        ] {
            assert_eq!(key_lookup(routed), None, "{routed}");
        }
    }
}
