//! `evald push`: stream a local NDJSON or CSV file into a stream.
//!
//! The file is read on a blocking thread, converted to NDJSON when it is CSV,
//! and sent as ONE streamed request body (so the whole file is applied
//! atomically, and memory stays constant on the client). A progress line on
//! stderr shows bytes read, percent and rate. The ingest answer and then
//! `GET /streams/{name}/metrics` are printed on stdout.
//!
//! CSV: a header row names the columns `prediction`, `label` and optionally
//! `user_id` and `weight` (any order, other columns refused); fields are
//! plain or double-quoted without embedded commas.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Bytes of NDJSON per request-body chunk.
const CHUNK_BYTES: usize = 256 * 1024;

/// What `evald push` was asked to do.
#[derive(Debug, Clone)]
pub struct PushArgs {
    pub file: PathBuf,
    pub stream: String,
    pub url: String,
    /// `None`: decide from the file name (`.csv`, `.csv.gz` are CSV).
    pub csv: Option<bool>,
    pub quiet: bool,
}

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

fn format_of(path: &Path, csv: Option<bool>) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match csv {
        Some(true) => Format::Csv,
        Some(false) => Format::Ndjson,
        None if name.ends_with(".csv") => Format::Csv,
        None => Format::Ndjson,
    }
}

/// A reader that counts the (compressed) bytes taken from the file.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path`, transparently gunzipping when it starts with the gzip magic.
fn open(path: &Path, read: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::new(Counting {
        inner: File::open(path)?,
        read,
    });
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Column positions of a CSV header.
#[derive(Debug, Clone, Copy)]
struct Columns {
    prediction: usize,
    label: usize,
    user_id: Option<usize>,
    weight: Option<usize>,
}

fn split_csv(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .unwrap_or(f)
        })
        .collect()
}

fn parse_header(line: &str) -> Result<Columns, String> {
    let (mut prediction, mut label, mut user_id, mut weight) = (None, None, None, None);
    for (i, name) in split_csv(line).into_iter().enumerate() {
        match name {
            "prediction" => prediction = Some(i),
            "label" => label = Some(i),
            "user_id" => user_id = Some(i),
            "weight" => weight = Some(i),
            other => return Err(format!("CSV header has unknown column '{other}'; expected prediction, label, user_id, weight")),
        }
    }
    Ok(Columns {
        prediction: prediction.ok_or("CSV header has no 'prediction' column")?,
        label: label.ok_or("CSV header has no 'label' column")?,
        user_id,
        weight,
    })
}

/// One CSV row as an NDJSON record line (numbers are passed through for the
/// server to check; the user id is JSON-escaped).
fn csv_row_to_ndjson(
    cols: &Columns,
    line: &str,
    line_no: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let fields = split_csv(line);
    let get = |i: usize, name: &str| {
        fields.get(i).copied().ok_or_else(|| {
            format!(
                "CSV line {line_no} has {} columns; {name} is column {}",
                fields.len(),
                i + 1
            )
        })
    };
    let number = |v: &str, name: &str| -> Result<String, String> {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|_| v.to_owned())
            .ok_or_else(|| format!("CSV line {line_no}: {name} '{v}' is not a finite number"))
    };
    let prediction = number(get(cols.prediction, "prediction")?, "prediction")?;
    let label = match get(cols.label, "label")? {
        "1" | "true" | "1.0" => "1",
        "0" | "false" | "0.0" => "0",
        other => {
            return Err(format!(
                "CSV line {line_no}: label '{other}' must be 0, 1, false or true"
            ))
        }
    };
    let mut record = format!("{{\"prediction\":{prediction},\"label\":{label}");
    if let Some(i) = cols.user_id {
        let user = serde_json::to_string(get(i, "user_id")?).map_err(|e| e.to_string())?;
        record.push_str(&format!(",\"user_id\":{user}"));
    }
    if let Some(i) = cols.weight {
        let w = number(get(i, "weight")?, "weight")?;
        record.push_str(&format!(",\"weight\":{w}"));
    }
    record.push_str("}\n");
    out.extend_from_slice(record.as_bytes());
    Ok(())
}

/// Reads the file and sends NDJSON chunks until the end (or the receiver
/// hangs up). Runs on a blocking thread.
fn produce(
    args: &PushArgs,
    read: Arc<AtomicU64>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
) -> Result<(), String> {
    let format = format_of(&args.file, args.csv);
    let mut input =
        open(&args.file, read).map_err(|e| format!("cannot open {}: {e}", args.file.display()))?;
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 4096);
    let send = |chunk: &mut Vec<u8>| -> Result<(), String> {
        let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
        tx.blocking_send(Ok(Bytes::from(full)))
            .map_err(|_| "the upload stopped (the server answered early)".to_owned())
    };
    match format {
        Format::Ndjson => loop {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let n = input
                .read(&mut buf)
                .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            tx.blocking_send(Ok(Bytes::from(buf)))
                .map_err(|_| "the upload stopped (the server answered early)".to_owned())?;
        },
        Format::Csv => {
            let mut columns = None;
            for (i, line) in input.lines().enumerate() {
                let line_no = i as u64 + 1;
                let line = line.map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                match &columns {
                    None => columns = Some(parse_header(&line)?),
                    Some(cols) => csv_row_to_ndjson(cols, &line, line_no, &mut chunk)?,
                }
                if chunk.len() >= CHUNK_BYTES {
                    send(&mut chunk)?;
                }
            }
            if !chunk.is_empty() {
                send(&mut chunk)?;
            }
        }
    }
    Ok(())
}

/// Prints `read / total` bytes with percent and rate on stderr, at most ten
/// times a second, until `done` is set.
async fn show_progress(read: Arc<AtomicU64>, total: u64, done: Arc<std::sync::atomic::AtomicBool>) {
    let start = Instant::now();
    let mut err = io::stderr();
    let tty = err.is_terminal();
    loop {
        let finished = done.load(Ordering::Relaxed);
        let n = read.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let pct = if total > 0 {
            n as f64 * 100.0 / total as f64
        } else {
            100.0
        };
        let width = 30usize;
        let filled = ((pct / 100.0) * width as f64)
            .round()
            .clamp(0.0, width as f64) as usize;
        let bar = format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled));
        let line = format!(
            "{bar} {pct:5.1}%  {:.1}/{:.1} MB  {:.1} MB/s",
            n as f64 / 1e6,
            total as f64 / 1e6,
            n as f64 / 1e6 / secs
        );
        if tty {
            let _ = write!(err, "\r{line}");
        } else if finished {
            let _ = write!(err, "{line}");
        }
        if finished {
            let _ = writeln!(err);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `evald push`; returns the text to print on success.
pub async fn run(args: PushArgs) -> Result<(), String> {
    let total = std::fs::metadata(&args.file)
        .map_err(|e| format!("cannot open {}: {e}", args.file.display()))?
        .len();
    let base = args.url.trim_end_matches('/').to_owned();
    let read = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
    let producer = {
        let (args, read) = (args.clone(), read.clone());
        tokio::task::spawn_blocking(move || produce(&args, read, tx))
    };
    let progress =
        (!args.quiet).then(|| tokio::spawn(show_progress(read.clone(), total, done.clone())));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/streams/{}", args.stream))
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let produced = producer.await.map_err(|e| e.to_string())?;
    let response =
        response.map_err(|e| format!("POST {base}/streams/{} failed: {e}", args.stream))?;
    let ingest = answer(response).await?;
    produced?;
    println!("{ingest}");
    let metrics = client
        .get(format!("{base}/streams/{}/metrics", args.stream))
        .send()
        .await
        .map_err(|e| format!("GET metrics failed: {e}"))?;
    println!("{}", answer(metrics).await?);
    Ok(())
}

/// The pretty-printed JSON body of a success, or the problem's detail.
async fn answer(response: reqwest::Response) -> Result<String, String> {
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if status.is_success() {
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())
    } else {
        let detail = value.get("detail").and_then(|d| d.as_str()).unwrap_or("");
        Err(format!("server answered {status}: {detail}\n{value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_ndjson_records() {
        let cols = parse_header("user_id,prediction,label,weight");
        let Ok(cols) = cols else { panic!("{cols:?}") };
        let mut out = Vec::new();
        assert!(csv_row_to_ndjson(&cols, "\"u\\1\",0.25,1,2", 2, &mut out).is_ok());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"prediction\":0.25,\"label\":1,\"user_id\":\"u\\\\1\",\"weight\":2}\n"
        );
    }

    #[test]
    fn bad_csv_is_reported_with_its_line() {
        assert!(parse_header("prediction,colour").is_err());
        let cols = Columns {
            prediction: 0,
            label: 1,
            user_id: None,
            weight: None,
        };
        let mut out = Vec::new();
        for (row, needle) in [
            ("nan,1", "not a finite number"),
            ("0.5,2", "label '2'"),
            ("0.5", "has 1 columns"),
        ] {
            match csv_row_to_ndjson(&cols, row, 9, &mut out) {
                Err(e) => assert!(e.contains("line 9") && e.contains(needle), "{e}"),
                Ok(()) => panic!("accepted {row}"),
            }
        }
    }

    #[test]
    fn format_follows_the_file_name_unless_forced() {
        assert_eq!(format_of(Path::new("a/b.csv.gz"), None), Format::Csv);
        assert_eq!(format_of(Path::new("b.ndjson"), None), Format::Ndjson);
        assert_eq!(format_of(Path::new("b.txt"), Some(true)), Format::Csv);
    }
}
