//! Legacy: a Connected App with the client credentials flow (§4.2). Salesforce restricts
//! creating Connected Apps since Spring '26, so the portal uses this only when an admin
//! opts into it for an older org; [`super::ExternalClientAppSpec`] is the default.

use url::Url;

use super::package::{DeployZip, PackageBuilder};
use super::spec::{self, ApiName, SpecError, TrustedIpRange};
use super::xml::XmlWriter;
use crate::version::ApiVersion;

/// A contractor's Connected App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAppSpec {
    pub name: ApiName,
    pub label: String,
    pub contact_email: String,
    pub description: String,
    pub callback_url: Url,
    /// Connected Apps let the creator choose the consumer key (8–256 alphanumerics);
    /// `None` lets Salesforce generate it.
    pub consumer_key: Option<String>,
    /// `ConnectedAppOauthAccessScope` names, e.g. `Api`.
    pub scopes: Vec<String>,
    /// Username of the API-only run-as user; `None` leaves client credentials off.
    pub client_credentials_user: Option<String>,
    /// Pre-authorised permission sets (the app is admin-approved).
    pub permission_set_names: Vec<ApiName>,
    pub ip_ranges: Vec<TrustedIpRange>,
}

impl ConnectedAppSpec {
    pub const TYPE: &'static str = "ConnectedApp";

    pub fn validate(&self) -> Result<(), SpecError> {
        spec::require("label", &self.label)?;
        spec::check_email_like("contact email", &self.contact_email)?;
        if let Some(user) = &self.client_credentials_user {
            spec::check_email_like("client credentials user", user)?;
        }
        if let Some(key) = &self.consumer_key {
            let valid =
                (8..=256).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric());
            if !valid {
                return Err(SpecError::InvalidValue {
                    field: "consumer key",
                    reason: "must be 8–256 letters and digits".into(),
                });
            }
        }
        if self.scopes.is_empty() {
            return Err(SpecError::Empty("scopes"));
        }
        for scope in &self.scopes {
            spec::check_scope(scope)?;
        }
        for range in &self.ip_ranges {
            range.check()?;
        }
        Ok(())
    }

    /// `connectedApps/<name>.connectedApp`; elements in the schema's (alphabetical) order.
    pub fn connected_app_xml(&self) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new(Self::TYPE);
        xml.text("contactEmail", "contact email", &self.contact_email)?;
        xml.text("description", "description", &self.description)?;
        for range in &self.ip_ranges {
            xml.open("ipRanges");
            xml.text("description", "IP range description", &range.description)?;
            xml.text("end", "IP range end", &range.end.to_string())?;
            xml.text("start", "IP range start", &range.start.to_string())?;
            xml.close();
        }
        xml.text("label", "label", &self.label)?;
        xml.open("oauthConfig");
        xml.text("callbackUrl", "callback URL", self.callback_url.as_str())?;
        if let Some(key) = &self.consumer_key {
            xml.text("consumerKey", "consumer key", key)?;
        }
        xml.flag("isAdminApproved", true);
        xml.flag(
            "isClientCredentialEnabled",
            self.client_credentials_user.is_some(),
        );
        xml.flag("isConsumerSecretOptional", false);
        xml.flag("isIntrospectAllTokens", false);
        if let Some(user) = &self.client_credentials_user {
            xml.text("oauthClientCredentialUser", "client credentials user", user)?;
        }
        for scope in &self.scopes {
            xml.text("scopes", "scope", scope)?;
        }
        xml.close();
        xml.open("oauthPolicy");
        xml.constant("ipRelaxation", "ENFORCE");
        xml.constant("refreshTokenPolicy", "zero");
        xml.close();
        for permission_set in &self.permission_set_names {
            xml.text(
                "permissionSetName",
                "permission set",
                permission_set.as_str(),
            )?;
        }
        Ok(xml.finish())
    }

    pub fn package(&self, version: ApiVersion) -> Result<PackageBuilder, SpecError> {
        self.validate()?;
        let mut package = PackageBuilder::new(version);
        package.add(
            Self::TYPE,
            "connectedApps",
            "connectedApp",
            self.name.as_str(),
            self.connected_app_xml()?,
        );
        Ok(package)
    }

    pub fn build_zip(&self, version: ApiVersion) -> Result<DeployZip, SpecError> {
        self.package(version)?.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::package::tests::unzip;

    fn spec() -> ConnectedAppSpec {
        ConnectedAppSpec {
            name: ApiName::parse("Acme_Contractor").unwrap(),
            label: "Acme <Contractor>".into(),
            contact_email: "ops@example.com".into(),
            description: "legacy & old".into(),
            callback_url: Url::parse("https://login.salesforce.com/services/oauth2/success")
                .unwrap(),
            consumer_key: Some("AcmeContractorKey0001".into()),
            scopes: vec!["Api".into()],
            client_credentials_user: Some("acme.contractor.int@example.com".into()),
            permission_set_names: vec![ApiName::parse("Acme_Contractor_API").unwrap()],
            ip_ranges: vec![TrustedIpRange::new(
                "198.51.100.1".parse().unwrap(),
                "198.51.100.9".parse().unwrap(),
                "vpn",
            )],
        }
    }

    #[test]
    fn builds_the_client_credentials_variant() {
        let files = unzip(&spec().build_zip(ApiVersion::DEFAULT).unwrap());
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].0, "connectedApps/Acme_Contractor.connectedApp");
        let doc = roxmltree::Document::parse(&files[1].1).unwrap();
        let text = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        assert_eq!(text("label").as_deref(), Some("Acme <Contractor>"));
        assert_eq!(text("isClientCredentialEnabled").as_deref(), Some("true"));
        assert_eq!(
            text("oauthClientCredentialUser").as_deref(),
            Some("acme.contractor.int@example.com")
        );
        assert_eq!(text("isAdminApproved").as_deref(), Some("true"));
        assert_eq!(text("refreshTokenPolicy").as_deref(), Some("zero"));
        assert_eq!(
            text("permissionSetName").as_deref(),
            Some("Acme_Contractor_API")
        );
        assert_eq!(text("start").as_deref(), Some("198.51.100.1"));
        assert!(files[0].1.contains("<name>ConnectedApp</name>"));
    }

    #[test]
    fn without_a_run_as_user_client_credentials_stay_off() {
        let mut s = spec();
        s.client_credentials_user = None;
        s.consumer_key = None;
        let xml = s.connected_app_xml().unwrap();
        assert!(xml.contains("<isClientCredentialEnabled>false</isClientCredentialEnabled>"));
        assert!(!xml.contains("oauthClientCredentialUser"));
        assert!(!xml.contains("consumerKey"));
    }

    #[test]
    fn consumer_keys_are_checked() {
        let mut s = spec();
        s.consumer_key = Some("short".into());
        assert!(s.build_zip(ApiVersion::DEFAULT).is_err());
        s.consumer_key = Some("has spaces in it".into());
        assert!(s.build_zip(ApiVersion::DEFAULT).is_err());
    }
}
