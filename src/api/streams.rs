//! HTTP routes for streams: ingest (JSON or incremental NDJSON), metrics over
//! a stream or one of its users, a stream's summary and its users, listing
//! and deletion.
//!
//! Ingest parses the whole body into a local [`BatchBuilder`] on the blocking
//! pool (no store lock held), aggregates it, and only then hands it to the
//! store with its batch id (the `Idempotency-Key`, else a generated one):
//! any bad line leaves the stream unchanged, and a repeated key is applied
//! once. Every route goes through the [`StreamStore`] interface, so it
//! behaves the same whichever store `--store` chose.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::admission::{permit_of, BodyReader, Permit};
use super::arrow::{is_arrow_stream, unsupported, ArrowBody};
use super::error::echo;
use super::extract::{is_json_media_type, media_type_essence};
use super::limits::check_array_len_or;
use super::Problem;
use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::state::wal::LogError;
use crate::state::{
    now_ms, tenants, BatchBuilder, BatchId, Limit, StoreError, StreamInfo, StreamStore, UserEntry,
    UserOrder, UserPager, UsersPage,
};

pub mod beyond;
pub mod compare;
pub mod dto;
pub mod fast;
pub mod intervals;
pub mod name;
pub mod ndjson;
pub mod report;

use super::auth::Tenant;
use dto::{stage_batch, BatchBody, Origin};
use name::{visible, StreamName};
use ndjson::{parse_line, LineReader};
use report::{evaluate_stream, evaluate_user, MetricsQuery, StreamMetricsResponse};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/streams", get(list))
        .route("/streams/{name}", post(ingest).get(info).delete(delete))
        .route("/streams/{name}/users", get(users))
        .route("/streams/{name}/metrics", get(stream_metrics))
        .route("/streams/{name}/users/{user_id}/metrics", get(user_metrics))
        .merge(compare::router())
}

/// Longest accepted stream name, in bytes.
const MAX_NAME_BYTES: usize = 128;

/// How often (in records) staging checks the memory and user budgets, so an
/// endless body is refused with 503 before it can exhaust memory.
const BUDGET_CHECK_EVERY: usize = 1 << 16;

/// Chunks buffered between the socket reader and the parser thread.
const CHUNK_QUEUE: usize = 16;

/// A stream name: 1 to 128 of `A-Z a-z 0-9 . _ - :`, and not `.` or `..`
/// (path segments with a meaning of their own), so it is safe in URLs, logs
/// and file names.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':');
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.chars().all(ok_char) {
        return Err(ApiError::invalid(
            "name",
            format!("stream name '{}' must be 1 to {MAX_NAME_BYTES} characters of A-Z, a-z, 0-9, '.', '_', '-' or ':'", echo(name)),
        ));
    }
    if name == "." || name == ".." {
        return Err(ApiError::invalid(
            "name",
            format!(
                "stream name '{name}' is not allowed: '.' and '..' are path segments, not names"
            ),
        ));
    }
    Ok(())
}

/// Maps a store refusal to its HTTP problem.
pub fn store_error(err: StoreError) -> ApiError {
    let limit = err.limit();
    match err {
        StoreError::UnknownStream(name) => unknown_stream(tenants::local_name(&name)),
        StoreError::Log(e) => log_error(e),
        StoreError::Unavailable(detail) => ApiError::new(
            Problem::Unavailable,
            format!("the stream store is unavailable: {detail}; nothing was applied"),
        )
        .with_retry_after(STORE_RETRY_AFTER_SECS),
        StoreError::Internal(cause) => ApiError::internal(cause),
        _ => {
            let e = ApiError::over_budget(err.to_string());
            match limit {
                Some(l) => e.with_extension("limit", l.name()),
                None => e,
            }
        }
    }
}

/// Maps a log failure to its problem: 503 when nothing was applied (a retry
/// is safe), 500 when the change was applied but is not durable (it is
/// never acknowledged).
fn log_error(err: LogError) -> ApiError {
    if err.nothing_applied() {
        ApiError::new(Problem::Unavailable, err.to_string())
    } else {
        tracing::error!(error = %err, "a change was applied but not logged durably");
        ApiError::new(Problem::Internal, err.to_string())
    }
}

/// `Retry-After` seconds of a 503 while the store is unreachable.
const STORE_RETRY_AFTER_SECS: u64 = 1;

/// The header naming a batch for retries.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest accepted `Idempotency-Key`, in characters.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The request's batch id: its `Idempotency-Key` (1 to 128 visible ASCII
/// characters, so it is safe in logs and as a store key), else a generated
/// one. A bad key is a 400 naming the header, before the body is read.
fn batch_id(headers: &HeaderMap) -> Result<BatchId, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(BatchId::generated());
    };
    let bad = || {
        ApiError::new(
            Problem::BadRequest,
            format!("the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (no spaces)"),
        )
        .with_field("Idempotency-Key")
    };
    let key = value.to_str().map_err(|_| bad())?;
    let visible = |b: u8| b.is_ascii_graphic();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(visible) {
        return Err(bad());
    }
    Ok(BatchId::from_client(key))
}

/// `{"stream", "accepted", "count", "users"}`: the ingest reply, written
/// here and read by `evald push` (`client::push`).
#[derive(Debug, Serialize, Deserialize)]
pub struct IngestResponse {
    pub stream: String,
    pub accepted: u64,
    pub count: u64,
    pub users: usize,
}

/// True for the NDJSON media types (`application/x-ndjson`, `application/ndjson`,
/// `application/jsonl`), any parameters.
fn is_ndjson(content_type: &str) -> bool {
    let essence = media_type_essence(content_type);
    matches!(
        essence.as_str(),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    )
}

async fn ingest(
    State(state): State<AppState>,
    name: StreamName,
    request: Request,
) -> ApiResult<Json<IngestResponse>> {
    check_name(&name.local)?;
    let id = batch_id(request.headers())?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let started = std::time::Instant::now();
    let ndjson = is_ndjson(&content_type);
    let builder = if ndjson {
        let permit = permit_of(&request, &state);
        read_ndjson(&state, BodyReader::new(request.into_body(), permit)).await?
    } else if is_json_media_type(&content_type) {
        let ApiJson(body) = ApiJson::<BatchBody>::from_request(request, &state).await?;
        let max = state.config.max_array_len;
        check_array_len_or(
            "predictions",
            body.predictions.len(),
            max,
            "send larger data as NDJSON",
        )?;
        tokio::task::spawn_blocking(move || stage_body(body))
            .await
            .map_err(ApiError::internal)??
    } else if is_arrow_stream(&content_type) {
        let body = ArrowBody::from_request(request, &state).await?;
        let max = state.config.max_array_len;
        tokio::task::spawn_blocking(move || body.stage_batch(max))
            .await
            .map_err(ApiError::internal)??
    } else {
        return Err(unsupported(
            &content_type,
            "application/json, application/x-ndjson",
        ));
    };
    if builder.is_empty() {
        return Err(no_records(ndjson));
    }
    let parsed = started.elapsed();
    let batch = tokio::task::spawn_blocking(move || builder.finish())
        .await
        .map_err(ApiError::internal)?;
    let aggregated = started.elapsed();
    let summary = state
        .streams
        .apply(&name.stored, batch, &id, now_ms())
        .await
        .map_err(store_error)?;
    tracing::debug!(
        parse_ms = parsed.as_millis() as u64,
        aggregate_ms = (aggregated - parsed).as_millis() as u64,
        merge_ms = (started.elapsed() - aggregated).as_millis() as u64,
        "stream batch timings"
    );
    Ok(Json(IngestResponse {
        stream: name.local,
        accepted: summary.accepted,
        count: summary.count,
        users: summary.users,
    }))
}

/// 422 for a body without a single record: it would create an empty stream
/// (or touch an existing one) for nothing, and is most likely a client bug.
fn no_records(ndjson: bool) -> ApiError {
    if ndjson {
        ApiError::invalid(
            "body",
            "the body has no records (it is empty or has blank lines only); nothing was applied",
        )
    } else {
        ApiError::invalid(
            "predictions",
            "predictions is empty: a batch needs at least one record; nothing was applied",
        )
    }
}

/// 404 for a stream that does not exist.
fn unknown_stream(name: &str) -> ApiError {
    ApiError::not_found(format!("unknown stream '{}'", echo(name)))
}

fn stage_body(body: BatchBody) -> Result<BatchBuilder, ApiError> {
    let mut builder = BatchBuilder::new();
    stage_batch(
        &mut builder,
        Origin::Body,
        &body.predictions,
        &body.labels,
        body.user_ids.as_deref(),
        body.sample_weights.as_deref(),
    )?;
    Ok(builder)
}

/// Reads an NDJSON body: the socket side forwards chunks to a parser on the
/// blocking pool, so parsing overlaps with receiving and never stalls the
/// async workers. The parser stops at the first bad line; the reader then
/// stops too (the rest of the body is not read).
///
/// In flight it holds the partial line (up to `--max-line-bytes`), the chunk
/// queue and the staged records (folded into per-user aggregates as they
/// grow); all count against the request's permit.
async fn read_ndjson(state: &AppState, mut body: BodyReader) -> Result<BatchBuilder, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNK_QUEUE);
    let max_line = state.config.max_line_bytes;
    let max_users = state.config.max_users_per_stream;
    let store = state.streams.clone();
    let permit = body.permit().clone();
    let reading = max_line.saturating_add(CHUNK_QUEUE * CHUNK_BYTES_ESTIMATE);
    permit.reserve_up_to(reading)?;
    let parser = tokio::task::spawn_blocking(move || {
        let staging = Staging {
            store: store.as_ref(),
            max_users,
            permit: &permit,
            reading,
        };
        let mut reader = LineReader::new(max_line);
        let mut builder = BatchBuilder::new();
        let mut next_check = BUDGET_CHECK_EVERY;
        let mut on_line = |n: u64, line: &[u8]| {
            parse_line(&mut builder, n, line)?;
            if builder.len() >= next_check {
                next_check += BUDGET_CHECK_EVERY;
                staging.check(&builder)?;
            }
            Ok(())
        };
        while let Some(chunk) = rx.blocking_recv() {
            reader.feed(&chunk, &mut on_line)?;
        }
        reader.finish(&mut on_line)?;
        staging.check(&builder)?;
        Ok::<_, ApiError>(builder)
    });
    let mut read_error = None;
    loop {
        match body.chunk().await {
            Ok(Some(bytes)) => {
                if tx.send(bytes).await.is_err() {
                    break; // the parser stopped on an error; it reports it
                }
            }
            Ok(None) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let parsed = parser.await.map_err(ApiError::internal)?;
    match (parsed, read_error) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(b), None) => Ok(b),
    }
}

/// Typical size of a decompressed body chunk, to account for the chunk queue.
const CHUNK_BYTES_ESTIMATE: usize = 64 * 1024;

/// The budgets staged records are checked against while a body arrives.
struct Staging<'a> {
    store: &'a dyn StreamStore,
    max_users: usize,
    /// The request's in-flight permit, and what reading alone holds.
    permit: &'a Permit,
    reading: usize,
}

impl Staging<'_> {
    /// Refuses (503) a body whose staged records would not fit the memory
    /// budget or whose users alone exceed the per-stream user limit, before
    /// the whole body is read; and grows the request's in-flight reservation
    /// by the staged bytes (503 with Retry-After when that budget is full).
    fn check(&self, builder: &BatchBuilder) -> Result<(), ApiError> {
        check_staging(builder, self.store, self.max_users)?;
        let staged = builder.staged_bytes();
        self.permit
            .reserve_up_to(self.reading.saturating_add(staged))
    }
}

/// Refuses (503) a body whose staged records would not fit the memory budget
/// or whose users alone exceed the per-stream user limit.
fn check_staging(
    builder: &BatchBuilder,
    store: &dyn StreamStore,
    max_users: usize,
) -> Result<(), ApiError> {
    store
        .admit_staged(builder.len(), builder.staged_bytes())
        .map_err(store_error)?;
    if builder.users() > max_users {
        return Err(ApiError::over_budget(format!(
            "this batch has {} distinct users, over the limit of {max_users} users per stream (--max-users-per-stream)",
            builder.users()
        ))
        .with_extension("limit", Limit::MaxUsersPerStream.name()));
    }
    Ok(())
}

/// Runs `evaluate` on the blocking pool (GAUC and curves over a large
/// aggregate are CPU work).
async fn off_thread<T, F>(evaluate: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(evaluate)
        .await
        .map_err(ApiError::internal)?
}

async fn stream_metrics(
    State(state): State<AppState>,
    name: StreamName,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<StreamMetricsResponse>> {
    let (params, weighting) = query.params()?;
    let beyond = query.beyond(state.config.max_thresholds)?;
    let read = state
        .streams
        .stream(&name.stored, true)
        .await
        .map_err(store_error)?;
    let response = off_thread(move || evaluate_stream(&read, &params, weighting, &beyond)).await?;
    Ok(Json(response))
}

async fn user_metrics(
    State(state): State<AppState>,
    name: StreamName,
    Path((_, user_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<StreamMetricsResponse>> {
    let (params, _) = query.params()?;
    let beyond = query.beyond(state.config.max_thresholds)?;
    let agg = state
        .streams
        .user(&name.stored, &user_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_user(&name.local, &user_id))?;
    let stored = name.stored;
    let response =
        off_thread(move || evaluate_user(&stored, &user_id, &agg, &params, &beyond)).await?;
    Ok(Json(response))
}

/// 404 for a user a stream has not seen.
pub fn unknown_user(stream: &str, user_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "stream '{}' has no user '{}'",
        echo(stream),
        echo(user_id)
    ))
}

/// One entry of `GET /streams`.
#[derive(Debug, Serialize)]
pub struct StreamSummary {
    pub name: String,
    pub count: u64,
    pub users: usize,
    pub created_at: String,
    pub updated_at: String,
}

impl From<StreamInfo> for StreamSummary {
    fn from(s: StreamInfo) -> Self {
        StreamSummary {
            name: s.name,
            count: s.count,
            users: s.users,
            created_at: rfc3339(s.created_at_ms),
            updated_at: rfc3339(s.updated_at_ms),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Tenant>>,
) -> ApiResult<Json<Vec<StreamSummary>>> {
    let caller = caller.map(|Extension(tenant)| tenant);
    let all = state.streams.list().await.map_err(store_error)?;
    Ok(Json(
        all.into_iter()
            .filter_map(|info| visible(caller.as_ref(), info))
            .map(StreamSummary::from)
            .collect(),
    ))
}

async fn delete(State(state): State<AppState>, name: StreamName) -> ApiResult<StatusCode> {
    let found = state
        .streams
        .delete(&name.stored)
        .await
        .map_err(store_error)?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown_stream(&name.local))
    }
}

/// `GET /streams/{name}`: one stream's summary.
#[derive(Debug, Serialize)]
pub struct StreamDetail {
    #[serde(flatten)]
    pub summary: StreamSummary,
    /// True until the stream's global aggregate was compacted.
    pub exact: bool,
    /// Upper bound on |auc - exact auc| of the whole stream; 0 while exact.
    pub auc_error_bound: f64,
}

async fn info(State(state): State<AppState>, name: StreamName) -> ApiResult<Json<StreamDetail>> {
    let mut info = state
        .streams
        .info(&name.stored)
        .await
        .map_err(store_error)?;
    info.name = name.local;
    Ok(Json(StreamDetail {
        exact: info.exact,
        auc_error_bound: info.auc_error_bound,
        summary: StreamSummary::from(info),
    }))
}

/// Query parameters of `GET /streams/{name}/users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub order: Option<String>,
}

/// Users per page when `limit` is not given.
const DEFAULT_USERS_PAGE: u64 = 100;

impl UsersQuery {
    /// The pager these parameters ask for, checked: `limit` from 1 to
    /// `max_limit`, a known `order`, a cursor this service issued for it.
    fn pager(&self, max_limit: u64) -> Result<UserPager, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_USERS_PAGE.min(max_limit));
        if limit == 0 || limit > max_limit {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be from 1 to {max_limit} (--max-users-page), found {limit}"),
            ));
        }
        let order = match self.order.as_deref() {
            None => UserOrder::default(),
            Some(name) => UserOrder::parse(name).ok_or_else(|| {
                let valid: Vec<&str> = UserOrder::ALL.iter().map(|o| o.name()).collect();
                ApiError::invalid(
                    "order",
                    format!(
                        "unknown order '{}'; valid orders: {}",
                        echo(name),
                        valid.join(", ")
                    ),
                )
            })?,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        UserPager::new(order, limit, self.cursor.as_deref())
            .map_err(|e| ApiError::invalid("cursor", e.to_string()))
    }
}

/// One user of `GET /streams/{name}/users`.
#[derive(Debug, Serialize)]
pub struct UserSummary {
    pub user_id: String,
    pub count: u64,
    pub positives: u64,
    /// `null` when the user has one class only.
    pub auc: Option<f64>,
}

impl From<UserEntry> for UserSummary {
    fn from(e: UserEntry) -> Self {
        UserSummary {
            user_id: e.user_id,
            count: e.count,
            positives: e.positives,
            auc: e.auc,
        }
    }
}

/// `GET /streams/{name}/users`: one page, and the cursor of the next.
#[derive(Debug, Serialize)]
pub struct UsersResponse {
    pub stream: String,
    pub order: &'static str,
    pub users: Vec<UserSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

async fn users(
    State(state): State<AppState>,
    name: StreamName,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> ApiResult<Json<UsersResponse>> {
    let pager = query.pager(state.config.max_users_page)?;
    let order = query
        .order
        .as_deref()
        .and_then(UserOrder::parse)
        .unwrap_or_default();
    let UsersPage { users, next_cursor } = state
        .streams
        .users(&name.stored, pager)
        .await
        .map_err(store_error)?;
    Ok(Json(UsersResponse {
        stream: name.local,
        order: order.name(),
        users: users.into_iter().map(UserSummary::from).collect(),
        next_cursor,
    }))
}

/// Milliseconds since the epoch as an RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn stream_names_are_checked() {
        for ok in ["ctr-model-v7", "a", "x.y_z:1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", &"x".repeat(129), ".", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
