//! The portal in org mode against a sandbox org standing in for a real org of a given kind
//! (issue 14): staff sign-in with the JWT bearer flow, and the JWT audience.

use crate::common;

use std::path::PathBuf;

use common::portal::{self, ALEX};
use common::{Db, TestApp};
use sandbox_org::store::OrgKind;
use sandbox_org::{SandboxConfig, SandboxOrg};

/// A sandbox org of `kind` over HTTP, whose portal app calls back to a portal on `port`.
struct Stand {
    org: SandboxOrg,
    port: u16,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn stand(kind: OrgKind) -> Stand {
    common::init_crypto();
    let port = free_port();
    let org = SandboxOrg::start(SandboxConfig {
        portal_callbacks: vec![format!("http://127.0.0.1:{port}/auth/callback")],
        kind: Some(kind),
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox org starts");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("portal-app-key.pem");
    std::fs::write(&key_file, org.portal_private_key_pem().unwrap()).unwrap();
    Stand {
        org,
        port,
        key_file,
        _dir: dir,
    }
}

impl Stand {
    fn credential(&self, key: &str) -> String {
        self.org.credentials()[key].as_str().unwrap().to_string()
    }

    /// The org-mode settings of a portal using the JWT bearer flow (the preferred mode),
    /// with the consumer secret for sign-in when `secret`, plus `extra`.
    fn env(&self, secret: bool, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SALESFORCE_MODE".to_string(), "org".to_string()),
            (
                "SALESFORCE_URL".to_string(),
                self.org.base_url().to_string(),
            ),
            (
                "SALESFORCE_CLIENT_ID".to_string(),
                self.credential("portalClientId"),
            ),
            (
                "SALESFORCE_JWT_KEY_FILE".to_string(),
                self.key_file.display().to_string(),
            ),
            (
                "SALESFORCE_USERNAME".to_string(),
                self.credential("provisionerUsername"),
            ),
            (
                "LISTEN_ADDR".to_string(),
                format!("127.0.0.1:{}", self.port),
            ),
        ];
        if secret {
            env.push((
                "SALESFORCE_CLIENT_SECRET".to_string(),
                self.credential("portalClientSecret"),
            ));
        }
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        env
    }
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn spawn(kind: Db, env: &[(String, String)]) -> Option<TestApp> {
    TestApp::spawn_env(kind, &pairs(env), |_| {}).await
}

/// Item 1: with the JWT key and `SALESFORCE_CLIENT_SECRET`, a staff member signs in (the
/// code exchange carries the secret the org requires).
async fn staff_sign_in_in_jwt_mode(db: Db) {
    // A production org: the audience is not what this test is about.
    let stand = stand(OrgKind::Production).await;
    let Some(app) = spawn(db, &stand.env(true, &[])).await else {
        return;
    };
    let client = portal::browser();
    portal::sign_in(&app, &client, ALEX).await;
    let viewer = portal::viewer(&app, &client).await;
    assert_eq!(viewer["user"]["username"], ALEX.0, "{viewer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_staff_sign_in_sends_the_client_secret_sqlite() {
    staff_sign_in_in_jwt_mode(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_staff_sign_in_sends_the_client_secret_postgres() {
    staff_sign_in_in_jwt_mode(Db::Postgres).await;
}

/// Item 1: JWT mode without the secret, against an org that requires it, refuses to start
/// and names the setting; when the app makes the secret optional it starts and signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_without_the_secret_names_the_setting_or_works_when_optional() {
    let stand = stand(OrgKind::Production).await;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/p.db?mode=rwc", dir.path().display());
    let config = common::test_config_with(dir.path(), &database, &pairs(&stand.env(false, &[])));
    let error = common::startup_error(config).await.to_string();
    assert!(error.contains("SALESFORCE_CLIENT_SECRET"), "{error}");
    assert!(
        error.contains("Require secret for web server flow"),
        "{error}"
    );

    for app in stand.org.org.write().apps.values_mut() {
        app.consumer_secret_optional = true;
    }
    let app = spawn(Db::Sqlite, &stand.env(false, &[])).await.unwrap();
    let client = portal::browser();
    portal::sign_in(&app, &client, ALEX).await;
}

/// Item 2: the portal's JWT audience is the My Domain URL, which a sandbox accepts (it
/// refuses login.salesforce.com); `SALESFORCE_JWT_AUDIENCE` overrides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_audience_is_the_my_domain_url_so_a_sandbox_accepts_it() {
    let sandbox = stand(OrgKind::Sandbox).await;
    let app = spawn(Db::Sqlite, &sandbox.env(true, &[])).await.unwrap();
    let client = portal::browser();
    // Sign-in reads the person's permission sets with the portal's own (JWT) token.
    portal::sign_in(&app, &client, ALEX).await;
    app.stop().await.unwrap();

    // Told to use login.salesforce.com, the portal's token is refused by a sandbox, and
    // nobody can sign in (the portal cannot read their permission sets).
    let env = sandbox.env(
        true,
        &[("SALESFORCE_JWT_AUDIENCE", "https://login.salesforce.com")],
    );
    let app = spawn(Db::Sqlite, &env).await.unwrap();
    let client = portal::browser();
    let flow = portal::SignIn::start(&app, &client).await;
    let callback = flow.log_in(&client, ALEX, &[]).await;
    let next = portal::finish(&client, &callback).await;
    assert_ne!(next, "/admin", "signed in with a refused portal token");
    app.stop().await.unwrap();

    // The override is honoured: a production org takes login.salesforce.com.
    let production = stand(OrgKind::Production).await;
    let env = production.env(
        true,
        &[("SALESFORCE_JWT_AUDIENCE", "https://login.salesforce.com")],
    );
    let app = spawn(Db::Sqlite, &env).await.unwrap();
    let client = portal::browser();
    portal::sign_in(&app, &client, ALEX).await;
}
