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
            by_name,
            by_token,
            platform: config.platform.clone(),
        })
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
            _ => Err(AuthError::BadCredentials { user: user.into() }),
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
            self.by_name.get(user).and_then(|p| {
                let credential = match mechanism {
                    Mechanism::Sha256 => p.scram_sha_256.clone(),
                    Mechanism::Sha512 => p.scram_sha_512.clone(),
                }?;
                Some((p.principal(&self.platform), credential))
            })
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
