//! Signing in over Kafka: SaslHandshake picks a mechanism, SaslAuthenticate carries its
//! messages (KIP-152 framing). PLAIN takes one message; SCRAM takes two, the first answered with
//! the server's challenge. A failed sign-in is answered with SASL_AUTHENTICATION_FAILED and the
//! connection closes, as Kafka does.

use std::sync::Arc;

use bytes::Bytes;
use headwater_auth::{AuthError, Mechanism, Principal, ScramExchange, Users};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::authorize::Authorizer;

/// The sign-in APIs, offered in ApiVersions only when the node has an `[auth]` config: a client
/// that asks to sign in to an open node should hear that it cannot, not sign in to nothing.
/// librdkafka requires SaslHandshake v0 in the list before it signs in at all, even to use v1.
/// They are answered by the connection, which holds the sign-in state, not dispatched.
pub(crate) const SIGN_IN_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// Largest frame read before a connection has signed in.
pub(crate) const MAX_SIGN_IN_FRAME: u64 = 512 * 1024;

pub(crate) const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Where one connection is in signing in.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub who: Option<Arc<Principal>>,
    chosen: Option<Chosen>,
    scram: Option<ScramExchange>,
    /// Close the connection once the current answer is written.
    pub close: bool,
    /// A v0 handshake chose a mechanism: the next frames are bare SASL tokens.
    pub raw_tokens: bool,
}

#[derive(Debug, Clone, Copy)]
enum Chosen {
    Plain,
    Scram(Mechanism),
}

impl Chosen {
    fn name(self) -> &'static str {
        match self {
            Chosen::Plain => "PLAIN",
            Chosen::Scram(m) => m.sasl_name(),
        }
    }
}

pub(crate) fn handshake(
    session: &mut Session,
    req: SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let offered = MECHANISMS
        .iter()
        .map(|m| StrBytes::from_static_str(m))
        .collect();
    let chosen = match &*req.mechanism {
        "PLAIN" => Some(Chosen::Plain),
        other => Mechanism::from_sasl_name(other).map(Chosen::Scram),
    };
    let code = match (&session.who, chosen) {
        (Some(_), _) => ResponseError::IllegalSaslState.code(),
        (None, Some(c)) => {
            session.chosen = Some(c);
            session.scram = None;
            session.raw_tokens = version == 0;
            0
        }
        (None, None) => ResponseError::UnsupportedSaslMechanism.code(),
    };
    SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(offered)
}

/// Password checks running at once. A PLAIN check is 4096 PBKDF2 rounds: they run on the
/// blocking pool, two at a time, so a burst of sign-ins waits its turn here and never holds the
/// workers that serve signed-in clients.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Checks a PLAIN message off the async workers.
async fn check_plain(users: Arc<Users>, message: Bytes) -> Result<Principal, AuthError> {
    let _turn = PASSWORD_CHECKS
        .acquire()
        .await
        .map_err(|_| AuthError::Malformed("the node is shutting down".into()))?;
    tokio::task::spawn_blocking(move || users.plain(&message))
        .await
        .unwrap_or_else(|e| {
            Err(AuthError::Malformed(format!(
                "the password check failed: {e}"
            )))
        })
}

pub(crate) async fn authenticate(
    authorizer: &dyn Authorizer,
    session: &mut Session,
    req: SaslAuthenticateRequest,
    peer: &str,
) -> SaslAuthenticateResponse {
    let refuse = |session: &mut Session, code: ResponseError, message: String| {
        session.close = true;
        SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    let Some(chosen) = session.chosen else {
        return refuse(
            session,
            ResponseError::IllegalSaslState,
            "SaslAuthenticate before SaslHandshake; the client must choose a mechanism first"
                .into(),
        );
    };
    if session.who.is_some() {
        return refuse(
            session,
            ResponseError::IllegalSaslState,
            "this connection has already signed in".into(),
        );
    }
    // The name a password is about to be checked for: PLAIN's, or SCRAM's at its proof.
    let claimed = match (chosen, &session.scram) {
        (Chosen::Plain, _) => Some(plain_user(&req.auth_bytes)),
        (Chosen::Scram(_), Some(exchange)) => Some(exchange.user().to_string()),
        (Chosen::Scram(_), None) => None,
    };
    if let Some(user) = claimed {
        if let Some(wait) = authorizer.sign_in_cool_down(&user, peer) {
            // Not checked, so not hashed; counted like any failure.
            let why = format!(
                "too many failed sign-ins as '{user}' from this address; try again in {} s",
                wait.as_secs().max(1)
            );
            authorizer.sign_in_failed(&user, chosen.name(), peer, &why);
            session.scram = None;
            return refuse(session, ResponseError::SaslAuthenticationFailed, why);
        }
    }
    let users = authorizer.users();
    let step: Result<(Option<Principal>, Bytes), (String, AuthError)> = match chosen {
        Chosen::Plain => check_plain(users.clone(), req.auth_bytes.clone())
            .await
            .map(|p| (Some(p), Bytes::new()))
            .map_err(|e| (plain_user(&req.auth_bytes), e)),
        Chosen::Scram(m) => match session.scram.take() {
            None => match users.scram(m, &req.auth_bytes) {
                Ok(exchange) => {
                    let challenge = Bytes::copy_from_slice(exchange.server_first());
                    session.scram = Some(exchange);
                    Ok((None, challenge))
                }
                Err(e) => Err((String::new(), e)),
            },
            Some(exchange) => {
                let user = exchange.user().to_string();
                exchange
                    .finish(&req.auth_bytes)
                    .map(|(p, last)| (Some(p), Bytes::from(last)))
                    .map_err(|e| (user, e))
            }
        },
    };
    match step {
        Ok((who, answer)) => {
            if let Some(p) = who {
                tracing::info!(%peer, principal = %p.audit_name(), mechanism = chosen.name(), "signed in");
                session.who = Some(Arc::new(p));
            }
            SaslAuthenticateResponse::default().with_auth_bytes(answer)
        }
        Err((user, e)) => {
            let why = e.to_string();
            tracing::warn!(%peer, user = %user, mechanism = chosen.name(), "sign-in refused: {why}");
            authorizer.sign_in_failed(&user, chosen.name(), peer, &why);
            refuse(
                session,
                ResponseError::SaslAuthenticationFailed,
                format!("{} sign-in refused: {why}", chosen.name()),
            )
        }
    }
}

/// The user a PLAIN message names, for the record of a failed sign-in.
fn plain_user(message: &[u8]) -> String {
    message
        .split(|b| *b == 0)
        .nth(1)
        .map(|u| String::from_utf8_lossy(u).into_owned())
        .unwrap_or_default()
}

/// One bare SASL token after a v0 handshake: answered with the bare reply (size-prefixed); a
/// failure closes the connection with no reply, as Kafka does for this framing.
pub(crate) async fn raw_token(
    broker: &crate::Broker,
    session: &mut Session,
    token: Bytes,
    peer: &str,
) -> Option<Bytes> {
    let authorizer = broker.authorizer()?;
    let req = SaslAuthenticateRequest::default().with_auth_bytes(token);
    let answer = authenticate(&**authorizer, session, req, peer).await;
    if session.who.is_some() && session.scram.is_none() {
        session.raw_tokens = false;
    }
    if answer.error_code != 0 {
        session.close = true;
        return None;
    }
    let mut out = bytes::BytesMut::with_capacity(4 + answer.auth_bytes.len());
    bytes::BufMut::put_i32(&mut out, answer.auth_bytes.len() as i32);
    out.extend_from_slice(&answer.auth_bytes);
    Some(out.freeze())
}
