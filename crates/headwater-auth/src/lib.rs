//! # headwater-auth
//!
//! Who a caller is. A node's `[auth]` config lists principals, each with the groups it belongs
//! to (`team:payments`) and its secrets stored hashed: SCRAM credentials (salt, iteration count,
//! StoredKey, ServerKey, as RFC 5802 defines them) and the SHA-256 of an HTTP bearer token.
//! [`Users`] checks a SASL/PLAIN password, runs the server side of a SCRAM-SHA-256/512
//! exchange, and resolves a bearer token, each yielding a [`Principal`].
//!
//! It owns credential formats and their verification. It does not decide what a principal may
//! do (that is derived from domain ownership, in `headwater-domains`), nor speak Kafka or HTTP.

mod config;
mod denied;
mod error;
mod principal;
mod scram;

pub use config::{AuthConfig, NewPrincipal, PrincipalConfig};
pub use denied::Denied;
pub use error::AuthError;
pub use principal::{Principal, TopicOp};
pub use scram::{Mechanism, ScramCredential, ScramExchange};

use std::collections::HashMap;

/// The principals of a node's config, indexed for each way of signing in.
#[derive(Debug)]
pub struct Users {
    by_name: HashMap<String, PrincipalConfig>,
    by_token: HashMap<[u8; 32], String>,
    platform: Vec<String>,
    /// Keys the made-up credentials of names nobody has: derived from every secret of the
    /// config, so it is stable across restarts and unknown to anyone without the config.
    decoy_key: [u8; 32],
}

impl Users {
    /// Indexes `config`; a duplicated principal name or token is refused, since either would
    /// make a sign-in ambiguous.
    pub fn new(config: &AuthConfig) -> Result<Users, AuthError> {
        let mut by_name = HashMap::new();
        let mut by_token = HashMap::new();
        for p in &config.principals {
            if by_name.insert(p.name.clone(), p.clone()).is_some() {
                return Err(AuthError::Config(format!(
                    "principal '{}' is listed twice under [[auth.principals]]; keep one",
                    p.name
                )));
            }
            if let Some(hash) = &p.token_sha256 {
                let key = token_key(hash).map_err(|e| {
                    AuthError::Config(format!("principal '{}': token_sha256 {e}", p.name))
                })?;
                if by_token.insert(key, p.name.clone()).is_some() {
                    return Err(AuthError::Config(format!(
                        "principal '{}' has the same token as another principal; issue it a new one",
                        p.name
                    )));
                }
            }
            if p.scram_sha_256.is_none() && p.scram_sha_512.is_none() && p.token_sha256.is_none() {
                return Err(AuthError::Config(format!(
                    "principal '{}' has no credential; add the block `headwater auth principal {}` prints",
                    p.name, p.name
                )));
            }
        }
        Ok(Users {
            decoy_key: decoy_key(config)?,
            by_name,
            by_token,
            platform: config.platform.clone(),
        })
    }

    /// The credential a name nobody has is answered with: the same salt every time for the
    /// same name and the default iteration count, as a real credential would be, and a
    /// password check doing the same work. So neither SCRAM's first answer nor PLAIN's time
    /// tells which names exist.
    fn decoy(&self, mechanism: Mechanism, user: &str) -> ScramCredential {
        use hmac::{Hmac, Mac};
        let derive = |what: &str| -> Vec<u8> {
            match <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.decoy_key) {
                Ok(mut mac) => {
                    mac.update(mechanism.sasl_name().as_bytes());
                    mac.update(&[0]);
                    mac.update(what.as_bytes());
                    mac.update(&[0]);
                    mac.update(user.as_bytes());
                    mac.finalize().into_bytes().to_vec()
                }
                // HMAC takes keys of any length.
                Err(_) => vec![0; 32],
            }
        };
        let stored = match mechanism {
            Mechanism::Sha256 => derive("stored"),
            Mechanism::Sha512 => [derive("stored"), derive("stored-2")].concat(),
        };
        ScramCredential {
            salt: derive("salt")[..16].to_vec(),
            iterations: config::SCRAM_ITERATIONS,
            server_key: stored.clone(),
            stored_key: stored,
        }
    }

    /// How many principals may sign in.
    pub fn count(&self) -> usize {
        self.by_name.len()
    }

    /// The platform identities, for messages that say who may approve a change.
    pub fn platform(&self) -> &[String] {
        &self.platform
    }

    /// Checks a SASL/PLAIN message (`authzid NUL user NUL password`).
    pub fn plain(&self, message: &[u8]) -> Result<Principal, AuthError> {
        let mut parts = message.split(|b| *b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed(
                "a PLAIN message is authzid NUL username NUL password".into(),
            ));
        };
        let user = std::str::from_utf8(user)
            .map_err(|_| AuthError::Malformed("the PLAIN username is not UTF-8".into()))?;
        if !authzid.is_empty() && authzid != user.as_bytes() {
            return Err(AuthError::Malformed(format!(
                "user '{user}' may not act for another identity; leave the authorization id empty"
            )));
        }
        let entry = self.by_name.get(user);
        let credential = entry.and_then(|p| p.scram_sha_512.as_ref().or(p.scram_sha_256.as_ref()));
        let mechanism = match entry {
            Some(p) if p.scram_sha_512.is_some() => Mechanism::Sha512,
            _ => Mechanism::Sha256,
        };
        match (entry, credential) {
            (Some(p), Some(c)) if c.matches_password(mechanism, password) => {
                Ok(p.principal(&self.platform))
            }
            (Some(_), Some(_)) => Err(AuthError::BadCredentials { user: user.into() }),
            _ => {
                // The same hashing a real user's check does, so time tells nothing.
                let decoy = self.decoy(mechanism, user);
                let _ = decoy.matches_password(mechanism, password);
                Err(AuthError::BadCredentials { user: user.into() })
            }
        }
    }

    /// Starts a SCRAM exchange from the client's first message; the answer to send is the
    /// exchange's [`ScramExchange::server_first`].
    pub fn scram(
        &self,
        mechanism: Mechanism,
        client_first: &[u8],
    ) -> Result<ScramExchange, AuthError> {
        ScramExchange::start(mechanism, client_first, |user| {
            let known = self.by_name.get(user).and_then(|p| {
                let credential = match mechanism {
                    Mechanism::Sha256 => p.scram_sha_256.clone(),
                    Mechanism::Sha512 => p.scram_sha_512.clone(),
                }?;
                Some((p.principal(&self.platform), credential))
            });
            match known {
                Some((p, c)) => (Some(p), c),
                None => (None, self.decoy(mechanism, user)),
            }
        })
    }

    /// The principal whose bearer token this is.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let name = self.by_token.get(&key)?;
        self.by_name.get(name).map(|p| p.principal(&self.platform))
    }
}

/// The key of [`Users::decoy`]: a hash of every credential the config holds (random when it
/// holds none, as then no name exists to be found).
fn decoy_key(config: &AuthConfig) -> Result<[u8; 32], AuthError> {
    use sha2::Digest;
    if config.principals.is_empty() {
        return random_bytes::<32>();
    }
    let mut h = sha2::Sha256::new();
    h.update(b"headwater decoy credentials\0");
    for p in &config.principals {
        for c in [&p.scram_sha_256, &p.scram_sha_512].into_iter().flatten() {
            h.update(&c.salt);
            h.update(&c.stored_key);
            h.update(&c.server_key);
        }
        if let Some(t) = &p.token_sha256 {
            h.update(t.as_bytes());
        }
    }
    Ok(h.finalize().into())
}

fn token_key(hex_text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_text).map_err(|e| format!("is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "must be 64 hex digits (a SHA-256)".to_string())
}

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out)
        .map_err(|e| AuthError::Config(format!("the system has no random source: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> (Users, NewPrincipal) {
        let made = NewPrincipal::generate("finance-svc", &["team:finance-eng".into()], None)
            .expect("generate");
        let config = AuthConfig {
            platform: vec!["user:admin".into()],
            principals: vec![made.config.clone()],
        };
        (Users::new(&config).expect("valid"), made)
    }

    #[test]
    fn plain_accepts_the_password_and_nothing_else() {
        let (users, made) = users();
        let ok = users
            .plain(format!("\0finance-svc\0{}", made.password).as_bytes())
            .expect("right password");
        assert_eq!(ok.name, "finance-svc");
        assert_eq!(ok.groups, vec!["team:finance-eng".to_string()]);
        for wrong in [
            "\0finance-svc\0nope".to_string(),
            format!("\0nobody\0{}", made.password),
            format!("\0finance-svc\0{}x", made.password),
        ] {
            assert!(matches!(
                users.plain(wrong.as_bytes()),
                Err(AuthError::BadCredentials { .. })
            ));
        }
        assert!(matches!(
            users.plain(b"no separators"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn an_unknown_name_gets_a_stable_salt_like_a_real_one() {
        let (users, _) = users();
        let first = |user: &str| {
            let message = format!("n,,n={user},r=abc");
            let exchange = users
                .scram(Mechanism::Sha256, message.as_bytes())
                .expect("a first message");
            let text = String::from_utf8_lossy(exchange.server_first()).into_owned();
            let mut parts = text.split(',').skip(1);
            (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        };
        let (salt, iterations) = first("nobody");
        assert_eq!(
            first("nobody"),
            (salt.clone(), iterations.clone()),
            "stable"
        );
        assert_ne!(first("somebody-else").0, salt, "per name");
        let (real_salt, real_iterations) = first("finance-svc");
        assert_eq!(real_iterations, iterations);
        assert_eq!(real_salt.len(), salt.len());
    }

    #[test]
    fn bearer_tokens_resolve_to_their_principal() {
        let (users, made) = users();
        assert_eq!(
            users.bearer(&made.token).map(|p| p.name),
            Some("finance-svc".to_string())
        );
        assert!(users.bearer("not-a-token").is_none());
        assert!(!users.bearer(&made.token).is_some_and(|p| p.platform));
    }

    #[test]
    fn duplicate_principals_are_refused() {
        let made = NewPrincipal::generate("a", &[], Some("pw".into())).expect("generate");
        let config = AuthConfig {
            platform: vec![],
            principals: vec![made.config.clone(), made.config],
        };
        let err = Users::new(&config).expect_err("duplicate");
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
