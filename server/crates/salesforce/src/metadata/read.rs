//! `readMetadata` (Metadata API, SOAP): a few named components of one type, read back with
//! their fields (§4). The REST Metadata resource only deploys; reading a component's
//! settings (an External Client App's admin policies, say) is SOAP's `readMetadata`, one
//! call for up to 10 components of one type. The session goes in the envelope's
//! `SessionHeader`; the endpoint is `/services/Soap/m/{version}`.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use super::xml::{METADATA_NS, escape};
use crate::Client;
use crate::client::{ApiRequest, Body};
use crate::error::{Error, Result};
use crate::retry::Idempotency;

/// One component read: its simple fields by name (`fullName`, `permittedUsersPolicyType`,
/// ...). Repeated and nested elements are joined with `,` (their text only).
pub type ReadComponent = BTreeMap<String, String>;

/// The placeholder the request's session id replaces when it is sent.
pub(crate) const SESSION_PLACEHOLDER: &str = "\u{0}SESSION\u{0}";

fn envelope(metadata_type: &str, full_names: &[&str]) -> Result<String> {
    let bad = |e| Error::InvalidRequest(format!("readMetadata: {e}"));
    let mut names = String::new();
    for name in full_names {
        names.push_str(&format!(
            "<met:fullNames>{}</met:fullNames>",
            escape("full name", name).map_err(bad)?
        ));
    }
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:met="{METADATA_NS}"><soapenv:Header><met:SessionHeader><met:sessionId>{SESSION_PLACEHOLDER}</met:sessionId></met:SessionHeader></soapenv:Header><soapenv:Body><met:readMetadata><met:type>{}</met:type>{names}</met:readMetadata></soapenv:Body></soapenv:Envelope>"#,
        escape("metadata type", metadata_type).map_err(bad)?
    ))
}

/// The components of a `readMetadataResponse`; a name Salesforce does not know comes back
/// as a `records` element with no `fullName` and is left out.
pub fn parse_read_response(xml: &str) -> Result<Vec<ReadComponent>> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| Error::decode("readMetadata response", e.to_string()))?;
    if let Some(fault) = doc.descendants().find(|n| n.tag_name().name() == "Fault") {
        let text = |tag: &str| {
            fault
                .descendants()
                .find(|n| n.tag_name().name() == tag)
                .and_then(|n| n.text())
                .unwrap_or_default()
                .to_string()
        };
        return Err(Error::decode(
            "readMetadata",
            format!("{}: {}", text("faultcode"), text("faultstring")),
        ));
    }
    let mut components = Vec::new();
    for record in doc
        .descendants()
        .filter(|n| n.tag_name().name() == "records")
    {
        let mut fields = ReadComponent::new();
        for child in record.children().filter(|n| n.is_element()) {
            let text: String = child
                .descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            fields
                .entry(child.tag_name().name().to_string())
                .and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(&text);
                })
                .or_insert(text);
        }
        if fields.get("fullName").is_some_and(|n| !n.is_empty()) {
            components.push(fields);
        }
    }
    Ok(components)
}

impl Client {
    /// `readMetadata(type, fullNames)` (SOAP): up to 10 components of `metadata_type`.
    pub async fn read_metadata(
        &self,
        metadata_type: &str,
        full_names: &[&str],
    ) -> Result<Vec<ReadComponent>> {
        if full_names.is_empty() || full_names.len() > 10 {
            return Err(Error::InvalidRequest(
                "readMetadata reads 1 to 10 components per call".into(),
            ));
        }
        let mut url = self.instance_url().clone();
        url.set_path(&format!("/services/Soap/m/{}", self.api_version()));
        let mut request = ApiRequest::new(Method::POST, url)
            .idempotency(Idempotency::Idempotent)
            .header(
                HeaderName::from_static("soapaction"),
                HeaderValue::from_static("\"\""),
            )
            .header(
                reqwest::header::ACCEPT,
                HeaderValue::from_static("text/xml"),
            );
        request.body = Body::Soap(Bytes::from(envelope(metadata_type, full_names)?));
        let response = self.execute(&request).await?;
        let body = crate::http::read_body(response).await?;
        parse_read_response(&String::from_utf8_lossy(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_response_becomes_fields_and_unknown_names_are_left_out() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><readMetadataResponse><result>
<records xsi:type="ExtlClntAppOauthConfigurablePolicies"><fullName>App_oauthPlcy</fullName><permittedUsersPolicyType>AdminApprovedPreAuthorized</permittedUsersPolicyType><refreshTokenPolicyType>Zero</refreshTokenPolicyType></records>
<records xsi:nil="true"/></result></readMetadataResponse></soapenv:Body></soapenv:Envelope>"#;
        let read = parse_read_response(xml).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            read[0]["permittedUsersPolicyType"],
            "AdminApprovedPreAuthorized"
        );
        assert_eq!(read[0]["fullName"], "App_oauthPlcy");
        let fault = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>Invalid Session ID</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        assert!(
            parse_read_response(fault)
                .unwrap_err()
                .to_string()
                .contains("INVALID_SESSION_ID")
        );
    }

    #[test]
    fn the_envelope_escapes_names_and_carries_the_session_placeholder() {
        let xml = envelope("ExtlClntAppOauthConfigurablePolicies", &["A_oauthPlcy"]).unwrap();
        assert!(xml.contains("<met:type>ExtlClntAppOauthConfigurablePolicies</met:type>"));
        assert!(xml.contains("<met:fullNames>A_oauthPlcy</met:fullNames>"));
        assert!(xml.contains(SESSION_PLACEHOLDER));
    }
}
