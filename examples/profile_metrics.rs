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
//! `profile_metrics core` runs only `stage_core` and `stage_core_full`, on
//! requests built in memory (a few minutes under callgrind instead of half
//! an hour); with `PROFILE_METRICS_OUT=<dir>` it writes the two answers
//! there (`basic.json`, `full.json`) to compare two builds byte for byte. Without valgrind it prints each stage's wall-clock time (noise on a
//! loaded machine; README → Performance says how the figures were taken).
//!
//! The same records are also sent as the "full" request, every field of
//! the evaluation beyond the basics asked for ([`full_options`]: 10,000
//! `thresholds`, `tpr_at_fpr`, `max_fpr`, quantile calibration, the PR curve
//! and `ranking`), so `stage_core` and `stage_core_full` (and the two whole
//! requests, `stage_request` and `stage_request_full`) compare the basic
//! request with the full one.
//!
//! The core sorts on two threads and builds the GAUC buckets (and the
//! ranking) on a second one, which an inclusive cost on the main thread
//! leaves out. Dumps at the stage boundaries count every thread:
//!
//! ```sh
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   --dump-before='*stage_core*' --dump-before='*stage_serialize_response*' \
//!   target/release/examples/profile_metrics core
//! grep -H totals /tmp/cg.out.*   # part 2: stage_core, part 3: stage_core_full
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   --dump-before='*stage_request*' --dump-before='*stage_floor_radix_sort*' \
//!   target/release/examples/profile_metrics
//! grep -H totals /tmp/cg.out.*   # part 2: stage_request, part 3: stage_request_full
//! ```

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

/// Every option of the evaluation beyond the basics, appended to the basic
/// body: 10,000 thresholds (the `--max-thresholds` default), three maximum
/// FPRs, a partial AUC, quantile calibration with 20 bins, the PR curve
/// thinned to 1000 points, and ranking at five cutoffs.
fn full_options() -> String {
    let thresholds: Vec<String> = (0..10_000)
        .map(|i| (f64::from(i) / 10_000.0).to_string())
        .collect();
    format!(
        concat!(
            "\"thresholds\":[{}],\"tpr_at_fpr\":[0.001,0.01,0.1],\"max_fpr\":0.1,",
            "\"calibration\":{{\"n_bins\":20,\"strategy\":\"quantile\"}},",
            "\"pr\":{{\"max_points\":1000}},\"ranking\":{{\"k\":[1,3,5,10,50]}}"
        ),
        thresholds.join(",")
    )
}

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
    /// The same records with every option of [`full_options`].
    body_full: Vec<u8>,
}

fn json(d: &Data) -> Json {
    let join = |items: Vec<String>| format!("[{}]", items.join(","));
    let predictions = join(d.scores.iter().map(f64::to_string).collect());
    let labels = join(d.labels.iter().map(|&l| u8::from(l).to_string()).collect());
    let user_ids = join(d.users.iter().map(|u| format!("\"{u}\"")).collect());
    let arrays =
        format!("\"predictions\":{predictions},\"labels\":{labels},\"user_ids\":{user_ids}");
    let body = format!("{{{arrays}}}").into_bytes();
    let body_full = format!("{{{arrays},{}}}", full_options()).into_bytes();
    Json {
        predictions,
        labels,
        user_ids,
        body,
        body_full,
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

/// The core of the full request: the basic core plus every field beyond
/// the basics and the ranking metrics.
#[inline(never)]
fn stage_core_full(job: MetricsJob) -> MetricsResponse {
    job.run().expect("metrics of the full request")
}

/// The whole basic request after the body is read: parse (one thread),
/// check, core, serialization and the negative-zero pass.
#[inline(never)]
fn stage_request(body: &[u8]) -> Vec<u8> {
    whole_request(body, "the basic request")
}

/// Parse, check, core, serialization and the negative-zero pass; `what`
/// names the request in a panic (and keeps the two stages distinct
/// functions, which the compiler would otherwise merge).
#[inline(always)]
fn whole_request(body: &[u8], what: &str) -> Vec<u8> {
    let request: MetricsRequest =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: {e}"));
    let job = MetricsJob::from_request(request, usize::MAX, usize::MAX, usize::MAX)
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let response = job.run().unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let out = serde_json::to_vec(&response).unwrap_or_else(|e| panic!("{what}: {e}"));
    without_negative_zeros(&out).unwrap_or(out)
}

/// [`stage_request`] for the full request.
#[inline(never)]
fn stage_request_full(body: &[u8]) -> Vec<u8> {
    whole_request(body, "the full request")
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

/// The request over `d` with the options of `options` (JSON members, may be
/// empty), built in memory: the arrays are not parsed, the options are.
/// User ids are interned in order of first appearance, as the parser does.
fn in_memory_request(d: &Data, options: &str) -> MetricsRequest {
    let separator = if options.is_empty() { "" } else { "," };
    let small = format!(
        "{{\"predictions\":[0.5],\"labels\":[1],\"user_ids\":[\"u0\"]{separator}{options}}}"
    );
    let mut request: MetricsRequest = serde_json::from_str(&small).expect("the options parse");
    request.predictions = Tensor::from(
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[N]), d.scores.clone()).expect("a shape"),
    );
    request.labels = Labels {
        values: d.labels.iter().map(|&l| u32::from(l)).collect(),
        first_bool: None,
    };
    let mut dense = std::collections::HashMap::new();
    let mut names = Vec::new();
    let indices = d
        .users
        .iter()
        .map(|u| {
            *dense.entry(u.as_str()).or_insert_with(|| {
                names.push(Box::<str>::from(u.as_str()));
                names.len() as u32 - 1
            })
        })
        .collect();
    request.user_ids = Some(UserIds { indices, names });
    request
}

/// `profile_metrics core`: only the core of the basic and of the full
/// request, on requests built in memory (no JSON body): the quick way to
/// compare the two under callgrind.
fn core_only(d: &Data) {
    let basic = stage_check_into_job(in_memory_request(d, ""));
    let full = stage_check_into_job(in_memory_request(d, &full_options()));
    let basic = timed("core: sort, ROC, AUC, GAUC", || stage_core(basic));
    let full = timed("core, full request", || stage_core_full(full));
    let (basic, full) = (
        stage_serialize_response(&basic),
        stage_serialize_response(&full),
    );
    println!(
        "response {} bytes, full response {} bytes",
        basic.len(),
        full.len()
    );
    // PROFILE_METRICS_OUT=dir keeps the two answers, to compare builds.
    if let Some(dir) = std::env::var_os("PROFILE_METRICS_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("basic.json"), &basic).expect("basic.json written");
        std::fs::write(dir.join("full.json"), &full).expect("full.json written");
    }
}

fn main() {
    let d = data();
    if std::env::args().nth(1).as_deref() == Some("core") {
        core_only(&d);
        return;
    }
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
    let request = stage_parse_whole_body(&j.body_full);
    let job = stage_check_into_job(request);
    let full = timed("core, full request", || stage_core_full(job));
    let full_out = stage_serialize_response(&full);
    timed("whole request (after read)", || stage_request(&j.body));
    timed("whole request, full", || stage_request_full(&j.body_full));
    timed("floor: radix sort 1M", || stage_floor_radix_sort(&d.scores));
    timed("floor: f64::from_str 1M", || {
        stage_floor_float_parse(&j.predictions)
    });
    println!(
        "response {} bytes, full response {} bytes",
        out.len(),
        full_out.len()
    );
}
