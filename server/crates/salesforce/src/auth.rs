//! The portal's own connection to the org: how it authenticates (JWT bearer, client
//! credentials, or a fixed token), and the shared token cache.
//!
//! The token is fetched on first use and shared by every clone of the client. One fetch is
//! in flight at a time: callers queue on the cache's lock and take the token the first one
//! fetched. Salesforce sends no expiry (§1.2), so a token is used until a call is refused
//! with 401 `INVALID_SESSION_ID`; then the caller asks for a renewal naming the token it
//! used, so that many callers refused at once cause one renewal, not many.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::Mutex;
use url::Url;

use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::token;

/// The JWT bearer grant type (§1.3).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Salesforce accepts assertions that expire within 3 minutes (§1.3).
pub const ASSERTION_LIFETIME: chrono::Duration = chrono::Duration::minutes(3);

/// How the portal authenticates to the org.
#[derive(Debug, Clone)]
pub enum PortalAuth {
    /// OAuth 2.0 JWT bearer (§1.3), preferred: no shared secret leaves the portal.
    JwtBearer {
        /// The consumer key of the app holding our certificate.
        client_id: String,
        /// The Salesforce username the portal acts as.
        username: String,
        /// RSA private key, PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
        private_key_pem: SecretString,
        /// `https://login.salesforce.com`, `https://test.salesforce.com`, or the sandbox
        /// org's URL.
        audience: String,
    },
    /// OAuth 2.0 client credentials (§1.2), sent with HTTP Basic to the My Domain host.
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    /// A fixed access token, for tests and tools; it cannot be renewed.
    AccessToken(SecretString),
}

/// JWT claims for the bearer assertion. `exp` is a number of seconds since the epoch.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

/// Signs JWT bearer assertions (RS256) with ring, the crypto rustls already uses.
pub struct JwtSigner {
    key: RsaKeyPair,
    client_id: String,
    username: String,
    audience: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    pub fn new(
        client_id: &str,
        username: &str,
        private_key_pem: &SecretString,
        audience: &str,
    ) -> Result<Self> {
        // Errors name the problem, never the key material.
        let der = PrivateKeyDer::from_pem_slice(private_key_pem.expose_secret().as_bytes())
            .map_err(|_| {
                Error::Config("the JWT private key is not a PEM private key".to_string())
            })?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(Error::Config(
                    "the JWT private key must be an RSA key (RS256 is Salesforce's only algorithm)"
                        .to_string(),
                ));
            }
        }
        .map_err(|e| Error::Config(format!("the JWT private key is unusable: {e}")))?;
        Ok(Self {
            key,
            client_id: client_id.to_string(),
            username: username.to_string(),
            audience: audience.to_string(),
            rng: SystemRandom::new(),
        })
    }

    /// A signed assertion valid until `now + 3 minutes`.
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<SecretString> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.username,
            aud: &self.audience,
            exp: (now + ASSERTION_LIFETIME).timestamp(),
        };
        let claims = serde_json::to_vec(&claims)
            .map_err(|e| Error::Config(format!("cannot encode JWT claims: {e}")))?;
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Config("signing the JWT assertion failed".to_string()))?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// How the cache gets a new token.
enum Method {
    Jwt(Box<JwtSigner>),
    ClientCredentials {
        client_id: String,
        client_secret: SecretString,
    },
    Fixed(SecretString),
    /// Counts fetches instead of calling Salesforce, to test the cache's sharing.
    #[cfg(test)]
    Counting(std::sync::Arc<AtomicU64>),
}

/// The token a request used, so a refusal can name it.
#[derive(Clone)]
pub(crate) struct CurrentToken {
    pub secret: SecretString,
    pub generation: u64,
}

struct Cached {
    secret: SecretString,
    generation: u64,
}

/// The shared token cache.
pub(crate) struct Authenticator {
    method: Method,
    http: HttpClient,
    token_url: Url,
    cached: Mutex<Option<Cached>>,
    generations: AtomicU64,
}

impl Authenticator {
    pub fn new(auth: &PortalAuth, http: HttpClient, instance_url: &Url) -> Result<Self> {
        let method = match auth {
            PortalAuth::JwtBearer {
                client_id,
                username,
                private_key_pem,
                audience,
            } => Method::Jwt(Box::new(JwtSigner::new(
                client_id,
                username,
                private_key_pem,
                audience,
            )?)),
            PortalAuth::ClientCredentials {
                client_id,
                client_secret,
            } => Method::ClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            PortalAuth::AccessToken(token) => Method::Fixed(token.clone()),
        };
        Ok(Self {
            method,
            http,
            token_url: token::token_url(instance_url)?,
            cached: Mutex::new(None),
            generations: AtomicU64::new(0),
        })
    }

    /// The cached token, fetching one if there is none. Fetch errors are returned to the
    /// caller that fetched; the next caller tries again.
    pub async fn current(&self) -> Result<CurrentToken> {
        if let Method::Fixed(secret) = &self.method {
            return Ok(CurrentToken {
                secret: secret.clone(),
                generation: 0,
            });
        }
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(CurrentToken {
                secret: token.secret.clone(),
                generation: token.generation,
            });
        }
        let fresh = self.fetch().await?;
        let current = CurrentToken {
            secret: fresh.secret.clone(),
            generation: fresh.generation,
        };
        *cached = Some(fresh);
        Ok(current)
    }

    /// After `rejected` was refused with `INVALID_SESSION_ID`: a newer token if another
    /// caller already renewed it, else a freshly fetched one. `None` when the token cannot
    /// be renewed (a fixed token).
    pub async fn renew(&self, rejected: &CurrentToken) -> Result<Option<CurrentToken>> {
        if matches!(self.method, Method::Fixed(_)) {
            return Ok(None);
        }
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.generation != rejected.generation
        {
            return Ok(Some(CurrentToken {
                secret: token.secret.clone(),
                generation: token.generation,
            }));
        }
        *cached = None;
        let fresh = self.fetch().await?;
        let current = CurrentToken {
            secret: fresh.secret.clone(),
            generation: fresh.generation,
        };
        *cached = Some(fresh);
        Ok(Some(current))
    }

    async fn fetch(&self) -> Result<Cached> {
        let access_token: SecretString = match &self.method {
            Method::Jwt(signer) => {
                let assertion = signer.assertion(Utc::now())?;
                token::request_token(
                    &self.http,
                    self.token_url.clone(),
                    &[
                        ("grant_type", JWT_BEARER_GRANT),
                        ("assertion", assertion.expose_secret()),
                    ],
                    None,
                )
                .await?
                .access_token
            }
            Method::ClientCredentials {
                client_id,
                client_secret,
            } => {
                token::request_token(
                    &self.http,
                    self.token_url.clone(),
                    &[("grant_type", "client_credentials")],
                    Some((client_id, client_secret.expose_secret())),
                )
                .await?
                .access_token
            }
            Method::Fixed(secret) => {
                return Ok(Cached {
                    secret: secret.clone(),
                    generation: 0,
                });
            }
            #[cfg(test)]
            Method::Counting(fetches) => {
                // Long enough for concurrent callers to pile up behind the lock.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                SecretString::from(format!("token-{n}"))
            }
        };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(generation, "obtained a Salesforce access token");
        Ok(Cached {
            secret: access_token,
            generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    struct TestKey {
        pkcs8_pem: String,
        pkcs1_pem: String,
        public_pem: String,
    }

    /// A 2048-bit key pair made once for all tests (ring refuses smaller RSA keys).
    fn test_key() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| {
            let mut rng = rsa::rand_core::OsRng;
            let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
            TestKey {
                pkcs8_pem: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                pkcs1_pem: private.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
                public_pem: private
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap(),
            }
        })
    }

    #[derive(Debug, serde::Deserialize)]
    struct DecodedClaims {
        iss: String,
        sub: String,
        aud: String,
        exp: i64,
    }

    fn decode(assertion: &str, audience: &str) -> jsonwebtoken::TokenData<DecodedClaims> {
        let key = DecodingKey::from_rsa_pem(test_key().public_pem.as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<DecodedClaims>(assertion, &key, &validation).unwrap()
    }

    #[test]
    fn assertion_carries_the_documented_claims_and_verifies() {
        let pem = SecretString::from(test_key().pkcs8_pem.clone());
        let signer = JwtSigner::new(
            "3MVG99OxTyEMCQ3gNp2PjkqeZKxnmAiG1xV4oHh9AKL_rSK.BoSVPGZHQukXnVjzRgSuQqGn75NL7yfkQcyy7",
            "portal@acme.example",
            &pem,
            "https://login.salesforce.com",
        )
        .unwrap();
        let now = Utc::now();
        let assertion = signer.assertion(now).unwrap();
        let data = decode(assertion.expose_secret(), "https://login.salesforce.com");
        assert_eq!(data.header.alg, Algorithm::RS256);
        assert_eq!(
            data.claims.iss,
            "3MVG99OxTyEMCQ3gNp2PjkqeZKxnmAiG1xV4oHh9AKL_rSK.BoSVPGZHQukXnVjzRgSuQqGn75NL7yfkQcyy7"
        );
        assert_eq!(data.claims.sub, "portal@acme.example");
        assert_eq!(data.claims.aud, "https://login.salesforce.com");
        assert_eq!(data.claims.exp, now.timestamp() + 180);
    }

    #[test]
    fn pkcs1_keys_work_too() {
        let pem = SecretString::from(test_key().pkcs1_pem.clone());
        let signer = JwtSigner::new("key", "user@x", &pem, "https://sandbox.local").unwrap();
        let assertion = signer.assertion(Utc::now()).unwrap();
        let data = decode(assertion.expose_secret(), "https://sandbox.local");
        assert_eq!(data.claims.sub, "user@x");
    }

    #[test]
    fn header_is_exactly_rs256() {
        let pem = SecretString::from(test_key().pkcs8_pem.clone());
        let signer = JwtSigner::new("k", "u", &pem, "a").unwrap();
        let assertion = signer.assertion(Utc::now()).unwrap();
        let header = assertion.expose_secret().split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"alg":"RS256"}"#
        );
    }

    #[test]
    fn bad_keys_are_configuration_errors_without_key_material() {
        for pem in [
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = JwtSigner::new("k", "u", &SecretString::from(pem), "a").unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            assert!(!err.to_string().contains("AAAA"));
        }
    }

    #[test]
    fn auth_debug_output_hides_secrets() {
        let auth = PortalAuth::ClientCredentials {
            client_id: "key".into(),
            client_secret: SecretString::from("hunter2-secret"),
        };
        let jwt = PortalAuth::JwtBearer {
            client_id: "key".into(),
            username: "u".into(),
            private_key_pem: SecretString::from(test_key().pkcs8_pem.clone()),
            audience: "a".into(),
        };
        let fixed = PortalAuth::AccessToken(SecretString::from("00D!fixed-token"));
        let text = format!("{auth:?} {jwt:?} {fixed:?}");
        assert!(!text.contains("hunter2"));
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains("fixed-token"));
    }

    fn counting() -> (std::sync::Arc<Authenticator>, std::sync::Arc<AtomicU64>) {
        let fetches = std::sync::Arc::new(AtomicU64::new(0));
        let http = HttpClient::new(&crate::http::HttpOptions::default()).unwrap();
        let auth = Authenticator {
            method: Method::Counting(fetches.clone()),
            http,
            token_url: Url::parse("https://acme.my.salesforce.com/services/oauth2/token").unwrap(),
            cached: Mutex::new(None),
            generations: AtomicU64::new(0),
        };
        (std::sync::Arc::new(auth), fetches)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let (auth, fetches) = counting();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.current().await.unwrap() })
            })
            .collect();
        for task in tasks {
            let token = task.await.unwrap();
            assert_eq!(token.secret.expose_secret(), "token-1");
            assert_eq!(token.generation, 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_refusals_of_one_token_renew_it_once() {
        let (auth, fetches) = counting();
        let rejected = auth.current().await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let auth = auth.clone();
                let rejected = rejected.clone();
                tokio::spawn(async move { auth.renew(&rejected).await.unwrap().unwrap() })
            })
            .collect();
        for task in tasks {
            let token = task.await.unwrap();
            assert_eq!(token.secret.expose_secret(), "token-2");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // A refusal of the new token renews again.
        let current = auth.current().await.unwrap();
        let renewed = auth.renew(&current).await.unwrap().unwrap();
        assert_eq!(renewed.secret.expose_secret(), "token-3");
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_fixed_token_is_used_as_is_and_cannot_be_renewed() {
        let http = HttpClient::new(&crate::http::HttpOptions::default()).unwrap();
        let auth = Authenticator::new(
            &PortalAuth::AccessToken(SecretString::from("tok")),
            http,
            &Url::parse("https://acme.my.salesforce.com").unwrap(),
        )
        .unwrap();
        let current = auth.current().await.unwrap();
        assert_eq!(current.secret.expose_secret(), "tok");
        assert!(auth.renew(&current).await.unwrap().is_none());
    }
}
