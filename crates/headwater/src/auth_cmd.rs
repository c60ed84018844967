//! `headwater auth principal NAME`: a new principal's config entry, with its secrets hashed.

use std::process::ExitCode;

use anyhow::Context;
use headwater_auth::{AuthConfig, NewPrincipal};

use crate::output::Output;

/// Prints a new principal's config entry and, once, its secrets.
pub(crate) fn principal(
    name: &str,
    groups: &[String],
    password_env: Option<&str>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let password = match password_env {
        Some(var) => Some(std::env::var(var).with_context(|| {
            format!("--password-env {var}: the variable is not set; export it or leave the option out for a random password")
        })?),
        None => None,
    };
    let made = NewPrincipal::generate(name, groups, password)?;
    #[derive(serde::Serialize)]
    struct Node {
        auth: AuthConfig,
    }
    let entry = toml::to_string(&Node {
        auth: AuthConfig {
            platform: Vec::new(),
            principals: vec![made.config],
        },
    })?;
    // Only the principal's table: `platform` belongs to the node's config once.
    let entry = entry
        .split_once("[[auth.principals]]")
        .map(|(_, rest)| format!("[[auth.principals]]{rest}"))
        .unwrap_or(entry);
    if output == Output::Json {
        println!(
            "{}",
            serde_json::json!({ "config": entry, "password": made.password, "token": made.token })
        );
    } else {
        // Secrets on stderr, so `>> node.toml` stores only their hashes.
        eprintln!(
            "# principal {name}: these secrets are shown once; the config keeps only their hashes"
        );
        eprintln!(
            "#   Kafka:  sasl.username={name} sasl.password={}",
            made.password
        );
        eprintln!("#   HTTP:   HEADWATER_TOKEN={}", made.token);
        print!("{entry}");
    }
    Ok(ExitCode::SUCCESS)
}
