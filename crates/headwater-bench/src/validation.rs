//! Produce throughput of valid records to a contracted stream (validated at produce) vs the same
//! records to an uncontracted topic, on one node, in the same run: JSON Schema with 10 fields and
//! two CEL rules, and Avro with 10 fields.

use std::time::{Duration, Instant};

use bytes::Bytes;
use headwater_contracts::validate::RecordValidator;
use headwater_contracts::Format;
use headwater_domains::{DomainSpec, StreamDef};
use headwater_governance::Actor;
use headwater_node::NodeConfig;
use headwater_test_support::{batch, Client, TestNode};

const JSON_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,
 "required":["id","customer","merchant","amount","currency","country","channel","card_last4","settled_at","batch"],
 "properties":{"id":{"type":"string"},"customer":{"type":"string"},"merchant":{"type":"string"},
 "amount":{"type":"number"},"currency":{"type":"string"},"country":{"type":"string"},
 "channel":{"type":"string","enum":["online","store","wallet"]},"card_last4":{"type":"string"},
 "settled_at":{"type":"string"},"batch":{"type":"integer"}}}"#;

const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Settled","fields":[
 {"name":"id","type":"string"},{"name":"customer","type":"string"},{"name":"merchant","type":"string"},
 {"name":"amount","type":"double"},{"name":"currency","type":"string"},{"name":"country","type":"string"},
 {"name":"channel","type":"string"},{"name":"card_last4","type":"string"},{"name":"settled_at","type":"string"},
 {"name":"batch","type":"long"}]}"#;

fn json_record(i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"t-{i:08}","customer":"c-{:05}","merchant":"m-{:04}","amount":{}.25,"currency":"EUR","country":"FR","channel":"online","card_last4":"4242","settled_at":"2026-11-25T08:00:00Z","batch":{}}}"#,
        i % 50_000,
        i % 7_000,
        i % 900,
        i / 1000
    )
    .into_bytes()
}

fn avro_record(schema: &apache_avro::Schema, id: u32, i: usize) -> anyhow::Result<Vec<u8>> {
    use apache_avro::types::Value;
    let s = |v: String| Value::String(v);
    let record = Value::Record(vec![
        ("id".into(), s(format!("t-{i:08}"))),
        ("customer".into(), s(format!("c-{:05}", i % 50_000))),
        ("merchant".into(), s(format!("m-{:04}", i % 7_000))),
        ("amount".into(), Value::Double((i % 900) as f64 + 0.25)),
        ("currency".into(), s("EUR".into())),
        ("country".into(), s("FR".into())),
        ("channel".into(), s("online".into())),
        ("card_last4".into(), s("4242".into())),
        ("settled_at".into(), s("2026-11-25T08:00:00Z".into())),
        ("batch".into(), Value::Long((i / 1000) as i64)),
    ]);
    let mut out = vec![0u8];
    out.extend(id.to_be_bytes());
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(schema).build()?;
    out.extend(writer.write_value_to_vec(record)?);
    Ok(out)
}

fn stream(name: &str, format: Format, schema: &str, rules: Vec<(String, String)>) -> StreamDef {
    StreamDef {
        rules,
        ..StreamDef::new("bench", name, format, schema)
    }
}

async fn produce_all(c: &mut Client, topic: &str, batches: &[Bytes]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for b in batches {
        let (err, _) = c.produce(topic, 0, b.clone(), 1).await?;
        anyhow::ensure!(err == 0, "produce to {topic} failed with error code {err}");
    }
    Ok(t.elapsed())
}

pub(crate) fn run(
    dir: &std::path::Path,
    records: usize,
    rounds: usize,
    kcat_records: usize,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let node = TestNode::start_in(tmp, NodeConfig::default()).await?;
        let (addr, services) = (node.addr, node.services().clone());
        let (registry, gate) = (services.registry.clone(), node.node().gate.clone());
        let rules = vec![
            ("non_negative_amount".to_string(), "amount >= 0.0".to_string()),
            ("known_currency".to_string(), "currency in ['USD', 'EUR', 'GBP']".to_string()),
        ];
        let spec = DomainSpec {
            domain: "bench".into(),
            owners: vec![],
            governance: Default::default(),
            manifest: String::new(),
            pipelines: Default::default(),
            streams: vec![stream("json", Format::JsonSchema, JSON_SCHEMA, rules.clone()), stream("avro", Format::Avro, AVRO_SCHEMA, vec![])],
        };
        let outcome = services.domains.apply(&[spec], &Actor::Node("bench")).await;
        anyhow::ensure!(outcome.iter().all(|o| o.errors.is_empty()), "apply failed: {outcome:?}");
        for t in ["plain.json", "plain.avro"] {
            node.log.create_topic(t, 1, Default::default())?;
        }
        let avro_schema = apache_avro::Schema::parse_str(AVRO_SCHEMA)?;
        let avro_id = registry
            .read()
            .version("bench.avro-value", headwater_contracts::registry::VersionRef::Latest)
            .map(|(_, id, _)| id)
            .map_err(|e| anyhow::anyhow!("{e}"))?;

        // 1000 records per batch (about 240 KB of JSON, 110 KB of Avro).
        let per_batch = 1000;
        let json: Vec<Vec<u8>> = (0..records).map(json_record).collect();
        let avro: Vec<Vec<u8>> = (0..records).map(|i| avro_record(&avro_schema, avro_id, i)).collect::<anyhow::Result<_>>()?;
        let to_batches = |values: &[Vec<u8>]| -> Vec<Bytes> {
            values.chunks(per_batch).map(|c| batch(&c.iter().map(|v| v.as_slice()).collect::<Vec<_>>(), None)).collect()
        };
        let (json_b, avro_b) = (to_batches(&json), to_batches(&avro));
        let mut c = Client::connect(addr).await?;
        let mut times: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
        for _ in 0..rounds {
            for (topic, b) in [("plain.json", &json_b), ("bench.json", &json_b), ("plain.avro", &avro_b), ("bench.avro", &avro_b)] {
                let t = produce_all(&mut c, topic, b).await?;
                times.entry(topic).or_default().push(t);
            }
        }
        let median = |k: &str| {
            let mut v = times.get(k).cloned().unwrap_or_default();
            v.sort();
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        let rate = |d: Duration| records as f64 / d.as_secs_f64();
        println!("validation: {records} records per run, batches of {per_batch}, median of {rounds} alternating rounds, acks=1");
        for (fmt, plain, gated, goal) in [("JSON Schema, 10 fields + 2 CEL rules", "plain.json", "bench.json", 20.0), ("Avro, 10 fields", "plain.avro", "bench.avro", 10.0)] {
            let (p, g) = (median(plain), median(gated));
            println!("{fmt}:");
            println!("  uncontracted topic : {:>10.0} records/s", rate(p));
            println!("  contracted stream  : {:>10.0} records/s", rate(g));
            println!("  overhead           : {:>9.1} %   (goal <= {goal} %)", (g.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0);
        }
        // Where the time goes: the gate alone, called in this thread on the same batches.
        use headwater_kafka::ProduceGate;
        for (what, topic, b, values) in [("JSON", "bench.json", &json_b, &json), ("Avro", "bench.avro", &avro_b, &avro)] {
            let t = Instant::now();
            for batch in b.iter() {
                let verdict = gate.check(topic, 0, batch, false);
                anyhow::ensure!(matches!(verdict, headwater_kafka::GateVerdict::Pass), "{what} batch refused");
            }
            let batch_secs = t.elapsed().as_secs_f64() / b.len() as f64;
            // The records as a producer's batch would hand them over, made before the clock starts.
            let values: Vec<Bytes> = values.iter().map(|v| Bytes::copy_from_slice(v)).collect();
            let t = Instant::now();
            for v in &values {
                gate.check_one(topic, Some(v)).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let per_record = t.elapsed().as_secs_f64() / records as f64;
            println!("{what} gate: {:.1} µs per {per_batch}-record batch (CPU pool), {:.3} µs per record on one thread", batch_secs * 1e6, per_record * 1e6);
        }
        let per_record = |f: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>, values: &[Vec<u8>]| -> anyhow::Result<f64> {
            let t = Instant::now();
            for r in values {
                f(r)?;
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / values.len() as f64)
        };
        let json_contract = headwater_contracts::Contract::parse(Format::JsonSchema, JSON_SCHEMA)?;
        let avro_contract = headwater_contracts::Contract::parse(Format::Avro, AVRO_SCHEMA)?;
        let json_ruled = RecordValidator::new(&json_contract, &rules)?;
        let json_bare = RecordValidator::new(&json_contract, &[])?;
        let avro_bare = RecordValidator::new(&avro_contract, &[])?;
        let parse = per_record(&mut |r| { serde_json::from_slice::<serde_json::Value>(r)?; Ok(()) }, &json)?;
        let bare = per_record(&mut |r| Ok(json_bare.validate(r)?), &json)?;
        let ruled = per_record(&mut |r| Ok(json_ruled.validate(r)?), &json)?;
        let avro_v = per_record(&mut |r| Ok(avro_bare.validate(&r[5..])?), &avro)?;
        println!("per record on one thread: JSON parse into serde_json::Value {parse:.3} µs; JSON contract check {bare:.3} µs, with the 2 CEL rules {ruled:.3} µs; Avro contract check {avro_v:.3} µs");
        println!("the cel crate alone, `amount >= 0.0` with amount already bound: {:.3} µs per evaluation", cel_floor(records)?);
        if kcat_records > 0 {
            through_kcat(node.data_dir(), addr, kcat_records, rounds).await?;
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// What one evaluation of a numeric rule costs in the `cel` crate with nothing else around it
/// (the variable bound once, the standard functions registered once): the floor of any rule
/// check on a record that has to be evaluated.
fn cel_floor(evaluations: usize) -> anyhow::Result<f64> {
    let program = cel::Program::compile("amount >= 0.0").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("amount", 12.25f64);
    let t = Instant::now();
    for _ in 0..evaluations {
        let verdict = program.execute(&ctx).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            verdict == cel::Value::Bool(true),
            "unexpected verdict {verdict:?}"
        );
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / evaluations as f64)
}

/// The same comparison as a real producer sees it: kcat (librdkafka) sends `records` JSON lines
/// to each topic in turn, batched as a throughput-minded producer would.
async fn through_kcat(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    records: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    if std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_err()
    {
        println!("kcat not found: skipping the real-producer comparison (apt-get install kcat)");
        return Ok(());
    }
    let path = dir.join("records.jsonl");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in 0..records {
            f.write_all(&json_record(i))?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
    }
    let mut times: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    for _ in 0..rounds {
        for topic in ["plain.json", "bench.json"] {
            let path = path.clone();
            let t = Instant::now();
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new("kcat")
                    .args(["-P", "-b", &addr.to_string(), "-t", topic, "-p", "0", "-l"])
                    .args(["-X", "linger.ms=5", "-X", "batch.size=1048576"])
                    .args(["-X", "batch.num.messages=100000", "-X", "acks=1"])
                    .args(["-X", "queue.buffering.max.kbytes=1048576"])
                    .arg(&path)
                    .status()
            })
            .await??;
            anyhow::ensure!(
                status.success(),
                "kcat failed producing to {topic}: {status}"
            );
            times.entry(topic).or_default().push(t.elapsed());
        }
    }
    let median = |k: &str| {
        let mut v = times.get(k).cloned().unwrap_or_default();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let (p, g) = (median("plain.json"), median("bench.json"));
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    println!("JSON Schema through kcat (librdkafka), {records} records, one partition, acks=1:");
    println!("  uncontracted topic : {:>10.0} records/s", rate(p));
    println!("  contracted stream  : {:>10.0} records/s", rate(g));
    println!(
        "  overhead           : {:>9.1} %   (goal <= 20.0 %)",
        (g.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0
    );
    Ok(())
}
