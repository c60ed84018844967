//! SCRAM (RFC 5802, with SHA-256 per RFC 7677 and SHA-512 as Kafka uses it): the stored
//! credential and the server side of one exchange.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{AuthError, Principal};

/// A SCRAM hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Mechanism {
    /// The SASL mechanism names a Kafka client asks for.
    pub fn from_sasl_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    /// The SASL mechanism name.
    pub fn sasl_name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail.
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            Mechanism::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
            Mechanism::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Mechanism::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt, iterations).to_vec()
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<sha2::Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// What the server keeps of a password: enough to check a proof, not to make one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScramCredential {
    /// The salt, random per credential.
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// H(ClientKey): checks a client's proof.
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    /// ServerKey: signs the server's final message.
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential of `password` with `salt` and `iterations`.
    pub fn derive(m: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = m.salted_password(password, salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: m.hash(&client_key),
            server_key: m.hmac(&salted, b"Server Key"),
        }
    }

    /// Whether `password` hashes to this credential (for SASL/PLAIN).
    pub fn matches_password(&self, m: Mechanism, password: &[u8]) -> bool {
        let again = ScramCredential::derive(m, password, &self.salt, self.iterations);
        again.stored_key.ct_eq(&self.stored_key).into()
    }
}

mod b64 {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

/// One SCRAM exchange after the client's first message.
#[derive(Debug)]
pub struct ScramExchange {
    mechanism: Mechanism,
    user: String,
    /// `None` for an unknown user: the exchange runs to the end with a made-up credential, so
    /// the answer does not tell which names exist.
    principal: Option<Principal>,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

fn attribute<'a>(part: Option<&'a str>, name: char, what: &str) -> Result<&'a str, AuthError> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| AuthError::Malformed(format!("the SCRAM message has no {what} ({name}=)")))
}

/// `=2C` and `=3D` stand for ',' and '=' in a SCRAM username.
fn unescape_name(name: &str) -> Result<String, AuthError> {
    let out = name.replace("=2C", ",").replace("=3D", "=");
    if out.len() + 2 * (name.matches("=2C").count() + name.matches("=3D").count()) != name.len()
        || name.replace("=2C", "").replace("=3D", "").contains('=')
    {
        return Err(AuthError::Malformed(format!(
            "username '{name}' has an '=' that is not =2C or =3D"
        )));
    }
    Ok(out)
}

impl ScramExchange {
    /// `lookup` gives a name's principal and credential, or for a name nobody has no
    /// principal and a made-up credential that answers like a real one.
    pub(crate) fn start(
        mechanism: Mechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> (Option<Principal>, ScramCredential),
    ) -> Result<ScramExchange, AuthError> {
        let nonce = B64.encode(crate::random_bytes::<18>()?);
        Self::start_with_nonce(mechanism, client_first, &nonce, lookup)
    }

    fn start_with_nonce(
        mechanism: Mechanism,
        client_first: &[u8],
        server_nonce: &str,
        lookup: impl FnOnce(&str) -> (Option<Principal>, ScramCredential),
    ) -> Result<ScramExchange, AuthError> {
        let text = std::str::from_utf8(client_first)
            .map_err(|_| AuthError::Malformed("the first SCRAM message is not UTF-8".into()))?;
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().unwrap_or_default();
        let bare = parts.next().ok_or_else(|| {
            AuthError::Malformed("the first SCRAM message has no gs2 header".into())
        })?;
        if flag.starts_with('p') {
            return Err(AuthError::Malformed(
                "channel binding is not supported; use SCRAM without -PLUS".into(),
            ));
        }
        if flag != "n" && flag != "y" {
            return Err(AuthError::Malformed(format!(
                "gs2 flag '{flag}' must be n or y"
            )));
        }
        let mut attrs = bare.split(',');
        let user = unescape_name(attribute(attrs.next(), 'n', "username")?)?;
        let client_nonce = attribute(attrs.next(), 'r', "nonce")?;
        if attrs.any(|a| a.starts_with("tokenauth=true")) {
            return Err(AuthError::Malformed(
                "delegation tokens are not supported; sign in with a password".into(),
            ));
        }
        if let Some(a) = authzid.strip_prefix("a=") {
            if unescape_name(a)? != user {
                return Err(AuthError::Malformed(format!(
                    "user '{user}' may not act for another identity; leave the authorization id empty"
                )));
            }
        }
        let (principal, credential) = lookup(&user);
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        Ok(ScramExchange {
            mechanism,
            user,
            principal,
            credential,
            gs2_header: format!("{flag},{authzid},"),
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        })
    }

    /// The message to send back to the client's first.
    pub fn server_first(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// The user the client named, for logs and the audit trail of a failed sign-in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks the client's proof; on success, the principal and the server's final message.
    pub fn finish(self, client_final: &[u8]) -> Result<(Principal, Vec<u8>), AuthError> {
        let bad = || AuthError::BadCredentials {
            user: self.user.clone(),
        };
        let text = std::str::from_utf8(client_final)
            .map_err(|_| AuthError::Malformed("the final SCRAM message is not UTF-8".into()))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| AuthError::Malformed("the final SCRAM message has no proof".into()))?;
        let mut attrs = without_proof.split(',');
        let binding = attribute(attrs.next(), 'c', "channel binding")?;
        let nonce = attribute(attrs.next(), 'r', "nonce")?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(AuthError::Malformed(
                "the channel binding does not repeat the first message's gs2 header".into(),
            ));
        }
        // librdkafka sends its own nonce again before the combined one ("r=" + client nonce +
        // the server's r); Kafka accepts any final nonce that ends with the combined one, and
        // so must we. The proof covers the message as sent either way.
        if !nonce.ends_with(&self.nonce) {
            return Err(AuthError::Malformed(format!(
                "the final message's nonce '{nonce}' is not the one the server sent ('{}')",
                self.nonce
            )));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| AuthError::Malformed("the SCRAM proof is not base64".into()))?;
        let m = self.mechanism;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = m.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(bad());
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let valid: bool = m
            .hash(&client_key)
            .ct_eq(&self.credential.stored_key)
            .into();
        match (valid, &self.principal) {
            (true, Some(p)) => {
                let server_signature = m.hmac(&self.credential.server_key, auth_message.as_bytes());
                let last = format!("v={}", B64.encode(server_signature));
                Ok((p.clone(), last.into_bytes()))
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pencil(m: Mechanism) -> (Principal, ScramCredential) {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        (
            Principal {
                name: "user".into(),
                groups: vec![],
                platform: false,
            },
            ScramCredential::derive(m, b"pencil", &salt, 4096),
        )
    }

    fn decoy() -> ScramCredential {
        ScramCredential::derive(Mechanism::Sha256, b"", b"salt", 4096)
    }

    #[test]
    fn rfc7677_example_exchange() {
        let exchange = ScramExchange::start_with_nonce(
            Mechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |_| {
                let (p, c) = pencil(Mechanism::Sha256);
                (Some(p), c)
            },
        )
        .expect("first");
        assert_eq!(
            exchange.server_first(),
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (who, last) = exchange
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .expect("valid proof");
        assert_eq!(who.name, "user");
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    /// The client side, as a Kafka client computes it.
    fn client_final(m: Mechanism, password: &[u8], first_bare: &str, server_first: &str) -> String {
        let mut attrs = server_first.split(',');
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).expect("r");
        let salt = B64
            .decode(attrs.next().and_then(|a| a.strip_prefix("s=")).expect("s"))
            .expect("b64");
        let iterations: u32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .expect("i");
        let salted = m.salted_password(password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let signature = m.hmac(&m.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    #[test]
    fn sha512_exchange_accepts_the_password_only() {
        for (password, ok) in [(&b"pencil"[..], true), (&b"crayon"[..], false)] {
            let exchange = ScramExchange::start(Mechanism::Sha512, b"n,,n=user,r=abc", |_| {
                let (p, c) = pencil(Mechanism::Sha512);
                (Some(p), c)
            })
            .expect("first");
            let server_first = String::from_utf8(exchange.server_first().to_vec()).expect("utf8");
            let last = client_final(Mechanism::Sha512, password, "n=user,r=abc", &server_first);
            assert_eq!(exchange.finish(last.as_bytes()).is_ok(), ok);
        }
    }

    #[test]
    fn unknown_users_fail_only_at_the_proof() {
        let exchange =
            ScramExchange::start(Mechanism::Sha256, b"n,,n=ghost,r=abc", |_| (None, decoy()))
                .expect("first");
        let server_first = String::from_utf8(exchange.server_first().to_vec()).expect("utf8");
        let last = client_final(Mechanism::Sha256, b"pencil", "n=ghost,r=abc", &server_first);
        assert!(matches!(
            exchange.finish(last.as_bytes()),
            Err(AuthError::BadCredentials { user }) if user == "ghost"
        ));
    }

    #[test]
    fn malformed_messages_are_named() {
        for bad in [
            &b"p=tls-unique,,n=u,r=x"[..],
            b"n,,r=x",
            b"garbage",
            b"n,,n=a=b,r=x",
        ] {
            assert!(
                matches!(
                    ScramExchange::start(Mechanism::Sha256, bad, |_| (None, decoy())),
                    Err(AuthError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
