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
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
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
use super::metrics::{Interner, Labels, MetricsRequest, UserIds};
use super::streams::dto::{stage_batch, BatchBody, Label, Origin};
use super::AppState;
use crate::state::BatchBuilder;

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
        let predictions = table.predictions(PREDICTION)?;
        let labels = table.json_labels()?;
        let user_ids = table.user_ids()?;
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
        let predictions_a = table.predictions(PREDICTION_A)?;
        let predictions_b = table.predictions(PREDICTION_B)?;
        let labels = table.json_labels()?;
        let user_ids = table.user_ids()?;
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
                let label = read(label).map_err(|err| {
                    let field = format!("{}[{}]", LABEL.field, start + i);
                    ApiError::invalid(field.clone(), format!("{field}: {err}"))
                })?;
                labels.push(label);
                Ok(())
            })?;
        }
        Ok(labels)
    }

    /// The `label` column as the JSON `labels` (class indices, and where
    /// the first boolean is), for the JSON request's own label checks.
    ///
    /// # Errors
    /// As [`Table::labels`].
    fn json_labels(&self) -> ApiResult<Labels> {
        let labels = self.labels(|label| label.class_index())?;
        Ok(Labels {
            first_bool: labels.iter().position(|l| l.boolean),
            values: labels.into_iter().map(|l| l.value).collect(),
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

    /// The `user_id` column interned as the JSON `user_ids` are.
    fn user_ids(&self) -> ApiResult<Option<UserIds>> {
        type E = serde_json::Error;
        let mut interner = Interner::default();
        let present = self.for_each_user(|user| {
            let index = match user {
                UserRef::Str(name) => interner.string::<E>(name),
                UserRef::Int(value) => interner.integer::<E>(value),
            }
            .map_err(|err| ApiError::invalid(USER_ID.field, err.to_string()))?;
            interner.push_record(index);
            Ok(())
        })?;
        Ok(present.then(|| interner.into_ids()))
    }
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
