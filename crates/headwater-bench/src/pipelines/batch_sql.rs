//! `batch-sql`: an aggregation over 10 M events in Parquet vs DuckDB over the same files.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use headwater_test_support::{Http, NodeProcess};
use serde_json::json;

use super::percentile;

pub(crate) fn batch_sql(
    dir: &Path,
    bin: &Path,
    rows: u64,
    python: &Path,
    rounds: usize,
) -> anyhow::Result<()> {
    use headwater_pipelines::datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, StringArray,
    };
    use headwater_pipelines::datafusion::arrow::record_batch::RecordBatch;
    use headwater_pipelines::datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    let tmp = tempfile::tempdir_in(dir)?;
    let data = tmp.path().join("data");
    let table = data.join("tables").join("bench").join("events");
    std::fs::create_dir_all(&table)?;
    let files = 8u64;
    let per_file = rows / files;
    let currencies = ["EUR", "USD", "GBP", "CHF", "JPY"];
    let countries = ["DE", "FR", "GB", "US", "NL", "ES", "IT", "PL"];
    for f in 0..files {
        let file = std::fs::File::create(table.join(format!("part-{f}.parquet")))?;
        let mut writer: Option<ArrowWriter<std::fs::File>> = None;
        let chunk = 1_000_000u64.min(per_file);
        let mut done = 0;
        while done < per_file {
            let k = chunk.min(per_file - done);
            let base = f * per_file + done;
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
                (base..base + k).map(|i| i as i64),
            ));
            let customer: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| format!("c-{}", i * 2_654_435_761 % 100_000)),
            ));
            let currency: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| currencies[(i % 5) as usize]),
            ));
            let country: ArrayRef = Arc::new(StringArray::from_iter_values(
                (base..base + k).map(|i| countries[(i * 7 % 8) as usize]),
            ));
            let amount: ArrayRef = Arc::new(Float64Array::from_iter_values(
                (base..base + k).map(|i| (i * 7919 % 100_000) as f64 / 100.0),
            ));
            let b = RecordBatch::try_from_iter([
                ("transaction_id", ids),
                ("customer_id", customer),
                ("currency", currency),
                ("country", country),
                ("amount", amount),
            ])?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(ArrowWriter::try_new(file.try_clone()?, b.schema(), None)?),
            };
            w.write(&b)?;
            done += k;
        }
        if let Some(w) = writer {
            w.close()?;
        }
    }
    let meta = headwater_pipelines::TableMeta {
        pipeline: "bench.generated".into(),
        run: "bench".into(),
        inputs: Default::default(),
        partition_by: vec![],
        rows,
        written_at_ms: 0,
    };
    std::fs::write(
        table.join(headwater_pipelines::TABLE_META_FILE),
        serde_json::to_vec(&meta)?,
    )?;
    let node = NodeProcess::start(bin, &data, None)?;
    let query = "SELECT currency, country, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, count(DISTINCT customer_id) AS customers FROM bench.events GROUP BY currency, country ORDER BY currency, country";
    let mut http = Http::connect(node.http)?;
    let mut ours = Vec::new();
    let mut our_rows = 0;
    for _ in 0..rounds {
        let t0 = Instant::now();
        let answer = http.json("POST", "/v1/sql", &json!({ "sql": query }).to_string())?;
        ours.push(t0.elapsed().as_secs_f64());
        our_rows = answer["rows"].as_array().map_or(0, Vec::len);
    }
    let duck_query = query.replace(
        "bench.events",
        &format!("read_parquet('{}/*.parquet')", table.display()),
    );
    let script = format!(
        "import duckdb, time\ncon = duckdb.connect()\nfor _ in range({rounds}):\n    t = time.perf_counter()\n    rows = con.sql({duck_query:?}).fetchall()\n    print(time.perf_counter() - t, len(rows))\n"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(&script)
        .output()
        .with_context(|| {
            format!(
                "running {}; create it with scripts/test (it installs duckdb)",
                python.display()
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut duck = Vec::new();
    let mut duck_rows = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        duck.push(parts.next().unwrap_or("nan").parse::<f64>()?);
        duck_rows = parts.next().unwrap_or("0").parse::<usize>()?;
    }
    anyhow::ensure!(
        duck_rows == our_rows,
        "duckdb gave {duck_rows} groups, headwater {our_rows}"
    );
    ours.sort_by(f64::total_cmp);
    duck.sort_by(f64::total_cmp);
    let (o, d) = (percentile(&ours, 0.5), percentile(&duck, 0.5));
    println!("batch SQL over {rows} events in {files} Parquet files ({our_rows} groups), median of {rounds}:");
    println!("  query: {query}");
    println!("  headwater sql (DataFusion, over HTTP): {o:.3} s   (all runs: {ours:.3?})");
    println!("  duckdb (python, in-process)          : {d:.3} s   (all runs: {duck:.3?})");
    println!("  ratio: {:.2}x duckdb   (goal <= 1.2x)", o / d);
    Ok(())
}
