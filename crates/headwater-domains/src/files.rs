//! Where manifests and the schema files they name are read from: a directory on disk (the
//! CLI, `headwater serve --domains`) or a [`Bundle`] of files a client sent to a node. Both are
//! read by the same loader, so a node parses and checks what it applies itself instead of
//! trusting a client's resolved form: the node is the one parser and the one trust boundary.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ManifestError;

/// The most files a bundle may hold.
pub const MAX_BUNDLE_FILES: usize = 10_000;

/// What the loader reads: manifests, and the files they name relative to themselves.
pub(crate) trait Files {
    /// The directory every path is confined to (empty for a bundle).
    fn root(&self) -> &Path;
    /// The manifests, sorted: `*.yaml` / `*.yml` in the root and `domain.yaml` one level below.
    fn manifests(&self) -> Result<Vec<PathBuf>, ManifestError>;
    /// A file's text, or why it cannot be read.
    fn read(&self, path: &Path) -> Result<String, String>;
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn no_manifests(place: &Path) -> ManifestError {
    ManifestError {
        file: place.to_path_buf(),
        line: 0,
        column: 0,
        message: "no manifests found (*.yaml, or */domain.yaml)".into(),
        fix: Some("add one <domain>.yaml per domain (see docs/manifests.md)".into()),
    }
}

/// `relative` taken from the directory `base` (a manifest's), as a path under `root`; `None`
/// when it leaves `root` (an absolute path, or `..` past the root).
pub(crate) fn resolve(root: &Path, base: &Path, relative: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let from_root = base.strip_prefix(root).ok()?;
    let steps = from_root
        .components()
        .chain(Path::new(relative).components());
    for c in steps {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(
        parts
            .iter()
            .fold(root.to_path_buf(), |p, part| p.join(part)),
    )
}

/// A relative path as a bundle names it: its parts joined by `/`.
fn bundle_key(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A directory of manifests on disk. Remembers what it read, so the same files can be sent
/// to a node as a [`Bundle`].
#[derive(Debug)]
pub(crate) struct Dir {
    root: PathBuf,
    read: Mutex<BTreeMap<String, String>>,
}

impl Dir {
    pub(crate) fn new(root: &Path) -> Dir {
        Dir {
            root: root.to_path_buf(),
            read: Mutex::new(BTreeMap::new()),
        }
    }

    /// Every file read so far, by its path relative to the root with `/` separators.
    pub(crate) fn into_read(self) -> BTreeMap<String, String> {
        self.read.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl Files for Dir {
    fn root(&self) -> &Path {
        &self.root
    }

    fn manifests(&self) -> Result<Vec<PathBuf>, ManifestError> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| ManifestError {
            message: format!("cannot read the manifest directory: {e}"),
            fix: None,
            ..no_manifests(&self.root)
        })?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_file() && is_yaml(&name) {
                out.push(path);
            } else if path.is_dir() {
                for name in ["domain.yaml", "domain.yml"] {
                    if path.join(name).is_file() {
                        out.push(path.join(name));
                    }
                }
            }
        }
        out.sort();
        if out.is_empty() {
            return Err(no_manifests(&self.root));
        }
        Ok(out)
    }

    fn read(&self, path: &Path) -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        if let Ok(relative) = path.strip_prefix(&self.root) {
            let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
            read.insert(bundle_key(relative), text.clone());
        }
        Ok(text)
    }
}

/// Manifests and schema files as a client sends them to a node (`{"files": {path: text}}`):
/// paths relative to the manifest directory, with `/` between directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Each file's text by its relative path.
    pub files: BTreeMap<String, String>,
}

impl Bundle {
    /// Reads and checks the manifests of `dir` as [`crate::load_dir`] does, and bundles every
    /// file read: the manifests and the schema files they name.
    pub fn from_dir(dir: &Path) -> Result<Bundle, Vec<ManifestError>> {
        let files = Dir::new(dir);
        crate::load::load(&files)?;
        Ok(Bundle {
            files: files.into_read(),
        })
    }

    /// Refuses a bundle with a path that is absolute, has an empty, `.` or `..` part or a
    /// backslash, or with more than [`MAX_BUNDLE_FILES`] files: a node reads nothing but the
    /// bundle, so no path may point elsewhere.
    pub fn check(&self) -> Result<(), ManifestError> {
        let refuse = |path: &str, message: String| ManifestError {
            file: PathBuf::from(path),
            line: 0,
            column: 0,
            message,
            fix: Some(
                "send paths relative to the manifest directory, as `headwater apply DIR` does"
                    .into(),
            ),
        };
        if self.files.len() > MAX_BUNDLE_FILES {
            return Err(refuse(
                "",
                format!(
                    "the bundle holds {} files; at most {MAX_BUNDLE_FILES} are read",
                    self.files.len()
                ),
            ));
        }
        for path in self.files.keys() {
            let bad_part = path
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == ".." || p.contains(['\\', '\0', ':']));
            if bad_part {
                return Err(refuse(
                    path,
                    format!("bundle path '{path}' is not a plain relative path"),
                ));
            }
        }
        Ok(())
    }
}

impl Files for Bundle {
    fn root(&self) -> &Path {
        Path::new("")
    }

    fn manifests(&self) -> Result<Vec<PathBuf>, ManifestError> {
        let out: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| match path.split_once('/') {
                None => is_yaml(path),
                Some((_, name)) => name == "domain.yaml" || name == "domain.yml",
            })
            .map(PathBuf::from)
            .collect();
        if out.is_empty() {
            return Err(no_manifests(Path::new("(bundle)")));
        }
        Ok(out)
    }

    fn read(&self, path: &Path) -> Result<String, String> {
        self.files
            .get(&bundle_key(path))
            .cloned()
            .ok_or_else(|| "it is not in the bundle sent".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root_only() {
        let root = Path::new("/m");
        let base = Path::new("/m/payments");
        assert_eq!(
            resolve(root, base, "schemas/a.json"),
            Some(PathBuf::from("/m/payments/schemas/a.json"))
        );
        assert_eq!(
            resolve(root, base, "../shared/a.json"),
            Some(PathBuf::from("/m/shared/a.json"))
        );
        assert_eq!(resolve(root, base, "../../etc/passwd"), None);
        assert_eq!(resolve(root, base, "/etc/passwd"), None);
        assert_eq!(
            resolve(Path::new(""), Path::new(""), "a.json"),
            Some(PathBuf::from("a.json"))
        );
        assert_eq!(resolve(Path::new(""), Path::new(""), "../a.json"), None);
    }

    #[test]
    fn bundle_paths_must_be_plain_and_relative() {
        for bad in [
            "/etc/x.yaml",
            "../x.yaml",
            "a/../x.yaml",
            "a//x.yaml",
            "./x.yaml",
            "a\\x",
        ] {
            let b = Bundle {
                files: [(bad.to_string(), String::new())].into(),
            };
            assert!(b.check().is_err(), "{bad} accepted");
        }
        let good = Bundle {
            files: [("payments/domain.yaml".to_string(), String::new())].into(),
        };
        assert_eq!(good.check(), Ok(()));
    }
}
