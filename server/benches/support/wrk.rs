//! Load with `wrk` (Debian's package) and its `--latency` report, for the page benchmarks.

use std::process::Command;
use std::sync::Arc;

use reqwest::cookie::CookieStore;

use crate::common::{TestApp, portal};

/// A client signed in as `who` through the sandbox org's login page, and its session cookie
/// (for wrk's `Cookie:` header).
pub async fn signed_in(app: &TestApp, who: (&str, &str)) -> (reqwest::Client, String) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    portal::sign_in(app, &client, who).await;
    let cookie = jar
        .cookies(&app.url.parse().expect("portal URL"))
        .expect("a session cookie after signing in")
        .to_str()
        .expect("cookie header")
        .to_string();
    (client, cookie)
}

/// Exits with a clear message when wrk is missing.
pub fn require_wrk(bench: &str) {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("{bench}: wrk is not installed (apt-get install wrk)");
        std::process::exit(1);
    }
}

/// Runs wrk against `url` with the session `cookie` (and a Lua script, for POSTs), and
/// returns its report; panics on socket errors or non-2xx answers, so a signed-out or
/// broken page never looks fast.
pub async fn load(
    name: &str,
    url: &str,
    cookie: &str,
    connections: u64,
    seconds: u64,
    lua: Option<&std::path::Path>,
) -> Report {
    let mut args = vec![
        "--latency".to_string(),
        "-t".into(),
        connections.clamp(1, 2).to_string(),
        "-c".into(),
        connections.to_string(),
        "-d".into(),
        format!("{seconds}s"),
        "-H".into(),
        format!("Cookie: {cookie}"),
    ];
    if let Some(path) = lua {
        args.extend(["-s".to_string(), path.display().to_string()]);
    }
    args.push(url.to_string());
    let output = tokio::task::spawn_blocking(move || Command::new("wrk").args(&args).output())
        .await
        .expect("wrk task")
        .expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}");
    let report = Report::parse(&text).unwrap_or_else(|| panic!("wrk output:\n{text}"));
    assert!(
        report.errors.is_none(),
        "{name}: {} (wrk output:\n{text})",
        report.errors.as_deref().unwrap_or_default()
    );
    report
}

/// What the benches read from wrk's `--latency` report.
pub struct Report {
    pub p50: String,
    pub p90: String,
    pub p99: String,
    pub rate: String,
    pub requests: String,
    /// Socket errors or non-2xx answers, if any.
    pub errors: Option<String>,
}

impl Report {
    fn parse(text: &str) -> Option<Self> {
        let percentile = |p: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(p))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_string)
        };
        let after = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(prefix))
                .map(|l| l[prefix.len()..].trim().to_string())
        };
        let requests = text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)?;
        let errors = [after("Socket errors:"), after("Non-2xx or 3xx responses:")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        Some(Self {
            p50: percentile("50%")?,
            p90: percentile("90%")?,
            p99: percentile("99%")?,
            rate: after("Requests/sec:")?,
            requests,
            errors: (!errors.is_empty()).then(|| errors.join("; ")),
        })
    }
}
