//! The audit trail through the node's own services: changes land in `_headwater.audit` with
//! who made them, the chain verifies, and tampering with the stored bytes (one byte, with or
//! without a recomputed batch CRC, or one entry cut out) is found and named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use headwater_auth::Principal;
use headwater_contracts::registry::RegistryEvent;
use headwater_contracts::{Compatibility, Format};
use headwater_domains::audit::Change;
use headwater_domains::audit::Verification;
use headwater_domains::{DomainSpec, StreamDef};
use headwater_governance::{Actor, AuditTrail};
use headwater_kafka::kafka_protocol::messages::{DeleteTopicsRequest, TopicName};
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use headwater_log::{Log, LogConfig};
use headwater_node::NodeConfig;
use headwater_test_support::{Client, TestNode};

fn spec() -> DomainSpec {
    DomainSpec {
        domain: "payments".into(),
        owners: vec!["user:alice".into()],
        governance: Default::default(),
        manifest: "domain: payments\n".into(),
        pipelines: Default::default(),
        streams: vec![StreamDef::new(
            "payments",
            "settled",
            Format::JsonSchema,
            r#"{"type":"object","properties":{"amount":{"type":"number"}}}"#,
        )],
    }
}

/// Makes changes through a whole node (apply, a registry setting, a topic deleted over Kafka),
/// closes it cleanly and returns a copy of its data dir (threads of the node's services may
/// still hold the original's lock until the test process ends).
fn make_changes() -> anyhow::Result<tempfile::TempDir> {
    let rt = tokio::runtime::Runtime::new()?;
    let dir = rt.block_on(async {
        let node = TestNode::start_with(NodeConfig::default()).await?;
        let (addr, services) = (node.addr, node.services().clone());
        let alice = Actor::Principal(Principal {
            name: "alice".into(),
            groups: vec![],
            platform: false,
        });
        let outcome = services.domains.apply(&[spec()], &alice).await;
        anyhow::ensure!(outcome.iter().all(|o| o.errors.is_empty()), "{outcome:?}");
        services
            .registry
            .record(
                "user:bob",
                RegistryEvent::ConfigSet {
                    subject: None,
                    compatibility: Some(Compatibility::Full),
                },
            )
            .await?;
        let mut c = Client::connect(addr).await?;
        anyhow::ensure!(c.create_topic("scratch", 1, &[]).await? == 0, "create");
        let req = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(StrBytes::from_static_str("scratch"))])
            .with_timeout_ms(5000);
        let resp = c.send(&req, 4).await?;
        anyhow::ensure!(resp.responses.iter().all(|r| r.error_code == 0), "{resp:?}");
        // The deletion reaches the trail from a task: wait for it.
        headwater_test_support::wait_for(std::time::Duration::from_secs(10), || {
            let audit = services.audit.clone();
            async move {
                let stored = audit.stored().ok()?;
                stored
                    .iter()
                    .any(|s| s.entry.as_ref().is_ok_and(|e| e.action == "topic.delete"))
                    .then_some(())
            }
        })
        .await?;
        let dir = node.stop().await?;
        copy_dir(dir.path())
    })?;
    drop(rt);
    Ok(dir)
}

fn verify_dir(dir: &Path) -> anyhow::Result<(Verification, Vec<String>)> {
    let log = Log::open(dir, LogConfig::default())?;
    let audit = AuditTrail::open(&log)?;
    let actions = audit
        .stored()?
        .into_iter()
        .filter_map(|s| s.entry.ok())
        .map(|e| format!("{} {} {}", e.action, e.target, e.principal))
        .collect();
    let v = audit.verify()?;
    log.close()?;
    Ok((v, actions))
}

fn segment(dir: &Path) -> anyhow::Result<PathBuf> {
    let part = dir.join("topics").join("_headwater.audit-0");
    std::fs::read_dir(&part)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .ok_or_else(|| anyhow::anyhow!("no segment in {}", part.display()))
}

/// Byte ranges of the batches in a segment file.
fn batches(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        let end = pos + 12 + len as usize;
        out.push(pos..end);
        pos = end;
    }
    out
}

/// Removes the saved indexes, as someone editing the segment would: the log re-reads it.
fn drop_indexes(dir: &Path) -> anyhow::Result<()> {
    let part = dir.join("topics").join("_headwater.audit-0");
    for e in std::fs::read_dir(&part)? {
        let p = e?.path();
        if p.extension()
            .is_some_and(|x| x == "index" || x == "timeindex")
        {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

/// A copy of a data dir, made in-process: a `cp` child forked while another test's log holds
/// its lock file open would share that lock until it execs.
fn copy_dir(from: &Path) -> anyhow::Result<tempfile::TempDir> {
    fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                std::fs::create_dir_all(&target)?;
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        Ok(())
    }
    let to = tempfile::tempdir()?;
    copy(from, to.path())?;
    Ok(to)
}

#[test]
fn changes_are_recorded_with_who_made_them_and_tampering_is_named() -> anyhow::Result<()> {
    let dir = make_changes()?;
    let (v, actions) = verify_dir(dir.path())?;
    assert!(v.intact, "{v:?}");
    let has = |a: &str| actions.iter().any(|x| x.starts_with(a));
    assert!(has("domain.apply payments user:alice"), "{actions:?}");
    assert!(
        has("schema.register payments.settled-value user:alice"),
        "{actions:?}"
    );
    assert!(has("schema.config (global) user:bob"), "{actions:?}");
    assert!(has("topic.delete scratch anonymous"), "{actions:?}");

    // One byte changed inside the domain.apply entry, and its batch CRC recomputed so the log
    // itself cannot tell: the chain names the entry.
    let careful = copy_dir(dir.path())?;
    let seg = segment(careful.path())?;
    let mut bytes = std::fs::read(&seg)?;
    let at = bytes
        .windows(10)
        .position(|w| w == b"user:alice")
        .ok_or_else(|| anyhow::anyhow!("principal not found in the segment"))?;
    bytes[at + 5] = b'm'; // user:mlice
    let batch = batches(&bytes)
        .into_iter()
        .find(|b| b.contains(&at))
        .ok_or_else(|| anyhow::anyhow!("no batch"))?;
    let crc = crc32c::crc32c(&bytes[batch.start + 21..batch.end]);
    bytes[batch.start + 17..batch.start + 21].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&seg, &bytes)?;
    let (v, _) = verify_dir(careful.path())?;
    assert!(!v.intact);
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert!(v.problems[0].problem.contains("was modified"), "{v:?}");
    assert!(v.problems[0].seq.is_some(), "{v:?}");

    // The same byte changed without fixing the CRC: the entry's batch is named unreadable.
    let crude = copy_dir(dir.path())?;
    let seg = segment(crude.path())?;
    let mut bytes = std::fs::read(&seg)?;
    bytes[at + 5] = b'm';
    std::fs::write(&seg, &bytes)?;
    let (v, _) = verify_dir(crude.path())?;
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert!(v.problems[0].problem.contains("does not decode"), "{v:?}");

    // One entry (one batch) cut out of the middle of the segment: named as missing.
    let cut = copy_dir(dir.path())?;
    let seg = segment(cut.path())?;
    let mut bytes = std::fs::read(&seg)?;
    let all = batches(&bytes);
    assert!(all.len() > 3, "{} batches", all.len());
    bytes.drain(all[2].clone());
    std::fs::write(&seg, &bytes)?;
    drop_indexes(cut.path())?;
    let (v, _) = verify_dir(cut.path())?;
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert!(
        v.problems[0].problem.contains("entry 2 is missing"),
        "{v:?}"
    );
    Ok(())
}

#[test]
fn the_chain_continues_across_restarts() -> anyhow::Result<()> {
    let dir = make_changes()?;
    let (first, _) = verify_dir(dir.path())?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let log = Log::open(dir.path(), LogConfig::default())?;
        let audit = Arc::new(AuditTrail::open(&log)?);
        audit
            .record(Change::new(
                "user:carol",
                "grant",
                None,
                "x",
                serde_json::Value::Null,
                serde_json::Value::Null,
            ))
            .await;
        log.close()?;
        Ok::<_, anyhow::Error>(())
    })?;
    drop(rt);
    let (v, _) = verify_dir(dir.path())?;
    assert!(v.intact, "{v:?}");
    assert_eq!(v.entries, first.entries + 1);
    Ok(())
}
