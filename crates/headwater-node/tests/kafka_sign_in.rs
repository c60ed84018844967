//! Signing in over Kafka at the wire level, through the node's own services: requests before
//! sign-in close the connection, the legacy v0 handshake with bare SASL tokens works, and a
//! signed-in principal is refused another domain's stream without anything being written,
//! with the refusal in the audit trail.

use bytes::{BufMut, BytesMut};
use headwater_auth::{AuthConfig, NewPrincipal};
use headwater_contracts::Format;
use headwater_domains::{DomainSpec, StreamDef};
use headwater_governance::Actor;
use headwater_kafka::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use headwater_kafka::kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
    TopicName,
};
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use headwater_node::NodeConfig;
use headwater_test_support::{batch, wait_for, Client, TestNode};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

fn domain(name: &str, owner: &str) -> DomainSpec {
    DomainSpec {
        domain: name.into(),
        owners: vec![owner.into()],
        governance: Default::default(),
        manifest: format!("domain: {name}\n"),
        pipelines: Default::default(),
        streams: vec![StreamDef::new(
            name,
            "events",
            Format::JsonSchema,
            r#"{"type":"object"}"#,
        )],
    }
}

fn plain(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

#[test]
fn sign_in_is_required_and_refusals_write_nothing() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let alice = NewPrincipal::generate("alice", &["team:payments".into()], None)?;
        let auth = AuthConfig {
            platform: vec![],
            principals: vec![alice.config.clone()],
        };
        let node = TestNode::start_with(NodeConfig {
            auth: Some(auth),
            ..NodeConfig::default()
        })
        .await?;
        let (addr, log, services) = (node.addr, node.log.clone(), node.services().clone());
        let specs = [
            domain("payments", "team:payments"),
            domain("finance", "team:finance"),
        ];
        let outcome = services
            .domains
            .apply(&specs, &Actor::Node("node:test"))
            .await;
        anyhow::ensure!(outcome.iter().all(|o| o.errors.is_empty()), "{outcome:?}");

        // Metadata before signing in closes the connection.
        let mut c = Client::connect(addr).await?;
        anyhow::ensure!(
            c.send(&MetadataRequest::default(), 1).await.is_err(),
            "answered before sign-in"
        );

        // The v0 handshake: bare SASL tokens follow, answered bare; a wrong password closes.
        let mut c = Client::connect(addr).await?;
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        anyhow::ensure!(c.send(&hs, 0).await?.error_code == 0, "handshake v0");
        let token = plain("alice", "wrong");
        let mut frame = BytesMut::new();
        frame.put_i32(token.len() as i32);
        frame.extend_from_slice(&token);
        c.send_raw(&frame).await?;
        anyhow::ensure!(
            c.is_closed().await,
            "a wrong password must close the connection"
        );

        let mut c = Client::connect(addr).await?;
        anyhow::ensure!(c.send(&hs, 0).await?.error_code == 0, "handshake v0");
        let token = plain("alice", &alice.password);
        let mut frame = BytesMut::new();
        frame.put_i32(token.len() as i32);
        frame.extend_from_slice(&token);
        c.send_raw(&frame).await?;
        anyhow::ensure!(
            c.read_frame().await?.is_empty(),
            "PLAIN answers an empty token"
        );
        let topics = |name: &'static str| {
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(name))))]))
        };
        let own = c.send(&topics("payments.events"), 1).await?;
        anyhow::ensure!(own.topics[0].error_code == 0, "{own:?}");
        let other = c.send(&topics("finance.events"), 1).await?;
        anyhow::ensure!(
            other.topics[0].error_code == TOPIC_AUTHORIZATION_FAILED,
            "{other:?}"
        );

        // v1 handshake and SaslAuthenticate: a wrong password is answered, then closed.
        let mut c = Client::connect(addr).await?;
        anyhow::ensure!(c.send(&hs, 1).await?.error_code == 0, "handshake v1");
        let auth = SaslAuthenticateRequest::default().with_auth_bytes(plain("alice", "x").into());
        let answer = c.send(&auth, 2).await?;
        anyhow::ensure!(
            answer.error_code == SASL_AUTHENTICATION_FAILED,
            "{answer:?}"
        );
        anyhow::ensure!(c.is_closed().await, "closed after a failed sign-in");

        // Signed in, producing to another domain's stream writes nothing.
        let mut c = Client::connect(addr).await?;
        anyhow::ensure!(c.send(&hs, 1).await?.error_code == 0, "handshake v1");
        let auth = SaslAuthenticateRequest::default()
            .with_auth_bytes(plain("alice", &alice.password).into());
        anyhow::ensure!(c.send(&auth, 2).await?.error_code == 0, "sign-in");
        let (code, _) = c
            .produce("finance.events", 0, batch(&[b"{}"], None), -1)
            .await?;
        anyhow::ensure!(code == TOPIC_AUTHORIZATION_FAILED, "code {code}");
        let (code, offset) = c
            .produce("payments.events", 0, batch(&[b"{}"], None), -1)
            .await?;
        anyhow::ensure!(code == 0 && offset == 0, "own stream: {code} {offset}");
        let end = log.partition("finance.events", 0)?.end_offset();
        anyhow::ensure!(end == 0, "a refused produce wrote {end} records");

        // Groups belong to the domain they are named for: finance's is refused, alice's own
        // is described.
        let req = DescribeGroupsRequest::default().with_groups(vec![
            GroupId(StrBytes::from_static_str("finance.reports")),
            GroupId(StrBytes::from_static_str("payments.reports")),
        ]);
        let described = c.send(&req, 5).await?;
        let code = |name: &str| {
            described
                .groups
                .iter()
                .find(|g| &*g.group_id.0 == name)
                .map(|g| g.error_code)
        };
        anyhow::ensure!(
            code("finance.reports") == Some(GROUP_AUTHORIZATION_FAILED)
                && code("payments.reports") == Some(0),
            "{described:?}"
        );

        wait_for(std::time::Duration::from_secs(10), || {
            let audit = services.audit.clone();
            async move {
                let stored = audit.stored().ok()?;
                let entries: Vec<_> = stored.into_iter().filter_map(|s| s.entry.ok()).collect();
                let failed = entries
                    .iter()
                    .filter(|e| e.action == "auth.failed" && e.principal == "user:alice")
                    .count();
                let refused = entries.iter().any(|e| {
                    e.action == "access.refused"
                        && e.target == "finance.events"
                        && e.after["action"] == "produce"
                        && e.domain.as_deref() == Some("finance")
                });
                // Two failures from one address within a minute: the first is audited, the
                // second only counted (failed sign-ins are sampled per address).
                (failed == 1 && refused).then_some(())
            }
        })
        .await?;
        node.stop().await?;
        Ok(())
    })
}
