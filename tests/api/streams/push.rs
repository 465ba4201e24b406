//! `evald push`: the real binary streams a local file into a running server.

use std::process::Command;

use crate::helpers::{assert_matches_one_shot, assert_ok, gzip, spawn_app, TestApp};
use serde_json::{json, Value};

/// Writes `bytes` to `name` in a directory of its own for `test` (tests run
/// in parallel and some use the same file name).
fn temp_file(test: &str, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("evald-push-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Runs `evald push` off the async runtime; returns (success, stdout, stderr).
async fn push(args: Vec<String>) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_evald"))
            .arg("push")
            .args(args)
            .output()
            .expect("run evald push")
    })
    .await
    .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn push_streams_a_gzipped_csv_and_prints_the_metrics() {
    let app = spawn_app().await;
    let mut csv = String::from("user_id,prediction,label\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "u{},{},{}\n",
            i % 7,
            f64::from(i % 50) / 50.0,
            u8::from(i % 50 > 20 + i % 9)
        ));
    }
    let path = temp_file("gzipped-csv", "clicks.csv.gz", &gzip(csv.as_bytes()));
    let (ok, stdout, stderr) = push(vec![
        path.display().to_string(),
        "--stream".into(),
        "pushed".into(),
        "--url".into(),
        app.url(""),
        "--json".into(),
    ])
    .await;
    assert!(ok, "push failed: {stderr}");
    assert!(stdout.contains("\"accepted\": 300"), "{stdout}");
    assert!(stdout.contains("\"gauc\""), "{stdout}");
    assert!(
        stderr.contains("100.0%"),
        "no final progress line: {stderr}"
    );
    let stream = assert_ok(app.stream_metrics("pushed", "").await).await;
    assert_eq!(stream["count"], 300);
    assert_eq!(stream["gauc"]["users"], 7);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn push_of_a_bad_ndjson_file_fails_with_the_servers_detail_and_applies_nothing() {
    let app = spawn_app().await;
    let path = temp_file(
        "bad-ndjson",
        "bad.ndjson",
        b"{\"prediction\": 0.5, \"label\": 1}\n{\"prediction\": 0.5, \"label\": 7}\n",
    );
    let (ok, _, stderr) = push(vec![
        path.display().to_string(),
        "--stream".into(),
        "never".into(),
        "--url".into(),
        app.url(""),
        "--quiet".into(),
    ])
    .await;
    assert!(!ok, "a bad file was accepted");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(app.stream_metrics("never", "").await.status().as_u16(), 404);
}

/// `n` deterministic records: (score with 3 decimals, label, user, weight).
fn records(n: u32) -> Vec<(f64, u8, String, f64)> {
    (0..n)
        .map(|i| {
            let score = f64::from((i * 7919) % 1000) / 1000.0;
            let label = u8::from((i * 7919) % 1000 > 300 + (i % 11) * 40);
            let user = match i % 5 {
                0 => "a,b".to_owned(), // a comma: must be quoted in CSV
                1 => "say \"hi\"".to_owned(),
                k => format!("u{k}"),
            };
            let weight = if i % 3 == 0 { 2.5 } else { 1.0 };
            (score, label, user, weight)
        })
        .collect()
}

fn as_ndjson(recs: &[(f64, u8, String, f64)]) -> String {
    recs.iter()
        .map(|(s, l, u, w)| {
            format!(
                "{}\n",
                json!({"prediction": s, "label": l, "user_id": u, "weight": w})
            )
        })
        .collect()
}

fn as_csv(recs: &[(f64, u8, String, f64)]) -> String {
    let mut out = String::from("prediction,label,user_id,weight\r\n");
    for (s, l, u, w) in recs {
        let quoted = format!("\"{}\"", u.replace('"', "\"\""));
        out.push_str(&format!("{s},{l},{quoted},{w}\r\n"));
    }
    out
}

/// `POST /metrics` over the records, with the stream's default parameters.
async fn one_shot(app: &TestApp, recs: &[(f64, u8, String, f64)]) -> Value {
    let body = json!({
        "predictions": recs.iter().map(|r| r.0).collect::<Vec<_>>(),
        "labels": recs.iter().map(|r| r.1).collect::<Vec<_>>(),
        "user_ids": recs.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        "sample_weights": recs.iter().map(|r| r.3).collect::<Vec<_>>(),
    });
    assert_ok(app.post_metrics(&body).await).await
}

fn push_args(path: &std::path::Path, stream: &str, app: &TestApp, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        path.display().to_string(),
        "--stream".into(),
        stream.into(),
        "--url".into(),
        app.url(""),
        "--quiet".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[tokio::test]
async fn a_file_bigger_than_one_request_is_sent_in_chunks_and_equals_the_one_shot_metrics() {
    let app = spawn_app().await;
    let recs = records(5_500);
    let expected = one_shot(&app, &recs).await;
    for (name, stream, text) in [
        ("chunks.ndjson", "chunked-ndjson", as_ndjson(&recs)),
        ("chunks.csv", "chunked-csv", as_csv(&recs)),
    ] {
        let path = temp_file("chunks", name, text.as_bytes());
        let (ok, stdout, stderr) = push(push_args(
            &path,
            stream,
            &app,
            &["--records-per-request", "1000"],
        ))
        .await;
        assert!(ok, "{name}: push failed: {stderr}");
        assert!(stdout.contains("\"requests\": 6"), "{name}: {stdout}");
        assert!(stdout.contains("\"accepted\": 5500"), "{name}: {stdout}");
        let got = assert_ok(app.stream_metrics(stream, "").await).await;
        assert_matches_one_shot(&got, &expected, name);
        // the quoted user id with a comma is one user, not a split row
        let user = assert_ok(app.user_metrics(stream, "a,b", "").await).await;
        assert_eq!(user["count"], 1_100, "{name}: {user}");
        let _ = std::fs::remove_file(&path);
    }
}

#[tokio::test]
async fn a_bad_line_in_a_later_request_names_its_file_line_keeps_the_earlier_requests_and_can_be_resumed(
) {
    let app = spawn_app().await;
    let recs = records(3_500);
    // NDJSON refused by the server, and CSV refused by the client's converter.
    let mut ndjson: Vec<String> = as_ndjson(&recs).lines().map(str::to_owned).collect();
    ndjson[2_502] = r#"{"prediction": 0.5, "label": 7}"#.to_owned(); // file line 2503
    let mut csv: Vec<String> = as_csv(&recs).lines().map(str::to_owned).collect();
    csv[2_503] = "0.5,7,u9,1".to_owned(); // file line 2504 (line 1 is the header)
    for (name, stream, lines, bad_line, resume_at) in [
        ("bad.ndjson", "resumed-ndjson", ndjson, 2_503, 2_001),
        ("bad.csv", "resumed-csv", csv, 2_504, 2_002),
    ] {
        let path = temp_file("resumed", name, (lines.join("\n") + "\n").as_bytes());
        let (ok, _, stderr) = push(push_args(
            &path,
            stream,
            &app,
            &["--records-per-request", "1000"],
        ))
        .await;
        assert!(!ok, "{name}: a bad file was accepted");
        assert!(
            stderr.contains(&format!("line {bad_line}")),
            "{name}: the error does not name file line {bad_line}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("--from-line {resume_at}")),
            "{name}: no resume hint: {stderr}"
        );
        // requests 1 and 2 were applied, nothing of the third
        let partial = assert_ok(app.stream_metrics(stream, "").await).await;
        assert_eq!(partial["count"], 2_000, "{name}: {partial}");

        // fix the line and resume where the message said
        let mut fixed = lines.clone();
        let good = if name.ends_with(".csv") {
            as_csv(&recs[2_502..2_503])
                .lines()
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        } else {
            as_ndjson(&recs[2_502..2_503]).trim_end().to_owned()
        };
        fixed[bad_line - 1] = good;
        std::fs::write(&path, fixed.join("\n") + "\n").unwrap_or_default();
        let resume = resume_at.to_string();
        let (ok, stdout, stderr) = push(push_args(
            &path,
            stream,
            &app,
            &["--records-per-request", "1000", "--from-line", &resume],
        ))
        .await;
        assert!(ok, "{name}: resume failed: {stderr}");
        assert!(stdout.contains("\"accepted\": 1500"), "{name}: {stdout}");
        let whole = assert_ok(app.stream_metrics(stream, "").await).await;
        assert_matches_one_shot(&whole, &one_shot(&app, &recs).await, name);
        let _ = std::fs::remove_file(&path);
    }
}
