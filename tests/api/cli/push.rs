//! `evald push` friction points: each test runs the real binary against a
//! real server (or a port nothing listens on).

use crate::helpers::{assert_ok, cli_file, evald, free_port, gzip, spawn_app, TestApp};

/// `n` rows `score,label,user_id` with `extra` appended to each line.
fn rows(n: u32, extra: &str) -> String {
    (0..n)
        .map(|i| {
            let score = f64::from((i * 37) % 100) / 100.0;
            let label = u8::from((i * 37) % 100 > 40 + i % 20);
            format!("{score},{label},u{}{extra}\n", i % 4)
        })
        .collect()
}

async fn count(app: &TestApp, stream: &str) -> Option<u64> {
    let r = app.stream_metrics(stream, "").await;
    if r.status().as_u16() == 404 {
        return None;
    }
    assert_ok(r).await["count"].as_u64()
}

#[tokio::test]
async fn a_server_that_is_not_running_is_reported_as_connection_refused_before_any_progress() {
    let csv = format!("score,label,user_id\n{}", rows(10, ""));
    let path = cli_file("refused", "a.csv", csv.as_bytes());
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = evald(&[
        "push",
        &path.display().to_string(),
        "--stream",
        "s",
        "--url",
        &url,
    ])
    .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    for progress in ["%", "B/s", "records", "resume"] {
        assert!(
            !run.stderr.contains(progress),
            "{progress:?} printed before the refusal: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn https_urls_are_tried_with_tls_and_other_schemes_are_named() {
    let app = spawn_app().await;
    let path = cli_file("https", "a.csv", b"score,label\n0.5,1\n");
    let file = path.display().to_string();
    // a plain-HTTP server on an https:// URL: the TLS handshake fails, which
    // shows TLS is spoken (a build without TLS says "scheme is not http")
    let https = format!("https://{}", app.addr);
    let run = evald(&["push", &file, "--stream", "s", "--url", &https]).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains(&format!("cannot connect to {https}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not supported"), "{}", run.stderr);
    let ftp = evald(&["push", &file, "--stream", "s", "--url", "ftp://example.org"]).await;
    assert!(!ftp.ok);
    assert!(
        ftp.stderr.contains("scheme 'ftp' is not supported"),
        "{}",
        ftp.stderr
    );
    assert_eq!(count(&app, "s").await, None);
}

#[tokio::test]
async fn header_aliases_are_recognised_and_extra_columns_ignored_with_a_note() {
    let app = spawn_app().await;
    let csv = format!("user_id,score,click,ts\n{}", {
        // reorder to user_id,score,click,ts
        rows(40, ",1700000000")
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{},{}\n", f[2], f[0], f[1], f[3])
            })
            .collect::<String>()
    });
    let path = cli_file("aliases", "clicks.csv", csv.as_bytes());
    let run = evald(&[
        "push",
        &path.display().to_string(),
        "--stream",
        "aliased",
        "--url",
        &app.url(""),
    ])
    .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains("ignoring column(s) 'ts'"),
        "{}",
        run.stderr
    );
    assert_eq!(count(&app, "aliased").await, Some(40));
    let users = assert_ok(app.stream_metrics("aliased", "").await).await;
    assert_eq!(users["gauc"]["users"], 4, "{users}");
}

#[tokio::test]
async fn column_flags_map_any_header_names() {
    let app = spawn_app().await;
    let csv = format!("model_b,converted,account,w8\n{}", rows(30, ",2"));
    let path = cli_file("mapping", "export.txt", csv.as_bytes());
    let run = evald(&[
        "push",
        &path.display().to_string(),
        "--stream",
        "mapped",
        "--url",
        &app.url(""),
        "--format",
        "csv",
        "--prediction-col",
        "model_b",
        "--label-col",
        "converted",
        "--user-col",
        "account",
        "--weight-col",
        "w8",
    ])
    .await;
    assert!(run.ok, "{}", run.stderr);
    let m = assert_ok(app.stream_metrics("mapped", "").await).await;
    assert_eq!(m["count"], 30, "{m}");
    assert_eq!(m["gauc"]["users"], 4, "{m}");
    // weight 2 on every row: the weighted confusion counts add up to 60
    let weighted: f64 = ["tp", "fp", "tn", "fn"]
        .iter()
        .map(|k| m["confusion"][*k].as_f64().unwrap_or(f64::NAN))
        .sum();
    assert_eq!(weighted, 60.0, "{m}");

    let unknown = evald(&[
        "push",
        &path.display().to_string(),
        "--stream",
        "mapped",
        "--url",
        &app.url(""),
        "--format",
        "csv",
        "--prediction-col",
        "model_b",
        "--label-col",
        "nope",
    ])
    .await;
    assert!(!unknown.ok);
    assert!(
        unknown
            .stderr
            .contains("--label-col 'nope' names no column"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn tsv_files_are_read_as_tsv_by_extension_or_format() {
    let app = spawn_app().await;
    let tsv: String = format!("prediction\tlabel\tuser_id\n{}", rows(25, "")).replace(',', "\t");
    for (name, stream, extra) in [
        ("a.tsv", "tsv-ext", None),
        ("a.tsv.gz", "tsv-gz", None),
        ("a.data", "tsv-flag", Some("tsv")),
    ] {
        let bytes = if name.ends_with(".gz") {
            gzip(tsv.as_bytes())
        } else {
            tsv.clone().into_bytes()
        };
        let path = cli_file("tsv", name, &bytes);
        let file = path.display().to_string();
        let url = app.url("");
        let mut args = vec!["push", &file, "--stream", stream, "--url", &url, "--quiet"];
        if let Some(format) = extra {
            args.extend(["--format", format]);
        }
        let run = evald(&args).await;
        assert!(run.ok, "{name}: {}", run.stderr);
        assert_eq!(count(&app, stream).await, Some(25), "{name}");
    }
}

#[tokio::test]
async fn max_errors_reports_every_bad_line_up_to_the_limit_with_line_numbers() {
    let app = spawn_app().await;
    let ndjson = "{\"prediction\": 0.5, \"label\": 1}\n\
                  {\"prediction\": 0.5, \"label\": 7}\n\
                  {\"prediction\": \"x\", \"label\": 1}\n\
                  {\"prediction\": 0.1, \"label\": 0}\n\
                  not json\n";
    let path = cli_file("max-errors", "bad.ndjson", ndjson.as_bytes());
    let file = path.display().to_string();
    let url = app.url("");
    let all = evald(&["push", &file, "--stream", "bad", "--url", &url, "--quiet"]).await;
    assert!(!all.ok);
    assert!(all.stderr.contains("3 bad line(s)"), "{}", all.stderr);
    for line in ["line 2", "line 3", "line 5"] {
        assert!(all.stderr.contains(line), "{line}: {}", all.stderr);
    }
    assert_eq!(count(&app, "bad").await, None, "nothing was sent");

    let two = evald(&[
        "push",
        &file,
        "--stream",
        "bad",
        "--url",
        &url,
        "--quiet",
        "--max-errors",
        "2",
    ])
    .await;
    assert!(
        two.stderr
            .contains("2 bad line(s) (stopped looking after 2"),
        "{}",
        two.stderr
    );
    assert!(!two.stderr.contains("line 5"), "{}", two.stderr);
}

#[tokio::test]
async fn the_resume_hint_repeats_every_flag_needed_to_resume() {
    let app = spawn_app().await;
    let mut csv = format!(
        "pred,y\n{}",
        rows(10, "")
            .replace(",u", ",x")
            .lines()
            .map(|l| l.rsplit_once(',').map(|(a, _)| a).unwrap_or(l).to_owned() + "\n")
            .collect::<String>()
    );
    csv.push_str("0.5,3\n"); // line 12 is bad
    let path = cli_file("resume", "scores.dat", csv.as_bytes());
    let file = path.display().to_string();
    let url = app.url("");
    let run = evald(&[
        "push",
        &file,
        "--stream",
        "resumed",
        "--url",
        &url,
        "--quiet",
        "--format",
        "csv",
        "--records-per-request",
        "4",
    ])
    .await;
    assert!(!run.ok);
    let hint = format!(
        "evald push {file} --stream resumed --url {url} --format csv --records-per-request 4 --from-line 10"
    );
    assert!(run.stderr.contains(&hint), "no {hint:?} in {}", run.stderr);
    assert_eq!(count(&app, "resumed").await, Some(8));
}

#[tokio::test]
async fn dry_run_checks_the_file_and_sends_nothing() {
    let app = spawn_app().await;
    let good = cli_file(
        "dry-run",
        "good.csv",
        format!("score,label\n{}", rows(12, "")).as_bytes(),
    );
    // `rows` adds a third column: ignored with a note
    let url = app.url("");
    let run = evald(&[
        "push",
        &good.display().to_string(),
        "--stream",
        "dry",
        "--url",
        &url,
        "--dry-run",
    ])
    .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("12 records"), "{}", run.stdout);
    assert!(run.stdout.contains("nothing was sent"), "{}", run.stdout);
    let bad = cli_file("dry-run", "bad.csv", b"score,label\n0.5,1\n1e999,0\n");
    let run = evald(&[
        "push",
        &bad.display().to_string(),
        "--stream",
        "dry",
        "--dry-run",
    ])
    .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("line 3"), "{}", run.stderr);
    assert_eq!(count(&app, "dry").await, None);
}

#[tokio::test]
async fn the_default_output_is_a_short_table_and_json_gives_the_full_answer() {
    let app = spawn_app().await;
    let csv = format!("score,label,user_id\n{}", rows(3_000, ""));
    let path = cli_file("summary", "many.csv", csv.as_bytes());
    let file = path.display().to_string();
    let url = app.url("");
    let table = evald(&["push", &file, "--stream", "t", "--url", &url, "--quiet"]).await;
    assert!(table.ok, "{}", table.stderr);
    assert!(table.stdout.lines().count() < 20, "{}", table.stdout);
    for key in ["stream", "count", "auc", "gauc", "f1"] {
        assert!(
            table.stdout.lines().any(|l| l.starts_with(key)),
            "{key}: {}",
            table.stdout
        );
    }
    let json = evald(&[
        "push", &file, "--stream", "j", "--url", &url, "--quiet", "--json",
    ])
    .await;
    assert!(json.ok, "{}", json.stderr);
    let body: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(body["push"]["accepted"], 3_000);
    assert!(body["metrics"]["roc"].is_object(), "{body}");
}

#[tokio::test]
async fn progress_counts_the_decompressed_records_of_a_gz_file() {
    let app = spawn_app().await;
    let csv = format!(
        "score,label\n{}",
        rows(500, "")
            .replace(",u", ",")
            .lines()
            .map(|l| l.rsplit_once(',').map(|(a, _)| a).unwrap_or(l).to_owned() + "\n")
            .collect::<String>()
    );
    let path = cli_file("gz-progress", "a.csv.gz", &gzip(csv.as_bytes()));
    let run = evald(&[
        "push",
        &path.display().to_string(),
        "--stream",
        "gz",
        "--url",
        &app.url(""),
        "--records-per-request",
        "100",
    ])
    .await;
    assert!(run.ok, "{}", run.stderr);
    // stderr is a pipe: indicatif's final line only
    assert!(run.stderr.contains("100.0%"), "{}", run.stderr);
    assert!(run.stderr.contains("500 records"), "{}", run.stderr);
}

#[test]
fn the_readme_puts_evald_on_the_path_before_the_first_evald_push() {
    let readme = include_str!("../../../README.md");
    let install = readme
        .find("cargo install --path .")
        .expect("README says cargo install --path .");
    let first_push = readme.find("evald push").expect("README shows evald push");
    assert!(
        install < first_push,
        "the first `evald push` comes before the install step"
    );
}
