//! The portal's connection to its Salesforce org: the client it provisions and reads with
//! (JWT bearer or client credentials), and the web-server flow its people sign in with.
//! In the default mode both point at the built-in sandbox org.

use std::path::PathBuf;

use salesforce::oauth_web::{WebFlowConfig, WebServerFlow};
use salesforce::{Client, ClientConfig, PortalAuth, SecretString, Url};

use crate::config::{OrgAuth, OrgConnection};

/// Why the portal cannot talk to its org. Names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("{setting}: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
}

/// The portal's org.
#[derive(Clone, Debug)]
pub struct Org {
    pub url: Url,
    pub client: Client,
    pub sign_in: WebServerFlow,
    /// The org is the built-in sandbox org (its control API and outbox page exist).
    pub sandbox: bool,
    /// The org's id (15 characters), once known.
    id: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// What `portcullis doctor` and `/admin/org` check the org against.
    pub doctor: services::doctor::Target,
}

impl Org {
    /// Connects to the built-in sandbox org with the credentials it was seeded with.
    /// `ca_file` is the sandbox org's certificate (it serves HTTPS).
    pub fn sandbox(
        org: &sandbox_org::SandboxOrg,
        portal_url: &str,
        ca_file: Option<PathBuf>,
    ) -> Result<Self, OrgError> {
        let credentials = org.credentials();
        let text = |key: &str| credentials[key].as_str().unwrap_or_default().to_string();
        let key = org
            .portal_private_key_pem()
            .ok_or_else(|| OrgError::Setting {
                setting: "SANDBOX_ORG_LISTEN",
                message: "the sandbox org has no portal app key".into(),
            })?;
        let org_id = text("orgId");
        let built = Self::build(
            parse_url("SANDBOX_ORG_LISTEN", org.base_url())?,
            text("portalClientId"),
            ca_file,
            PortalAuth::JwtBearer {
                client_id: text("portalClientId"),
                username: text("provisionerUsername"),
                private_key_pem: SecretString::from(key),
                audience: org.base_url().to_string(),
            },
            Some(text("portalClientSecret")),
            portal_url,
            true,
        )?;
        if org_id.len() >= 15 {
            let _ = built.id.set(org_id[..15].to_string());
        }
        Ok(built)
    }

    /// The org's id (its 15-character form), read from the org once
    /// (`SELECT Id FROM Organization`, one API call) and remembered.
    pub async fn id(&self) -> Result<String, String> {
        self.id
            .get_or_try_init(|| async {
                let soql = salesforce::Soql::trusted("SELECT Id FROM Organization LIMIT 1");
                let page = self
                    .client
                    .query::<serde_json::Value>(&soql)
                    .await
                    .map_err(|e| e.to_string())?;
                page.records
                    .first()
                    .and_then(|r| r["Id"].as_str())
                    .filter(|id| id.len() >= 15)
                    .map(|id| id[..15].to_string())
                    .ok_or_else(|| "the org did not say its id".to_string())
            })
            .await
            .cloned()
    }

    /// Connects to a real org from the `SALESFORCE_*` settings.
    pub fn real(connection: &OrgConnection, portal_url: &str) -> Result<Self, OrgError> {
        let (auth, secret) = match &connection.auth {
            OrgAuth::JwtBearer {
                username,
                key_file,
                sign_in_secret,
            } => {
                let key = std::fs::read_to_string(key_file).map_err(|e| OrgError::Setting {
                    setting: "SALESFORCE_JWT_KEY_FILE",
                    message: format!("cannot read {}: {e}", key_file.display()),
                })?;
                (
                    PortalAuth::JwtBearer {
                        client_id: connection.client_id.clone(),
                        username: username.clone(),
                        private_key_pem: SecretString::from(key),
                        audience: jwt_audience(connection),
                    },
                    sign_in_secret.clone(),
                )
            }
            OrgAuth::ClientCredentials { secret } => (
                PortalAuth::ClientCredentials {
                    client_id: connection.client_id.clone(),
                    client_secret: SecretString::from(secret.clone()),
                },
                Some(secret.clone()),
            ),
        };
        Self::build(
            connection.url.clone(),
            connection.client_id.clone(),
            connection.ca_file.clone(),
            auth,
            secret,
            portal_url,
            false,
        )
    }

    /// In JWT mode without `SALESFORCE_CLIENT_SECRET`: asks the org whether staff sign-in
    /// needs the consumer secret, and refuses to start if it does (every sign-in would fail
    /// with `invalid_client`). An org that cannot be asked now is not a reason to stop.
    pub async fn check_sign_in_secret(&self, connection: &OrgConnection) -> Result<(), OrgError> {
        if !matches!(
            connection.auth,
            OrgAuth::JwtBearer {
                sign_in_secret: None,
                ..
            }
        ) {
            return Ok(());
        }
        match self.sign_in.secret_required().await {
            Ok(Some(true)) => Err(OrgError::Setting {
                setting: "SALESFORCE_CLIENT_SECRET",
                message: "the org requires the portal app's consumer secret for staff sign-in \
                          (the app's \"Require secret for web server flow\" is on): set \
                          SALESFORCE_CLIENT_SECRET beside SALESFORCE_JWT_KEY_FILE (it is then \
                          used for sign-in only), or turn that setting off in the app's OAuth \
                          settings"
                    .into(),
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask the org whether staff sign-in needs the consumer secret");
                Ok(())
            }
        }
    }

    fn build(
        url: Url,
        client_id: String,
        ca_file: Option<PathBuf>,
        auth: PortalAuth,
        sign_in_secret: Option<String>,
        portal_url: &str,
        sandbox: bool,
    ) -> Result<Self, OrgError> {
        let doctor = services::doctor::Target {
            org_url: url.clone(),
            client_id: client_id.clone(),
            callback_url: format!("{}/auth/callback", portal_url.trim_end_matches('/')),
            sign_in_secret: sign_in_secret.is_some(),
            auth: match &auth {
                PortalAuth::JwtBearer { username, .. } => services::doctor::AuthMode::JwtBearer {
                    username: username.clone(),
                },
                _ => services::doctor::AuthMode::ClientCredentials,
            },
            catalog_objects: services::catalog::CATALOG_OBJECTS
                .iter()
                .map(|o| o.to_string())
                .collect(),
        };
        let mut config = ClientConfig::new(url.clone(), auth);
        config.ca_file = ca_file;
        let client = Client::new(config).map_err(|e| OrgError::Setting {
            setting: "SALESFORCE_URL",
            message: format!("cannot create the Salesforce client: {e}"),
        })?;
        let redirect = parse_url(
            "PUBLIC_URL",
            &format!("{}/auth/callback", portal_url.trim_end_matches('/')),
        )?;
        let sign_in = WebServerFlow::new(
            WebFlowConfig {
                login_url: url.clone(),
                client_id,
                client_secret: sign_in_secret.map(SecretString::from),
                redirect_url: redirect,
                scopes: vec!["openid".into(), "api".into()],
            },
            client.http().clone(),
        )
        .map_err(|e| OrgError::Setting {
            setting: "SALESFORCE_URL",
            message: format!("cannot set up sign-in: {e}"),
        })?;
        Ok(Self {
            url,
            client,
            sign_in,
            sandbox,
            id: Default::default(),
            doctor,
        })
    }
}

/// The JWT bearer assertion's audience: `SALESFORCE_JWT_AUDIENCE`, else the org's My Domain
/// URL. Salesforce's JWT flow page names `https://login.salesforce.com` (production) and
/// `https://test.salesforce.com` (sandboxes); a sandbox refuses the former, and External
/// Client Apps in sandboxes reportedly refuse the latter since Spring '26 while accepting
/// the My Domain URL in every kind of org (3P reports, see docs/salesforce-calls.md).
pub fn jwt_audience(connection: &OrgConnection) -> String {
    connection
        .jwt_audience
        .clone()
        .unwrap_or_else(|| connection.url.as_str().trim_end_matches('/').to_string())
}

fn parse_url(setting: &'static str, raw: &str) -> Result<Url, OrgError> {
    Url::parse(raw).map_err(|e| OrgError::Setting {
        setting,
        message: format!("'{raw}' is not a URL: {e}"),
    })
}
