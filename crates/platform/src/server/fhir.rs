//! The FHIR R4 read facade: `GET /fhir/...` on a service's gRPC port, answered in
//! `application/fhir+json` by translating the read into the service's own gRPC calls.
//!
//! The translation calls the service in process *through the whole server stack* (the RPC
//! layer included) with the caller's `authorization` header, so a FHIR read is authenticated,
//! authorized, site-scoped, blinded, traced and counted exactly as the gRPC read it becomes:
//! there is no second copy of the access rules to drift. A refusal becomes an
//! `OperationOutcome` with the HTTP status FHIR servers use for it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

/// Where FHIR requests are served.
pub const BASE_PATH: &str = "/fhir";

/// The FHIR version of every resource served.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type of every answer.
pub const MEDIA_TYPE: &str = "application/fhir+json";

/// Identifier system of study subject ids (the only patient identifier trialops holds).
pub const SUBJECT_SYSTEM: &str = "urn:trialops:subject-id";

/// Default and largest page of a search.
pub const DEFAULT_COUNT: i32 = 50;

/// The service stack, callable in process with a tonic client.
pub type Loopback = BoxCloneSyncService<Request<Body>, Response<Body>, LoopbackError>;

/// A failure of the in-process call itself (not a gRPC status): a concrete type, so the futures
/// of clients over the loopback are `Send` for every lifetime, as `async_trait` needs.
#[derive(Debug)]
pub struct LoopbackError(tower::BoxError);

impl std::fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LoopbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// One FHIR read: the caller's credentials, the base URL for links, and the loopback.
pub struct Read {
    /// The caller's `authorization` header value, forwarded on every gRPC call.
    pub authorization: Option<HeaderValue>,
    /// `scheme://host/fhir`, for `fullUrl` and paging links.
    pub base: String,
    /// The service, in process.
    pub grpc: Loopback,
}

impl Read {
    /// `message` as a gRPC request carrying the caller's credentials.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization
            && let Ok(value) = tonic::metadata::AsciiMetadataValue::try_from(value.as_bytes())
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

/// What went wrong, as FHIR answers it.
#[derive(Debug)]
pub struct Outcome {
    status: StatusCode,
    code: &'static str,
    diagnostics: String,
}

impl Outcome {
    /// A bad search or read (HTTP 400, issue `invalid`), naming the parameter.
    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        Outcome {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            diagnostics: diagnostics.into(),
        }
    }

    /// An unknown resource (HTTP 404, issue `not-found`).
    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Outcome {
            status: StatusCode::NOT_FOUND,
            code: "not-found",
            diagnostics: diagnostics.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": self.code, "diagnostics": self.diagnostics }],
        })
    }
}

impl From<tonic::Status> for Outcome {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid"),
            Code::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "login"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            Code::Unavailable | Code::DeadlineExceeded => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
        };
        Outcome {
            status: http,
            code,
            diagnostics: status.message().to_owned(),
        }
    }
}

/// A resource type a service serves: its name, its search parameters and what they mean.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// For example "ResearchSubject".
    pub name: &'static str,
    /// `(name, FHIR search parameter type, documentation)`.
    pub search: Vec<(&'static str, &'static str, &'static str)>,
}

/// A service's FHIR resources.
#[tonic::async_trait]
pub trait Resources: Send + Sync + 'static {
    /// The service's name, for the CapabilityStatement.
    fn service(&self) -> &'static str;
    /// The resource types served.
    fn types(&self) -> Vec<ResourceType>;
    /// One resource by type and id.
    async fn read(&self, read: &Read, resource_type: &str, id: &str) -> Result<Value, Outcome>;
    /// One page of a search: the resources and the query of the next page, if any.
    async fn search(
        &self,
        read: &Read,
        resource_type: &str,
        params: &Params,
    ) -> Result<(Vec<Value>, Option<Vec<(String, String)>>), Outcome>;
}

/// A search's parameters, each name at most once.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Params, Outcome> {
        let mut all: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if all.iter().any(|(n, _)| *n == name) {
                return Err(Outcome::invalid(format!("{name}: given more than once")));
            }
            all.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params(all))
    }

    /// The value of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Refuses a parameter not in `known` (a server must not silently ignore a filter).
    pub fn only(&self, known: &[&str]) -> Result<(), Outcome> {
        match self.0.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((name, _)) => Err(Outcome::invalid(format!(
                "{name}: not a search parameter here; use {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The study subject id of a `subject` parameter (`ANBL1221-0001`, or a token
    /// `system|ANBL1221-0001`), required.
    pub fn subject(&self) -> Result<&str, Outcome> {
        self.get("subject")
            .map(|s| s.rsplit('|').next().unwrap_or(s))
            .ok_or_else(|| Outcome::invalid("subject: required, for example subject=ANBL1221-0001"))
    }

    /// A Provenance search's only parameter, `target` (`Type/id`, or a full URL of this facade),
    /// of one of `types`, required: `(type, id)`.
    pub fn target(&self, types: &[&str]) -> Result<(&str, &str), Outcome> {
        self.only(&["target"])?;
        let target = self.get("target").unwrap_or_default();
        let target = target.rsplit_once("/fhir/").map_or(target, |(_, t)| t);
        target
            .split_once('/')
            .filter(|(kind, id)| types.contains(kind) && !id.is_empty())
            .ok_or_else(|| {
                let shapes: Vec<String> = types.iter().map(|t| format!("{t}/{{id}}")).collect();
                Outcome::invalid(format!("target: required, {}", shapes.join(" or ")))
            })
    }

    /// The query of the next page: the `kept` parameters as given, and `_page` = `token`; `None`
    /// when `token` is empty (the last page).
    pub fn next(&self, kept: &[&str], token: String) -> Option<Vec<(String, String)>> {
        if token.is_empty() {
            return None;
        }
        let mut query: Vec<(String, String)> = kept
            .iter()
            .filter_map(|name| self.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect();
        query.push(("_page".to_owned(), token));
        Some(query)
    }

    /// `_count`: 1 to 500, [`DEFAULT_COUNT`] when absent.
    pub fn count(&self) -> Result<i32, Outcome> {
        match self.get("_count") {
            None => Ok(DEFAULT_COUNT),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| Outcome::invalid("_count: a whole number from 1 to 500")),
        }
    }
}

/// A reference to a resource of this facade by type and id.
pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({ "reference": format!("{resource_type}/{id}") })
}

/// Identifier system of staff (a token's `sub`).
pub const STAFF_SYSTEM: &str = "urn:trialops:staff-id";

/// Extension saying whether an electronic signature still applies to its target's content.
pub const SIGNATURE_APPLIES_EXTENSION: &str = "urn:trialops:fhir:signature-applies";

/// Extension holding the SHA-256 of the content an electronic signature signed.
pub const SIGNATURE_CONTENT_EXTENSION: &str = "urn:trialops:fhir:signature-content-sha256";

/// The Provenance search parameters: the signed record, required.
pub fn provenance_search(example: &'static str) -> Vec<(&'static str, &'static str, &'static str)> {
    vec![("target", "reference", example)]
}

/// The `n`th (from 1) signature of a record as the id of its Provenance: `{prefix}.{record id}.{n}`.
pub fn provenance_id(prefix: &str, record_id: &str, n: usize) -> String {
    format!("{prefix}.{record_id}.{n}")
}

/// A Provenance id's `(prefix, record id, n)`, or 404 for an id this facade never made.
pub fn parse_provenance_id(id: &str) -> Result<(&str, &str, usize), Outcome> {
    let not_found = || Outcome::not_found(format!("Provenance/{id}"));
    let (prefix, rest) = id.split_once('.').ok_or_else(not_found)?;
    let (record, n) = rest.rsplit_once('.').ok_or_else(not_found)?;
    let n = n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(not_found)?;
    Ok((prefix, record, n))
}

/// One electronic signature of `target` as a FHIR R4 Provenance: the signer as agent (verifier,
/// attester or legal, by the meaning) and the Signature (ASTM E1762 type: review, verification
/// or author's signature), with whether it still applies and the content hash as extensions.
pub fn provenance(id: &str, target: Value, s: &trialops_proto::common::v1::Signature) -> Value {
    use trialops_proto::common::v1::SignatureMeaning;
    let (agent, code, display) = match SignatureMeaning::try_from(s.meaning) {
        Ok(SignatureMeaning::Reviewed) => ("verifier", "1.2.840.10065.1.12.1.13", "Review Signature"),
        Ok(SignatureMeaning::ResponsibleFor) => ("legal", "1.2.840.10065.1.12.1.1", "Author's Signature"),
        _ => ("attester", "1.2.840.10065.1.12.1.5", "Verification Signature"),
    };
    let when = s
        .signed_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let who = json!({ "identifier": { "system": STAFF_SYSTEM, "value": s.signer }, "display": s.printed_name });
    json!({
        "resourceType": "Provenance",
        "id": id,
        "extension": [
            { "url": SIGNATURE_APPLIES_EXTENSION, "valueBoolean": s.applies },
            { "url": SIGNATURE_CONTENT_EXTENSION, "valueString": s.content_sha256 },
        ],
        "target": [target],
        "recorded": when,
        "agent": [{
            "type": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": agent,
            }] },
            "who": who,
        }],
        "signature": [{
            "type": [{ "system": "urn:iso-astm:E1762-95:2013", "code": code, "display": display }],
            "when": when,
            "who": who,
        }],
    })
}

/// A reference to a study subject by its identifier (trialops holds no Patient resource).
pub fn subject_reference(subject_id: &str) -> Value {
    json!({ "identifier": { "system": SUBJECT_SYSTEM, "value": subject_id }, "display": subject_id })
}

/// Serves [`Resources`] under [`BASE_PATH`], in front of the gRPC stack it wraps.
#[derive(Clone)]
pub struct FhirLayer {
    resources: Option<Arc<dyn Resources>>,
    scheme: &'static str,
}

impl FhirLayer {
    /// The facade for `resources` (none: every FHIR path is 404), linking with `scheme`.
    pub fn new(resources: Option<Arc<dyn Resources>>, tls: bool) -> Self {
        FhirLayer {
            resources,
            scheme: if tls { "https" } else { "http" },
        }
    }
}

impl<S> Layer<S> for FhirLayer {
    type Service = FhirService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FhirService {
            inner,
            resources: self.resources.clone(),
            scheme: self.scheme,
        }
    }
}

/// See [`FhirLayer`].
#[derive(Clone)]
pub struct FhirService<S> {
    inner: S,
    resources: Option<Arc<dyn Resources>>,
    scheme: &'static str,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, E> Service<Request<Body>> for FhirService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = E> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    E: Into<tower::BoxError> + 'static,
{
    type Response = Response<Body>;
    type Error = E;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if path != BASE_PATH && !path.starts_with("/fhir/") {
            let future = self.inner.call(request);
            return Box::pin(future);
        }
        let answer = self.answer(request);
        Box::pin(async move {
            match answer.await {
                Ok(response) => Ok(response),
                Err(never) => match never {},
            }
        })
    }
}

impl<S, E> FhirService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = E> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    E: Into<tower::BoxError> + 'static,
{
    fn answer(&self, request: Request<Body>) -> Answer {
        let grpc: Loopback = BoxCloneSyncService::new(self.inner.clone().map_err(|e: E| LoopbackError(e.into())));
        let resources = self.resources.clone();
        let scheme = self.scheme;
        Box::pin(async move {
            let host = request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| request.uri().authority().map(ToString::to_string))
                .unwrap_or_else(|| "localhost".to_owned());
            let read = Read {
                authorization: request.headers().get(http::header::AUTHORIZATION).cloned(),
                base: format!("{scheme}://{host}{BASE_PATH}"),
                grpc,
            };
            let result = match resources {
                None => Err(Outcome::not_found("this service serves no FHIR resources")),
                Some(resources) if request.method() == Method::GET => {
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    let path = request.uri().path().to_owned();
                    route(resources.as_ref(), &read, &path, &query).await
                }
                Some(_) => Err(Outcome {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    code: "not-supported",
                    diagnostics: "this FHIR facade is read-only: GET only".into(),
                }),
            };
            Ok(match result {
                Ok(value) => respond(StatusCode::OK, &value),
                Err(outcome) => respond(outcome.status, &outcome.to_json()),
            })
        })
    }
}

fn respond(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(
        value.to_string(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    response
}

async fn route(resources: &dyn Resources, read: &Read, path: &str, query: &str) -> Result<Value, Outcome> {
    let rest = path.strip_prefix(BASE_PATH).unwrap_or_default().trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').collect();
    let types = resources.types();
    let known = |name: &str| {
        types
            .iter()
            .any(|t| t.name == name)
            .then_some(())
            .ok_or_else(|| Outcome::not_found(format!("{name}: not a resource type this service serves")))
    };
    match parts.as_slice() {
        ["metadata"] => Ok(capability_statement(resources.service(), &types)),
        [resource_type] if !resource_type.is_empty() => {
            known(resource_type)?;
            let params = Params::parse(query)?;
            let (entries, next) = resources.search(read, resource_type, &params).await?;
            Ok(bundle(read, resource_type, query, entries, next))
        }
        [resource_type, id] if !id.is_empty() => {
            known(resource_type)?;
            if !valid_id(id) {
                return Err(Outcome::invalid(format!("{id}: not a FHIR id")));
            }
            resources.read(read, resource_type, id).await
        }
        _ => Err(Outcome::not_found(format!("{path}: no such FHIR path"))),
    }
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn bundle(
    read: &Read,
    resource_type: &str,
    query: &str,
    entries: Vec<Value>,
    next: Option<Vec<(String, String)>>,
) -> Value {
    let url = |query: &str| {
        if query.is_empty() {
            format!("{}/{resource_type}", read.base)
        } else {
            format!("{}/{resource_type}?{query}", read.base)
        }
    };
    let mut links = vec![json!({ "relation": "self", "url": url(query) })];
    if let Some(next) = next {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        links.push(json!({ "relation": "next", "url": url(&encoded) }));
    }
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|resource| {
            let full = format!(
                "{}/{}/{}",
                read.base,
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({ "fullUrl": full, "resource": resource, "search": { "mode": "match" } })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entry,
    })
}

fn capability_statement(service: &str, types: &[ResourceType]) -> Value {
    let resources: Vec<Value> = types
        .iter()
        .map(|t| {
            let params: Vec<Value> = t
                .search
                .iter()
                .map(|(name, kind, doc)| json!({ "name": name, "type": kind, "documentation": doc }))
                .collect();
            json!({
                "type": t.name,
                "interaction": [{ "code": "read" }, { "code": "search-type" }],
                "searchParam": params,
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::clock::now().format("%Y-%m-%d").to_string(),
        "kind": "instance",
        "software": { "name": "trialops", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": format!("trialops {service}: a read-only FHIR R4 view") },
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE],
        "rest": [{
            "mode": "server",
            "security": {
                "description": "The same bearer tokens as the gRPC API (Authorization: Bearer ...), \
                    with the same role and site rules.",
            },
            "resource": resources,
        }],
    })
}
