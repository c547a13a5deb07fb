//! Issue 14: what the client sends where a real org is stricter than the old sandbox org.

use std::collections::BTreeMap;
use std::io::Read;

use salesforce::connect::is_secret_access_disabled;
use salesforce::metadata::{ApiName, DeployZip, ExternalClientAppSpec};
use salesforce::{ApiError, ApiVersion, Error, Url};

fn unzip(zip: &DeployZip) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.as_bytes().to_vec())).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(entry.name().unwrap().to_string(), text);
    }
    files
}

fn spec() -> ExternalClientAppSpec {
    ExternalClientAppSpec {
        name: ApiName::parse("Acme_Contractor").unwrap(),
        label: "Acme Contractor".into(),
        contact_email: "ops@example.com".into(),
        description: "Kinetic Ltd's API access".into(),
        scopes: vec!["Api".into()],
        client_credentials_run_as: "acme.contractor.int@example.com".into(),
        permission_set_names: vec![ApiName::parse("Acme_Contractor_API").unwrap()],
        trusted_ip_ranges: Vec::new(),
        callback_url: Url::parse("https://login.salesforce.com/services/oauth2/success").unwrap(),
        pkce_required: true,
    }
}

/// (type, member) pairs of a manifest.
fn members(xml: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let mut listed = Vec::new();
    for types in doc.descendants().filter(|n| n.has_tag_name("types")) {
        let type_name = types
            .children()
            .find(|n| n.has_tag_name("name"))
            .and_then(|n| n.text())
            .unwrap()
            .to_string();
        for member in types.children().filter(|n| n.has_tag_name("members")) {
            listed.push((type_name.clone(), member.text().unwrap().to_string()));
        }
    }
    listed
}

const GENERATED: [(&str, &str); 4] = [
    ("ExternalClientApplication", "Acme_Contractor"),
    ("ExtlClntAppOauthSettings", "Acme_Contractor_oauth"),
    (
        "ExtlClntAppGlobalOauthSettings",
        "Acme_Contractor_glbloauth",
    ),
    (
        "ExtlClntAppOauthConfigurablePolicies",
        "Acme_Contractor_oauthPlcy",
    ),
];

/// Item 7: the components are named as Salesforce names them (`<app>_oauth`,
/// `<app>_glbloauth`, `<app>_oauthPlcy`), in package.xml and in the file names.
#[test]
fn eca_components_are_named_as_salesforce_generates_them() {
    let files = unzip(&spec().build_zip(ApiVersion::DEFAULT).unwrap());
    let listed = members(&files["package.xml"]);
    for (type_name, member) in GENERATED {
        assert!(
            listed.contains(&(type_name.to_string(), member.to_string())),
            "{type_name} {member} in package.xml: {listed:?}"
        );
    }
    for path in [
        "externalClientApps/Acme_Contractor.eca",
        "extlClntAppOauthSettings/Acme_Contractor_oauth.ecaOauth",
        "extlClntAppGlobalOauthSets/Acme_Contractor_glbloauth.ecaGlblOauth",
        "extlClntAppOauthPolicies/Acme_Contractor_oauthPlcy.ecaOauthPlcy",
    ] {
        assert!(files.contains_key(path), "{path} in {:?}", files.keys());
    }
}

/// Item 7: a destructive deploy lists all four components.
#[test]
fn deleting_an_app_lists_all_four_components() {
    let name = ApiName::parse("Acme_Contractor").unwrap();
    let files = unzip(&ExternalClientAppSpec::deletion_zip(&name, ApiVersion::DEFAULT).unwrap());
    let listed = members(&files["destructiveChanges.xml"]);
    for (type_name, member) in GENERATED {
        assert!(
            listed.contains(&(type_name.to_string(), member.to_string())),
            "{type_name} {member} in destructiveChanges.xml: {listed:?}"
        );
    }
}

/// Item 7: errors are matched by their code, never by their (translatable) text.
#[test]
fn secret_access_off_is_recognised_by_error_code_not_message() {
    let by_code = Error::Api {
        status: 403,
        errors: vec![ApiError::new(
            "FUNCTIONALITY_NOT_ENABLED",
            "Der Zugriff auf Consumer-Geheimnisse über die REST-API ist deaktiviert",
        )],
    };
    assert!(is_secret_access_disabled(&by_code));
    let by_text = Error::Api {
        status: 403,
        errors: vec![ApiError::new(
            "INSUFFICIENT_ACCESS",
            "This feature is not currently enabled for this user",
        )],
    };
    assert!(!is_secret_access_disabled(&by_text));
}
