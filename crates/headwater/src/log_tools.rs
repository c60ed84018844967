//! `headwater log inspect` and `headwater log verify`.

use std::path::Path;
use std::process::ExitCode;

use headwater_log::inspect::{format_batch, scan_file, segment_files};

pub(crate) fn inspect(path: &Path) -> anyhow::Result<ExitCode> {
    let files = segment_files(path)?;
    if files.is_empty() {
        anyhow::bail!("no segment files (*.log) under {}", path.display());
    }
    let mut damaged = false;
    for file in files {
        println!("Dumping {}", file.display());
        let problems = scan_file(&file, |b| println!("{}", format_batch(b)))?;
        for p in problems {
            damaged = true;
            println!("DAMAGED {p}");
        }
    }
    Ok(if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn verify(path: &Path) -> anyhow::Result<ExitCode> {
    let files = segment_files(path)?;
    if files.is_empty() {
        anyhow::bail!("no segment files (*.log) under {}", path.display());
    }
    let (mut batches, mut problems) = (0usize, Vec::new());
    for file in &files {
        problems.extend(scan_file(file, |_| batches += 1)?);
    }
    for p in &problems {
        eprintln!("corrupt: {p}");
    }
    if problems.is_empty() {
        println!(
            "ok: {} segment file(s), {batches} batches, every CRC valid",
            files.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} problem(s) in {} segment file(s); a node truncates a damaged tail of the active segment at its next start",
            problems.len(),
            files.len()
        );
        Ok(ExitCode::from(1))
    }
}
