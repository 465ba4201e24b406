//! Columnar input: `POST /metrics`, `POST /metrics/compare` and
//! `POST /streams/{name}` bodies sent as an Arrow IPC stream
//! (`application/vnd.apache.arrow.stream`, what pyarrow and polars write)
//! instead of JSON (README, "Arrow IPC input").
//!
//! The columns become the same values the JSON parse yields (the predictions,
//! labels read by the shared label rules, interned user ids, weights), and
//! the options come from the query string, read by the JSON request's own
//! `Deserialize` (see [`options_from_query`]); from there both formats take
//! one path, so they share every check after the parse and every result.
//!
//! Naming in errors: a problem with a whole column (missing, unknown, wrong
//! type) names the column (`prediction`); a problem with one value names it
//! as the JSON request would (`predictions[7]`, `labels[3]`), so a client sees
//! the same `field` whichever format it sent.

use std::borrow::Cow;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, GenericStringArray, OffsetSizeTrait, RecordBatch};
use arrow_buffer::{BooleanBuffer, Buffer};
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::{DataType, SchemaRef};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{echo, ApiError, ApiResult};
use super::extract::JsonBytes;
use super::extract::{
    is_json_media_type, media_type_essence, parse_json, read_bounded_body, BLOCKING_PARSE_THRESHOLD,
};
use super::labels::{JsonLabel, LabelError};
use super::limits::check_array_len_or;
use super::metrics::compare::CompareRequest;
use super::metrics::{
    short_key, Interner, Labels, MetricsRequest, UserIds, PARALLEL_PARSE_MIN_BYTES,
};
use super::streams::dto::{stage_batch, BatchBody, Label, Origin};
use super::AppState;
use crate::state::BatchBuilder;

/// Calls `$body` with `$values`, the primitive values of `$array` as `$t`
/// where `$t` is each integer type in turn.
macro_rules! with_integers {
    ($array:expr, |$values:ident| $body:expr, else $other:expr) => {
        match $array.data_type() {
            DataType::Int8 => {
                let $values = $array.as_primitive::<Int8Type>().values();
                $body
            }
            DataType::Int16 => {
                let $values = $array.as_primitive::<Int16Type>().values();
                $body
            }
            DataType::Int32 => {
                let $values = $array.as_primitive::<Int32Type>().values();
                $body
            }
            DataType::Int64 => {
                let $values = $array.as_primitive::<Int64Type>().values();
                $body
            }
            DataType::UInt8 => {
                let $values = $array.as_primitive::<UInt8Type>().values();
                $body
            }
            DataType::UInt16 => {
                let $values = $array.as_primitive::<UInt16Type>().values();
                $body
            }
            DataType::UInt32 => {
                let $values = $array.as_primitive::<UInt32Type>().values();
                $body
            }
            DataType::UInt64 => {
                let $values = $array.as_primitive::<UInt64Type>().values();
                $body
            }
            _ => $other,
        }
    };
}

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Bytes an Arrow request holds in flight per byte of its body. The columns
/// are decoded in place (no copy of the body), but become 8-byte `f64`s and
/// 4-byte label and user indices, and the evaluation sorts them: the
/// smallest body per record (a float32 prediction and a boolean label, about
/// 4.1 bytes) grows to about 41 bytes held (body 4, predictions 8, labels 4+1,
/// the sort's 24). Rounded up.
pub const ARROW_BYTES_HELD_PER_BODY_BYTE: usize = 12;

/// True for `application/vnd.apache.arrow.stream`, any parameters.
pub fn is_arrow_stream(content_type: &str) -> bool {
    media_type_essence(content_type) == ARROW_STREAM
}

/// A request body that is JSON or an Arrow IPC stream.
pub enum JsonOrArrow {
    /// The JSON body's bytes, after [`JsonBytes`]' checks.
    Json(Bytes),
    /// An Arrow body and the query string that carries its options.
    Arrow(ArrowBody),
}

/// An Arrow IPC stream body, read within `--body-limit` and the in-flight
/// budget, and the request's query string.
pub struct ArrowBody {
    pub bytes: Bytes,
    pub query: String,
}

impl FromRequest<AppState> for JsonOrArrow {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if is_arrow_stream(content_type) {
            ArrowBody::from_request(req, state)
                .await
                .map(JsonOrArrow::Arrow)
        } else if is_json_media_type(content_type) {
            let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
            Ok(JsonOrArrow::Json(bytes))
        } else {
            Err(unsupported(content_type, "application/json"))
        }
    }
}

impl FromRequest<AppState> for ArrowBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().unwrap_or("").to_owned();
        let bytes = read_bounded_body(req, state, ARROW_BYTES_HELD_PER_BODY_BYTE).await?;
        Ok(ArrowBody { bytes, query })
    }
}

/// 415 for a route that takes `others` or Arrow.
pub fn unsupported(content_type: &str, others: &str) -> ApiError {
    if content_type.is_empty() {
        ApiError::unsupported_media_type(format!(
            "missing Content-Type; expected {others} or {ARROW_STREAM}"
        ))
    } else {
        ApiError::unsupported_media_type(format!(
            "Content-Type '{}' is not supported; expected {others} or {ARROW_STREAM}",
            echo(content_type)
        ))
    }
}

impl ArrowBody {
    /// The `POST /metrics` request this body and query say: options parsed
    /// as the JSON body's, columns as its arrays (on the blocking pool for a
    /// large body, as the JSON parse).
    ///
    /// # Errors
    /// 400 for bytes that are not an Arrow IPC stream; 422 naming the column,
    /// value or query parameter otherwise.
    pub async fn metrics_request(self) -> ApiResult<MetricsRequest> {
        self.read_off_the_async_workers(Self::read_metrics_request)
            .await
    }

    /// The `POST /metrics/compare` request this body and query say, read as
    /// [`ArrowBody::metrics_request`] reads its own.
    ///
    /// # Errors
    /// As [`ArrowBody::metrics_request`].
    pub async fn compare_request(self) -> ApiResult<CompareRequest> {
        self.read_off_the_async_workers(Self::read_compare_request)
            .await
    }

    /// Runs `read` on this body: on the blocking pool for a large body, as
    /// the JSON parse, else on the current thread.
    async fn read_off_the_async_workers<T: Send + 'static>(
        self,
        read: fn(&ArrowBody) -> ApiResult<T>,
    ) -> ApiResult<T> {
        if self.bytes.len() > BLOCKING_PARSE_THRESHOLD {
            tokio::task::spawn_blocking(move || read(&self))
                .await
                .map_err(ApiError::internal)?
        } else {
            read(&self)
        }
    }

    /// [`ArrowBody::metrics_request`] on the current thread.
    pub fn read_metrics_request(&self) -> ApiResult<MetricsRequest> {
        let options: MetricsRequest = options_from_query(&self.query, METRICS_DATA_FIELDS)?;
        let table = Table::decode(&self.bytes, METRICS_COLUMNS)?;
        let ((predictions, labels), user_ids) = table
            .beside_user_ids(self.bytes.len(), |table| {
                Ok((table.predictions(PREDICTION)?, table.class_labels()?))
            })?;
        let sample_weights = table.weights()?;
        Ok(MetricsRequest {
            predictions: ndarray::Array1::from(predictions).into_dyn().into(),
            labels,
            user_ids,
            sample_weights,
            ..options
        })
    }

    /// [`ArrowBody::compare_request`] on the current thread.
    pub fn read_compare_request(&self) -> ApiResult<CompareRequest> {
        let options: CompareRequest = options_from_query(&self.query, COMPARE_DATA_FIELDS)?;
        let table = Table::decode(&self.bytes, COMPARE_COLUMNS)?;
        let ((predictions_a, predictions_b, labels), user_ids) =
            table.beside_user_ids(self.bytes.len(), |table| {
                Ok((
                    table.predictions(PREDICTION_A)?,
                    table.predictions(PREDICTION_B)?,
                    table.class_labels()?,
                ))
            })?;
        let sample_weights = table.weights()?;
        Ok(CompareRequest {
            labels,
            predictions_a,
            predictions_b,
            user_ids,
            sample_weights,
            ..options
        })
    }
}

impl ArrowBody {
    /// The records of a `POST /streams/{name}` Arrow body, staged as the
    /// JSON body's are (its options are accepted and ignored, as there).
    ///
    /// # Errors
    /// As [`ArrowBody::metrics_request`], and the JSON body's refusals.
    pub fn stage_batch(&self, max_array_len: usize) -> ApiResult<BatchBuilder> {
        let _options: BatchBody = options_from_query(&self.query, METRICS_DATA_FIELDS)?;
        let table = Table::decode(&self.bytes, METRICS_COLUMNS)?;
        check_array_len_or(
            PREDICTION.field,
            table.rows(),
            max_array_len,
            "send larger data as NDJSON",
        )?;
        let predictions = table.predictions(PREDICTION)?;
        let labels = table.labels(|label| label.binary().map(Label))?;
        let mut users: Vec<Cow<'_, str>> = Vec::new();
        let has_users = table.for_each_user(|user| {
            users.push(match user {
                UserRef::Str(name) => Cow::Borrowed(name),
                UserRef::Int(value) => Cow::Owned(value.to_string()),
            });
            Ok(())
        })?;
        let weights = table.weights()?;
        let mut builder = BatchBuilder::new();
        stage_batch(
            &mut builder,
            Origin::Body,
            &predictions,
            &labels,
            has_users.then_some(users.as_slice()),
            weights.as_deref(),
        )?;
        Ok(builder)
    }
}

/// The fields of the JSON `POST /metrics` body that an Arrow body carries as
/// columns, so never as query parameters.
const METRICS_DATA_FIELDS: &[&str] = &["predictions", "labels", "user_ids", "sample_weights"];

/// The fields of the JSON `POST /metrics/compare` body that an Arrow body
/// carries as columns.
const COMPARE_DATA_FIELDS: &[&str] = &[
    "labels",
    "predictions_a",
    "predictions_b",
    "user_ids",
    "sample_weights",
];

/// A column of the Arrow body and the JSON field it stands for.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub field: &'static str,
    pub required: bool,
    pub kind: Kind,
}

/// The types a column accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// float32 or float64.
    Float,
    /// float or any integer type.
    Number,
    /// bool or any integer type.
    Label,
    /// utf8, large_utf8, utf8_view or any integer type.
    UserId,
}

impl Kind {
    fn accepts(self, t: &DataType) -> bool {
        let float = matches!(t, DataType::Float32 | DataType::Float64);
        let string = matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        match self {
            Kind::Float => float,
            Kind::Number => float || t.is_integer(),
            Kind::Label => *t == DataType::Boolean || t.is_integer(),
            Kind::UserId => string || t.is_integer(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Float => "float32 or float64",
            Kind::Number => "a float or integer type",
            Kind::Label => "bool or an integer type",
            Kind::UserId => "utf8, large_utf8, utf8_view or an integer type",
        }
    }
}

/// `prediction`, a float column standing for `predictions`.
pub const PREDICTION: Column = Column {
    name: "prediction",
    field: "predictions",
    required: true,
    kind: Kind::Float,
};

const LABEL: Column = Column {
    name: "label",
    field: "labels",
    required: true,
    kind: Kind::Label,
};

const USER_ID: Column = Column {
    name: "user_id",
    field: "user_ids",
    required: false,
    kind: Kind::UserId,
};

const WEIGHT: Column = Column {
    name: "weight",
    field: "sample_weights",
    required: false,
    kind: Kind::Number,
};

/// The columns of a `POST /metrics` or `POST /streams/{name}` Arrow body.
pub const METRICS_COLUMNS: &[Column] = &[PREDICTION, LABEL, USER_ID, WEIGHT];

/// `prediction_a`, model a's scores, standing for `predictions_a`.
pub const PREDICTION_A: Column = Column {
    name: "prediction_a",
    field: "predictions_a",
    ..PREDICTION
};

/// `prediction_b`, model b's scores, standing for `predictions_b`.
pub const PREDICTION_B: Column = Column {
    name: "prediction_b",
    field: "predictions_b",
    ..PREDICTION
};

/// The columns of a `POST /metrics/compare` Arrow body.
pub const COMPARE_COLUMNS: &[Column] = &[LABEL, PREDICTION_A, PREDICTION_B, USER_ID, WEIGHT];

/// Parses the query string as the JSON body `T` would be parsed with the
/// same options: `threshold=0.3&roc.max_points=null&average=weighted` is
/// `{"threshold": 0.3, "roc": {"max_points": null}, "average": "weighted"}`.
/// A value is read as JSON when it is valid JSON (a number, `true`, `null`,
/// a quoted string), else as a string; a dotted name is a nested field. The
/// `data_fields` (the body's arrays, which come as columns) are set to `[]`
/// and refused as parameters.
///
/// # Errors
/// 422 naming the parameter, with the JSON body's sentence for a bad value.
pub fn options_from_query<T: DeserializeOwned>(query: &str, data_fields: &[&str]) -> ApiResult<T> {
    let mut object = Map::new();
    for (name, text) in form_urlencoded::parse(query.as_bytes()) {
        if data_fields.contains(&name.as_ref()) {
            return Err(ApiError::invalid(
                echo(&name),
                format!(
                    "{} comes from the body's Arrow columns, not the query string",
                    echo(&name)
                ),
            ));
        }
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()));
        insert_dotted(&mut object, &name, value)?;
    }
    for field in data_fields {
        object.insert((*field).to_owned(), Value::Array(Vec::new()));
    }
    let body = serde_json::to_vec(&Value::Object(object)).map_err(ApiError::internal)?;
    parse_json(&body)
}

/// Sets `a.b.c` in `object`; 422 when the name is given twice or both as a
/// value and as an object.
fn insert_dotted(object: &mut Map<String, Value>, name: &str, value: Value) -> ApiResult<()> {
    let conflict = || {
        ApiError::invalid(
            echo(name),
            format!("query parameter {} is given more than once", echo(name)),
        )
    };
    let (head, rest) = match name.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (name, None),
    };
    match rest {
        None if object.contains_key(head) => Err(conflict()),
        None => {
            object.insert(head.to_owned(), value);
            Ok(())
        }
        Some(rest) => {
            let inner = object
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match inner {
                Value::Object(inner) => insert_dotted(inner, rest, value).map_err(|_| conflict()),
                _ => Err(conflict()),
            }
        }
    }
}

/// The record batches of an Arrow IPC stream, with the position of each
/// expected column.
pub struct Table {
    batches: Vec<RecordBatch>,
    /// Position in the schema of each of the expected columns (`None`: absent).
    positions: Vec<(Column, Option<usize>)>,
    rows: usize,
}

impl Table {
    /// Decodes `bytes` (zero-copy where the buffers are aligned) and checks
    /// the schema against `columns`.
    ///
    /// # Errors
    /// 400 when `bytes` is not one whole Arrow IPC stream; 422 for a missing,
    /// unknown or mistyped column.
    pub fn decode(bytes: &Bytes, columns: &[Column]) -> ApiResult<Table> {
        let (schema, batches) = decode_stream(bytes).map_err(|err| {
            ApiError::new(
                super::Problem::BadRequest,
                format!("body is not a valid Arrow IPC stream: {err}"),
            )
        })?;
        let positions = check_schema(&schema, columns)?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(Table {
            batches,
            positions,
            rows,
        })
    }

    /// Number of records.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The arrays of `column`, with the row number of each one's first row;
    /// `None` when the column is absent.
    fn chunks(&self, column: Column) -> Option<Vec<(usize, &ArrayRef)>> {
        let position = self
            .positions
            .iter()
            .find(|(c, _)| c.name == column.name)
            .and_then(|(_, p)| *p)?;
        let mut start = 0;
        let chunks = self
            .batches
            .iter()
            .map(|batch| {
                let chunk = (start, batch.column(position));
                start += batch.num_rows();
                chunk
            })
            .collect();
        Some(chunks)
    }

    /// The finite values of float column `column`.
    ///
    /// # Errors
    /// 422 naming the first null or non-finite value.
    pub fn predictions(&self, column: Column) -> ApiResult<Vec<f64>> {
        let values = self.numbers(column)?.unwrap_or_default();
        match values.iter().position(|v| !v.is_finite()) {
            None => Ok(values),
            Some(i) => {
                let field = format!("{}[{i}]", column.field);
                Err(ApiError::invalid(
                    field.clone(),
                    format!(
                        "{field} is {} but must be finite (Arrow column {}, row {i})",
                        values[i], column.name
                    ),
                ))
            }
        }
    }

    /// The `weight` column, if present (checked later, as the JSON
    /// `sample_weights` are).
    ///
    /// # Errors
    /// 422 naming the first null.
    pub fn weights(&self) -> ApiResult<Option<Vec<f64>>> {
        self.numbers(WEIGHT)
    }

    /// The values of a numeric column as `f64` (integers converted as JSON
    /// numbers are).
    fn numbers(&self, column: Column) -> ApiResult<Option<Vec<f64>>> {
        let Some(chunks) = self.chunks(column) else {
            return Ok(None);
        };
        let mut values = Vec::with_capacity(self.rows);
        for (start, array) in chunks {
            no_nulls(array, start, column)?;
            append_numbers(array, &mut values)?;
        }
        Ok(Some(values))
    }

    /// Every label read by `read` (the shared label rules), with the JSON
    /// body's error for a label outside its domain.
    ///
    /// # Errors
    /// 422 naming the first null or refused label (`labels[i]`).
    pub fn labels<T>(
        &self,
        read: impl Fn(JsonLabel) -> Result<T, LabelError>,
    ) -> ApiResult<Vec<T>> {
        let mut labels = Vec::with_capacity(self.rows);
        for (start, array) in self.chunks(LABEL).unwrap_or_default() {
            no_nulls(array, start, LABEL)?;
            for_each_label(array, |i, label| {
                let label = read(label).map_err(|err| label_problem(start + i, &err))?;
                labels.push(label);
                Ok(())
            })?;
        }
        Ok(labels)
    }

    /// The `label` column as the JSON `labels` (class indices, and where
    /// the first boolean is), for the JSON request's own label checks: a
    /// boolean column is expanded 64 bits at a time, an integer column
    /// copied with one range check per value (the refusals are
    /// [`JsonLabel::class_index`]'s, as [`Table::labels`] gives them).
    ///
    /// # Errors
    /// As [`Table::labels`].
    fn class_labels(&self) -> ApiResult<Labels> {
        let mut values = Vec::with_capacity(self.rows);
        let mut first_bool = None;
        for (start, array) in self.chunks(LABEL).unwrap_or_default() {
            no_nulls(array, start, LABEL)?;
            if let Some(bools) = array.as_boolean_opt() {
                if first_bool.is_none() && !bools.is_empty() {
                    first_bool = Some(start);
                }
                push_bits(bools.values(), &mut values);
                continue;
            }
            with_integers!(array, |ints| push_class_indices(ints, start, &mut values)?,
                else return Err(unexpected_type(array)));
        }
        Ok(Labels { values, first_bool })
    }

    /// `columns(self)` and the `user_id` column interned as the JSON
    /// `user_ids` are. For a body of [`PARALLEL_PARSE_MIN_BYTES`] or more
    /// (the JSON parse's threshold for its second thread), the interning,
    /// the costliest part, is split in two: a second thread interns the
    /// last rows ([`SECOND_THREAD_SHARE`]) while this one reads `columns`
    /// and interns the first rows; the second part's users are then
    /// appended to the first's ([`append_ids`]), which gives the dense
    /// indices of one pass over all rows. A smaller body, or one where no
    /// thread can be started, is read on this thread alone. The errors come
    /// in the order of the one-thread reading: `columns`' first, then the
    /// first user id refused.
    ///
    /// # Errors
    /// `columns`' error, else the first refused user id.
    fn beside_user_ids<T: Send>(
        &self,
        body_len: usize,
        columns: impl FnOnce(&Table) -> ApiResult<T> + Send,
    ) -> ApiResult<(T, Option<UserIds>)> {
        if self.chunks(USER_ID).is_none() {
            return Ok((columns(self)?, None));
        }
        if body_len < PARALLEL_PARSE_MIN_BYTES {
            return self.one_thread(columns);
        }
        let split = self.rows - self.rows / SECOND_THREAD_SHARE.1 * SECOND_THREAD_SHARE.0;
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("evald-arrow-users".into())
                .spawn_scoped(scope, || {
                    self.intern_rows(split..self.rows).map(Interner::into_ids)
                });
            let Ok(rest) = spawned else {
                return self.one_thread(columns);
            };
            let columns = columns(self)?;
            let mut users = self.intern_rows(0..split)?;
            let rest = rest.join().map_err(|_| {
                ApiError::internal("the thread interning the Arrow user ids panicked")
            })??;
            append_ids(&mut users, rest)?;
            Ok((columns, Some(users.into_ids())))
        })
    }

    /// Calls `f` with each record's user id, if the column is present.
    ///
    /// # Errors
    /// 422 naming the first null id; `f`'s errors.
    pub fn for_each_user<'t>(
        &'t self,
        mut f: impl FnMut(UserRef<'t>) -> ApiResult<()>,
    ) -> ApiResult<bool> {
        let Some(chunks) = self.chunks(USER_ID) else {
            return Ok(false);
        };
        for (start, array) in chunks {
            no_nulls(array, start, USER_ID)?;
            for_each_user_id(array, &mut f)?;
        }
        Ok(true)
    }

    /// [`Table::beside_user_ids`] on this thread alone (the column present).
    fn one_thread<T>(
        &self,
        columns: impl FnOnce(&Table) -> ApiResult<T>,
    ) -> ApiResult<(T, Option<UserIds>)> {
        let columns = columns(self)?;
        let users = self.intern_rows(0..self.rows)?;
        Ok((columns, Some(users.into_ids())))
    }

    /// The user ids of rows `rows` interned as the JSON `user_ids` are
    /// (the column must be present). A utf8 or large_utf8 column is read
    /// straight from its offsets and bytes, each id of up to 15 bytes keyed
    /// by one 16-byte load as the JSON fast parser keys it
    /// ([`Interner::string_with_key`]).
    ///
    /// # Errors
    /// 422 naming the first null id in `rows`.
    fn intern_rows(&self, rows: std::ops::Range<usize>) -> ApiResult<Interner> {
        type E = serde_json::Error;
        let mut interner = Interner::default();
        interner.reserve_records(rows.len());
        for (start, array) in self.chunks(USER_ID).unwrap_or_default() {
            let (from, to) = (rows.start.max(start), rows.end.min(start + array.len()));
            if from >= to {
                continue;
            }
            let part = if to - from == array.len() {
                array.clone()
            } else {
                array.slice(from - start, to - from)
            };
            let array = &part;
            no_nulls(array, from, USER_ID)?;
            if let Some(strings) = array.as_string_opt::<i32>() {
                intern_strings(strings, &mut interner)?;
            } else if let Some(strings) = array.as_string_opt::<i64>() {
                intern_strings(strings, &mut interner)?;
            } else {
                for_each_user_id(array, &mut |user| {
                    let index = match user {
                        UserRef::Str(name) => interner.string::<E>(name),
                        UserRef::Int(value) => interner.integer::<E>(value),
                    }
                    .map_err(user_id_error)?;
                    interner.push_record(index);
                    Ok(())
                })?;
            }
        }
        Ok(interner)
    }
}

/// The share of the rows whose user ids the second thread interns, as
/// (numerator, denominator): three quarters, as the first thread also
/// reads the predictions and labels and appends the second part. On the
/// profile's 1M-row body, with the interner's open-addressing table, 9/16
/// left the first thread at 122 M instructions against the second's 71 M
/// (with the former table, 7/16 gave 175 M against 90 M).
const SECOND_THREAD_SHARE: (usize, usize) = (3, 4);

/// Appends the records of `rest` (interned on their own, after the records
/// of `interner`) to `interner`: each of its users gets its index in
/// `interner` (a new one, in `rest`'s order of first appearance, when
/// unseen), so the result equals interning all records in one pass.
///
/// # Errors
/// 422 past 2^32 distinct user ids, as [`Interner::string`].
fn append_ids(interner: &mut Interner, rest: UserIds) -> ApiResult<()> {
    let dense = rest
        .names
        .iter()
        .map(|name| interner.string::<serde_json::Error>(name))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(user_id_error)?;
    interner.reserve_records(rest.indices.len());
    for i in rest.indices {
        let index = dense
            .get(i as usize)
            .copied()
            .ok_or_else(|| ApiError::internal("an interned user index past the interned names"))?;
        interner.push_record(index);
    }
    Ok(())
}

/// The interner's refusal (past 2^32 distinct ids) as the JSON request's.
fn user_id_error(err: serde_json::Error) -> ApiError {
    ApiError::invalid(USER_ID.field, err.to_string())
}

/// Interns every id of a utf8 or large_utf8 array (checked free of nulls).
fn intern_strings<O: OffsetSizeTrait>(
    strings: &GenericStringArray<O>,
    interner: &mut Interner,
) -> ApiResult<()> {
    let bytes: &[u8] = strings.values();
    for (i, ends) in strings.value_offsets().windows(2).enumerate() {
        let (from, to) = (ends[0].as_usize(), ends[1].as_usize());
        // Bytes 0..len of the word, the length in byte 15: `short_key`.
        // The id's text is read (and its UTF-8 checked) only on first sight.
        let short = match (bytes.get(from..from + 16), bytes.get(from..to)) {
            (Some(chunk), Some(name)) if name.len() < 16 => {
                let mut word = [0u8; 16];
                word.copy_from_slice(chunk);
                let mask = (1u128 << (8 * name.len())) - 1;
                let key = (u128::from_le_bytes(word) & mask) | (name.len() as u128) << 120;
                interner.short_bytes(key, name)
            }
            _ => None,
        };
        let index = match short {
            Some(index) => index,
            // A long id, one of the buffer's last, or a refusal to word.
            None => {
                let name = strings.value(i);
                interner
                    .string_with_key::<serde_json::Error>(name, short_key(name))
                    .map_err(user_id_error)?
            }
        };
        interner.push_record(index);
    }
    Ok(())
}

/// Appends the bits of `bits` as 0/1, 64 at a time.
fn push_bits(bits: &BooleanBuffer, out: &mut Vec<u32>) {
    let chunks = bits.bit_chunks();
    out.reserve(bits.len());
    for word in chunks.iter() {
        out.extend((0..64).map(|j| ((word >> j) & 1) as u32));
    }
    let rest = chunks.remainder_bits();
    out.extend((0..chunks.remainder_len()).map(|j| ((rest >> j) & 1) as u32));
}

/// Appends integer labels as class indices; the first one that is not
/// (negative, or past `u32`) is refused as [`Table::labels`] refuses it.
fn push_class_indices<T: Copy + Into<i128>>(
    values: &[T],
    start: usize,
    out: &mut Vec<u32>,
) -> ApiResult<()> {
    out.reserve(values.len());
    for (i, &v) in values.iter().enumerate() {
        let v: i128 = v.into();
        match u32::try_from(v) {
            Ok(index) => out.push(index),
            Err(_) => {
                let index = integer_label(v)
                    .class_index()
                    .map_err(|err| label_problem(start + i, &err))?;
                out.push(index.value);
            }
        }
    }
    Ok(())
}

/// 422 for label `row`, as the JSON request words it.
fn label_problem(row: usize, err: &LabelError) -> ApiError {
    let field = format!("{}[{row}]", LABEL.field);
    ApiError::invalid(field.clone(), format!("{field}: {err}"))
}

/// One user id as the column holds it: a string, or an integer (the same user
/// as its decimal string).
#[derive(Debug, Clone, Copy)]
pub enum UserRef<'a> {
    Str(&'a str),
    Int(i128),
}

/// Every record batch of the stream in `bytes`, and its schema.
fn decode_stream(bytes: &Bytes) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes.clone());
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(|e| e.to_string())?;
    let schema = decoder
        .schema()
        .ok_or("the stream has no schema message (is the body empty?)")?;
    Ok((schema, batches))
}

/// The position of each of `columns` in `schema`.
///
/// # Errors
/// 422 naming a missing required column, an unknown column or a column of a
/// type it does not take.
fn check_schema(schema: &SchemaRef, columns: &[Column]) -> ApiResult<Vec<(Column, Option<usize>)>> {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    for field in schema.fields() {
        if !names.contains(&field.name().as_str()) {
            let name = echo(field.name());
            return Err(ApiError::invalid(
                name.clone(),
                format!(
                    "unknown column '{name}'; the columns are {}",
                    names.join(", ")
                ),
            ));
        }
    }
    columns
        .iter()
        .map(|&column| {
            let position = schema.index_of(column.name).ok();
            match position.map(|p| schema.field(p).data_type()) {
                None if column.required => Err(ApiError::invalid(
                    column.name,
                    format!(
                        "missing column '{}' ({}), which holds {}",
                        column.name,
                        column.kind.describe(),
                        column.field
                    ),
                )),
                Some(t) if !column.kind.accepts(t) => Err(ApiError::invalid(
                    column.name,
                    format!(
                        "column '{}' is {t} but must be {}",
                        column.name,
                        column.kind.describe()
                    ),
                )),
                _ => Ok((column, position)),
            }
        })
        .collect()
}

/// 422 naming the first null value of `array`, whose first row is `start`.
fn no_nulls(array: &ArrayRef, start: usize, column: Column) -> ApiResult<()> {
    let Some(nulls) = array.logical_nulls().filter(|n| n.null_count() > 0) else {
        return Ok(());
    };
    match nulls.iter().position(|valid| !valid) {
        None => Ok(()),
        Some(i) => {
            let row = start + i;
            let field = format!("{}[{row}]", column.field);
            Err(ApiError::invalid(
                field.clone(),
                format!(
                    "{field} is null (Arrow column {}, row {row}); nulls are not accepted",
                    column.name
                ),
            ))
        }
    }
}

/// The schema check admits only the types handled here; anything else is a
/// bug, reported as 500 rather than a panic.
fn unexpected_type(array: &ArrayRef) -> ApiError {
    ApiError::internal(format!(
        "Arrow column of type {} passed the schema check",
        array.data_type()
    ))
}

/// Appends the values of a float or integer array as `f64`.
fn append_numbers(array: &ArrayRef, out: &mut Vec<f64>) -> ApiResult<()> {
    match array.data_type() {
        DataType::Float64 => out.extend_from_slice(array.as_primitive::<Float64Type>().values()),
        DataType::Float32 => out.extend(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| f64::from(v)),
        ),
        _ => with_integers!(array, |values| out.extend(values.iter().map(|&v| v as f64)),
            else return Err(unexpected_type(array))),
    }
    Ok(())
}

/// Calls `f` with the row and value of each label of a bool or integer array.
fn for_each_label(
    array: &ArrayRef,
    mut f: impl FnMut(usize, JsonLabel) -> ApiResult<()>,
) -> ApiResult<()> {
    if let Some(bools) = array.as_boolean_opt() {
        return bools
            .values()
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| f(i, JsonLabel::Bool(v)));
    }
    with_integers!(array, |values| values
        .iter()
        .enumerate()
        .try_for_each(|(i, &v)| f(i, integer_label(i128::from(v)))),
        else Err(unexpected_type(array)))
}

/// An integer label as the JSON reader holds it.
fn integer_label(v: i128) -> JsonLabel {
    match u64::try_from(v) {
        Ok(u) => JsonLabel::Unsigned(u),
        Err(_) => JsonLabel::Negative(i64::try_from(v).unwrap_or(i64::MIN)),
    }
}

/// Calls `f` with each user id of a string or integer array.
fn for_each_user_id<'a>(
    array: &'a ArrayRef,
    f: &mut impl FnMut(UserRef<'a>) -> ApiResult<()>,
) -> ApiResult<()> {
    if let Some(strings) = array.as_string_opt::<i32>() {
        return strings
            .iter()
            .try_for_each(|s| f(UserRef::Str(s.unwrap_or(""))));
    }
    if let Some(strings) = array.as_string_opt::<i64>() {
        return strings
            .iter()
            .try_for_each(|s| f(UserRef::Str(s.unwrap_or(""))));
    }
    if let Some(strings) = array.as_string_view_opt() {
        return strings
            .iter()
            .try_for_each(|s| f(UserRef::Str(s.unwrap_or(""))));
    }
    with_integers!(array, |values| values
        .iter()
        .try_for_each(|&v| f(UserRef::Int(i128::from(v)))),
        else Err(unexpected_type(array)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float64Array, Int64Array, LargeStringArray, StringArray};
    use arrow_ipc::writer::StreamWriter;

    use super::*;

    /// An Arrow IPC stream of `batches`, each one column list.
    fn stream(batches: Vec<Vec<(&str, ArrayRef)>>) -> Bytes {
        let batches: Vec<RecordBatch> = batches
            .into_iter()
            .map(|columns| {
                let nullable = columns.into_iter().map(|(name, array)| (name, array, true));
                RecordBatch::try_from_iter_with_nullable(nullable).unwrap()
            })
            .collect();
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &batches[0].schema()).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        Bytes::from(out)
    }

    /// Batches of `sizes` rows over `users` (scores 0.5, labels true).
    fn table_of(users: ArrayRef, sizes: &[usize]) -> Table {
        let mut start = 0;
        let batches = sizes
            .iter()
            .map(|&n| {
                let part = users.slice(start, n);
                start += n;
                let columns: Vec<(&str, ArrayRef)> = vec![
                    ("prediction", Arc::new(Float64Array::from(vec![0.5; n]))),
                    ("label", Arc::new(BooleanArray::from(vec![true; n]))),
                    ("user_id", part),
                ];
                columns
            })
            .collect();
        Table::decode(&stream(batches), METRICS_COLUMNS).unwrap()
    }

    /// Dense indices in order of first appearance, the plain way.
    fn first_appearance(ids: &[String]) -> (Vec<u32>, Vec<Box<str>>) {
        let mut names: Vec<Box<str>> = Vec::new();
        let indices = ids
            .iter()
            .map(|id| match names.iter().position(|n| **n == **id) {
                Some(i) => i as u32,
                None => {
                    names.push(id.as_str().into());
                    names.len() as u32 - 1
                }
            })
            .collect();
        (indices, names)
    }

    fn users_of(table: &Table, body_len: usize) -> ApiResult<Option<UserIds>> {
        table.beside_user_ids(body_len, |_| Ok(())).map(|(_, u)| u)
    }

    #[test]
    fn user_ids_split_over_two_threads_equal_one_pass() {
        let ids: Vec<String> = (0..3001)
            .map(|i| match i % 4 {
                0 => format!("u{}", (i * 7919) % 500),
                1 => format!("a-long-user-identifier-{}", (i * 31) % 300),
                2 => "é".repeat(i % 9),
                _ => format!("exactly15bytes{}", i % 10),
            })
            .collect();
        let (indices, names) = first_appearance(&ids);
        let expected = Some(UserIds { indices, names });
        let utf8: ArrayRef = Arc::new(StringArray::from(ids.clone()));
        let large: ArrayRef = Arc::new(LargeStringArray::from(ids.clone()));
        for users in [utf8, large] {
            for sizes in [&[3001][..], &[1000, 0, 1, 2000], &[1312, 1, 1688]] {
                let table = table_of(users.clone(), sizes);
                assert_eq!(users_of(&table, usize::MAX).unwrap(), expected, "{sizes:?}");
                assert_eq!(users_of(&table, 0).unwrap(), expected, "{sizes:?}");
            }
        }
        let numbers: Vec<i64> = (0..3001).map(|i| (i * 7919) % 701 - 300).collect();
        let as_text: Vec<String> = numbers.iter().map(i64::to_string).collect();
        let (indices, names) = first_appearance(&as_text);
        let integers: ArrayRef = Arc::new(Int64Array::from(numbers));
        let table = table_of(integers, &[1500, 1501]);
        let expected = Some(UserIds { indices, names });
        assert_eq!(users_of(&table, usize::MAX).unwrap(), expected);
        assert_eq!(users_of(&table, 0).unwrap(), expected);
    }

    #[test]
    fn split_reading_reports_the_first_error_of_one_pass() {
        let with_nulls = |nulls: &[usize]| -> ArrayRef {
            let ids: Vec<Option<String>> = (0..3000)
                .map(|i| (!nulls.contains(&i)).then(|| format!("u{}", i % 40)))
                .collect();
            Arc::new(StringArray::from(ids))
        };
        for nulls in [&[2900][..], &[2500, 2900], &[100, 2500], &[1686, 1687]] {
            let table = table_of(with_nulls(nulls), &[1000, 2000]);
            for body_len in [usize::MAX, 0] {
                let err = users_of(&table, body_len).unwrap_err();
                assert_eq!(
                    err.field.as_deref(),
                    Some(&*format!("user_ids[{}]", nulls[0]))
                );
            }
            let err = table
                .beside_user_ids(usize::MAX, |_| -> ApiResult<()> {
                    Err(ApiError::invalid("predictions[0]", "first"))
                })
                .unwrap_err();
            assert_eq!(err.field.as_deref(), Some("predictions[0]"));
        }
        let table = table_of(with_nulls(&[]), &[3000]);
        assert!(users_of(&table, usize::MAX).unwrap().is_some());
    }

    #[test]
    fn labels_read_straight_equal_the_shared_label_rules() {
        let bools: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        let n = bools.len();
        let body = stream(vec![
            vec![
                (
                    "prediction",
                    Arc::new(Float64Array::from(vec![0.5; 130])) as ArrayRef,
                ),
                ("label", Arc::new(BooleanArray::from(bools[..130].to_vec()))),
            ],
            vec![
                (
                    "prediction",
                    Arc::new(Float64Array::from(vec![0.5; n - 130])) as ArrayRef,
                ),
                ("label", Arc::new(BooleanArray::from(bools[130..].to_vec()))),
            ],
        ]);
        let table = Table::decode(&body, METRICS_COLUMNS).unwrap();
        let labels = table.class_labels().unwrap();
        let expected: Vec<u32> = bools.iter().map(|&b| u32::from(b)).collect();
        assert_eq!(labels.values, expected);
        assert_eq!(labels.first_bool, Some(0));
        let sliced = BooleanArray::from(bools.clone()).slice(3, 150);
        let mut out = Vec::new();
        push_bits(sliced.values(), &mut out);
        assert_eq!(out, expected[3..153]);
        let ints: Vec<i64> = vec![0, 1, 7, 4_294_967_295];
        let mut out = Vec::new();
        push_class_indices(&ints, 0, &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 7, u32::MAX]);
        for (bad, sentence) in [(-1_i64, "is negative"), (4_294_967_296, "too large")] {
            let err = push_class_indices(&[0, bad], 5, &mut Vec::new()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("labels[6]"));
            assert!(err.detail.contains(sentence), "{}", err.detail);
            assert!(
                err.detail.starts_with("labels[6]: label "),
                "{}",
                err.detail
            );
        }
    }
}
