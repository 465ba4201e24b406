//! API keys: the key file, the key store and the middleware that asks every
//! request (but the liveness and readiness probes) for a key with the scope
//! its route needs. README, "API keys and tenants", documents the file and
//! the scope of each route.
//!
//! Keys are compared in constant time and never logged or echoed: the file's
//! errors name a line, never its key; the store's `Debug` shows a count.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Problem};
use super::AppState;

/// Shortest accepted key: 16 characters of a random key are beyond guessing
/// through an HTTP endpoint.
const MIN_KEY_CHARS: usize = 16;

/// Longest accepted tenant name (it prefixes every stored stream name).
const MAX_TENANT_CHARS: usize = 64;

/// Routes open without a key: orchestrators probe them unauthenticated.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Path prefix of the operator routes, which need [`Scope::Admin`].
const ADMIN_PREFIX: &str = "/internal/";
/// Stream routes: the only state a client can change.
const STREAMS_PREFIX: &str = "/streams";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Safe methods (GET, HEAD): catalogues, stream metrics, the stream list.
    Read,
    /// Everything else: computations, stream ingest and deletion.
    Write,
    /// Operator routes under `/internal/` (Prometheus metrics).
    Admin,
}

impl Scope {
    const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's name in the key file and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The scope a request to `path` with `method` needs; `None` for the open
/// probes. Decided on the raw path before routing, so a request to an
/// unknown route needs a key as well and learns nothing about the routes.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if OPEN_PATHS.contains(&path) || is_dashboard_page(method, path) {
        None
    } else if path.starts_with(ADMIN_PREFIX) {
        Some(Scope::Admin)
    } else if method == Method::GET || method == Method::HEAD || !changes_streams(path) {
        // Stateless computations (`POST /metrics`, `/loss/{name}`, plots...)
        // change nothing, so reading is enough.
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

/// Whether a non-GET request to `path` can change stream state: stream
/// ingest and delete live under `/streams`.
fn changes_streams(path: &str) -> bool {
    path.strip_prefix(STREAMS_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The dashboard's page and assets (`GET /`, `GET /ui...`): they hold no
/// data, and a browser cannot send a key when it opens a page; the page then
/// sends the key the user typed with every API call.
fn is_dashboard_page(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/" || path == "/ui" || path.starts_with("/ui/"))
}

/// The tenant of the key a request presented; handlers that keep per-tenant
/// data (streams) read it from the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant's name, as the key file gives it.
    pub fn name(&self) -> &str {
        &self.0
    }
}

struct ApiKey {
    secret: Box<[u8]>,
    tenant: Tenant,
    /// A bit per [`Scope`].
    scopes: u8,
}

/// The configured keys.
pub struct KeyStore {
    keys: Vec<ApiKey>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyStore({} keys)", self.keys.len())
    }
}

/// A line of the key file that does not parse; never holds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct KeyFileError {
    pub line: usize,
    pub reason: String,
}

impl KeyStore {
    /// Reads and parses the key file at `path` (warning when other users
    /// may read it).
    ///
    /// # Errors
    /// When the file cannot be read or a line does not parse; the message
    /// names the file and line, never a key.
    pub fn load(path: &Path) -> std::io::Result<KeyStore> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("API key file {shown}: {e}")))?;
        warn_if_world_readable(path);
        let store = KeyStore::parse(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("API key file {shown}, {e}"),
            )
        })?;
        tracing::info!(
            keys = store.keys.len(),
            tenants = store.tenants(),
            "API keys loaded; every route but /healthz, /readyz and the dashboard page (/, /ui/...) needs a key"
        );
        Ok(store)
    }

    /// Parses the key file: one `<key> <tenant> <scope>[,<scope>...]` per
    /// line, separated by spaces or tabs; blank lines and lines starting with
    /// `#` are ignored.
    ///
    /// # Errors
    /// The first line that does not parse, a key given twice, or no key at all.
    pub fn parse(text: &str) -> Result<KeyStore, KeyFileError> {
        let mut keys: Vec<(usize, ApiKey)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let key = parse_line(content).map_err(|reason| KeyFileError { line, reason })?;
            if let Some((first, _)) = keys.iter().find(|(_, k)| k.secret == key.secret) {
                return Err(KeyFileError {
                    line,
                    reason: format!("the same key as line {first}; each key must be unique"),
                });
            }
            keys.push((line, key));
        }
        if keys.is_empty() {
            return Err(KeyFileError {
                line: text.lines().count(),
                reason: "no keys; every route but /healthz, /readyz and the dashboard page would be locked".to_owned(),
            });
        }
        Ok(KeyStore {
            keys: keys.into_iter().map(|(_, key)| key).collect(),
        })
    }

    /// Number of distinct tenants.
    fn tenants(&self) -> usize {
        let mut names: Vec<&str> = self.keys.iter().map(|k| k.tenant.name()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// The key equal to `presented`. Every configured key is compared in full
    /// whatever matches, so the time taken says nothing about how close a
    /// guess came.
    fn find(&self, presented: &[u8]) -> Option<&ApiKey> {
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(&key.secret, presented) {
                found = Some(key);
            }
        }
        found
    }
}

/// `expected == presented` in a time that depends only on `expected.len()`.
///
/// No hash or constant-time crate is in the dependency tree; this loop is
/// the textbook one: it visits every byte of `expected` without an early
/// exit, accumulating differences with OR, and `black_box` keeps the
/// optimizer from turning the accumulation into a branch. A length
/// mismatch is folded into the same accumulator.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = expected.len() ^ presented.len();
    for (i, &byte) in expected.iter().enumerate() {
        let other = presented.get(i).copied().unwrap_or(!byte);
        diff |= usize::from(std::hint::black_box(byte ^ other));
    }
    std::hint::black_box(diff) == 0
}

fn parse_line(content: &str) -> Result<ApiKey, String> {
    let fields: Vec<&str> = content.split_whitespace().collect();
    let [secret, tenant, scopes] = fields[..] else {
        return Err(format!(
            "expected 3 fields '<key> <tenant> <scopes>', found {}",
            fields.len()
        ));
    };
    Ok(ApiKey {
        secret: check_secret(secret)?.into(),
        tenant: check_tenant(tenant)?,
        scopes: parse_scopes(scopes)?,
    })
}

/// A key is at least [`MIN_KEY_CHARS`] characters of the RFC 6750 token
/// alphabet, so it can be sent as `Authorization: Bearer <key>` unchanged.
fn check_secret(secret: &str) -> Result<&[u8], String> {
    let token_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=');
    if secret.len() < MIN_KEY_CHARS || !secret.chars().all(token_char) {
        return Err(format!(
            "a key must be at least {MIN_KEY_CHARS} characters of A-Z, a-z, 0-9, '-', '.', '_', '~', '+', '/' or '=' (e.g. the output of 'openssl rand -hex 32')"
        ));
    }
    Ok(secret.as_bytes())
}

/// A tenant name is 1 to [`MAX_TENANT_CHARS`] of `A-Z a-z 0-9 _ -`: it
/// prefixes stored stream names, so it may not hold their separator.
fn check_tenant(tenant: &str) -> Result<Tenant, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if tenant.len() > MAX_TENANT_CHARS || !tenant.chars().all(ok_char) {
        return Err(format!(
            "tenant '{tenant}' must be 1 to {MAX_TENANT_CHARS} characters of A-Z, a-z, 0-9, '_' or '-'"
        ));
    }
    Ok(Tenant(tenant.into()))
}

fn parse_scopes(list: &str) -> Result<u8, String> {
    list.split(',').try_fold(0, |bits, name| {
        let scope = Scope::ALL.into_iter().find(|s| s.name() == name);
        match scope {
            Some(s) => Ok(bits | s.bit()),
            None => Err(format!(
                "unknown scope '{name}'; scopes are a comma-separated list of read, write, admin"
            )),
        }
    })
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode());
    if mode.is_ok_and(|m| m & 0o004 != 0) {
        tracing::warn!(file = %path.display(), "the API key file is readable by every user; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

/// Middleware: without configured keys, passes every request through (the
/// service is open, as documented). With keys, answers 401 for a missing or
/// unknown key and 403 for a key without the route's scope; otherwise
/// records the key's [`Tenant`] in the request and passes it on.
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(keys) = state.keys.as_deref() else {
        return next.run(req).await;
    };
    let Some(scope) = required_scope(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    match authorize(keys, req.headers(), scope) {
        Ok(tenant) => {
            req.extensions_mut().insert(tenant);
            next.run(req).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a request was refused.
#[derive(Debug)]
enum Refusal {
    /// No Authorization header.
    Missing,
    /// An Authorization header that is not `Bearer <key>`.
    Malformed,
    /// A key that is not in the file.
    UnknownKey,
    /// A valid key of `tenant` without `scope`.
    MissingScope { tenant: Tenant, scope: Scope },
}

/// The tenant of the request's key if that key has `scope`.
fn authorize(keys: &KeyStore, headers: &HeaderMap, scope: Scope) -> Result<Tenant, Refusal> {
    let value = headers.get(header::AUTHORIZATION).ok_or(Refusal::Missing)?;
    let presented = bearer_token(value.as_bytes()).ok_or(Refusal::Malformed)?;
    let key = keys.find(presented).ok_or(Refusal::UnknownKey)?;
    if key.scopes & scope.bit() == 0 {
        return Err(Refusal::MissingScope {
            tenant: key.tenant.clone(),
            scope,
        });
    }
    Ok(key.tenant.clone())
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    Some(value[SCHEME.len()..].trim_ascii())
}

impl IntoResponse for Refusal {
    /// 401 or 403 problem+json with the `WWW-Authenticate` challenge of
    /// RFC 6750 (with its `error` code when a credential was sent).
    fn into_response(self) -> Response {
        let (error, challenge) = match self {
            Refusal::Missing => (
                unauthorized("this route needs an API key: send 'Authorization: Bearer <key>'"),
                "Bearer realm=\"evald\"".to_owned(),
            ),
            Refusal::Malformed => (
                unauthorized("the Authorization header must be 'Bearer <key>'"),
                "Bearer realm=\"evald\", error=\"invalid_request\"".to_owned(),
            ),
            Refusal::UnknownKey => (
                unauthorized("the API key is not valid"),
                "Bearer realm=\"evald\", error=\"invalid_token\"".to_owned(),
            ),
            Refusal::MissingScope { tenant, scope } => {
                let name = scope.name();
                let detail = format!(
                    "the API key of tenant '{}' lacks the '{name}' scope this request needs",
                    tenant.name()
                );
                (
                    ApiError::new(Problem::Forbidden, detail).with_extension("scope", name),
                    format!(
                        "Bearer realm=\"evald\", error=\"insufficient_scope\", scope=\"{name}\""
                    ),
                )
            }
        };
        let mut response = error.into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(Problem::Unauthorized, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

    fn store() -> KeyStore {
        let text = format!("# comment\n\n{KEY_A} acme read,write\n\t{KEY_B}\tops  admin \n");
        KeyStore::parse(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_file_gives_each_key_its_tenant_and_scopes() {
        let keys = store();
        let a = keys
            .find(KEY_A.as_bytes())
            .map(|k| (k.tenant.name(), k.scopes));
        assert_eq!(a, Some(("acme", Scope::Read.bit() | Scope::Write.bit())));
        let b = keys
            .find(KEY_B.as_bytes())
            .map(|k| (k.tenant.name(), k.scopes));
        assert_eq!(b, Some(("ops", Scope::Admin.bit())));
        assert!(keys.find(b"aaaaaaaaaaaaaaaaaaaaaaab").is_none());
        assert!(keys.find(b"aaaaaaaaaaaaaaaaaaaaaaa").is_none());
        assert!(keys.find(b"").is_none());
        assert_eq!(keys.tenants(), 2);
    }

    #[test]
    fn bad_lines_are_named_without_their_key() {
        let secret = "s3cr3t-s3cr3t-s3cr3t";
        for (text, fragment) in [
            (format!("{secret} acme"), "expected 3 fields"),
            (
                format!("{secret} acme read,delete"),
                "unknown scope 'delete'",
            ),
            (format!("{secret} acme/x read"), "tenant 'acme/x'"),
            ("short acme read".to_owned(), "at least 16 characters"),
            (
                format!("{secret} a read\n{secret} b write"),
                "the same key as line 1",
            ),
            ("# only a comment\n".to_owned(), "no keys"),
        ] {
            let err = KeyStore::parse(&text).map(|_| ()).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(fragment), "{shown}");
            assert!(!shown.contains(secret), "{shown}");
        }
        let err = KeyStore::parse(&format!("# k\n{secret} acme read,\n")).map(|_| ());
        assert_eq!(err.map_err(|e| e.line), Err(2));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn routes_need_the_scope_of_their_method() {
        assert_eq!(required_scope(&Method::GET, "/healthz"), None);
        assert_eq!(required_scope(&Method::GET, "/"), None);
        assert_eq!(required_scope(&Method::GET, "/ui/streams/a"), None);
        // a POST to the page is no page: it needs a key
        assert_eq!(required_scope(&Method::POST, "/"), Some(Scope::Read));
        // not a route: a path that only starts like `/ui` is no page, so it needs a key
        assert_eq!(required_scope(&Method::GET, "/uix"), Some(Scope::Read));
        assert_eq!(required_scope(&Method::GET, "/readyz"), None);
        assert_eq!(required_scope(&Method::GET, "/healthz/"), Some(Scope::Read));
        assert_eq!(required_scope(&Method::GET, "/streams"), Some(Scope::Read));
        assert_eq!(required_scope(&Method::HEAD, "/loss"), Some(Scope::Read));
        assert_eq!(required_scope(&Method::POST, "/metrics"), Some(Scope::Read));
        assert_eq!(
            required_scope(&Method::POST, "/loss/mse"),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope(&Method::POST, "/streams/x"),
            Some(Scope::Write)
        );
        assert_eq!(
            required_scope(&Method::DELETE, "/streams/x"),
            Some(Scope::Write)
        );
        assert_eq!(
            required_scope(&Method::GET, "/internal/metrics"),
            Some(Scope::Admin)
        );
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
    }
}
