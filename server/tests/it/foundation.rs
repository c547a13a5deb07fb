//! The application skeleton: start-up, configuration errors, migrations on both databases,
//! health and readiness, security headers, the page shell, graceful shutdown.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Db, PgDatabase, TestApp, postgres_available, startup_error, test_config};
use reqwest::StatusCode;
use test_kit::both_databases;

const MIGRATIONS_SQLITE: &str = "../migrations/sqlite";
const MIGRATIONS_POSTGRES: &str = "../migrations/postgres";

fn migration_count(dir: &str) -> i64 {
    std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

both_databases!(
    migrations_apply_and_the_app_is_ready,
    TestApp::spawn,
    |app| {
        let dir = match app.kind {
            Db::Sqlite => MIGRATIONS_SQLITE,
            Db::Postgres => MIGRATIONS_POSTGRES,
        };
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(app.db.pool())
                .await
                .expect("the migrations table exists");
        assert_eq!(applied, migration_count(dir));
        // The tables the migrations create are usable.
        sqlx::query("INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)")
            .bind("probe")
            .bind("{}")
            .bind(0_i64)
            .execute(app.db.pool())
            .await
            .expect("sessions table");

        let health = app.get("/healthz").await;
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::OK);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["checks"]["database"], "ok");
    }
);

both_databases!(
    migrations_are_idempotent_across_restarts,
    TestApp::spawn,
    |app| {
        let dir = app.dir.path().to_path_buf();
        let database_url = match &app.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}/portcullis.db?mode=rwc", dir.display()),
        };
        // A second instance on the same database starts cleanly and applies nothing twice.
        let second = portcullis::Application::build(test_config(&dir, &database_url))
            .await
            .expect("a second start on a migrated database succeeds");
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(second.database().pool())
            .await
            .unwrap();
        let dir = if app.kind == Db::Sqlite {
            MIGRATIONS_SQLITE
        } else {
            MIGRATIONS_POSTGRES
        };
        assert_eq!(applied, migration_count(dir));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_an_unreachable_database() {
    if !postgres_available("readyz_reports_an_unreachable_database").await {
        return;
    }
    let app = TestApp::spawn(Db::Postgres).await.expect("postgres");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    // Take the database away under the running portal.
    let name = app.pg.as_ref().unwrap().name.clone();
    PgDatabase::drop_now(&name).await;

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "unreachable");
    // Liveness is about the process, not its dependencies.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_sqlite_file_is_unusable() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    // Closing the pool is what a lost database looks like to the portal.
    app.db.pool().close().await;
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn an_unsupported_database_url_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let err = portcullis::Config::load(|k| match k {
        "DATABASE_URL" => Some("mysql://root:secret@localhost/portcullis".into()),
        "DATA_DIR" => Some(dir.path().display().to_string()),
        _ => None,
    })
    .unwrap_err();
    let line = err.to_string();
    assert!(line.contains("DATABASE_URL"), "{line}");
    assert!(!line.contains("secret"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let config = test_config(
        dir.path(),
        "postgres://portcullis:topsecret@127.0.0.1:1/portcullis?connect_timeout=2",
    );
    let err = startup_error(config).await.to_string();
    assert!(err.starts_with("DATABASE_URL:"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_stops_start_up_naming_the_setting() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        dir.path(),
        &format!("sqlite://{}/p.db?mode=rwc", dir.path().display()),
    );
    config.listen_addr = format!("127.0.0.1:{port}").parse().unwrap();
    let err = startup_error(config).await.to_string();
    assert!(err.starts_with("LISTEN_ADDR:"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

/// Runs the real binary with `env` and returns (exit code, stderr) once it exits.
fn run_binary_expecting_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("SANDBOX_ORG_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start the portcullis binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not exit with env {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_refuses_bad_settings_with_one_line_naming_them() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    for (setting, value) in [
        ("DATABASE_URL", "mysql://root@localhost/portcullis"),
        (
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
        ),
        ("LISTEN_ADDR", "localhost:3000"),
        ("LISTEN_ADDR", "127.0.0.1:70000"),
        ("LISTEN_ADDR", taken.as_str()),
        ("LOG_FORMAT", "yaml"),
    ] {
        let (code, stderr) = run_binary_expecting_exit(&[(setting, value)]);
        assert_ne!(code, Some(0), "{setting}={value} must stop start-up");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("portcullis:"))
            .unwrap_or_else(|| panic!("{setting}={value}: no error line in {stderr:?}"));
        assert!(line.contains(setting), "{setting}={value}: {line}");
    }
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env("DATA_DIR", dir.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("SANDBOX_ORG_LISTEN", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the portcullis binary");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut line).unwrap();
    // Keep reading: the portal prints more lines (the sandbox org's URL).
    std::thread::spawn(move || for _ in reader.lines() {});
    let url = line
        .trim()
        .strip_prefix("Portcullis is running at ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    // The default database is a SQLite file under DATA_DIR.
    assert!(dir.path().join("portcullis.db").exists());

    let body = std::process::Command::new("curl")
        .args(["-sf", &format!("{url}/healthz")])
        .output()
        .expect("curl");
    assert!(String::from_utf8_lossy(&body.stdout).contains("ok"));

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_running_application_finish() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let url = app.url.clone();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("stops promptly")
        .expect("stops without error");
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_security_headers() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    for path in ["/", "/healthz", "/does-not-exist", "/request"] {
        let response = app.get(path).await;
        let headers = response.headers();
        for name in [
            "content-security-policy",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
            "permissions-policy",
            "cross-origin-opener-policy",
        ] {
            assert!(headers.contains_key(name), "{path} lacks {name}");
        }
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    // No HSTS over plain http.
    assert!(
        !app.get("/")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_scripts_carry_the_csp_nonce_of_their_response() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let response = app.get("/").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the CSP")
        .to_string();
    let html = response.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0, "the hydration script is inline");
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every inline script carries this response's nonce"
    );
    // A second response gets a different nonce.
    let again = app.get("/").await;
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_pages_render_on_the_server_with_their_headings() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    for (path, status, heading) in [
        ("/", StatusCode::OK, "<h1>Portcullis</h1>"),
        ("/request", StatusCode::OK, "<h1>Request access</h1>"),
        ("/admin", StatusCode::OK, "<h1>Admin dashboard</h1>"),
        ("/audit", StatusCode::OK, "<h1>Audit log</h1>"),
        (
            "/no/such/page",
            StatusCode::NOT_FOUND,
            "<h1>Page not found</h1>",
        ),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store",
            "{path}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(heading), "{path}: {heading} not in page");
        assert!(html.contains("aria-label=\"Main\""), "{path}: navigation");
    }
}

/// The contractor's pages load the contractor's bundle once `scripts/build` has put it in the
/// site; every other page, and every page of a site without it (`scripts/leptos watch` builds
/// the full bundle only), loads the full one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contractor_pages_get_the_contractors_bundle_when_it_is_built() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let root = site.path().to_path_buf();
    let app = TestApp::spawn_with(Db::Sqlite, |config| config.site_root = root.clone())
        .await
        .unwrap();
    let loads = |html: &str| {
        let contractor = html.contains("/pkg/portcullis-contractor.wasm")
            && html.contains("\"portcullis-contractor\"");
        let full = html.contains("/pkg/portcullis.wasm") && html.contains("\"portcullis\"");
        match (contractor, full) {
            (true, false) => "contractor",
            (false, true) => "full",
            _ => "unclear",
        }
    };
    let contractor_pages = [
        "/",
        "/request",
        "/verify/no-such-token",
        "/status/no-such-token",
        "/status/no-such-token/usage",
        "/reveal/no-such-token",
    ];
    let other_pages = [
        "/admin",
        "/admin/usage",
        "/audit",
        "/outbox",
        "/auth/failed",
        "/request/",
        "/no/such/page",
    ];

    // Only the full bundle in the site: every page loads it.
    for path in contractor_pages.iter().chain(&other_pages) {
        let html = app.get(path).await.text().await.unwrap();
        assert_eq!(loads(&html), "full", "{path} without a contractor's bundle");
    }

    // With the contractor's bundle (its script and its wasm) beside it.
    std::fs::write(pkg.join("portcullis-contractor.js"), "").unwrap();
    std::fs::write(pkg.join("portcullis-contractor.wasm"), "").unwrap();
    for path in contractor_pages {
        let html = app.get(path).await.text().await.unwrap();
        assert_eq!(loads(&html), "contractor", "{path}");
    }
    for path in other_pages {
        let html = app.get(path).await.text().await.unwrap();
        assert_eq!(loads(&html), "full", "{path}");
    }
}

/// `portcullis --help` lists every setting as declared (name, help and default), the same
/// declarations the README's table and the TOML keys are checked against.
#[test]
fn help_lists_every_declared_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains(portcullis::config::help_text().trim_end()),
        "{help}"
    );
    for setting in portcullis::config::all_settings() {
        assert!(
            help.contains(setting.name()),
            "{} in {help}",
            setting.name()
        );
    }
}
