//! Small durable-file helpers shared by the log's metadata writers.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::LogError;

/// Writes `bytes` to `path` and syncs the file.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let mut f = File::create(path).map_err(LogError::io("create", path))?;
    f.write_all(bytes).map_err(LogError::io("write", path))?;
    f.sync_all().map_err(LogError::io("sync", path))
}

/// Replaces `path` atomically: write a temporary file, sync it, rename, sync the directory.
pub(crate) fn replace_synced(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(LogError::io("rename", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a directory's entries (new, renamed or deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("sync directory", dir))
}
