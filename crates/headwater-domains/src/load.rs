//! Reading a directory of manifests and checking them together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use headwater_contracts::Contract;

use crate::files::{resolve, Bundle, Dir, Files};
use crate::manifest::{Manifest, StreamSpec};
use crate::names::check_name;
use crate::ManifestError;

/// A manifest that passed every check, with its streams' contracts parsed.
#[derive(Debug, Clone)]
pub struct LoadedDomain {
    /// The manifest's path.
    pub file: PathBuf,
    /// The manifest's text as read; the node stores it with the applied domain.
    pub text: String,
    /// The manifest as parsed.
    pub manifest: Manifest,
    /// Every stream of the manifest by its name under `streams`, with its schema read.
    pub streams: BTreeMap<String, LoadedStream>,
}

/// One stream of a loaded manifest, with its schema file read and parsed.
#[derive(Debug, Clone)]
pub struct LoadedStream {
    /// `<domain>.<stream>`.
    pub topic: String,
    /// The stream as the manifest declares it.
    pub spec: StreamSpec,
    /// Where the schema was read: `contract.schema` taken relative to the manifest's directory.
    pub schema_file: PathBuf,
    /// The schema file's contract, parsed in the declared format.
    pub contract: Contract,
}

/// 1-based line and column of the first line at or after `from` whose text, trimmed, starts
/// with `needle`.
fn find(text: &str, from: usize, needle: &str) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, l)| {
            let trimmed = l
                .trim_start()
                .trim_start_matches("- ")
                .trim_start_matches('{')
                .trim_start();
            trimmed
                .starts_with(needle)
                .then(|| (i + 1, l.len() - l.trim_start().len() + 1))
        })
}

/// Position of a nested key path (`streams`, `orders`, `contract`, `schema`), as close as found.
fn locate(text: &str, keys: &[&str]) -> (usize, usize) {
    let mut at = (1, 1);
    for key in keys {
        match find(text, at.0, &format!("{key}:")) {
            Some(p) => at = p,
            None => break,
        }
    }
    at
}

fn err(
    file: &Path,
    (line, column): (usize, usize),
    message: String,
    fix: Option<String>,
) -> ManifestError {
    ManifestError {
        file: file.to_path_buf(),
        line,
        column,
        message,
        fix,
    }
}

/// Turns serde_yaml's error into ours, suggesting the nearest valid key for an unknown one.
fn parse_error(file: &Path, e: &serde_yaml::Error) -> ManifestError {
    let pos = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let raw = e.to_string();
    // "streams.orders: unknown field `retension`, expected one of `a`, `b` at line 3 column 5"
    let msg = raw.split(" at line ").next().unwrap_or(&raw).to_string();
    if let Some(rest) = msg.split("unknown field `").nth(1) {
        let unknown = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest
            .split("expected ")
            .nth(1)
            .map(|list| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let nearest = expected
            .iter()
            .map(|k| (strsim::levenshtein(unknown, k), *k))
            .min();
        let fix = match nearest {
            Some((d, k)) if d <= 3 => format!(
                "did you mean '{k}'? valid keys here: {}",
                expected.join(", ")
            ),
            _ => format!("valid keys here: {}", expected.join(", ")),
        };
        let place = msg
            .split(": unknown field")
            .next()
            .filter(|p| !p.starts_with("unknown"));
        let message = match place {
            Some(p) => format!("unknown key '{unknown}' in {p}"),
            None => format!("unknown key '{unknown}'"),
        };
        return err(file, pos, message, Some(fix));
    }
    if let Some(rest) = msg.split("missing field `").nth(1) {
        let field = rest.split('`').next().unwrap_or_default();
        return err(
            file,
            pos,
            format!("missing key '{field}'"),
            Some(format!("add '{field}:' (see docs/manifests.md)")),
        );
    }
    err(file, pos, msg, None)
}

/// Loads and checks every manifest in `dir`. On any problem, returns all problems found.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedDomain>, Vec<ManifestError>> {
    load(&Dir::new(dir))
}

/// Loads and checks every manifest of a bundle a client sent, exactly as [`load_dir`] checks
/// a directory; a bundle whose paths point outside itself is refused whole.
pub fn load_bundle(bundle: &Bundle) -> Result<Vec<LoadedDomain>, Vec<ManifestError>> {
    bundle.check().map_err(|e| vec![e])?;
    load(bundle)
}

/// Loads and checks every manifest `files` holds.
pub(crate) fn load(files: &dyn Files) -> Result<Vec<LoadedDomain>, Vec<ManifestError>> {
    let manifests = files.manifests().map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for file in manifests {
        let text = match files.read(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(err(&file, (0, 0), format!("cannot read: {e}"), None));
                continue;
            }
        };
        match serde_yaml::from_str::<Manifest>(&text) {
            Ok(m) => parsed.push((file, text, m)),
            Err(e) => errors.push(parse_error(&file, &e)),
        }
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (file, text, m) in &parsed {
        if let Err(why) = check_name(&m.domain) {
            errors.push(err(
                file,
                locate(text, &["domain"]),
                format!("invalid domain name '{}': {why}", m.domain),
                Some("domain names become topic prefixes and directory names: use letters, digits, '_' and '-'".into()),
            ));
        }
        if let Some(first) = seen.insert(m.domain.clone(), file.clone()) {
            errors.push(err(
                file,
                locate(text, &["domain"]),
                format!(
                    "domain '{}' is also declared in {}",
                    m.domain,
                    first.display()
                ),
                Some("each domain has exactly one manifest".into()),
            ));
        }
    }
    let domains: BTreeSet<String> = seen.into_keys().collect();
    // Readers of every stream declared in this directory, for pipeline inputs.
    let readers: BTreeMap<String, Vec<String>> = parsed
        .iter()
        .flat_map(|(_, _, m)| {
            m.streams
                .iter()
                .map(|(s, spec)| (format!("{}.{s}", m.domain), spec.readers.clone()))
        })
        .collect();
    let mut loaded = Vec::new();
    for (file, text, m) in parsed {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut streams = BTreeMap::new();
        for (name, spec) in &m.streams {
            let at = |keys: &[&str]| {
                let mut path = vec!["streams", name.as_str()];
                path.extend_from_slice(keys);
                locate(&text, &path)
            };
            let topic = format!("{}.{}", m.domain, name);
            if let Err(why) = check_name(name) {
                errors.push(err(
                    &file,
                    at(&[]),
                    format!("stream name '{name}' is not a valid topic name: {why}"),
                    Some("rename the stream".into()),
                ));
            }
            if !(1..=10_000).contains(&spec.partitions) {
                errors.push(err(
                    &file,
                    at(&["partitions"]),
                    format!(
                        "stream '{name}': {} partitions is out of range",
                        spec.partitions
                    ),
                    Some("use 1 to 10000".into()),
                ));
            }
            let granted = spec
                .grants
                .iter()
                .flat_map(|(class, to)| to.iter().map(move |d| (Some(class), d)));
            for (class, reader) in spec.readers.iter().map(|r| (None, r)).chain(granted) {
                if reader != "*" && !domains.contains(reader) {
                    let known: Vec<&str> = domains.iter().map(String::as_str).collect();
                    let (key, what) = match class {
                        None => ("readers", "reader domain".to_string()),
                        Some(c) => ("grants", format!("{c} grant's domain")),
                    };
                    errors.push(err(
                        &file,
                        at(&[key]),
                        format!("stream '{name}': {what} '{reader}' does not exist"),
                        Some(format!("use one of {} or '*'", known.join(", "))),
                    ));
                }
            }
            for class in spec.grants.keys() {
                if !spec.classification.values().any(|c| c == class) {
                    errors.push(err(
                        &file,
                        at(&["grants"]),
                        format!("stream '{name}' grants '{class}' but classifies no field as {class}"),
                        Some(format!(
                            "classify the fields under `classification`, or remove the {class} grant"
                        )),
                    ));
                }
            }
            let mut rule_names = BTreeSet::new();
            for rule in &spec.quality.rules {
                let pos = find(&text, at(&["quality"]).0, &format!("name: {}", rule.name))
                    .or_else(|| {
                        find(
                            &text,
                            at(&["quality"]).0,
                            &format!("{{ name: {}", rule.name),
                        )
                    })
                    .unwrap_or_else(|| at(&["quality", "rules"]));
                if !rule_names.insert(rule.name.clone()) {
                    errors.push(err(
                        &file,
                        pos,
                        format!(
                            "stream '{name}': quality rule '{}' is declared twice",
                            rule.name
                        ),
                        Some("give each rule its own name".into()),
                    ));
                }
                if let Err(e) = cel::Program::compile(&rule.check) {
                    let first = e
                        .errors
                        .first()
                        .map(|x| x.msg.clone())
                        .unwrap_or_else(|| e.to_string());
                    errors.push(err(
                        &file,
                        pos,
                        format!(
                            "stream '{name}': quality rule '{}' is not valid CEL: {first} in `{}`",
                            rule.name, rule.check
                        ),
                        Some(
                            "fix the expression; it must evaluate to true for a valid record"
                                .into(),
                        ),
                    ));
                }
            }
            let pos = at(&["contract", "schema"]);
            let Some(schema_file) = resolve(files.root(), &base, &spec.contract.schema) else {
                errors.push(err(
                    &file,
                    pos,
                    format!(
                        "stream '{name}': schema file {} is outside the manifest directory",
                        spec.contract.schema
                    ),
                    Some("keep schema files in the manifest directory, with paths relative to the manifest".into()),
                ));
                continue;
            };
            let text_of_schema = match files.read(&schema_file) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(err(
                        &file,
                        pos,
                        format!(
                            "stream '{name}': schema file {} cannot be read: {e}",
                            schema_file.display()
                        ),
                        Some("create it, or fix the path (relative to the manifest)".into()),
                    ));
                    continue;
                }
            };
            match Contract::parse(spec.contract.format, &text_of_schema) {
                Ok(contract) => {
                    streams.insert(
                        name.clone(),
                        LoadedStream {
                            topic,
                            spec: spec.clone(),
                            schema_file,
                            contract,
                        },
                    );
                }
                Err(e) => errors.push(err(
                    &file,
                    pos,
                    format!(
                        "stream '{name}': schema {} is invalid: {e}",
                        schema_file.display()
                    ),
                    Some("fix the schema file".into()),
                )),
            }
        }
        let own: Vec<&str> = m.streams.keys().map(String::as_str).collect();
        for (name, spec) in &m.pipelines {
            let at = |key: &str| {
                let mut path = vec!["pipelines", name.as_str()];
                if !key.is_empty() {
                    path.push(key);
                }
                locate(&text, &path)
            };
            if let Err(why) = check_name(name) {
                errors.push(err(
                    &file,
                    at(""),
                    format!("pipeline name '{name}' is not valid: {why}"),
                    Some("rename the pipeline".into()),
                ));
            }
            for (key, message, fix) in crate::pipeline_checks::check(spec, &own) {
                errors.push(err(
                    &file,
                    at(key),
                    format!("pipeline '{name}': {message}"),
                    Some(fix),
                ));
            }
            for input in &spec.inputs {
                let owner = input.split_once('.').map(|(d, _)| d).unwrap_or("");
                // Inputs of domains not in this directory are checked by the node at plan time.
                if !owner.is_empty() && owner != m.domain && !domains.contains(owner) {
                    continue;
                }
                let known = readers.get(input).map(Vec::as_slice);
                let missing_own =
                    owner == m.domain && !m.streams.contains_key(&input[owner.len() + 1..]);
                let refusal = if missing_own {
                    Some(format!("input '{input}' is not a stream of this domain"))
                } else {
                    crate::pipeline_checks::refuse_input(&m.domain, input, known)
                };
                if let Some(why) = refusal {
                    errors.push(err(
                        &file,
                        at("inputs"),
                        format!("pipeline '{name}': {why}"),
                        Some("read only streams whose `readers` admit this domain".into()),
                    ));
                }
            }
        }
        loaded.push(LoadedDomain {
            file,
            text,
            manifest: m,
            streams,
        });
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}
