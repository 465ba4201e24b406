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
//! `profile_metrics parse` runs only the parse stages (each through the
//! fast parser and through serde alone, the "before"), on the 1M-row arrays
//! and on whole bodies of 1k, 100k and 1M rows; `profile_metrics answer`
//! only builds and serializes the 1k-row answer (basic, and with the PR
//! curve and calibration), 100 times (`ANSWER_ROUNDS`).
//! `profile_metrics arrow` runs only the Arrow stages: the body to the
//! request (`stage_arrow_to_request`), the check into the job
//! (`stage_arrow_check_into_job`), the core, and the same body staged as a
//! `POST /streams/{name}` batch (`stage_arrow_stage_batch`); the answer is
//! asserted equal to the one of the same records built in memory, and a
//! 1k-row body is read too (`stage_arrow_small_to_request`).
//! `profile_metrics core` runs only `stage_core` and `stage_core_full`
//! (then the basic core at 100k records, `stage_core_100k`, and 100 times
//! at 1k records, `stage_core_1k`), on requests built in memory (a few minutes under callgrind instead of half
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
//! # core only: part 6: stage_core_100k, part 7: stage_core_1k (100 requests)
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
use evald::api::metrics::{
    fast, BinaryMetricsResponse, Labels, MetricsJob, MetricsRequest, MetricsResponse, UserIds,
};
use evald::api::negative_zero::without_negative_zeros;
use evald::api::tensor::Tensor;
use evald::core::metrics::{evaluate_records_ranked, BinaryRecords, UserIndex};
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

/// The predictions array as the server reads it (the fast parser).
#[inline(never)]
fn stage_parse_predictions(text: &str) -> Tensor {
    fast::predictions_value(text.as_bytes(), 0)
        .expect("predictions")
        .0
}

#[inline(never)]
fn stage_parse_labels(text: &str) -> Labels {
    fast::labels_value(text.as_bytes(), 0).expect("labels").0
}

/// Parsing the strings and interning them (the two are one pass).
#[inline(never)]
fn stage_parse_and_intern_user_ids(text: &str) -> UserIds {
    fast::user_ids_value(text.as_bytes(), 0)
        .and_then(|(ids, _)| ids)
        .expect("user ids")
}

/// The whole body on one thread (the server uses two above 256 KiB; callgrind
/// runs threads one at a time, so this is the instruction count either way).
#[inline(never)]
fn stage_parse_whole_body(body: &[u8]) -> MetricsRequest {
    MetricsRequest::from_json(body).expect("request")
}

/// The serde path alone (what the fast parser falls back to, and what the
/// server ran before it): the "before" of each parse stage.
#[inline(never)]
fn stage_parse_predictions_serde(text: &str) -> Tensor {
    serde_json::from_str(text).expect("predictions")
}

#[inline(never)]
fn stage_parse_labels_serde(text: &str) -> Labels {
    serde_json::from_str(text).expect("labels")
}

#[inline(never)]
fn stage_parse_and_intern_user_ids_serde(text: &str) -> UserIds {
    serde_json::from_str(text).expect("user ids")
}

#[inline(never)]
fn stage_parse_whole_body_serde(body: &[u8]) -> MetricsRequest {
    serde_json::from_slice(body).expect("request")
}

/// The body of the first `rows` records (1k, 100k) on one thread, fast.
#[inline(never)]
fn stage_parse_body_rows(body: &[u8]) -> MetricsRequest {
    MetricsRequest::from_json(body).expect("request")
}

/// [`stage_parse_body_rows`] through serde alone.
#[inline(never)]
fn stage_parse_body_rows_serde(body: &[u8]) -> MetricsRequest {
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
    let request = MetricsRequest::from_json(body).unwrap_or_else(|e| panic!("{what}: {e}"));
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

/// The 1M-row request's check into the job (label domain, lengths), for the
/// Arrow request on its own.
#[inline(never)]
fn stage_arrow_check_into_job(request: MetricsRequest) -> MetricsJob {
    MetricsJob::from_request(request, usize::MAX, usize::MAX, usize::MAX).expect("a valid request")
}

/// A 1k-row Arrow body to its request (no second thread below the
/// threshold).
#[inline(never)]
fn stage_arrow_small_to_request(body: Bytes) -> MetricsRequest {
    ArrowBody {
        bytes: body,
        query: String::new(),
    }
    .read_metrics_request()
    .expect("small arrow request")
}

/// The same body staged as a `POST /streams/{name}` batch.
#[inline(never)]
fn stage_arrow_stage_batch(body: Bytes) -> evald::state::BatchBuilder {
    ArrowBody {
        bytes: body,
        query: String::new(),
    }
    .stage_batch(usize::MAX)
    .unwrap_or_else(|e| panic!("stage batch: {e:?}"))
}

/// `profile_metrics arrow`: only the Arrow stages (see the module doc).
fn arrow_only(d: &Data) {
    let expected = stage_core(stage_check_into_job(in_memory_request(d, "")));
    let expected = stage_serialize_response(&expected);
    let body = Bytes::from(arrow(d));
    let request = timed("arrow: decode + columns + intern", || {
        stage_arrow_to_request(body.clone())
    });
    let job = timed("arrow: check into job", || {
        stage_arrow_check_into_job(request)
    });
    let response = timed("core: sort, ROC, AUC, GAUC", || stage_core(job));
    assert_eq!(
        stage_serialize_response(&response),
        expected,
        "Arrow and in-memory give the same answer"
    );
    let batch = timed("arrow: stage a stream batch", || {
        stage_arrow_stage_batch(body.clone())
    });
    drop(black_box(batch));
    let small = Data {
        scores: d.scores[..1000].to_vec(),
        labels: d.labels[..1000].to_vec(),
        users: d.users[..1000].to_vec(),
    };
    let small_body = Bytes::from(arrow(&small));
    let small_request = timed("arrow: 1k rows to request", || {
        stage_arrow_small_to_request(small_body.clone())
    });
    assert_eq!(small_request.labels.values.len(), 1000);
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

/// The process's minor page faults so far (field 10 of `/proc/self/stat`;
/// 0 where it cannot be read).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// [`timed`] plus the page faults the stage took (every thread): on this
/// VM each fresh page of a large buffer costs a fault.
fn timed_faults<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let before = minor_faults();
    let out = timed(name, f);
    println!("{:<34} {:>9} page faults", "", minor_faults() - before);
    out
}

/// The request over `d` with the options of `options` (JSON members, may be
/// empty), built in memory: the arrays are not parsed, the options are.
/// User ids are interned in order of first appearance, as the parser does.
fn in_memory_request(d: &Data, options: &str) -> MetricsRequest {
    in_memory_rows(d, options, N)
}

/// [`in_memory_request`] over the first `rows` records.
fn in_memory_rows(d: &Data, options: &str, rows: usize) -> MetricsRequest {
    let separator = if options.is_empty() { "" } else { "," };
    let small = format!(
        "{{\"predictions\":[0.5],\"labels\":[1],\"user_ids\":[\"u0\"]{separator}{options}}}"
    );
    let mut request: MetricsRequest = serde_json::from_str(&small).expect("the options parse");
    request.predictions = Tensor::from(
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[rows]), d.scores[..rows].to_vec())
            .expect("a shape"),
    );
    request.labels = Labels {
        values: d.labels[..rows].iter().map(|&l| u32::from(l)).collect(),
        first_bool: None,
    };
    let mut dense = std::collections::HashMap::new();
    let mut names = Vec::new();
    let indices = d.users[..rows]
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
    if let Ok(stage) = std::env::var("PROFILE_METRICS_CORE_STAGE") {
        return one_core_stage(d, &stage);
    }
    let basic = stage_check_into_job(in_memory_request(d, ""));
    let full = stage_check_into_job(in_memory_request(d, &full_options()));
    let rows_100k = stage_check_into_job(in_memory_rows(d, "", 100_000));
    let rows_1k: Vec<MetricsJob> = (0..CORE_1K_ROUNDS)
        .map(|_| stage_check_into_job(in_memory_rows(d, "", 1_000)))
        .collect();
    let basic = timed_faults("core: sort, ROC, AUC, GAUC", || stage_core(basic));
    let full = timed_faults("core, full request", || stage_core_full(full));
    let (basic, full) = (
        stage_serialize_response(&basic),
        stage_serialize_response(&full),
    );
    let small = core_small(rows_100k, rows_1k);
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
        std::fs::write(dir.join("basic_100k.json"), &small.0).expect("written");
        std::fs::write(dir.join("basic_1k.json"), &small.1).expect("written");
    }
}

/// `PROFILE_METRICS_CORE_STAGE=basic|full|100k|1k profile_metrics core`:
/// that core stage alone, in a fresh process, so its page faults do not
/// depend on what the allocator kept from the stages before it.
fn one_core_stage(d: &Data, stage: &str) {
    let (options, rows) = match stage {
        "basic" => ("".to_owned(), N),
        "full" => (full_options(), N),
        "100k" => ("".to_owned(), 100_000),
        _ => ("".to_owned(), 1_000),
    };
    let mut jobs: Vec<MetricsJob> = (0..if rows == 1_000 { CORE_1K_ROUNDS } else { 1 })
        .map(|_| stage_check_into_job(in_memory_rows(d, &options, rows)))
        .collect();
    match (stage, jobs.pop()) {
        ("basic", Some(job)) => drop(timed_faults("core", || stage_core(job))),
        ("full", Some(job)) => drop(timed_faults("core, full", || stage_core_full(job))),
        ("100k", Some(job)) => drop(timed_faults("core, 100k", || stage_core_100k(job))),
        (_, Some(job)) => {
            jobs.push(job);
            drop(timed_faults("core, 1k x 100", || stage_core_1k(jobs)));
        }
        (_, None) => {}
    }
}

/// How many 1k-record cores `stage_core_1k` runs (fixed costs per request
/// are its cost divided by this).
const CORE_1K_ROUNDS: usize = 100;

/// The basic core at 100k records (the smallest size that takes the two
/// threads) and at 1k records ([`CORE_1K_ROUNDS`] requests, one thread),
/// each answer serialized.
fn core_small(rows_100k: MetricsJob, rows_1k: Vec<MetricsJob>) -> (Vec<u8>, Vec<u8>) {
    let mid = timed_faults("core, 100k records", || stage_core_100k(rows_100k));
    let small = timed_faults("core, 1k records x 100", || stage_core_1k(rows_1k));
    (
        stage_serialize_response(&mid),
        stage_serialize_response(&small),
    )
}

/// [`stage_core`] at 100k records.
#[inline(never)]
fn stage_core_100k(job: MetricsJob) -> MetricsResponse {
    job.run().expect("metrics of 100k records")
}

/// [`stage_core`] of [`CORE_1K_ROUNDS`] requests of 1k records: the
/// fixed cost per request, which dominates small requests. Returns the
/// last answer.
#[inline(never)]
fn stage_core_1k(jobs: Vec<MetricsJob>) -> MetricsResponse {
    let mut last = None;
    for job in jobs {
        last = Some(black_box(job.run().expect("metrics of 1k records")));
    }
    last.expect("at least one round")
}

/// The body of the first `rows` records, as the server receives it.
fn body_of_rows(d: &Data, rows: usize) -> Vec<u8> {
    let join = |items: Vec<String>| format!("[{}]", items.join(","));
    let predictions = join(d.scores[..rows].iter().map(f64::to_string).collect());
    let labels = join(
        d.labels[..rows]
            .iter()
            .map(|&l| u8::from(l).to_string())
            .collect(),
    );
    let user_ids = join(d.users[..rows].iter().map(|u| format!("\"{u}\"")).collect());
    format!("{{\"predictions\":{predictions},\"labels\":{labels},\"user_ids\":{user_ids}}}")
        .into_bytes()
}

/// `profile_metrics parse`: only the parse stages, each through the fast
/// parser and through serde alone (the "before"), on the 1M-row arrays and
/// whole bodies of 1k, 100k and 1M rows.
fn parse_only(d: &Data) {
    let j = json(d);
    let fast = (
        timed("parse predictions", || {
            stage_parse_predictions(&j.predictions)
        }),
        timed("parse labels", || stage_parse_labels(&j.labels)),
        timed("parse + intern user_ids", || {
            stage_parse_and_intern_user_ids(&j.user_ids)
        }),
    );
    let serde = (
        timed("parse predictions (serde)", || {
            stage_parse_predictions_serde(&j.predictions)
        }),
        timed("parse labels (serde)", || {
            stage_parse_labels_serde(&j.labels)
        }),
        timed("parse + intern user_ids (serde)", || {
            stage_parse_and_intern_user_ids_serde(&j.user_ids)
        }),
    );
    assert_eq!(
        format!("{fast:?}"),
        format!("{serde:?}"),
        "fast and serde agree"
    );
    let whole = timed("parse whole body (one thread)", || {
        stage_parse_whole_body(&j.body)
    });
    let whole_serde = timed("parse whole body (serde)", || {
        stage_parse_whole_body_serde(&j.body)
    });
    assert_eq!(format!("{whole:?}"), format!("{whole_serde:?}"));
    for rows in [1_000, 100_000] {
        let body = body_of_rows(d, rows);
        let a = timed(&format!("parse {rows} rows"), || {
            stage_parse_body_rows(&body)
        });
        let b = timed(&format!("parse {rows} rows (serde)"), || {
            stage_parse_body_rows_serde(&body)
        });
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

/// Building the answer of a binary request from the core's reports (what
/// `MetricsJob::run` does after the core).
#[inline(never)]
fn stage_build_answer(job: MetricsJob) -> MetricsResponse {
    let MetricsJob::Binary {
        scores,
        labels,
        weights,
        users,
        params,
        weighting,
        beyond,
        ranking,
    } = job
    else {
        panic!("a binary request");
    };
    let user_index = users.as_ref().map(|u| UserIndex {
        users: &u.indices,
        n_users: u.names.len(),
    });
    let records = BinaryRecords {
        scores: &scores,
        labels: &labels,
        weights: weights.as_deref(),
        users: user_index,
    };
    let (report, extra, ranked) =
        evaluate_records_ranked(&records, &params, weighting, &beyond, ranking.as_ref())
            .expect("metrics");
    assert!(ranked.is_none(), "no ranking asked");
    stage_answer_from_reports(report, extra)
}

#[inline(never)]
fn stage_answer_from_reports(
    report: evald::core::metrics::BinaryReport,
    extra: evald::core::metrics::BeyondReport,
) -> MetricsResponse {
    let body = BinaryMetricsResponse::from(report).with_beyond(extra);
    MetricsResponse::Binary(Box::new(body))
}

/// The serialization the server does: `axum::Json` writes into a growing
/// buffer, then the negative-zero middleware scans it.
#[inline(never)]
fn stage_serialize_answer(response: &MetricsResponse) -> Vec<u8> {
    let out = serde_json::to_vec(response).expect("serialized");
    without_negative_zeros(&out).unwrap_or(out)
}

/// Number tokens (outside strings) in a JSON text.
fn count_numbers(json: &[u8]) -> usize {
    let (mut count, mut in_string, mut escaped, mut in_number) = (0, false, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let number_byte = b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
        if number_byte && !in_number && (b.is_ascii_digit() || b == b'-') {
            count += 1;
        }
        in_number = number_byte && (in_number || b.is_ascii_digit() || b == b'-');
        in_string = b == b'"';
    }
    count
}

/// `profile_metrics answer`: the 1k-row request's answer (ROC and PR
/// curves, calibration), built from the core's reports and serialized,
/// `ANSWER_ROUNDS` (default 100) times, so callgrind's inclusive cost of
/// `stage_answer_from_reports` and `stage_serialize_answer` divided by the
/// calls is the per-request cost.
fn answer_only(d: &Data) {
    let rows = 1_000;
    let options = r#","pr":{},"calibration":{}"#;
    let body = body_of_rows(d, rows);
    let mut full = body[..body.len() - 1].to_vec();
    full.extend_from_slice(options.as_bytes());
    full.push(b'}');
    let rounds: usize = std::env::var("ANSWER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for (name, body) in [("basic", &body), ("pr + calibration", &full)] {
        let mut out = Vec::new();
        let start = Instant::now();
        for _ in 0..rounds {
            let request = MetricsRequest::from_json(body).expect("request");
            let job = stage_check_into_job(request);
            let response = stage_build_answer(job);
            out = black_box(stage_serialize_answer(&response));
        }
        println!(
            "{name}: answer {} bytes, {} numbers, {:.1} µs per request (core + build + serialize)",
            out.len(),
            count_numbers(&out),
            start.elapsed().as_secs_f64() * 1e6 / rounds as f64
        );
    }
}

fn main() {
    let d = data();
    match std::env::args().nth(1).as_deref() {
        Some("core") => return core_only(&d),
        Some("parse") => return parse_only(&d),
        Some("answer") => return answer_only(&d),
        Some("arrow") => return arrow_only(&d),
        _ => {}
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
