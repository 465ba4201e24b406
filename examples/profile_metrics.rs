//! The 1M-row `POST /metrics` request, stage by stage, for a profiler:
//! each stage is one `#[inline(never)]` function named `stage_*`, so
//! callgrind's inclusive cost of that function is the stage's cost.
//!
//! Data: the recipe of `benches/metrics.rs` (1,000,000 binary predictions of
//! six decimals, 20,000 users `u0`..`u19999`), as a 19 MB JSON body and as
//! an Arrow IPC stream (float64 prediction, bool label, utf8 user id).
//!
//! ```sh
//! cargo build --release --example profile_metrics
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/profile_metrics
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep stage_
//! ```
//! Without valgrind it prints each stage's wall-clock time (noise on a
//! loaded machine; README → Performance says how the figures were taken).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use bytes::Bytes;
use evald::api::arrow::ArrowBody;
use evald::api::metrics::{Labels, MetricsJob, MetricsRequest, MetricsResponse, UserIds};
use evald::api::negative_zero::without_negative_zeros;
use evald::api::tensor::Tensor;
use evald::core::rng::SplitMix64;

const N: usize = 1_000_000;
const USERS: u64 = 20_000;

struct Data {
    scores: Vec<f64>,
    labels: Vec<bool>,
    users: Vec<String>,
}

fn data() -> Data {
    let h = |i: usize, k: u64| SplitMix64::new(4 * i as u64 + k).next_u64() >> 11;
    let scores: Vec<f64> = (0..N).map(|i| (h(i, 0) % 1_000_000) as f64 / 1e6).collect();
    let labels = (0..N)
        .map(|i| (h(i, 1) as f64 / (1u64 << 53) as f64) < scores[i])
        .collect();
    let users = (0..N).map(|i| format!("u{}", h(i, 2) % USERS)).collect();
    Data {
        scores,
        labels,
        users,
    }
}

/// The three arrays as JSON text, each on its own, and the whole body.
struct Json {
    predictions: String,
    labels: String,
    user_ids: String,
    body: Vec<u8>,
}

fn json(d: &Data) -> Json {
    let join = |items: Vec<String>| format!("[{}]", items.join(","));
    let predictions = join(d.scores.iter().map(f64::to_string).collect());
    let labels = join(d.labels.iter().map(|&l| u8::from(l).to_string()).collect());
    let user_ids = join(d.users.iter().map(|u| format!("\"{u}\"")).collect());
    let body =
        format!("{{\"predictions\":{predictions},\"labels\":{labels},\"user_ids\":{user_ids}}}")
            .into_bytes();
    Json {
        predictions,
        labels,
        user_ids,
        body,
    }
}

fn arrow(d: &Data) -> Vec<u8> {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("prediction", Arc::new(Float64Array::from(d.scores.clone()))),
        ("label", Arc::new(BooleanArray::from(d.labels.clone()))),
        ("user_id", Arc::new(StringArray::from(d.users.clone()))),
    ];
    let batch = RecordBatch::try_from_iter(columns).expect("a batch");
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).expect("a writer");
    writer.write(&batch).expect("written");
    writer.finish().expect("finished");
    drop(writer);
    out
}

/// What reading the body off the socket costs at least: appending it, in
/// 64 KiB chunks, to one buffer of the right size (`api::extract::read_body`).
#[inline(never)]
fn stage_body_read(body: &[u8]) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(body.len());
    for chunk in body.chunks(64 * 1024) {
        buffer.extend_from_slice(chunk);
    }
    buffer
}

#[inline(never)]
fn stage_parse_predictions(text: &str) -> Tensor {
    serde_json::from_str(text).expect("predictions")
}

#[inline(never)]
fn stage_parse_labels(text: &str) -> Labels {
    serde_json::from_str(text).expect("labels")
}

/// Parsing the strings and interning them (the two are one pass).
#[inline(never)]
fn stage_parse_and_intern_user_ids(text: &str) -> UserIds {
    serde_json::from_str(text).expect("user ids")
}

/// The whole body on one thread (the server uses two above 256 KiB; callgrind
/// runs threads one at a time, so this is the instruction count either way).
#[inline(never)]
fn stage_parse_whole_body(body: &[u8]) -> MetricsRequest {
    serde_json::from_slice(body).expect("request")
}

#[inline(never)]
fn stage_check_into_job(request: MetricsRequest) -> MetricsJob {
    MetricsJob::from_request(request, usize::MAX, usize::MAX, usize::MAX).expect("a valid request")
}

/// Sort, ROC, AUC and GAUC (the core's own functions split it further).
#[inline(never)]
fn stage_core(job: MetricsJob) -> MetricsResponse {
    job.run().expect("metrics")
}

#[inline(never)]
fn stage_serialize_response(response: &MetricsResponse) -> Vec<u8> {
    serde_json::to_vec(response).expect("serialized")
}

#[inline(never)]
fn stage_negative_zero_pass(json: &[u8]) -> Option<Vec<u8>> {
    without_negative_zeros(json)
}

#[inline(never)]
fn stage_arrow_to_request(body: Bytes) -> MetricsRequest {
    ArrowBody {
        bytes: body,
        query: String::new(),
    }
    .read_metrics_request()
    .expect("arrow request")
}

/// The physical floor of the sort: an LSD radix sort (8 passes of 8 bits)
/// of 1M (order-preserving score bits, record index) pairs.
#[inline(never)]
fn stage_floor_radix_sort(scores: &[f64]) -> Vec<(u64, u32)> {
    let key = |s: f64| {
        let bits = s.to_bits();
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        }
    };
    let mut items: Vec<(u64, u32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (key(s), i as u32))
        .collect();
    let mut scratch = items.clone();
    for pass in 0..8 {
        let shift = pass * 8;
        let mut counts = [0usize; 257];
        for &(k, _) in &items {
            counts[((k >> shift) & 0xff) as usize + 1] += 1;
        }
        for i in 1..257 {
            counts[i] += counts[i - 1];
        }
        for &item in &items {
            let digit = ((item.0 >> shift) & 0xff) as usize;
            scratch[counts[digit]] = item;
            counts[digit] += 1;
        }
        std::mem::swap(&mut items, &mut scratch);
    }
    items
}

/// The floor of the float parse: the predictions' text parsed with the
/// standard library's `f64::from_str` (Eisel-Lemire, the `fast_float`
/// algorithm), separators found by a byte scan.
#[inline(never)]
fn stage_floor_float_parse(text: &str) -> Vec<f64> {
    text.trim_matches(['[', ']'])
        .split(',')
        .map(|t| t.parse::<f64>().unwrap_or(f64::NAN))
        .collect()
}

fn timed<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = black_box(f());
    println!("{name:<34} {:>9.2} ms", start.elapsed().as_secs_f64() * 1e3);
    out
}

fn main() {
    let d = data();
    let j = json(&d);
    let arrow_body = Bytes::from(arrow(&d));
    println!(
        "JSON body {:.1} MB, Arrow body {:.1} MB",
        j.body.len() as f64 / 1e6,
        arrow_body.len() as f64 / 1e6
    );
    timed("body_read (copy)", || stage_body_read(&j.body));
    timed("parse predictions", || {
        stage_parse_predictions(&j.predictions)
    });
    timed("parse labels", || stage_parse_labels(&j.labels));
    timed("parse + intern user_ids", || {
        stage_parse_and_intern_user_ids(&j.user_ids)
    });
    let request = timed("parse whole body (one thread)", || {
        stage_parse_whole_body(&j.body)
    });
    let job = timed("check into job", || stage_check_into_job(request));
    let response = timed("core: sort, ROC, AUC, GAUC", || stage_core(job));
    let out = timed("serialize response", || stage_serialize_response(&response));
    timed("negative-zero pass", || stage_negative_zero_pass(&out));
    let request = timed("arrow: decode + columns + intern", || {
        stage_arrow_to_request(arrow_body.clone())
    });
    let job = stage_check_into_job(request);
    let arrow_response = stage_core(job);
    assert_eq!(
        stage_serialize_response(&arrow_response),
        out,
        "Arrow and JSON give the same answer"
    );
    timed("floor: radix sort 1M", || stage_floor_radix_sort(&d.scores));
    timed("floor: f64::from_str 1M", || {
        stage_floor_float_parse(&j.predictions)
    });
    println!("response {} bytes", out.len());
}
