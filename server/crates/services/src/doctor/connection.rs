//! The connection checks: the My Domain URL, the portal's own token, and what staff sign-in
//! needs (the callback URL, the consumer secret).

use super::*;

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) async fn my_domain(client: &Client, target: &Target) -> Check {
    let id = "my-domain";
    let url = &target.org_url;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let local = is_loopback(url);
    let form_fix = "Set SALESFORCE_URL to the org's My Domain URL, as shown in Setup > My Domain \
                    (\"Current My Domain URL\"), e.g. https://acme.my.salesforce.com";
    if url.scheme() != "https" && !local {
        return fail(
            id,
            title(id),
            format!("{url} is not an https URL (form)"),
            form_fix,
        );
    }
    if matches!(
        host.as_str(),
        "login.salesforce.com" | "test.salesforce.com" | "welcome.salesforce.com"
    ) || host.ends_with(".lightning.force.com")
        || host.ends_with(".my.site.com")
    {
        return fail(
            id,
            title(id),
            format!("{host} is not a My Domain host (form)"),
            form_fix,
        );
    }
    let versions = match url.join("/services/data/") {
        Ok(u) => u,
        Err(e) => return fail(id, title(id), format!("{url}: {e} (form)"), form_fix),
    };
    let answer = client
        .http()
        .reqwest()
        .get(versions)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let reached = match answer {
        Ok(response) if response.status().is_success() => response
            .json::<Value>()
            .await
            .map(|v| v.is_array())
            .unwrap_or(false),
        Ok(_) => false,
        Err(e) => {
            return fail(
                id,
                title(id),
                format!("{url} cannot be reached: {}", salesforce::http::chain(&e)),
                "Check SALESFORCE_URL, the network path to Salesforce, and SALESFORCE_CA_FILE if a proxy re-signs TLS",
            );
        }
    };
    if !reached {
        return fail(
            id,
            title(id),
            format!("{url}/services/data/ did not answer with the list of API versions"),
            form_fix,
        );
    }
    if local {
        ok(
            id,
            title(id),
            format!("{url} answers (a local sandbox org)"),
        )
    } else if host.ends_with(".my.salesforce.com") {
        ok(id, title(id), format!("{url} answers"))
    } else {
        warn(
            id,
            title(id),
            format!("{url} answers, but {host} is not a *.my.salesforce.com host"),
            Some(form_fix.into()),
        )
    }
}

pub(super) async fn portal_token(client: &Client, target: &Target) -> Check {
    let id = "portal-token";
    let query = Soql::trusted("SELECT Id FROM Organization LIMIT 1");
    match client.query::<Value>(&query).await {
        Ok(_) => ok(
            id,
            title(id),
            match &target.auth {
                AuthMode::JwtBearer { username } => {
                    format!("the JWT bearer flow signs in as {username}")
                }
                AuthMode::ClientCredentials => "the client credentials flow works".into(),
            },
        ),
        Err(e) => {
            let fix = match &target.auth {
                AuthMode::JwtBearer { username } => format!(
                    "In Setup > External Client App Manager > the portal's app: OAuth Settings: enable \
                     \"JWT Bearer Flow\" with the certificate of SALESFORCE_JWT_KEY_FILE's key; \
                     Policies: Permitted Users \"Admin approved users are pre-authorized\" and add \
                     {username}'s profile or a permission set it holds. SALESFORCE_CLIENT_ID must \
                     be the app's consumer key"
                ),
                AuthMode::ClientCredentials => "In Setup > External Client App Manager > the \
                     portal's app: enable \"Client Credentials Flow\" (OAuth Settings and \
                     Policies) and set \"Run As\" to the service user. SALESFORCE_CLIENT_ID and \
                     SALESFORCE_CLIENT_SECRET must be the app's consumer key and secret"
                    .into(),
            };
            fail(
                id,
                title(id),
                format!("the portal cannot get a token: {e}"),
                fix,
            )
        }
    }
}

pub(super) async fn sign_in_callback(client: &Client, target: &Target) -> Check {
    let id = "sign-in-callback";
    let mut url = match target.org_url.join("/services/oauth2/authorize") {
        Ok(url) => url,
        Err(e) => return fail(id, title(id), e.to_string(), "Fix SALESFORCE_URL"),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &target.client_id)
        .append_pair("redirect_uri", &target.callback_url)
        .append_pair("scope", "openid api")
        .append_pair("state", "portcullis-doctor")
        // As sign-in sends it (PKCE): without it an app that requires PKCE sends the browser
        // back to the callback with an error instead of showing its login page.
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let answer = client
        .http()
        .reqwest()
        .get(url)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let (status, final_url, body) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let final_url = response.url().to_string();
            (status, final_url, response.text().await.unwrap_or_default())
        }
        Err(e) => {
            return fail(
                id,
                title(id),
                format!(
                    "the authorize page did not answer: {}",
                    salesforce::http::chain(&e)
                ),
                "Check SALESFORCE_URL",
            );
        }
    };
    let seen = format!("{final_url}\n{body}");
    let fix = format!(
        "In Setup > External Client App Manager > the portal's app > OAuth Settings, add the \
         callback URL {} (or set PUBLIC_URL to the URL the portal is reached at)",
        target.callback_url
    );
    if seen.contains("redirect_uri_mismatch") {
        fail(
            id,
            title(id),
            format!(
                "the portal's app does not list {} as a callback URL",
                target.callback_url
            ),
            fix,
        )
    } else if seen.contains("invalid_client_id") {
        fail(
            id,
            title(id),
            "the org does not know the app SALESFORCE_CLIENT_ID names",
            "Set SALESFORCE_CLIENT_ID to the consumer key of the portal's app (Setup > External \
             Client App Manager > the app > OAuth Settings > Consumer Key and Secret)",
        )
    } else if status >= 400 {
        fail(
            id,
            title(id),
            format!("the authorize page answered HTTP {status}"),
            fix,
        )
    } else {
        ok(
            id,
            title(id),
            format!("{} is an allowed callback URL", target.callback_url),
        )
    }
}

pub(super) async fn sign_in_secret(client: &Client, target: &Target) -> Check {
    let id = "sign-in-secret";
    if target.sign_in_secret {
        return ok(
            id,
            title(id),
            "SALESFORCE_CLIENT_SECRET is set: sign-in sends the consumer secret",
        );
    }
    // A code exchange with a code that cannot be valid and no secret: an org that requires
    // the secret refuses the client (`invalid_client`) before it looks at the code.
    // UNCONFIRMED: that a real org checks the client before the code.
    let Ok(url) = target.org_url.join("/services/oauth2/token") else {
        return fail(id, title(id), "SALESFORCE_URL", "Fix SALESFORCE_URL");
    };
    let answer = client
        .http()
        .reqwest()
        .post(url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "portcullis-doctor-probe"),
            ("client_id", target.client_id.as_str()),
            ("redirect_uri", target.callback_url.as_str()),
        ])
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let error = match answer {
        Ok(response) => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default(),
        Err(e) => {
            return fail(
                id,
                title(id),
                format!(
                    "the token endpoint did not answer: {}",
                    salesforce::http::chain(&e)
                ),
                "Check SALESFORCE_URL",
            );
        }
    };
    if error == "invalid_client" {
        fail(
            id,
            title(id),
            "the portal's app requires the consumer secret for the web server flow, and SALESFORCE_CLIENT_SECRET is not set",
            "Set SALESFORCE_CLIENT_SECRET to the app's consumer secret (it then serves sign-in \
             only), or in Setup > External Client App Manager > the portal's app > OAuth \
             Settings, clear \"Require secret for Web Server Flow\"",
        )
    } else {
        ok(
            id,
            title(id),
            "the portal's app does not require the consumer secret for sign-in",
        )
    }
}
