//! One client connection: read size-prefixed frames, decode, dispatch, answer in order.
//!
//! A connection is served by one task, one request at a time, so responses leave in request
//! order as the protocol requires. Anything wrong with the bytes of a frame (too large, too short,
//! undecodable) closes this connection only, with a logged reason; an API or version we do not
//! implement is answered with UNSUPPORTED_VERSION and the connection stays open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::apis::{self, api_versions, Call};
use crate::broker::{Broker, Reply};
use crate::error::ConnectionError;

/// Serves one connection until the client closes it or sends something unreadable.
pub async fn serve_connection(broker: Arc<Broker>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let _ = stream.set_nodelay(true);
    match run(&broker, stream, &peer).await {
        Ok(()) => tracing::debug!(%peer, "connection closed by client"),
        Err(ConnectionError::Io(e)) => {
            tracing::debug!(%peer, error = %e, "connection ended")
        }
        Err(e @ ConnectionError::Idle { .. }) => {
            broker.metrics().connection_closed("idle");
            tracing::debug!(%peer, "closing connection: {e}")
        }
        Err(e @ ConnectionError::SignInTimeout { .. }) => {
            broker.metrics().connection_closed("sign_in_timeout");
            tracing::info!(%peer, "closing connection: {e}")
        }
        Err(e) => tracing::warn!(%peer, "closing connection: {e}"),
    }
}

async fn run(broker: &Arc<Broker>, stream: TcpStream, peer: &str) -> Result<(), ConnectionError> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let max = broker.config.max_request_bytes;
    let mut session = crate::sasl::Session::default();
    let config = &broker.config;
    let sign_in_by = broker
        .authorizer()
        .map(|_| Instant::now() + Duration::from_millis(config.sign_in_timeout_ms));
    let idle = Duration::from_millis(config.idle_timeout_ms);
    loop {
        // The next request must start before the connection counts as idle, and, until the
        // client has signed in, before its sign-in deadline.
        let signing_in = sign_in_by.filter(|_| session.who.is_none());
        let wait = signing_in.map_or(idle, |by| {
            by.saturating_duration_since(Instant::now()).min(idle)
        });
        let mut len = [0u8; 4];
        match tokio::time::timeout(wait, rd.read_exact(&mut len)).await {
            Err(_) if signing_in.is_some() => {
                return Err(ConnectionError::SignInTimeout {
                    limit_ms: config.sign_in_timeout_ms,
                })
            }
            Err(_) => {
                return Err(ConnectionError::Idle {
                    limit_ms: config.idle_timeout_ms,
                })
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e.into()),
        }
        let size = i64::from(i32::from_be_bytes(len));
        // Before signing in, a frame is at most what a sign-in needs (Kafka's
        // sasl.server.max.receive.size): a stranger cannot make the node buffer 100 MiB.
        let max = match (broker.authorizer().is_some(), &session.who) {
            (true, None) => max.min(crate::sasl::MAX_SIGN_IN_FRAME),
            _ => max,
        };
        if size >= 0 && size as u64 > max {
            return Err(ConnectionError::FrameTooLarge { size, max });
        }
        if size < 0 || (size < 8 && !session.raw_tokens) {
            return Err(ConnectionError::FrameTooShort { size });
        }
        let mut frame = BytesMut::zeroed(size as usize);
        rd.read_exact(&mut frame).await?;
        let answer = if session.raw_tokens {
            // After a v0 SaslHandshake the client sends bare SASL tokens, answered bare.
            crate::sasl::raw_token(broker, &mut session, frame.freeze(), peer).await
        } else {
            handle_frame(broker, frame.freeze(), peer, &mut session).await?
        };
        if let Some(out) = answer {
            wr.write_all(&out).await?;
        }
        if session.close {
            wr.flush().await?;
            return Err(ConnectionError::SignInFailed);
        }
    }
}

/// Serves one request frame (without its size prefix) as a new connection that has not signed
/// in would, and returns the response frame to send, if any: the decoder and the dispatcher
/// without a socket, for fuzzing.
pub async fn serve_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
) -> Result<Option<Bytes>, ConnectionError> {
    if frame.len() < 8 {
        return Err(ConnectionError::FrameTooShort {
            size: frame.len() as i64,
        });
    }
    let mut session = crate::sasl::Session::default();
    handle_frame(broker, frame, "in-process", &mut session).await
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

/// Decodes and handles one request frame; returns the response frame to send, if any.
async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    peer: &str,
    session: &mut crate::sasl::Session,
) -> Result<Option<Bytes>, ConnectionError> {
    let raw_key = be_i16(&frame[0..2]);
    let version = be_i16(&frame[2..4]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        tracing::warn!(%peer, api_key = raw_key, "unknown API key; answering UNSUPPORTED_VERSION");
        return Ok(Some(raw_error_frame(correlation_id)));
    };
    let authorizer = broker.authorizer();
    let range = api_versions::supported(api_key, authorizer.is_some());
    let in_range = range.is_some_and(|(min, max)| (min..=max).contains(&version));
    if !in_range {
        tracing::info!(%peer, api = ?api_key, version, "unsupported API version; answering UNSUPPORTED_VERSION");
        let response = if api_key == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the versions we do support, so the client can retry.
            ResponseKind::ApiVersions(api_versions::response(
                Some(ResponseError::UnsupportedVersion),
                authorizer.is_some(),
            ))
        } else if range.is_some() {
            apis::unsupported_response(api_key)
        } else {
            return Ok(Some(raw_error_frame(correlation_id)));
        };
        let answer_version = if api_key == ApiKey::ApiVersions {
            0
        } else {
            version
        };
        return Ok(Some(
            encode_response(api_key, answer_version, correlation_id, &response)
                .unwrap_or_else(|_| raw_error_frame(correlation_id)),
        ));
    }
    let malformed = |reason: String| ConnectionError::Malformed {
        api: format!("{api_key:?}"),
        version,
        correlation_id,
        reason,
    };
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| malformed(format!("bad request header: {e}")))?;
    let request =
        RequestKind::decode(api_key, &mut frame, version).map_err(|e| malformed(e.to_string()))?;
    let client_id = header
        .client_id
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let request = match (authorizer, request) {
        (Some(_), RequestKind::SaslHandshake(req)) => {
            let answer = ResponseKind::SaslHandshake(crate::sasl::handshake(session, req, version));
            return encode_response(api_key, version, correlation_id, &answer).map(Some);
        }
        (Some(authorizer), RequestKind::SaslAuthenticate(req)) => {
            let answer = ResponseKind::SaslAuthenticate(
                crate::sasl::authenticate(&**authorizer, session, req, peer).await,
            );
            return encode_response(api_key, version, correlation_id, &answer).map(Some);
        }
        (Some(_), _) if session.who.is_none() && api_key != ApiKey::ApiVersions => {
            return Err(ConnectionError::Unauthenticated {
                api: format!("{api_key:?}"),
            });
        }
        (_, request) => request,
    };
    let call = Call {
        broker,
        version,
        client_id: &client_id,
        peer,
    };
    match apis::dispatch(&call, session.who.as_deref(), request).await {
        Reply::Nothing => Ok(None),
        Reply::Send(response) => {
            encode_response(api_key, version, correlation_id, &response).map(Some)
        }
    }
}

/// The response frame: size, header and body.
fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, ConnectionError> {
    let failed = |reason: String| ConnectionError::Encode {
        api: format!("{api_key:?}"),
        version,
        reason,
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| failed(e.to_string()))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| failed(e.to_string()))?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A response frame for an API we cannot encode at all: the correlation id and the error code.
fn raw_error_frame(correlation_id: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(10);
    buf.put_i32(6);
    buf.put_i32(correlation_id);
    buf.put_i16(ResponseError::UnsupportedVersion.code());
    buf.freeze()
}
