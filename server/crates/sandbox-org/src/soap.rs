//! The Metadata API's SOAP endpoint, `POST /services/Soap/m/{version}[/{orgId}]`, for the one
//! call the portal makes there: `readMetadata(type, fullNames)` of an External Client App's
//! admin policies (`ExtlClntAppOauthConfigurablePolicies`) and OAuth settings
//! (`ExtlClntAppOauthSettings`), read back from what deploys (or the org's admins) set.
//!
//! As Salesforce documents it: the session id travels in the envelope's `SessionHeader`;
//! a name that does not exist comes back as an empty `records` element (not a fault); at
//! most 10 names per call; the caller needs Customize Application or Modify All Data (the
//! External Client App policies' "View all External Client Apps..." permission is covered
//! by it here, UNCONFIRMED). A bad session is a `sf:INVALID_SESSION_ID` fault with HTTP 500.
//! Fields the app does not carry are left out (Salesforce leaves out unset fields).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::apps::{App, PermittedUsers};
use crate::rest::log_call;
use crate::session::authenticate;
use crate::state::Org;

const NS: &str = "http://soap.sforce.com/2006/04/metadata";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn fault(code: &str, message: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        envelope(&format!(
            "<soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{}</faultstring></soapenv:Fault>",
            escape(message)
        )),
    )
}

fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

fn policies(app: &App, full_name: &str) -> String {
    let p = &app.policy;
    let mut out = element("fullName", full_name);
    if let Some(user) = &p.client_credentials_user {
        out.push_str(&element("clientCredentialsFlowUser", user));
    }
    if !p.permission_sets.is_empty() {
        out.push_str(&element(
            "commaSeparatedPermissionSet",
            &p.permission_sets.join(","),
        ));
    }
    if !p.profiles.is_empty() {
        out.push_str(&element("commaSeparatedProfile", &p.profiles.join(",")));
    }
    out.push_str(&element("externalClientApplication", &app.developer_name));
    out.push_str(&element("ipRelaxationPolicyType", &p.ip_relaxation));
    out.push_str(&element(
        "isClientCredentialsFlowEnabled",
        if p.client_credentials_enabled {
            "true"
        } else {
            "false"
        },
    ));
    out.push_str(&element("label", &app.label));
    out.push_str(&element(
        "permittedUsersPolicyType",
        match p.permitted_users {
            PermittedUsers::AdminApprovedPreAuthorized => "AdminApprovedPreAuthorized",
            PermittedUsers::AllSelfAuthorized => "AllSelfAuthorized",
        },
    ));
    out.push_str(&element("refreshTokenPolicyType", &p.refresh_token_policy));
    out
}

fn oauth_settings(app: &App, full_name: &str) -> String {
    let mut out = element("fullName", full_name);
    out.push_str(&element(
        "commaSeparatedOauthScopes",
        &app.scopes.join(", "),
    ));
    out.push_str(&element("externalClientApplication", &app.developer_name));
    out.push_str(&element("label", &app.label));
    for range in &app.trusted_ip_ranges {
        out.push_str(&format!(
            "<trustedIpRanges>{}{}{}</trustedIpRanges>",
            element("description", &range.description),
            element("endIpAddress", &range.end.to_string()),
            element("startIpAddress", &range.start.to_string()),
        ));
    }
    out
}

/// `POST /services/Soap/m/{version}[/{orgId}]`.
pub async fn metadata(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let now = org.now();
    let text = String::from_utf8_lossy(&body);
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return fault("INVALID_XML", "The request is not a SOAP envelope");
    };
    let find = |tag: &str| {
        doc.descendants()
            .find(|n| n.tag_name().name() == tag)
            .and_then(|n| n.text())
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let session_id = find("sessionId");
    let mut auth = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {session_id}")) {
        auth.insert(header::AUTHORIZATION, value);
    }
    let path = "/services/Soap/m";
    let method = axum::http::Method::POST;
    let session = match authenticate(&org, &auth, now) {
        Ok(session) => session,
        Err(_) => {
            log_call(&org, &method, path, 500, None, Vec::new(), false);
            return fault(
                "INVALID_SESSION_ID",
                "Invalid Session ID found in SessionHeader: Illegal Session",
            );
        }
    };
    let Some(read) = doc
        .descendants()
        .find(|n| n.tag_name().name() == "readMetadata")
    else {
        log_call(&org, &method, path, 500, Some(&session), Vec::new(), true);
        return fault(
            "UNKNOWN_EXCEPTION",
            "Only readMetadata is served by this endpoint (sandbox org)",
        );
    };
    if !(session.access.modify_all_data() || session.access.has("CustomizeApplication")) {
        log_call(&org, &method, path, 500, Some(&session), Vec::new(), true);
        return fault(
            "INSUFFICIENT_ACCESS",
            "insufficient access rights on cross-reference id",
        );
    }
    let metadata_type = read
        .children()
        .find(|n| n.tag_name().name() == "type")
        .and_then(|n| n.text())
        .unwrap_or_default()
        .trim()
        .to_string();
    let names: Vec<String> = read
        .children()
        .filter(|n| n.tag_name().name() == "fullNames")
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect();
    if names.is_empty() || names.len() > 10 {
        log_call(&org, &method, path, 500, Some(&session), Vec::new(), true);
        return fault("INVALID_TYPE", "readMetadata takes 1 to 10 full names");
    }
    let data = org.read();
    let mut records = String::new();
    for name in &names {
        let app = data.apps.values().find(|a| {
            a.component_names
                .get(&metadata_type)
                .is_some_and(|m| m.eq_ignore_ascii_case(name))
        });
        let fields = match (metadata_type.as_str(), app) {
            ("ExtlClntAppOauthConfigurablePolicies", Some(app)) => Some(policies(app, name)),
            ("ExtlClntAppOauthSettings", Some(app)) => Some(oauth_settings(app, name)),
            _ => None,
        };
        match fields {
            Some(fields) => records.push_str(&format!(
                r#"<records xsi:type="{}">{fields}</records>"#,
                escape(&metadata_type)
            )),
            None => records.push_str(r#"<records xsi:nil="true"/>"#),
        }
    }
    drop(data);
    log_call(&org, &method, path, 200, Some(&session), Vec::new(), true);
    xml(
        StatusCode::OK,
        envelope(&format!(
            "<readMetadataResponse><result>{records}</result></readMetadataResponse>"
        )),
    )
}
