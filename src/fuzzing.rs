//! Oracles of the fuzz targets (`fuzz/`, README "Fuzzing"): public for
//! fuzzing only, and hidden from the docs.
//!
//! Each `check_*` feeds arbitrary bytes through one of the service's parsers
//! the way the service does, and returns `Err` describing any disagreement
//! between two paths that must agree (a fast path and the full parser, a
//! whole input and the same input cut into chunks, a decoded value and its
//! re-encoding). A panic inside is a crash the fuzzer reports. Living here,
//! not in the fuzz crate, the oracles run in the main test binary too: every
//! crash the fuzzer finds is replayed there through the same function
//! (`tests/api/fuzz_regressions.rs`).
//!
//! Some targets read their first byte as a choice (a chunk size, a decoding
//! mode) so one corpus exercises several paths.
#![doc(hidden)]

use crate::api::extract::{parse_json, parse_json_with};
use crate::api::metrics::{MetricsJob, MetricsRequest};
use crate::api::streams::dto::{stage_line, Label, Line};
use crate::api::streams::fast::{fast_record, FastRecord};
use crate::api::streams::ndjson::{parse_line, LineReader};
use crate::api::streams::report::evaluate_stream;
use crate::api::ApiError;
use crate::client::csv::{CsvError, CsvReader, CsvRecord};
use crate::core::metrics::{BinaryParams, GaucWeighting};
use crate::state::aggregate::Reader;
use crate::state::{snapshot, wal, BatchBuilder, ScoreAggregate, Stream};

/// Largest array a metrics request may hold here: far above what a fuzzer's
/// input can spell, like the service's default.
const MAX_ARRAY_LEN: usize = 1 << 20;

/// Longest NDJSON line: small, so the line-length limit is exercised too.
const MAX_LINE_BYTES: usize = 256;

/// `POST /metrics`: the two-thread parse must accept exactly the bodies the
/// one-thread parse accepts, with the same value; the path-tracking parse
/// (which makes the error) must too; the problem the endpoint answers must
/// not depend on the path taken. An accepted body is then checked and
/// evaluated as the handler does.
pub fn check_metrics_body(bytes: &[u8]) -> Result<(), String> {
    let one = serde_json::from_slice::<MetricsRequest>(bytes);
    let two = MetricsRequest::from_json_two_threads(bytes);
    let tracked = parse_json::<MetricsRequest>(bytes);
    let show = |r: &Result<MetricsRequest, _>| r.as_ref().map(|v| format!("{v:?}")).ok();
    if show(&one) != show(&two) || one.is_ok() != tracked.is_ok() {
        return Err(format!(
            "parses disagree: one thread {one:?}, two threads {two:?}, path-tracking {tracked:?}"
        ));
    }
    let answer_one = parse_json_with(bytes, |b| serde_json::from_slice::<MetricsRequest>(b));
    let answer_two = parse_json_with(bytes, MetricsRequest::from_json_two_threads);
    let (a, b) = (problem_or_value(&answer_one), problem_or_value(&answer_two));
    if a != b {
        return Err(format!("answers differ: one thread {a}, two threads {b}"));
    }
    if let Ok(request) = answer_one {
        // Errors are answers (422); only a panic is a finding.
        let _ = MetricsJob::from_request(request, MAX_ARRAY_LEN)
            .and_then(MetricsJob::run)
            .map(|response| serde_json::to_vec(&response));
    }
    Ok(())
}

/// The value's `Debug` text, or the problem's type, field and detail.
fn problem_or_value<T: std::fmt::Debug>(result: &Result<T, ApiError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("{:?} {:?} {}", e.problem, e.field, e.detail),
    }
}

/// NDJSON ingest: the first byte sets a chunk size; the rest is a body that
/// must split into the same lines (and the same error) whole and in chunks.
/// Each line is staged as the service does; where the fast path reads a
/// record, serde must read the same record and staging must end the same.
pub fn check_ndjson(bytes: &[u8]) -> Result<(), String> {
    let Some((&chunk, body)) = bytes.split_first() else {
        return Ok(());
    };
    let whole = split_lines(&[body]);
    let chunks: Vec<&[u8]> = body.chunks(usize::from(chunk % 64) + 1).collect();
    let chunked = split_lines(&chunks);
    if whole != chunked {
        return Err(format!(
            "lines differ: whole {whole:?}, in chunks of {} {chunked:?}",
            chunk % 64 + 1
        ));
    }
    for (line_no, line) in &whole.0 {
        check_ndjson_line(*line_no, line)?;
    }
    Ok(())
}

/// Lines read by a [`LineReader`] fed `chunks`, and its error, if any.
type SplitLines = (Vec<(u64, Vec<u8>)>, Option<String>);

fn split_lines(chunks: &[&[u8]]) -> SplitLines {
    let mut lines = Vec::new();
    let mut sink = |n: u64, l: &[u8]| {
        lines.push((n, l.to_vec()));
        Ok(())
    };
    let mut reader = LineReader::new(MAX_LINE_BYTES);
    let fed = chunks
        .iter()
        .try_for_each(|c| reader.feed(c, &mut sink))
        .and_then(|()| reader.finish(&mut sink));
    (lines, fed.err().map(|e| e.detail))
}

fn check_ndjson_line(line_no: u64, line: &[u8]) -> Result<(), String> {
    let mut service = BatchBuilder::new();
    let served = parse_line(&mut service, line_no, line);
    let Some(fast) = fast_record(line) else {
        return Ok(());
    };
    let full = serde_json::from_slice::<Line<'_>>(line)
        .map_err(|e| format!("fast path read {fast:?} but serde refused: {e}"))?;
    if !same_record(&fast, &full) {
        return Err(format!("fast path read {fast:?} but serde read {full:?}"));
    }
    let mut reference = BatchBuilder::new();
    let staged = stage_line(&mut reference, line_no, full);
    let outcome = |r: &Result<(), ApiError>, b: &BatchBuilder| {
        (
            r.as_ref().err().map(|e| e.detail.clone()),
            b.len(),
            b.users(),
        )
    };
    if outcome(&served, &service) != outcome(&staged, &reference) {
        return Err(format!(
            "staging differs: fast {served:?}, serde {staged:?}"
        ));
    }
    Ok(())
}

/// True when serde's line is the fast path's record and nothing else
/// (numbers compared bit for bit).
fn same_record(fast: &FastRecord<'_>, full: &Line<'_>) -> bool {
    let bits = |w: Option<f64>| w.map(f64::to_bits);
    full.prediction.map(f64::to_bits) == Some(fast.prediction.to_bits())
        && full.label == Some(Label(fast.label))
        && full.user_id.as_ref().map(|u| &*u.0) == fast.user_id
        && bits(full.weight) == bits(fast.weight)
        && full.predictions.is_none()
        && full.labels.is_none()
        && full.user_ids.is_none()
        && full.sample_weights.is_none()
        && full.threshold.is_none()
        && full.beta.is_none()
        && full.average.is_none()
        && full.roc.is_none()
        && full.gauc_weighting.is_none()
}

/// `evald push` CSV input: records start on increasing lines within the
/// file, errors name a line within the file, and the records read back the
/// same once written out again with every field quoted.
pub fn check_csv(bytes: &[u8]) -> Result<(), String> {
    let last_line = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let records = match read_csv(bytes) {
        Ok(records) => records,
        Err(e) if (1..=last_line).contains(&e.line) => return Ok(()),
        Err(e) => return Err(format!("error names line {} of {last_line}: {e}", e.line)),
    };
    let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
    let increasing = lines.windows(2).all(|w| w[0] < w[1]);
    if !increasing || lines.iter().any(|l| !(1..=last_line).contains(l)) {
        return Err(format!(
            "record lines {lines:?} in a file of {last_line} lines"
        ));
    }
    let rewritten = write_csv(&records);
    let again = read_csv(rewritten.as_bytes()).map_err(|e| format!("rewritten: {e}"))?;
    let fields = |rs: &[CsvRecord]| rs.iter().map(|r| r.fields.clone()).collect::<Vec<_>>();
    if fields(&records) != fields(&again) {
        return Err(format!(
            "read {records:?}, rewritten {rewritten:?} read {again:?}"
        ));
    }
    Ok(())
}

fn read_csv(bytes: &[u8]) -> Result<Vec<CsvRecord>, CsvError> {
    let mut reader = CsvReader::new(bytes);
    let mut records = Vec::new();
    while let Some(record) = reader.read_record()? {
        records.push(record);
    }
    Ok(records)
}

/// RFC 4180 text of `records`, every field quoted.
fn write_csv(records: &[CsvRecord]) -> String {
    let quote = |f: &String| format!("\"{}\"", f.replace('"', "\"\""));
    records
        .iter()
        .map(|r| r.fields.iter().map(quote).collect::<Vec<_>>().join(",") + "\n")
        .collect()
}

/// Snapshot restore. The first byte picks what the rest is: `0` a whole
/// file; `1` a payload (past the checksum, which a fuzzer cannot forge) of
/// as many streams as the second byte says, in format version 1 or (odd
/// second byte) 2 and later; `2` one aggregate. Whatever
/// decodes must re-encode to bytes that decode to the same value, and a
/// restored stream must answer a metrics query.
pub fn check_snapshot(bytes: &[u8]) -> Result<(), String> {
    let Some((&mode, rest)) = bytes.split_first() else {
        return Ok(());
    };
    let streams = match mode % 3 {
        0 => snapshot::decode(rest).ok().map(|r| r.streams),
        1 => rest.split_first().and_then(|(&count, payload)| {
            snapshot::decode_payload(payload, u64::from(count >> 1), count & 1 == 1)
                .ok()
                .map(|r| r.streams)
        }),
        _ => {
            if let Ok(aggregate) = ScoreAggregate::decode(&mut Reader::new(rest)) {
                re_encode(&aggregate)?;
            }
            None
        }
    };
    for stream in streams.iter().flatten() {
        check_restored(stream)?;
    }
    Ok(())
}

fn check_restored(stream: &Stream) -> Result<(), String> {
    re_encode(&stream.global)?;
    for aggregate in stream.users.values() {
        re_encode(aggregate)?;
    }
    let params = BinaryParams::default().check().map_err(|e| e.to_string())?;
    // Errors are answers; only a panic is a finding.
    let _ = evaluate_stream(&stream.read(true), &params, GaucWeighting::Impressions)
        .map(|report| serde_json::to_vec(&report));
    Ok(())
}

/// Encodes `aggregate`, decodes that, and checks both the value and a second
/// encoding are unchanged.
fn re_encode(aggregate: &ScoreAggregate) -> Result<(), String> {
    let encode = |a: &ScoreAggregate| {
        let mut out = Vec::new();
        a.encode(&mut out).map(|()| out).map_err(|e| e.to_string())
    };
    let first = encode(aggregate)?;
    let decoded = ScoreAggregate::decode(&mut Reader::new(&first))
        .map_err(|e| format!("re-encoded {aggregate:?} does not decode: {e}"))?;
    if decoded != *aggregate || encode(&decoded)? != first {
        return Err(format!("{aggregate:?} re-encodes as {decoded:?}"));
    }
    Ok(())
}

/// Write-ahead log segment decoding (a fuzzer cannot forge the frame
/// checksums, so this mostly explores headers, frame lengths and torn
/// tails). Whatever decodes must agree with its own scan summary, and the
/// valid prefix alone must decode to the same records.
pub fn check_wal(bytes: &[u8]) -> Result<(), String> {
    let Ok((records, scan)) = wal::decode_segment(bytes) else {
        return Ok(());
    };
    let last_seq = records.iter().map(|r| r.seq).max().unwrap_or(0);
    if records.len() != scan.records || last_seq != scan.last_seq {
        return Err(format!(
            "{} records up to seq {last_seq}, but the scan says {} up to {}",
            records.len(),
            scan.records,
            scan.last_seq
        ));
    }
    let prefix = bytes
        .get(..scan.valid_len)
        .ok_or_else(|| format!("valid_len {} past {} bytes", scan.valid_len, bytes.len()))?;
    match wal::decode_segment(prefix) {
        Ok((again, _))
            if again.len() == records.len()
                && again.iter().zip(&records).all(|(a, b)| a.seq == b.seq) =>
        {
            Ok(())
        }
        Ok((again, _)) => Err(format!(
            "the valid prefix decodes to {} records, the whole to {}",
            again.len(),
            records.len()
        )),
        Err(e) => Err(format!("the valid prefix does not decode: {e}")),
    }
}
