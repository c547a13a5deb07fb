//! The authorize page (`/services/oauth2/authorize`): the login form a person sees in the
//! web-server flow, its checks (app, callback, PKCE, state) and the redirect back.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} | Sandbox Org</title>{STYLE}</head><body><main><h1>{t}</h1><p role=\"alert\">{d}</p></main></body></html>",
        t = html_escape(title),
        d = html_escape(detail)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

const STYLE: &str = "<style>body{font-family:system-ui,sans-serif;background:#f3f6f9;color:#1b1f24;margin:0}main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;margin-top:.25rem}.actions{display:flex;gap:.5rem;margin-top:1.5rem}button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #0b5cab;background:#fff;color:#0b5cab;cursor:pointer}button.primary{background:#0b5cab;color:#fff}.error{color:#a61a14;background:#fdecea;padding:.5rem .75rem;border-radius:6px}.note{color:#555;font-size:.9rem}</style>";

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                "The redirect URI is not a valid URL.",
            );
        }
    };
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

fn login_page(
    org_name: &str,
    app: &App,
    params: &AuthorizeParams,
    error: Option<&str>,
) -> Response {
    let hidden: String = [
        ("response_type", Some(params.response_type.as_str())),
        ("client_id", Some(params.client_id.as_str())),
        ("redirect_uri", Some(params.redirect_uri.as_str())),
        ("state", params.state.as_deref()),
        ("scope", params.scope.as_deref()),
        ("code_challenge", params.code_challenge.as_deref()),
        (
            "code_challenge_method",
            params.code_challenge_method.as_deref(),
        ),
    ]
    .iter()
    .filter_map(|(k, v)| {
        v.map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                html_escape(v)
            )
        })
    })
    .collect();
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    let username = params.username.as_deref().unwrap_or("");
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Log in | {org}</title>{STYLE}</head><body><main>\
<h1>Log in to {org}</h1><p class=\"note\"><strong>{app}</strong> wants to sign you in with your Salesforce account.</p>{error_html}\
<form method=\"post\" action=\"/services/oauth2/authorize\">{hidden}\
<label for=\"username\">Username</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" value=\"{username}\" required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"action\" value=\"login\">Log In</button>\
<button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button></div></form>\
<p class=\"note\">This is a sandbox org: a local stand-in for Salesforce.</p></main></body></html>",
        org = html_escape(org_name),
        app = html_escape(&app.label),
        username = html_escape(username),
    );
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'"),
        ],
        Html(body),
    )
        .into_response()
}

/// Validates the parameters every authorize request needs; errors that cannot be sent back
/// to the client (unknown client, bad redirect URI) are shown on a page.
fn authorize_checks(org: &Org, params: &AuthorizeParams) -> Result<(App, String), Box<Response>> {
    let data = org.read();
    let Some(app) = find_app_by_key(&data, &params.client_id).filter(|a| a.enabled) else {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "error=invalid_client_id",
            "client identifier invalid",
        )));
    };
    if params.redirect_uri.is_empty()
        || !app.callback_urls.iter().any(|u| u == &params.redirect_uri)
    {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "error=redirect_uri_mismatch",
            "redirect_uri must match configuration",
        )));
    }
    let state = params.state.clone().unwrap_or_default();
    let state_pair: Vec<(&str, &str)> = if state.is_empty() {
        vec![]
    } else {
        vec![("state", state.as_str())]
    };
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        pairs.extend(state_pair.iter().copied());
        redirect_with(&params.redirect_uri, &pairs)
    };
    if params.response_type != "code" {
        return Err(Box::new(fail(
            "unsupported_response_type",
            "response type not supported",
        )));
    }
    if let Some(method) = &params.code_challenge_method
        && method != "S256"
    {
        return Err(Box::new(fail(
            "invalid_request",
            "unsupported code challenge method",
        )));
    }
    if app.pkce_required && params.code_challenge.as_deref().is_none_or(str::is_empty) {
        return Err(Box::new(fail(
            "invalid_request",
            "missing required code challenge",
        )));
    }
    Ok((app.clone(), data.name.clone()))
}

/// `GET /services/oauth2/authorize`: the login page.
pub async fn authorize_page(
    State(org): State<Arc<Org>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match authorize_checks(&org, &params) {
        Ok((app, org_name)) => login_page(&org_name, &app, &params, None),
        Err(response) => *response,
    }
}

/// `POST /services/oauth2/authorize`: the login form.
pub async fn authorize_submit(
    State(org): State<Arc<Org>>,
    Form(params): Form<AuthorizeParams>,
) -> Response {
    let now = org.now();
    let (app, org_name) = match authorize_checks(&org, &params) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let state = params.state.clone().unwrap_or_default();
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if !state.is_empty() {
        extra.push(("state", state.as_str()));
    }
    if params.action.as_deref() == Some("deny") {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_description", "end-user denied authorization"),
        ];
        pairs.extend(extra);
        return redirect_with(&params.redirect_uri, &pairs);
    }
    let username = params.username.clone().unwrap_or_default();
    let password = params.password.clone().unwrap_or_default();
    let outcome = {
        let data = org.read();
        match verify_password(&data, username.trim(), &password) {
            None => Err(
                "Please check your username and password. If you still can't log in, contact your Salesforce administrator.",
            ),
            Some(user_id) => match user_blocked(&data, &user_id) {
                Some("user is frozen") => {
                    Err("Your account is frozen. Contact your Salesforce administrator.")
                }
                Some(_) => Err(
                    "Please check your username and password. If you still can't log in, contact your Salesforce administrator.",
                ),
                None => {
                    let access = Access::compute(&data, &user_id, now);
                    if access.has("ApiUserOnly") {
                        Err("This user is API only and can't log in through the user interface.")
                    } else if !user_approved(&data, &app, &user_id, now) {
                        Ok((user_id, false))
                    } else {
                        Ok((user_id, true))
                    }
                }
            },
        }
    };
    match outcome {
        Err(message) => {
            let mut response = login_page(&org_name, &app, &params, Some(message));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
        Ok((_, false)) => {
            let mut pairs = vec![
                ("error", "access_denied"),
                (
                    "error_description",
                    "user is not admin approved to access this app",
                ),
            ];
            pairs.extend(extra);
            redirect_with(&params.redirect_uri, &pairs)
        }
        Ok((user_id, true)) => {
            let code = format!("aPrx{}", random_token(60));
            org.tokens_mut().codes.insert(
                token_hash(&code),
                AuthCode {
                    user_id: user_id.clone(),
                    app_id: app.id.clone(),
                    redirect_uri: params.redirect_uri.clone(),
                    code_challenge: params.code_challenge.clone().filter(|c| !c.is_empty()),
                    expires_at: now + Duration::minutes(10),
                },
            );
            if let Some(user) = org.write().get_mut("User", &user_id) {
                user.insert("LastLoginDate".into(), json!(sf_datetime(now)));
            }
            let mut pairs = vec![("code", code.as_str())];
            pairs.extend(extra);
            redirect_with(&params.redirect_uri, &pairs)
        }
    }
}
