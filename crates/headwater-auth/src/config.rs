//! The `[auth]` table of a node's config.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{AuthError, Mechanism, Principal, ScramCredential};

/// Authentication is on as soon as the table is present; without it the node runs open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Identities (`user:<name>` or a group) that administer every domain and approve changes
    /// to domains with `governance: central`. Empty: central domains cannot change, which is
    /// safer than letting their owners change them.
    #[serde(default)]
    pub platform: Vec<String>,
    /// The principals that may sign in.
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
}

/// One principal, as `headwater auth principal` prints it: no secret is stored in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// The SASL username; manifests name it `user:<name>`.
    pub name: String,
    /// Groups it belongs to, as manifests' `owners` name them (`team:payments`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Checks SCRAM-SHA-256 sign-ins, and PLAIN ones when there is no SHA-512 credential.
    pub scram_sha_256: Option<ScramCredential>,
    /// Checks SCRAM-SHA-512 sign-ins, and PLAIN ones.
    pub scram_sha_512: Option<ScramCredential>,
    /// SHA-256 (hex) of the HTTP bearer token. Tokens are 256 random bits, so a plain hash is
    /// enough; a slow hash would cost every HTTP request.
    pub token_sha256: Option<String>,
}

impl PrincipalConfig {
    /// The principal this entry signs in as; `platform` says whether it holds a platform
    /// identity.
    pub fn principal(&self, platform: &[String]) -> Principal {
        let mut p = Principal {
            name: self.name.clone(),
            groups: self.groups.clone(),
            platform: false,
        };
        let holds = p.identities().any(|i| platform.contains(&i));
        p.platform = holds;
        p
    }
}

/// A principal just made: the config entry to store and the secrets to hand over, once.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    /// The entry for the `[auth]` table: hashes only.
    pub config: PrincipalConfig,
    /// The password, in the clear: shown once, never stored.
    pub password: String,
    /// The HTTP bearer token, in the clear: shown once, never stored.
    pub token: String,
}

/// Kafka's own minimum for SCRAM; enough to make a stolen config slow to brute-force while a
/// PLAIN sign-in stays a few milliseconds.
pub(crate) const SCRAM_ITERATIONS: u32 = 4096;

impl NewPrincipal {
    /// Hashes `password` (or a random one) into SCRAM-SHA-256 and -512 credentials and makes a
    /// random bearer token.
    pub fn generate(
        name: &str,
        groups: &[String],
        password: Option<String>,
    ) -> Result<NewPrincipal, AuthError> {
        if name.is_empty() || name.contains(['\0', ',', '=']) {
            return Err(AuthError::Config(format!(
                "principal name '{name}' must be non-empty without NUL, ',' or '='"
            )));
        }
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let password = match password {
            Some(p) => p,
            None => url.encode(crate::random_bytes::<18>()?),
        };
        let token = format!("hw_{}", url.encode(crate::random_bytes::<32>()?));
        let token_sha256 = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(token.as_bytes()))
        };
        let credential = |m| -> Result<ScramCredential, AuthError> {
            Ok(ScramCredential::derive(
                m,
                password.as_bytes(),
                &crate::random_bytes::<16>()?,
                SCRAM_ITERATIONS,
            ))
        };
        Ok(NewPrincipal {
            config: PrincipalConfig {
                name: name.to_string(),
                groups: groups.to_vec(),
                scram_sha_256: Some(credential(Mechanism::Sha256)?),
                scram_sha_512: Some(credential(Mechanism::Sha512)?),
                token_sha256: Some(token_sha256),
            },
            password,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_principal_round_trips_through_toml() {
        let made =
            NewPrincipal::generate("ml-svc", &["team:ml-platform".into()], None).expect("generate");
        #[derive(Serialize, Deserialize)]
        struct Node {
            auth: AuthConfig,
        }
        let text = toml::to_string(&Node {
            auth: AuthConfig {
                platform: vec![],
                principals: vec![made.config.clone()],
            },
        })
        .expect("serialize");
        assert!(!text.contains(&made.password), "{text}");
        assert!(!text.contains(&made.token), "{text}");
        let back: Node = toml::from_str(&text).expect("parse");
        assert_eq!(back.auth.principals, vec![made.config]);
    }
}
