//! Behaviour a real org shows that the sandbox org must show too (issue 14): each test
//! names the documented rule it holds the sandbox org to.

use crate::common;

use common::Org;
use reqwest::StatusCode;
use salesforce::ApiVersion;
use salesforce::metadata::{ApiName, ExternalClientAppSpec, PackageBuilder};
use sandbox_org::SandboxConfig;
use sandbox_org::store::OrgKind;
use serde_json::{Value, json};

async fn jwt_with_audience(org: &Org, audience: &str) -> (StatusCode, Value) {
    let key = org.org.portal_private_key_pem().unwrap();
    let claims = json!({
        "iss": org.portal_client().0,
        "sub": "admin@acme-sandbox.example",
        "aud": audience,
        "exp": chrono::Utc::now().timestamp() + 120,
    });
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap();
    let response = org
        .http
        .post(org.url("/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Item 2: a sandbox refuses `https://login.salesforce.com` as the JWT audience; production
/// and Developer Edition orgs take it; every kind takes the org's My Domain URL.
#[tokio::test]
async fn jwt_audiences_follow_the_kind_of_org() {
    for (kind, login_ok) in [
        (OrgKind::Sandbox, false),
        (OrgKind::Production, true),
        (OrgKind::Developer, true),
    ] {
        let org = Org::start_with(SandboxConfig {
            kind: Some(kind),
            ..SandboxConfig::default()
        })
        .await;
        let my_domain = org.org.base_url().to_string();
        let (status, body) = jwt_with_audience(&org, &my_domain).await;
        assert_eq!(status, StatusCode::OK, "{kind:?}, My Domain: {body}");
        let (status, body) = jwt_with_audience(&org, "https://login.salesforce.com").await;
        assert_eq!(status.is_success(), login_ok, "{kind:?}, login: {body}");
        if !login_ok {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
        // The portal app is an External Client App: a sandbox's reading of Spring '26 (3P,
        // UNCONFIRMED) refuses test.salesforce.com for it; production never takes it.
        let (status, body) = jwt_with_audience(&org, "https://test.salesforce.com").await;
        assert!(!status.is_success(), "{kind:?}, test: {body}");
        let (status, _) = jwt_with_audience(&org, "https://elsewhere.example").await;
        assert!(!status.is_success());
    }
    // A new org is a sandbox.
    let org = Org::start().await;
    let (status, _) = jwt_with_audience(&org, "https://login.salesforce.com").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Item 1: the web-server flow's code exchange needs the consumer secret unless the app's
/// `isConsumerSecretOptional` is on, and is refused as `invalid_client` before the code is
/// looked at.
#[tokio::test]
async fn code_exchange_needs_the_secret_unless_the_app_makes_it_optional() {
    async fn exchange(org: &Org) -> String {
        let (id, _) = org.portal_client();
        let response = org
            .http
            .post(org.url("/services/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", id.as_str()),
                ("code", "no-such-code"),
                ("redirect_uri", "http://127.0.0.1:1/auth/callback"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["error"].as_str().unwrap_or_default().to_string()
    }
    let org = Org::start().await;
    assert_eq!(exchange(&org).await, "invalid_client");
    for app in org.org.org.write().apps.values_mut() {
        app.consumer_secret_optional = true;
    }
    assert_eq!(exchange(&org).await, "invalid_grant");
}

const V: &str = "/services/data/v66.0";

/// Deploys `zip` as the admin (ignoring warnings when asked) and waits for the result.
async fn deploy(org: &Org, zip: Vec<u8>, ignore_warnings: bool) -> Value {
    let form = reqwest::multipart::Form::new()
        .part(
            "json",
            reqwest::multipart::Part::text(
                json!({ "deployOptions": { "singlePackage": true, "ignoreWarnings": ignore_warnings } })
                    .to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(zip)
                .file_name("deploy.zip")
                .mime_str("application/zip")
                .unwrap(),
        );
    let response = org
        .http
        .post(org.url(&format!("{V}/metadata/deployRequest")))
        .bearer_auth(&org.admin_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    loop {
        let (_, body) = org
            .admin(
                reqwest::Method::GET,
                &format!("{V}/metadata/deployRequest/{id}?includeDetails=true"),
                None,
            )
            .await;
        if body["deployResult"]["done"] == true {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
}

fn app_spec(name: &str, run_as: &str, permission_set: &str) -> ExternalClientAppSpec {
    ExternalClientAppSpec {
        name: ApiName::parse(name).unwrap(),
        label: name.replace('_', " "),
        contact_email: "it@acme.example".into(),
        description: "issue 14".into(),
        scopes: vec!["Api".into()],
        client_credentials_run_as: run_as.into(),
        permission_set_names: vec![ApiName::parse(permission_set).unwrap()],
        trusted_ip_ranges: Vec::new(),
        callback_url: salesforce::Url::parse(
            "https://login.salesforce.com/services/oauth2/success",
        )
        .unwrap(),
        pkce_required: true,
    }
}

/// Item 7: deleting an External Client App while its settings components stay is refused;
/// the portal's destructive deploy (all four components) deletes it.
#[tokio::test]
async fn an_app_is_deleted_only_together_with_its_components() {
    let org = Org::start().await;
    let (_, username) = org.integration_user("remover").await;
    org.create(
        "PermissionSet",
        json!({ "Name": "Remover_API", "Label": "Remover API" }),
    )
    .await;
    let spec = app_spec("Remover_Ltd", &username, "Remover_API");
    let zip = spec.build_zip(ApiVersion::DEFAULT).unwrap();
    let done = deploy(&org, zip.as_bytes().to_vec(), false).await;
    assert_eq!(done["deployResult"]["status"], "Succeeded", "{done}");

    // Only the app header: refused, the app stays.
    let mut header_only = PackageBuilder::new(ApiVersion::DEFAULT);
    header_only.destroy(ExternalClientAppSpec::ECA_TYPE, "Remover_Ltd");
    let refused = deploy(&org, header_only.build().unwrap().as_bytes().to_vec(), true).await;
    assert_eq!(refused["deployResult"]["status"], "Failed", "{refused}");
    let problem = refused["deployResult"]["details"]["componentFailures"].to_string();
    assert!(problem.contains("referenced by"), "{problem}");
    assert!(
        org.org
            .org
            .read()
            .apps
            .values()
            .any(|a| a.developer_name == "Remover_Ltd")
    );

    // The portal's deletion: all four, by the names Salesforce gives them.
    let name = ApiName::parse("Remover_Ltd").unwrap();
    let zip = ExternalClientAppSpec::deletion_zip(&name, ApiVersion::DEFAULT).unwrap();
    let deleted = deploy(&org, zip.as_bytes().to_vec(), true).await;
    assert_eq!(deleted["deployResult"]["status"], "Succeeded", "{deleted}");
    assert!(
        !org.org
            .org
            .read()
            .apps
            .values()
            .any(|a| a.developer_name == "Remover_Ltd")
    );
}

async fn set_org_wide_defaults(org: &Org, defaults: Value) {
    let response = org
        .http
        .patch(org.url("/__sandbox/settings"))
        .json(&json!({ "orgWideDefaults": defaults }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "orgWideDefaults");
}

async fn share(
    org: &Org,
    object: &str,
    record: &str,
    user: &str,
    level: &str,
) -> (StatusCode, Value) {
    org.admin(
        reqwest::Method::POST,
        &format!("/services/data/v66.0/sobjects/{object}Share"),
        Some(json!({
            format!("{object}Id"): record,
            "UserOrGroupId": user,
            format!("{object}AccessLevel"): level,
        })),
    )
    .await
}

/// Item 5: with Contact sharing Controlled by Parent (the default) there is no manual
/// ContactShare; with a Private Contact default a Read share works.
/// OBJ `sforce_api_objects_contactshare.htm`.
#[tokio::test]
async fn contact_shares_exist_only_when_contacts_are_not_controlled_by_parent() {
    let org = Org::start().await;
    let (user, _) = org.integration_user("conshare").await;
    let contact = org.id_of("SELECT Id FROM Contact LIMIT 1").await;
    let (status, body) = share(&org, "Contact", &contact, &user, "Read").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(common::error_code(&body), "INVALID_ACCESS_LEVEL", "{body}");
    let (_, rows) = org
        .query(
            &org.admin_token,
            "SELECT Id FROM ContactShare WHERE RowCause = 'Manual'",
        )
        .await;
    assert_eq!(rows["totalSize"], 0, "{rows}");

    set_org_wide_defaults(&org, json!({ "Contact": "None" })).await;
    let (status, body) = share(&org, "Contact", &contact, &user, "Read").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Item 5: a share's access level must be above the object's org-wide default; a real org
/// refuses an equal or lower level with INVALID_ACCESS_LEVEL ("... are below organization
/// levels"). OBJ `sforce_api_objects_accountshare.htm`, `sforce_api_objects_caseshare.htm`.
#[tokio::test]
async fn a_share_must_give_more_than_the_org_wide_default() {
    let org = Org::start().await;
    let (user, _) = org.integration_user("owdshare").await;
    let account = org.id_of("SELECT Id FROM Account LIMIT 1").await;
    let case = org.id_of("SELECT Id FROM Case LIMIT 1").await;
    set_org_wide_defaults(&org, json!({ "Account": "Read", "Case": "Edit" })).await;
    for (object, record, level) in [
        ("Account", &account, "Read"),
        ("Case", &case, "Read"),
        ("Case", &case, "Edit"),
    ] {
        let (status, body) = share(&org, object, record, &user, level).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{object} {level}: {body}");
        assert_eq!(common::error_code(&body), "INVALID_ACCESS_LEVEL", "{body}");
    }
    let (status, body) = share(&org, "Account", &account, &user, "Edit").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Item 5, custom objects: a custom object's org-wide default is EntityDefinition's
/// `InternalSharingModel` (custom objects have no `Default<Object>Access` on the
/// Organization); standard objects' rows agree with the Organization record. Tooling API
/// `tooling_api_objects_entitydefinition.htm` (queryable with View Setup and Configuration).
#[tokio::test]
async fn entity_definition_holds_each_objects_sharing_model() {
    let org = Org::start().await;
    let model = |object: &'static str| {
        let org = &org;
        async move {
            let (status, rows) = org
                .query(
                    &org.admin_token,
                    &format!(
                        "SELECT QualifiedApiName, InternalSharingModel FROM EntityDefinition WHERE QualifiedApiName = '{object}'"
                    ),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{rows}");
            rows["records"][0]["InternalSharingModel"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(model("Project__c").await, "Private");
    assert_eq!(model("Case").await, "Private");
    assert_eq!(model("Contact").await, "ControlledByParent");
    set_org_wide_defaults(&org, json!({ "Project__c": "ReadWrite", "Case": "Edit" })).await;
    assert_eq!(model("Project__c").await, "ReadWrite");
    assert_eq!(model("Case").await, "ReadWrite");
    // A value a custom object cannot have (Controlled by Parent needs a master-detail
    // field), or an object that is not here, is refused.
    for bad in [
        json!({ "Project__c": "Edit" }),
        json!({ "Project__c": "ControlledByParent" }),
        json!({ "Nothing__c": "Read" }),
    ] {
        let response = org
            .http
            .patch(org.url("/__sandbox/settings"))
            .json(&json!({ "orgWideDefaults": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Item 14 (issue 17): a permission set assignment grants nothing once the org's clock
/// passes its `ExpirationDate`, and is removed; the org's clock moves with
/// `clockOffsetSeconds` (a sandbox-only setting), which takes only whole seconds within 20
/// years.
#[tokio::test]
async fn an_expired_assignment_is_removed_when_the_org_clock_passes_it() {
    let org = Org::start().await;
    let (user, _) = org.integration_user("Lapse").await;
    let ps = org
        .create(
            "PermissionSet",
            json!({ "Name": "Lapse_Set", "Label": "Lapse Set" }),
        )
        .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    org.create(
        "PermissionSetAssignment",
        json!({ "AssigneeId": user, "PermissionSetId": ps, "ExpirationDate": tomorrow }),
    )
    .await;
    let soql = format!("SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = '{ps}'");
    let token = org
        .password_token("admin@acme-sandbox.example", "Admin-Sandbox-1")
        .await;
    let (_, found) = org.query(&token, &soql).await;
    assert_eq!(found["totalSize"], 1, "{found}");

    for bad in [json!("soon"), json!(1.5), json!(21_i64 * 366 * 86_400)] {
        let refused = org
            .http
            .patch(org.url("/__sandbox/settings"))
            .json(&json!({ "clockOffsetSeconds": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let moved = org
        .http
        .patch(org.url("/__sandbox/settings"))
        .json(&json!({ "clockOffsetSeconds": 2 * 86_400 }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::OK);
    // The admin's token, issued before, expired with the org's clock.
    let token = org
        .password_token("admin@acme-sandbox.example", "Admin-Sandbox-1")
        .await;
    let (_, found) = org.query(&token, &soql).await;
    assert_eq!(
        found["totalSize"], 0,
        "removed at its ExpirationDate: {found}"
    );
}

/// The org has one Organization row whose `Name` is the company name of Setup > Company
/// Information (`sforce_api_objects_organization.htm`: Name, string of up to 80 characters);
/// the sandbox-only `orgName` setting stands for that Setup page.
#[tokio::test]
async fn the_organization_row_carries_the_orgs_name() {
    let org = Org::start().await;
    let name = || {
        let org = &org;
        async move {
            let (status, rows) = org
                .query(&org.admin_token, "SELECT Name FROM Organization")
                .await;
            assert_eq!(status, StatusCode::OK, "{rows}");
            assert_eq!(rows["totalSize"], json!(1), "one Organization row: {rows}");
            rows["records"][0]["Name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(name().await, "Acme (Sandbox Org)");
    let set = |value: Value| {
        let org = &org;
        async move {
            org.http
                .patch(org.url("/__sandbox/settings"))
                .json(&json!({ "orgName": value }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(set(json!("Kinetic Holdings")).await, StatusCode::OK);
    assert_eq!(name().await, "Kinetic Holdings");
    for bad in [json!(""), json!("   "), json!("x".repeat(81)), json!(7)] {
        assert_eq!(set(bad.clone()).await, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        name().await,
        "Kinetic Holdings",
        "a refused name changes nothing"
    );
}
