//! One signed-in Kafka protocol connection to one broker of the cluster, for the admin requests
//! librdkafka's Rust binding does not offer (ACLs, SCRAM users). Requests go one at a time, at
//! the highest version both the broker and the codec know.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes};
use pbkdf2::pbkdf2_hmac;
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ClusterConfig, ClusterError, SaslMechanism};

/// The largest response Headwater reads from a broker (an ACL listing of a large cluster fits).
const MAX_RESPONSE: usize = 100 << 20;

/// A connection to one broker, signed in as Headwater's user.
#[derive(Debug)]
pub struct BrokerConnection {
    stream: TcpStream,
    addr: String,
    correlation: i32,
    /// The highest version of each API the broker supports.
    versions: HashMap<i16, i16>,
    timeout: Duration,
}

impl BrokerConnection {
    /// Connects to `addr` (`host:port`) and signs in as `config` says.
    pub async fn open(addr: &str, config: &ClusterConfig) -> Result<Self, ClusterError> {
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        let unreachable = |detail: String| ClusterError::Unreachable {
            bootstrap: addr.to_string(),
            waited_ms: config.connect_timeout_ms,
            detail,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable("connecting timed out".to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let mut conn = BrokerConnection {
            stream,
            addr: addr.to_string(),
            correlation: 0,
            versions: HashMap::new(),
            timeout,
        };
        let api_versions = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("headwater"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let answer = conn.send_at(&api_versions, 3).await?;
        if answer.error_code != 0 {
            return Err(conn.refused("ApiVersions", answer.error_code, None));
        }
        conn.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect();
        if let Some(mechanism) = config.sasl_mechanism {
            conn.sign_in(mechanism, config).await?;
        }
        Ok(conn)
    }

    /// Sends `request` at the highest version both sides know and returns the answer.
    pub async fn send<R>(&mut self, request: &R) -> Result<R::Response, ClusterError>
    where
        R: Request + Encodable + Message,
    {
        let theirs = self.versions.get(&R::KEY).copied().ok_or_else(|| {
            self.protocol(format!("the broker does not support API key {}", R::KEY))
        })?;
        let version = theirs.min(R::VERSIONS.max);
        if version < R::VERSIONS.min {
            return Err(self.protocol(format!(
                "the broker's API key {} versions (up to {theirs}) are older than Headwater \
                 reads",
                R::KEY
            )));
        }
        self.send_at(request, version).await
    }

    async fn send_at<R>(&mut self, request: &R, version: i16) -> Result<R::Response, ClusterError>
    where
        R: Request + Encodable,
    {
        self.correlation += 1;
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| self.protocol(format!("unknown API key {}", R::KEY)))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("headwater")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .and_then(|()| request.encode(&mut buf, version))
            .map_err(|e| self.protocol(format!("encoding a request: {e}")))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| self.protocol("a request over 2 GiB".to_string()))?;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        let mut frame = tokio::time::timeout(self.timeout, self.exchange(&buf))
            .await
            .map_err(|_| {
                self.protocol(format!("no answer within {} ms", self.timeout.as_millis()))
            })??;
        let answer = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| self.protocol(format!("decoding an answer's header: {e}")))?;
        if answer.correlation_id != self.correlation {
            return Err(self.protocol(format!(
                "answer {} to request {}",
                answer.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut frame, version)
            .map_err(|e| self.protocol(format!("decoding an answer: {e}")))
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Bytes, ClusterError> {
        let io = |e: std::io::Error| e.to_string();
        let result: Result<Bytes, String> = async {
            self.stream.write_all(request).await.map_err(io)?;
            let len = self.stream.read_i32().await.map_err(io)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_RESPONSE)
                .ok_or_else(|| format!("an answer of {len} bytes"))?;
            let mut frame = vec![0u8; len];
            self.stream.read_exact(&mut frame).await.map_err(io)?;
            Ok(Bytes::from(frame))
        }
        .await;
        result.map_err(|detail| self.protocol(detail))
    }

    async fn sign_in(
        &mut self,
        mechanism: SaslMechanism,
        config: &ClusterConfig,
    ) -> Result<(), ClusterError> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name()));
        let answer = self.send_at(&handshake, 1).await?;
        if answer.error_code != 0 {
            return Err(self.sign_in_refused(
                config,
                format!(
                    "the broker does not enable {} (it offers {:?})",
                    mechanism.name(),
                    answer
                        .mechanisms
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        let username = config.username.clone().unwrap_or_default();
        let password = config.resolved_password()?.unwrap_or_default();
        match mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{username}\0{password}");
                self.authenticate(config, Bytes::from(token)).await?;
            }
            SaslMechanism::ScramSha256 => {
                self.scram(Scram::Sha256, config, &username, &password)
                    .await?;
            }
            SaslMechanism::ScramSha512 => {
                self.scram(Scram::Sha512, config, &username, &password)
                    .await?;
            }
        }
        Ok(())
    }

    /// RFC 5802's client side, with the proof of the server checked too.
    async fn scram(
        &mut self,
        hash: Scram,
        config: &ClusterConfig,
        username: &str,
        password: &str,
    ) -> Result<(), ClusterError> {
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| self.protocol(format!("no random bytes for a nonce: {e}")))?;
        let nonce = B64.encode(nonce);
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={nonce}");
        let server_first = self
            .authenticate(config, Bytes::from(format!("n,,{client_first_bare}")))
            .await?;
        let server_first = String::from_utf8(server_first.to_vec()).map_err(|_| {
            self.sign_in_refused(config, "a server-first message not in UTF-8".into())
        })?;
        let attr = |key: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(key))
                .map(str::to_string)
        };
        let (Some(server_nonce), Some(salt), Some(iterations)) =
            (attr("r="), attr("s="), attr("i="))
        else {
            return Err(self.sign_in_refused(
                config,
                format!("a server-first message without r, s or i: {server_first}"),
            ));
        };
        if !server_nonce.starts_with(&nonce) {
            return Err(
                self.sign_in_refused(config, "the server changed the client's nonce".into())
            );
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| self.sign_in_refused(config, "a salt not in base64".into()))?;
        let iterations: u32 = iterations.parse().map_err(|_| {
            self.sign_in_refused(config, "an iteration count that is not a number".into())
        })?;
        let salted = hash.salted(password.as_bytes(), &salt, iterations);
        let hmac = |key: &[u8], data: &[u8]| hash.hmac(key, data);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_final = self
            .authenticate(
                config,
                Bytes::from(format!("{without_proof},p={}", B64.encode(proof))),
            )
            .await?;
        let server_key = hmac(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            B64.encode(hmac(&server_key, auth_message.as_bytes()))
        );
        if server_final.as_ref() != expected.as_bytes() {
            return Err(self.sign_in_refused(
                config,
                "the server did not prove it knows the password".into(),
            ));
        }
        Ok(())
    }

    async fn authenticate(
        &mut self,
        config: &ClusterConfig,
        bytes: Bytes,
    ) -> Result<Bytes, ClusterError> {
        let answer = self
            .send_at(
                &SaslAuthenticateRequest::default().with_auth_bytes(bytes),
                2,
            )
            .await?;
        if answer.error_code != 0 {
            let detail = answer.error_message.map_or_else(
                || format!("error code {}", answer.error_code),
                |m| m.to_string(),
            );
            return Err(self.sign_in_refused(config, detail));
        }
        Ok(answer.auth_bytes)
    }

    fn sign_in_refused(&self, config: &ClusterConfig, detail: String) -> ClusterError {
        ClusterError::SignIn {
            bootstrap: self.addr.clone(),
            username: config.username.clone().unwrap_or_default(),
            mechanism: config.sasl_mechanism.map_or("no SASL", SaslMechanism::name),
            detail,
        }
    }

    fn refused(&self, what: &str, code: i16, message: Option<String>) -> ClusterError {
        let name = kafka_protocol::ResponseError::try_from_code(code)
            .map_or_else(|| format!("error code {code}"), |e| format!("{e:?}"));
        self.protocol(format!(
            "{what} refused: {name}{}",
            message.map_or_else(String::new, |m| format!(" ({m})"))
        ))
    }

    fn protocol(&self, detail: String) -> ClusterError {
        ClusterError::Protocol {
            broker: self.addr.clone(),
            detail,
        }
    }
}

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy)]
enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    fn salted(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        match self {
            Scram::Sha256 => pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Scram::Sha512 => pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }

    fn len(self) -> usize {
        match self {
            Scram::Sha256 => 32,
            Scram::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length, so new_from_slice cannot fail here.
        match self {
            Scram::Sha256 => Hmac::<Sha256>::new_from_slice(key)
                .map(|m| m.chain_update(data).finalize().into_bytes().to_vec())
                .unwrap_or_default(),
            Scram::Sha512 => Hmac::<Sha512>::new_from_slice(key)
                .map(|m| m.chain_update(data).finalize().into_bytes().to_vec())
                .unwrap_or_default(),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Scram::Sha256 => Sha256::digest(data).to_vec(),
            Scram::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}
