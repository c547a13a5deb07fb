//! A standalone sandbox org (the real `portcullis sandbox-org` process, over HTTPS) and a
//! Salesforce client connected to it as the portal connects: JWT bearer with the portal
//! app's key, trusting the org's self-signed certificate.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use salesforce::metadata::{ApiName, DeployOptions, ExternalClientAppSpec};
use salesforce::soql::Order;
use salesforce::{Client, ClientConfig, Cond, PortalAuth, SalesforceId, SecretString, Soql, Url};
use serde_json::{Value, json};

pub struct StandaloneOrg {
    child: Child,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub provisioner: String,
    pub key_pem: String,
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
}

impl StandaloneOrg {
    /// Starts `portcullis sandbox-org` on a free port over HTTPS.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`StandaloneOrg::start`], with more command-line arguments.
    pub fn start_with(args: &[&str]) -> Self {
        super::init_crypto();
        let dir = tempfile::tempdir().expect("state directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "sandbox-org",
                "--listen",
                "127.0.0.1:0",
                "--app-activation-seconds",
                "0",
                "--state",
            ])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start portcullis sandbox-org");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            let last = line.trim_start().starts_with("Control API");
            banner.push(line);
            if last {
                break;
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let field = |prefix: &str| {
            banner
                .iter()
                .find_map(|l| {
                    l.trim_start()
                        .strip_prefix(prefix)
                        .map(|v| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("'{prefix}' not in the banner: {banner:?}"))
        };
        let base_url = field("Sandbox org running at ");
        let key_path = field("Portal app JWT key: ");
        Self {
            base_url,
            client_id: field("Portal app client id: "),
            client_secret: field("Portal app client secret: "),
            provisioner: field("Provisioning user: "),
            key_pem: std::fs::read_to_string(&key_path).expect("the portal app's key"),
            ca_file: PathBuf::from(field("TLS certificate (trust it in clients): ")),
            child,
            dir,
        }
    }

    /// A client acting as the provisioning user (System Administrator), by JWT bearer.
    pub fn admin_client(&self) -> Client {
        let mut config = ClientConfig::new(
            Url::parse(&self.base_url).unwrap(),
            PortalAuth::JwtBearer {
                client_id: self.client_id.clone(),
                username: self.provisioner.clone(),
                private_key_pem: SecretString::from(self.key_pem.clone()),
                audience: self.base_url.clone(),
            },
        );
        config.ca_file = Some(self.ca_file.clone());
        Client::new(config).expect("a client")
    }

    /// A raw HTTP client trusting the org's certificate.
    pub fn http(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca_file).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }
}

impl Drop for StandaloneOrg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`provision_contractor`] made.
pub struct Contractor {
    pub user_id: SalesforceId,
    pub username: String,
    pub permission_set: String,
    pub app_id: String,
    pub consumer_key: String,
    pub consumer_secret: String,
}

pub async fn id_of(client: &Client, soql: Soql) -> SalesforceId {
    let page = client.query::<Value>(&soql).await.expect("lookup query");
    let id = page
        .records
        .first()
        .and_then(|r| r["Id"].as_str())
        .unwrap_or_else(|| panic!("no record for {soql:?}"));
    SalesforceId::parse(id).unwrap()
}

/// What seed 000 does by hand, done with the client: an API-only integration user, the
/// API integration licence, a permission set (Read on Case with Subject, Description and
/// Priority; Edit on Case, so Status can be changed), its assignment, manual shares of the
/// chosen cases, and an External Client App with client credentials running as the user,
/// admin-approved for the permission set. Returns the app's consumer key and secret.
pub async fn provision_contractor(
    client: &Client,
    name: &str,
    case_ids: &[SalesforceId],
) -> Contractor {
    let profile = id_of(
        client,
        Soql::select(&["Id"])
            .from("Profile")
            .filter(Cond::eq("Name", "Minimum Access - API Only Integrations"))
            .build()
            .unwrap(),
    )
    .await;
    let psl = id_of(
        client,
        Soql::select(&["Id"])
            .from("PermissionSetLicense")
            .filter(Cond::eq("DeveloperName", "SalesforceAPIIntegrationPsl"))
            .build()
            .unwrap(),
    )
    .await;
    let username = format!("{}.integration@contractors.example", name.to_lowercase());
    let user_id = client
        .create(
            "User",
            &json!({
                "Username": username, "LastName": format!("{name} Integration"), "Email": "ops@contractors.example",
                "Alias": name.chars().take(8).collect::<String>(), "TimeZoneSidKey": "Europe/London",
                "LocaleSidKey": "en_GB", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
                "ProfileId": profile,
            }),
        )
        .await
        .expect("create the integration user");
    client
        .create(
            "PermissionSetLicenseAssign",
            &json!({ "AssigneeId": user_id, "PermissionSetLicenseId": psl }),
        )
        .await
        .expect("assign the API integration licence");
    let permission_set = format!("{name}_Contractor_API");
    let ps = client
        .create("PermissionSet", &json!({ "Name": permission_set, "Label": format!("{name} contractor API"), "LicenseId": psl }))
        .await
        .expect("create the permission set");
    client
        .create(
            "ObjectPermissions",
            &json!({ "ParentId": ps, "SobjectType": "Case", "PermissionsRead": true, "PermissionsEdit": true }),
        )
        .await
        .expect("object permissions");
    let field_permissions: Vec<Value> = ["Subject", "Description", "Priority"]
        .iter()
        .map(|f| json!({ "ParentId": ps, "SobjectType": "Case", "Field": format!("Case.{f}"), "PermissionsRead": true, "PermissionsEdit": false }))
        .collect();
    for result in client
        .create_collection("FieldPermissions", &field_permissions, true)
        .await
        .expect("field permissions")
    {
        assert!(result.success, "{result:?}");
    }
    let expires = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
    client
        .create(
            "PermissionSetAssignment",
            &json!({ "AssigneeId": user_id, "PermissionSetId": ps, "ExpirationDate": expires }),
        )
        .await
        .expect("assign the permission set");
    // The app is pre-authorised through a licence-less permission set: one tied to the API
    // Integration licence cannot be assigned apps (issue 14, item 3).
    let app_permission_set = format!("{name}_Contractor_App");
    let app_ps = client
        .create(
            "PermissionSet",
            &json!({ "Name": app_permission_set, "Label": format!("{name} contractor app") }),
        )
        .await
        .expect("create the app's permission set");
    client
        .create(
            "PermissionSetAssignment",
            &json!({ "AssigneeId": user_id, "PermissionSetId": app_ps, "ExpirationDate": expires }),
        )
        .await
        .expect("assign the app's permission set");
    let shares: Vec<Value> = case_ids
        .iter()
        .map(|c| json!({ "CaseId": c, "UserOrGroupId": user_id, "CaseAccessLevel": "Edit" }))
        .collect();
    if !shares.is_empty() {
        for result in client
            .create_collection("CaseShare", &shares, true)
            .await
            .expect("share the cases")
        {
            assert!(result.success, "{result:?}");
        }
    }
    let spec = ExternalClientAppSpec {
        name: ApiName::parse(&format!("{name}_Contractor")).unwrap(),
        label: format!("{name} contractor"),
        contact_email: "it@acme.example".into(),
        description: format!("API access for {name}"),
        scopes: vec!["Api".into()],
        client_credentials_run_as: username.clone(),
        permission_set_names: vec![ApiName::parse(&app_permission_set).unwrap()],
        trusted_ip_ranges: vec![],
        callback_url: Url::parse("https://login.salesforce.com/services/oauth2/success").unwrap(),
        pkce_required: true,
    };
    let zip = spec
        .build_zip(client.api_version())
        .expect("the deploy zip");
    let result = client
        .deploy_and_wait(
            &zip,
            &DeployOptions::default(),
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .await
        .expect("deploy the External Client App");
    assert!(result.success, "the deploy succeeded");
    // The app's id is looked up, not taken from the deploy result (issue 14, item 7).
    let app_id = client
        .oauth_usage_apps()
        .await
        .expect("the org's apps")
        .into_iter()
        .find(|a| a.developer_name == spec.name.as_str())
        .map(|a| a.identifier)
        .expect("the new app in GET /apps/oauth/usage");
    let consumers = client
        .app_credentials(&app_id)
        .await
        .expect("the app's consumers");
    let consumer = client
        .consumer_credential(
            &app_id,
            &consumers[0].id,
            salesforce::connect::CredentialPart::KeyAndSecret,
        )
        .await
        .expect("key and secret");
    use salesforce::ExposeSecret;
    Contractor {
        user_id,
        username,
        permission_set,
        app_id,
        consumer_key: consumer.key.expect("a key"),
        consumer_secret: consumer
            .secret
            .expect("a secret")
            .expose_secret()
            .to_string(),
    }
}

/// The first `n` cases, by case number.
pub async fn first_cases(client: &Client, n: u32) -> Vec<SalesforceId> {
    let page = client
        .query::<Value>(
            &Soql::select(&["Id"])
                .from("Case")
                .order_by("CaseNumber", Order::Asc)
                .limit(n)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    page.records
        .iter()
        .map(|r| SalesforceId::parse(r["Id"].as_str().unwrap()).unwrap())
        .collect()
}
