//! Confluent Schema Registry REST API: same paths, bodies, error codes and JSON error bodies.

// Helpers return the finished error response as their `Err`: it is built once per failed
// request, so its size does not matter and boxing would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use headwater_contracts::registry::{Mode, RegistryError, RegistryEvent, VersionRef};
use headwater_contracts::{Compatibility, Format};
use serde::Deserialize;
use serde_json::{json, Value};

use headwater_governance::Actor;
use headwater_streams::{ChangeError, SchemaRegistry};

use crate::error::ApiError;
use crate::sign_in::By;

type Shared = State<Arc<SchemaRegistry>>;
type Params = Query<HashMap<String, String>>;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub(crate) fn router(registry: Arc<SchemaRegistry>) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/schemas/types",
            get(|| async { reply(json!(["AVRO", "JSON"])) }),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(schema_versions))
        .route("/schemas/ids/{id}/subjects", get(schema_subjects))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_version),
        )
        .merge(setting_routes(Setting::Compatibility))
        .merge(setting_routes(Setting::Mode))
        .with_state(registry)
}

pub(crate) fn reply(body: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

fn error(status: u16, code: u32, message: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, message)
        .with_code(code)
        .with_content_type(CONTENT_TYPE)
        .into_response()
}

fn refused(e: RegistryError) -> Response {
    error(e.http_status(), e.code(), e.to_string())
}

fn failed(e: ChangeError) -> Response {
    match e {
        ChangeError::Refused(r) => refused(r),
        ChangeError::Storage(s) => {
            tracing::error!("schema registry storage error: {s}");
            error(500, 50001, format!("Error in the backend data store: {s}"))
        }
    }
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true")
}

fn schema_type(format: Format) -> Option<&'static str> {
    // Confluent omits schemaType for Avro, the default.
    match format {
        Format::Avro => None,
        other => Some(other.registry_name()),
    }
}

fn with_type(mut body: Value, format: Format) -> Value {
    if let (Some(t), Some(obj)) = (schema_type(format), body.as_object_mut()) {
        obj.insert("schemaType".into(), json!(t));
    }
    body
}

#[derive(Debug, Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

/// Refuses a change to a subject that belongs to a domain stream: it changes through the domain.
fn owned(r: &SchemaRegistry, subject: &str) -> Option<Response> {
    let domain = r.owner(subject)?;
    Some(error(
        422,
        42205,
        format!("Subject '{subject}' belongs to a stream of domain '{domain}': change its contract in that domain's manifest and run `headwater apply`"),
    ))
}

fn parse_body(body: &str) -> Result<(Format, String), Response> {
    let b: SchemaBody = serde_json::from_str(body).map_err(|e| {
        error(
            422,
            42201,
            format!("Invalid schema: the request body is not a schema request: {e}"),
        )
    })?;
    if !b.references.is_empty() {
        return Err(error(
            422,
            42201,
            "Invalid schema: schema references are not supported yet; inline the referenced types"
                .into(),
        ));
    }
    let format = match b.schema_type.as_deref().unwrap_or("AVRO") {
        "AVRO" => Format::Avro,
        "JSON" => Format::JsonSchema,
        other => {
            return Err(error(
                422,
                42201,
                format!("Invalid schema: schemaType {other} is not supported; use AVRO or JSON"),
            ))
        }
    };
    Ok((format, b.schema))
}

fn version_ref(s: &str) -> Result<VersionRef, Response> {
    VersionRef::parse(s).map_err(refused)
}

async fn list_subjects(State(r): Shared, Query(q): Params) -> Response {
    reply(json!(r.read().subjects(flag(&q, "deleted"))))
}

async fn list_versions(
    State(r): Shared,
    Path(subject): Path<String>,
    Query(q): Params,
) -> Response {
    match r.read().versions(&subject, flag(&q, "deleted")) {
        Ok(v) => reply(json!(v)),
        Err(e) => refused(e),
    }
}

/// Version `version` (a number or `latest`) of `subject`: its number, schema id, format and
/// text, or the registry's answer why there is none.
fn version_of(
    r: &SchemaRegistry,
    subject: &str,
    version: &str,
) -> Result<(u32, u32, Format, String), Response> {
    let which = version_ref(version)?;
    r.read()
        .version(subject, which)
        .map(|(v, id, s)| (v, id, s.format, s.text.clone()))
        .map_err(refused)
}

async fn get_version(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    match version_of(&r, &subject, &version) {
        Ok((v, id, format, text)) => reply(with_type(
            json!({"subject": subject, "version": v, "id": id, "schema": text}),
            format,
        )),
        Err(answer) => answer,
    }
}

async fn get_version_schema(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    match version_of(&r, &subject, &version) {
        Ok((.., text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(answer) => answer,
    }
}

async fn register(
    State(r): Shared,
    By(by): By,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    if let Some(refusal) = owned(&r, &subject) {
        return refusal;
    }
    let (format, text) = match parse_body(&body) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let result = r
        .change(&by.audit_name(), |reg| {
            match reg.plan_register(&subject, format, &text)? {
                Ok(event) => {
                    let (id, version) = match &event {
                        RegistryEvent::Registered { id, version, .. } => (*id, *version),
                        _ => (0, 0),
                    };
                    Ok((Some(event), (id, version)))
                }
                Err(id) => {
                    let version = reg
                        .lookup(&subject, format, &text)
                        .map(|(v, _)| v)
                        .unwrap_or(0);
                    Ok((None, (id, version)))
                }
            }
        })
        .await;
    match result {
        Ok((id, version)) => {
            tracing::info!(subject = %subject, id, version, "schema registered");
            reply(with_type(
                json!({"id": id, "subject": subject, "version": version, "schema": text}),
                format,
            ))
        }
        Err(e) => failed(e),
    }
}

async fn lookup(State(r): Shared, Path(subject): Path<String>, body: String) -> Response {
    let (format, text) = match parse_body(&body) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let reg = r.read();
    match reg.lookup(&subject, format, &text) {
        Ok((version, id)) => {
            let stored = reg.schema(id).map(|s| s.text.clone()).unwrap_or(text);
            reply(with_type(
                json!({"subject": subject, "version": version, "id": id, "schema": stored}),
                format,
            ))
        }
        Err(e) => refused(e),
    }
}

async fn delete_subject(
    State(r): Shared,
    By(by): By,
    Path(subject): Path<String>,
    Query(q): Params,
) -> Response {
    if let Some(refusal) = owned(&r, &subject) {
        return refusal;
    }
    let permanent = flag(&q, "permanent");
    match r
        .change(&by.audit_name(), |reg| {
            reg.plan_delete_subject(&subject, permanent)
                .map(|(e, v)| (Some(e), v))
        })
        .await
    {
        Ok(versions) => reply(json!(versions)),
        Err(e) => failed(e),
    }
}

async fn delete_version(
    State(r): Shared,
    By(by): By,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    if let Some(refusal) = owned(&r, &subject) {
        return refusal;
    }
    let which = match version_ref(&version) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let permanent = flag(&q, "permanent");
    match r
        .change(&by.audit_name(), |reg| {
            reg.plan_delete_version(&subject, which, permanent)
                .map(|(e, v)| (Some(e), v))
        })
        .await
    {
        Ok(v) => reply(json!(v)),
        Err(e) => failed(e),
    }
}

async fn schema_by_id(State(r): Shared, Path(id): Path<u32>) -> Response {
    match r.read().schema(id) {
        Ok(s) => reply(with_type(json!({"schema": s.text}), s.format)),
        Err(e) => refused(e),
    }
}

async fn raw_schema_by_id(State(r): Shared, Path(id): Path<u32>) -> Response {
    match r.read().schema(id) {
        Ok(s) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.text.clone()).into_response(),
        Err(e) => refused(e),
    }
}

async fn schema_versions(State(r): Shared, Path(id): Path<u32>) -> Response {
    let reg = r.read();
    if let Err(e) = reg.schema(id) {
        return refused(e);
    }
    let list: Vec<Value> = reg
        .usages(id)
        .into_iter()
        .map(|(s, v)| json!({"subject": s, "version": v}))
        .collect();
    reply(json!(list))
}

async fn schema_subjects(State(r): Shared, Path(id): Path<u32>) -> Response {
    let reg = r.read();
    if let Err(e) = reg.schema(id) {
        return refused(e);
    }
    let mut subjects: Vec<String> = reg.usages(id).into_iter().map(|(s, _)| s).collect();
    subjects.dedup();
    reply(json!(subjects))
}

async fn compatibility(
    r: &SchemaRegistry,
    subject: &str,
    against: Option<VersionRef>,
    body: &str,
    verbose: bool,
) -> Response {
    let (format, text) = match parse_body(body) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match r.read().test_compatibility(subject, format, &text, against) {
        Ok(messages) => {
            let mut out = json!({"is_compatible": messages.is_empty()});
            if verbose {
                out["messages"] = json!(messages);
            }
            reply(out)
        }
        Err(e) => refused(e),
    }
}

async fn compat_all(
    State(r): Shared,
    Path(subject): Path<String>,
    Query(q): Params,
    body: String,
) -> Response {
    compatibility(&r, &subject, None, &body, flag(&q, "verbose")).await
}

async fn compat_version(
    State(r): Shared,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
    body: String,
) -> Response {
    let which = match version_ref(&version) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    if r.read().versions(&subject, false).is_err() {
        return refused(RegistryError::SubjectNotFound { subject });
    }
    let against = match which {
        VersionRef::Latest => r
            .read()
            .version(&subject, VersionRef::Latest)
            .map(|(v, _, _)| VersionRef::Number(v))
            .ok(),
        n => Some(n),
    };
    compatibility(&r, &subject, against, &body, flag(&q, "verbose")).await
}

#[derive(Debug, Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

fn parse_level(body: &str) -> Result<Compatibility, Response> {
    let b: ConfigBody =
        serde_json::from_str(body).map_err(|_| refused(RegistryError::InvalidCompatibility))?;
    // Either spelling, or both when they agree: a level that does not parse is refused even
    // beside one that does, so a typo is never silently ignored.
    let given = [b.compatibility.as_deref(), b.compatibility_level.as_deref()];
    let parsed: Option<Vec<Compatibility>> = given
        .into_iter()
        .flatten()
        .map(Compatibility::parse)
        .collect();
    match parsed.as_deref() {
        Some([level]) => Ok(*level),
        Some([a, b]) if a == b => Ok(*a),
        _ => Err(refused(RegistryError::InvalidCompatibility)),
    }
}

/// A registry setting read and changed over HTTP: the compatibility level (`/config`) or the
/// mode (`/mode`), global or a subject's.
#[derive(Debug, Clone, Copy)]
enum Setting {
    Compatibility,
    Mode,
}

/// `GET|PUT /{setting}` and `GET|PUT|DELETE /{setting}/{subject}`.
fn setting_routes(setting: Setting) -> Router<Arc<SchemaRegistry>> {
    let path = match setting {
        Setting::Compatibility => "/config",
        Setting::Mode => "/mode",
    };
    Router::new()
        .route(
            path,
            get(move |s: Shared| async move { setting.get(&s, None, true) })
                .put(move |s: Shared, by: By, body| put_setting(s, by, setting, None, body)),
        )
        .route(
            &format!("{path}/{{subject}}"),
            get(
                move |s: Shared, Path(subject): Path<String>, Query(q): Params| async move {
                    setting.get(&s, Some(&subject), flag(&q, "defaultToGlobal"))
                },
            )
            .put(move |s: Shared, by: By, Path(subject), body| {
                put_setting(s, by, setting, Some(subject), body)
            })
            .delete(move |s: Shared, by: By, Path(subject)| clear_setting(s, by, setting, subject)),
        )
}

impl Setting {
    /// The setting of `subject` (or the global one); a subject without a compatibility level
    /// of its own answers the global one only when asked to (`defaultToGlobal`), as Confluent's
    /// registry does, while a mode always falls back.
    fn get(self, r: &SchemaRegistry, subject: Option<&str>, default_to_global: bool) -> Response {
        let reg = r.read();
        match (self, subject) {
            (Setting::Mode, _) => reply(json!({"mode": reg.mode(subject).as_str()})),
            (Setting::Compatibility, None) => {
                reply(json!({"compatibilityLevel": reg.compatibility(None).as_str()}))
            }
            (Setting::Compatibility, Some(subject)) => match reg.subject_compatibility(subject) {
                Some(level) => reply(json!({"compatibilityLevel": level.as_str()})),
                None if default_to_global => {
                    reply(json!({"compatibilityLevel": reg.compatibility(None).as_str()}))
                }
                None => error(
                    404,
                    40408,
                    format!(
                        "Subject '{subject}' does not have subject-level compatibility configured"
                    ),
                ),
            },
        }
    }

    /// The change a body asks for, and the answer once it is stored.
    fn set(self, subject: Option<String>, body: &str) -> Result<(RegistryEvent, Value), Response> {
        Ok(match self {
            Setting::Compatibility => {
                let level = parse_level(body)?;
                let answer = json!({"compatibility": level.as_str()});
                let compatibility = Some(level);
                (
                    RegistryEvent::ConfigSet {
                        subject,
                        compatibility,
                    },
                    answer,
                )
            }
            Setting::Mode => {
                let mode = parse_mode(body)?;
                let answer = json!({"mode": mode.as_str()});
                (
                    RegistryEvent::ModeSet {
                        subject,
                        mode: Some(mode),
                    },
                    answer,
                )
            }
        })
    }

    /// The change that removes `subject`'s own setting, and the answer: the setting it had.
    fn clear(self, r: &SchemaRegistry, subject: String) -> (RegistryEvent, Value) {
        let subject = Some(subject);
        match self {
            Setting::Compatibility => {
                let old = r.read().compatibility(subject.as_deref());
                let answer = json!({"compatibilityLevel": old.as_str()});
                let compatibility = None;
                (
                    RegistryEvent::ConfigSet {
                        subject,
                        compatibility,
                    },
                    answer,
                )
            }
            Setting::Mode => {
                let old = r.read().mode(subject.as_deref());
                (
                    RegistryEvent::ModeSet {
                        subject,
                        mode: None,
                    },
                    json!({"mode": old.as_str()}),
                )
            }
        }
    }
}

/// `PUT /config[/{subject}]` and `PUT /mode[/{subject}]`; a domain stream's subject changes
/// through its domain instead.
async fn put_setting(
    State(r): Shared,
    By(by): By,
    setting: Setting,
    subject: Option<String>,
    body: String,
) -> Response {
    if let Some(refusal) = subject.as_deref().and_then(|s| owned(&r, s)) {
        return refusal;
    }
    match setting.set(subject, &body) {
        Ok((event, answer)) => store(&r, &by, event, answer).await,
        Err(refused) => refused,
    }
}

/// `DELETE /config/{subject}` and `DELETE /mode/{subject}`.
async fn clear_setting(
    State(r): Shared,
    By(by): By,
    setting: Setting,
    subject: String,
) -> Response {
    if let Some(refusal) = owned(&r, &subject) {
        return refusal;
    }
    let (event, answer) = setting.clear(&r, subject);
    store(&r, &by, event, answer).await
}

/// Stores a setting change on behalf of `by`; answers `answer` once it is stored.
async fn store(r: &SchemaRegistry, by: &Actor, event: RegistryEvent, answer: Value) -> Response {
    match r.record(&by.audit_name(), event).await {
        Ok(()) => reply(answer),
        Err(e) => failed(e),
    }
}

fn parse_mode(body: &str) -> Result<Mode, Response> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| error(422, 42204, format!("Invalid mode: {e}")))?;
    serde_json::from_value(v.get("mode").cloned().unwrap_or(Value::Null)).map_err(|_| {
        error(
            422,
            42204,
            "Invalid mode. Valid values are READWRITE, READONLY and IMPORT".into(),
        )
    })
}
