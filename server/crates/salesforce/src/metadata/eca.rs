//! The contractor's External Client App (§4.3): the app header, its OAuth settings (scopes,
//! trusted IP ranges), its global OAuth settings (client credentials on, callback, PKCE),
//! and its admin policies (client credentials on with the integration user as run-as
//! user, admin-approved for the contractor's permission sets only, no refresh tokens).
//!
//! Consumer key and secret are not set here: Salesforce generates them, and the portal
//! reads them back through Connect REST ([`crate::connect`]).

use url::Url;

use secrecy::{ExposeSecret, SecretString};

use super::package::{DeployZip, PackageBuilder};
use super::spec::{self, ApiName, SpecError, TrustedIpRange};
use super::xml::XmlWriter;
use crate::version::ApiVersion;

/// Everything the portal decides about a contractor's app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalClientAppSpec {
    /// The app's API name; also the member name of its four components.
    pub name: ApiName,
    pub label: String,
    pub contact_email: String,
    pub description: String,
    /// OAuth scope names as the metadata spells them, e.g. `Api`.
    pub scopes: Vec<String>,
    /// Username of the integration user tokens are issued for (must be API-only).
    pub client_credentials_run_as: String,
    /// The permission sets whose holders are pre-authorised (admin-approved) for the app.
    pub permission_set_names: Vec<ApiName>,
    /// Empty: no IP restriction beyond the org's.
    pub trusted_ip_ranges: Vec<TrustedIpRange>,
    /// Required by the metadata even though client credentials never redirect.
    pub callback_url: Url,
    /// `isPkceRequired` in the global settings; Salesforce's default for ECAs is `true`,
    /// and client credentials are unaffected by it.
    pub pkce_required: bool,
}

impl ExternalClientAppSpec {
    pub const ECA_TYPE: &'static str = "ExternalClientApplication";
    pub const OAUTH_SETTINGS_TYPE: &'static str = "ExtlClntAppOauthSettings";
    pub const GLOBAL_OAUTH_TYPE: &'static str = "ExtlClntAppGlobalOauthSettings";
    pub const OAUTH_POLICIES_TYPE: &'static str = "ExtlClntAppOauthConfigurablePolicies";

    /// The member name Salesforce gives a component of app `name` when the app is made in
    /// Setup and retrieved: `<name>_oauth`, `<name>_glbloauth`, `<name>_oauthPlcy`, the app
    /// header itself `<name>` (Salesforce's "Deploy the Canvas External Client App" table;
    /// the policies name from retrieved projects, 3P).
    pub fn member(name: &str, metadata_type: &str) -> String {
        match metadata_type {
            Self::OAUTH_SETTINGS_TYPE => format!("{name}_oauth"),
            Self::GLOBAL_OAUTH_TYPE => format!("{name}_glbloauth"),
            Self::OAUTH_POLICIES_TYPE => format!("{name}_oauthPlcy"),
            _ => name.to_string(),
        }
    }

    /// Checks the values that are not checked by their types.
    pub fn validate(&self) -> Result<(), SpecError> {
        spec::require("label", &self.label)?;
        spec::check_email_like("contact email", &self.contact_email)?;
        spec::check_email_like(
            "client credentials run-as user",
            &self.client_credentials_run_as,
        )?;
        if self.scopes.is_empty() {
            return Err(SpecError::Empty("scopes"));
        }
        for scope in &self.scopes {
            spec::check_scope(scope)?;
        }
        if self.permission_set_names.is_empty() {
            // Admin-approved with no permission set would admit nobody.
            return Err(SpecError::Empty("permission sets"));
        }
        for range in &self.trusted_ip_ranges {
            range.check()?;
        }
        if !matches!(self.callback_url.scheme(), "https" | "http") {
            return Err(SpecError::InvalidValue {
                field: "callback URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        Ok(())
    }

    /// `externalClientApps/<name>.eca`.
    pub fn eca_xml(&self) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new(Self::ECA_TYPE);
        xml.text("contactEmail", "contact email", &self.contact_email)?;
        xml.text("description", "description", &self.description)?;
        xml.constant("distributionState", "Local");
        xml.flag("isProtected", false);
        xml.text("label", "label", &self.label)?;
        Ok(xml.finish())
    }

    /// `extlClntAppOauthSettings/<name>.ecaOauth`.
    pub fn oauth_settings_xml(&self) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new(Self::OAUTH_SETTINGS_TYPE);
        xml.text(
            "commaSeparatedOauthScopes",
            "scopes",
            &self.scopes.join(", "),
        )?;
        xml.text("externalClientApplication", "name", self.name.as_str())?;
        xml.text("label", "label", &self.label)?;
        for range in &self.trusted_ip_ranges {
            xml.open("trustedIpRanges");
            xml.text("description", "IP range description", &range.description)?;
            xml.text("endIpAddress", "IP range end", &range.end.to_string())?;
            xml.text("startIpAddress", "IP range start", &range.start.to_string())?;
            xml.close();
        }
        Ok(xml.finish())
    }

    /// `extlClntAppGlobalOauthSets/<name>.ecaGlblOauth`.
    pub fn global_oauth_xml(&self) -> Result<String, SpecError> {
        self.global_oauth_xml_with(None)
    }

    /// The global settings choosing the consumer secret: for orgs whose credentials API
    /// does not return secrets, the portal sets the secret itself (ConnectedApp documents a
    /// chosen `consumerSecret`; for ECAs it is UNCONFIRMED, see the reference).
    fn global_oauth_xml_with(&self, secret: Option<&SecretString>) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new(Self::GLOBAL_OAUTH_TYPE);
        xml.text("callbackUrl", "callback URL", self.callback_url.as_str())?;
        if let Some(secret) = secret {
            xml.text("consumerSecret", "consumer secret", secret.expose_secret())?;
        }
        xml.text("externalClientApplication", "name", self.name.as_str())?;
        xml.flag("isClientCredentialsFlowEnabled", true);
        xml.flag("isConsumerSecretOptional", false);
        xml.flag("isIntrospectAllTokens", false);
        xml.flag("isPkceRequired", self.pkce_required);
        xml.flag("isSecretRequiredForRefreshToken", true);
        xml.text("label", "label", &self.label)?;
        xml.flag("shouldRotateConsumerKey", false);
        xml.flag("shouldRotateConsumerSecret", false);
        Ok(xml.finish())
    }

    /// `extlClntAppOauthPolicies/<name>.ecaOauthPlcy`.
    pub fn oauth_policies_xml(&self) -> Result<String, SpecError> {
        let mut xml = XmlWriter::new(Self::OAUTH_POLICIES_TYPE);
        xml.text(
            "clientCredentialsFlowUser",
            "client credentials run-as user",
            &self.client_credentials_run_as,
        )?;
        let permission_sets: Vec<&str> = self
            .permission_set_names
            .iter()
            .map(ApiName::as_str)
            .collect();
        xml.text(
            "commaSeparatedPermissionSet",
            "permission sets",
            &permission_sets.join(","),
        )?;
        xml.text("externalClientApplication", "name", self.name.as_str())?;
        xml.constant("ipRelaxationPolicyType", "Enforce");
        xml.flag("isClientCredentialsFlowEnabled", true);
        xml.text("label", "label", &self.label)?;
        xml.constant("permittedUsersPolicyType", "AdminApprovedPreAuthorized");
        xml.constant("refreshTokenPolicyType", "Zero");
        xml.constant("requiredSessionLevel", "STANDARD");
        Ok(xml.finish())
    }

    /// The package: package.xml and the four component files.
    pub fn package(&self, version: ApiVersion) -> Result<PackageBuilder, SpecError> {
        self.package_with(version, None)
    }

    fn package_with(
        &self,
        version: ApiVersion,
        secret: Option<&SecretString>,
    ) -> Result<PackageBuilder, SpecError> {
        self.validate()?;
        let name = self.name.as_str();
        let mut package = PackageBuilder::new(version);
        package
            .add(
                Self::ECA_TYPE,
                "externalClientApps",
                "eca",
                name,
                self.eca_xml()?,
            )
            .add(
                Self::OAUTH_SETTINGS_TYPE,
                "extlClntAppOauthSettings",
                "ecaOauth",
                &Self::member(name, Self::OAUTH_SETTINGS_TYPE),
                self.oauth_settings_xml()?,
            )
            .add(
                Self::GLOBAL_OAUTH_TYPE,
                "extlClntAppGlobalOauthSets",
                "ecaGlblOauth",
                &Self::member(name, Self::GLOBAL_OAUTH_TYPE),
                self.global_oauth_xml_with(secret)?,
            )
            .add(
                Self::OAUTH_POLICIES_TYPE,
                "extlClntAppOauthPolicies",
                "ecaOauthPlcy",
                &Self::member(name, Self::OAUTH_POLICIES_TYPE),
                self.oauth_policies_xml()?,
            );
        Ok(package)
    }

    /// The deploy zip.
    pub fn build_zip(&self, version: ApiVersion) -> Result<DeployZip, SpecError> {
        self.package(version)?.build()
    }

    /// The deploy package with the consumer secret set to `secret` (see
    /// [`ExternalClientAppSpec::global_oauth_xml_with`]).
    pub fn build_zip_with_secret(
        &self,
        version: ApiVersion,
        secret: &SecretString,
    ) -> Result<DeployZip, SpecError> {
        self.package_with(version, Some(secret))?.build()
    }

    /// A deploy that deletes the app `name` with its three settings components (a real org
    /// refuses to delete an app whose components are left behind): an empty `package.xml`
    /// and a `destructiveChanges.xml` listing all four. Apps deployed before the components
    /// were named as Salesforce names them used the app's name for every component, so both
    /// names are listed; one that is not there is a warning. Deploy it with
    /// `ignore_warnings` to make deleting an app that is already gone a success.
    pub fn deletion_zip(name: &ApiName, version: ApiVersion) -> Result<DeployZip, SpecError> {
        let mut package = PackageBuilder::new(version);
        let name = name.as_str();
        for metadata_type in [
            Self::OAUTH_SETTINGS_TYPE,
            Self::GLOBAL_OAUTH_TYPE,
            Self::OAUTH_POLICIES_TYPE,
        ] {
            package.destroy(metadata_type, &Self::member(name, metadata_type));
            package.destroy(metadata_type, name);
        }
        package.destroy(Self::ECA_TYPE, name);
        package.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::package::tests::unzip;
    use crate::metadata::xml::METADATA_NS;

    fn spec() -> ExternalClientAppSpec {
        ExternalClientAppSpec {
            name: ApiName::parse("Acme_Contractor").unwrap(),
            label: "Acme Contractor".into(),
            contact_email: "ops@example.com".into(),
            description: "Kinetic Ltd's API access".into(),
            scopes: vec!["Api".into()],
            client_credentials_run_as: "acme.contractor.int@example.com".into(),
            permission_set_names: vec![ApiName::parse("Acme_Contractor_API").unwrap()],
            trusted_ip_ranges: vec![TrustedIpRange::new(
                "203.0.113.0".parse().unwrap(),
                "203.0.113.255".parse().unwrap(),
                "Kinetic office",
            )],
            callback_url: Url::parse("https://login.salesforce.com/services/oauth2/success")
                .unwrap(),
            pkce_required: true,
        }
    }

    /// The text of the root's child `name`, checking the document parses and is in the
    /// metadata namespace with the expected root.
    fn child_texts(xml: &str, root: &str, name: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let element = doc.root_element();
        assert_eq!(element.tag_name().name(), root);
        assert_eq!(element.tag_name().namespace(), Some(METADATA_NS));
        element
            .children()
            .filter(|n| n.has_tag_name(name))
            .map(|n| n.text().unwrap_or_default().to_string())
            .collect()
    }

    fn one(xml: &str, root: &str, name: &str) -> String {
        let texts = child_texts(xml, root, name);
        assert_eq!(texts.len(), 1, "{name} in {xml}");
        texts[0].clone()
    }

    #[test]
    fn zip_holds_the_package_and_four_components() {
        let zip = spec().build_zip(ApiVersion::DEFAULT).unwrap();
        let names: Vec<String> = unzip(&zip).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![
                "package.xml",
                "externalClientApps/Acme_Contractor.eca",
                "extlClntAppGlobalOauthSets/Acme_Contractor_glbloauth.ecaGlblOauth",
                "extlClntAppOauthPolicies/Acme_Contractor_oauthPlcy.ecaOauthPlcy",
                "extlClntAppOauthSettings/Acme_Contractor_oauth.ecaOauth",
            ]
        );
    }

    #[test]
    fn components_say_what_the_design_requires() {
        let files: std::collections::BTreeMap<String, String> =
            unzip(&spec().build_zip(ApiVersion::DEFAULT).unwrap())
                .into_iter()
                .collect();
        let package = &files["package.xml"];
        let doc = roxmltree::Document::parse(package).unwrap();
        let type_names: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("name"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(
            type_names,
            vec![
                "ExternalClientApplication",
                "ExtlClntAppGlobalOauthSettings",
                "ExtlClntAppOauthConfigurablePolicies",
                "ExtlClntAppOauthSettings",
            ]
        );

        let eca = &files["externalClientApps/Acme_Contractor.eca"];
        assert_eq!(
            one(eca, "ExternalClientApplication", "label"),
            "Acme Contractor"
        );
        assert_eq!(
            one(eca, "ExternalClientApplication", "distributionState"),
            "Local"
        );

        let settings = &files["extlClntAppOauthSettings/Acme_Contractor_oauth.ecaOauth"];
        let root = "ExtlClntAppOauthSettings";
        assert_eq!(one(settings, root, "commaSeparatedOauthScopes"), "Api");
        assert_eq!(
            one(settings, root, "externalClientApplication"),
            "Acme_Contractor"
        );
        let doc = roxmltree::Document::parse(settings).unwrap();
        let range = doc
            .descendants()
            .find(|n| n.has_tag_name("trustedIpRanges"))
            .unwrap();
        let field = |name: &str| {
            range
                .children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .unwrap()
                .to_string()
        };
        assert_eq!(field("startIpAddress"), "203.0.113.0");
        assert_eq!(field("endIpAddress"), "203.0.113.255");
        assert_eq!(field("description"), "Kinetic office");

        let global = &files["extlClntAppGlobalOauthSets/Acme_Contractor_glbloauth.ecaGlblOauth"];
        let root = "ExtlClntAppGlobalOauthSettings";
        assert_eq!(one(global, root, "isClientCredentialsFlowEnabled"), "true");
        assert_eq!(one(global, root, "isPkceRequired"), "true");
        assert_eq!(
            one(global, root, "callbackUrl"),
            "https://login.salesforce.com/services/oauth2/success"
        );
        assert!(child_texts(global, root, "consumerSecret").is_empty());

        let policies = &files["extlClntAppOauthPolicies/Acme_Contractor_oauthPlcy.ecaOauthPlcy"];
        let root = "ExtlClntAppOauthConfigurablePolicies";
        assert_eq!(
            one(policies, root, "isClientCredentialsFlowEnabled"),
            "true"
        );
        assert_eq!(
            one(policies, root, "clientCredentialsFlowUser"),
            "acme.contractor.int@example.com"
        );
        assert_eq!(
            one(policies, root, "permittedUsersPolicyType"),
            "AdminApprovedPreAuthorized"
        );
        assert_eq!(
            one(policies, root, "commaSeparatedPermissionSet"),
            "Acme_Contractor_API"
        );
        assert_eq!(one(policies, root, "refreshTokenPolicyType"), "Zero");
        assert_eq!(
            one(policies, root, "externalClientApplication"),
            "Acme_Contractor"
        );
    }

    #[test]
    fn hostile_values_are_escaped_and_stay_text() {
        let mut hostile = spec();
        hostile.label = r#"</label><isProtected>true</isProtected><label>"#.into();
        hostile.description = "Tom & Jerry's \"app\" ]]> <!-- -->".into();
        hostile.contact_email = "o'brien+<x>@example.com".into();
        hostile.trusted_ip_ranges[0].description = "<trustedIpRanges>&amp;".into();
        hostile
            .permission_set_names
            .push(ApiName::parse("Second_Set").unwrap());
        hostile.scopes.push("RefreshToken".into());
        let files: std::collections::BTreeMap<String, String> =
            unzip(&hostile.build_zip(ApiVersion::DEFAULT).unwrap())
                .into_iter()
                .collect();
        let eca = &files["externalClientApps/Acme_Contractor.eca"];
        let root = "ExternalClientApplication";
        assert_eq!(one(eca, root, "label"), hostile.label);
        assert_eq!(one(eca, root, "description"), hostile.description);
        assert_eq!(one(eca, root, "contactEmail"), hostile.contact_email);
        assert_eq!(one(eca, root, "isProtected"), "false");
        let settings = &files["extlClntAppOauthSettings/Acme_Contractor_oauth.ecaOauth"];
        assert_eq!(
            one(
                settings,
                "ExtlClntAppOauthSettings",
                "commaSeparatedOauthScopes"
            ),
            "Api, RefreshToken"
        );
        let doc = roxmltree::Document::parse(settings).unwrap();
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("trustedIpRanges"))
                .count(),
            1
        );
        let policies = &files["extlClntAppOauthPolicies/Acme_Contractor_oauthPlcy.ecaOauthPlcy"];
        assert_eq!(
            one(
                policies,
                "ExtlClntAppOauthConfigurablePolicies",
                "commaSeparatedPermissionSet"
            ),
            "Acme_Contractor_API,Second_Set"
        );
        // Every file, hostile or not, is well-formed.
        for (name, content) in &files {
            roxmltree::Document::parse(content).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn invalid_specs_are_refused() {
        let mut s = spec();
        s.label = "bad\u{1}label".into();
        assert_eq!(
            s.build_zip(ApiVersion::DEFAULT),
            Err(SpecError::InvalidXmlText { field: "label" })
        );
        let mut s = spec();
        s.permission_set_names.clear();
        assert_eq!(
            s.build_zip(ApiVersion::DEFAULT),
            Err(SpecError::Empty("permission sets"))
        );
        let mut s = spec();
        s.scopes = vec!["Api, Full".into()];
        assert!(s.build_zip(ApiVersion::DEFAULT).is_err());
        let mut s = spec();
        s.client_credentials_run_as = "not a user".into();
        assert!(s.build_zip(ApiVersion::DEFAULT).is_err());
        let mut s = spec();
        s.trusted_ip_ranges[0].end = "203.0.112.0".parse().unwrap();
        assert!(matches!(
            s.build_zip(ApiVersion::DEFAULT),
            Err(SpecError::InvalidIpRange { .. })
        ));
        let mut s = spec();
        s.label = "  ".into();
        assert_eq!(
            s.build_zip(ApiVersion::DEFAULT),
            Err(SpecError::Empty("label"))
        );
    }
}
