//! The security model the sandbox org enforces on a caller's token, checked over HTTP:
//! licences and permission set licences, object permissions, field-level security, record
//! visibility, frozen users and revoked tokens, the daily API limit.

use crate::common;

use common::{Org, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const V: &str = "/services/data/v66.0";

/// A permission set on the API integration licence: Read on Case with Subject, Description,
/// Priority; Edit on Case (Status is not field-permissionable, so object Edit governs it).
async fn case_reader_permission_set(org: &Org, name: &str) -> String {
    let psl = org.id_of("SELECT Id FROM PermissionSetLicense WHERE DeveloperName = 'SalesforceAPIIntegrationPsl'").await;
    let ps = org
        .create(
            "PermissionSet",
            json!({ "Name": name, "Label": name, "LicenseId": psl }),
        )
        .await;
    org.create(
        "ObjectPermissions",
        json!({ "ParentId": ps, "SobjectType": "Case", "PermissionsRead": true, "PermissionsEdit": true }),
    )
    .await;
    for field in ["Subject", "Description", "Priority"] {
        org.create(
            "FieldPermissions",
            json!({ "ParentId": ps, "SobjectType": "Case", "Field": format!("Case.{field}"), "PermissionsRead": true, "PermissionsEdit": false }),
        )
        .await;
    }
    ps
}

async fn grant_psl(org: &Org, user: &str) {
    let psl = org.id_of("SELECT Id FROM PermissionSetLicense WHERE DeveloperName = 'SalesforceAPIIntegrationPsl'").await;
    org.create(
        "PermissionSetLicenseAssign",
        json!({ "AssigneeId": user, "PermissionSetLicenseId": psl }),
    )
    .await;
}

#[tokio::test]
async fn integration_users_need_the_permission_set_licence_and_a_free_seat() {
    let org = Org::start().await;
    let (user, _) = org.integration_user("kinetic").await;
    let ps = case_reader_permission_set(&org, "Kinetic_Cases").await;

    // Assigning before the permission set licence is refused, as Salesforce does.
    let (status, body) = org
        .admin(
            Method::POST,
            &format!("{V}/sobjects/PermissionSetAssignment"),
            Some(json!({ "AssigneeId": user, "PermissionSetId": ps })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "FIELD_INTEGRITY_EXCEPTION");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .contains("permission set license"),
        "{body}"
    );

    grant_psl(&org, &user).await;
    org.create(
        "PermissionSetAssignment",
        json!({ "AssigneeId": user, "PermissionSetId": ps }),
    )
    .await;
    // The same assignment twice is a duplicate.
    let (status, body) = org
        .admin(
            Method::POST,
            &format!("{V}/sobjects/PermissionSetAssignment"),
            Some(json!({ "AssigneeId": user, "PermissionSetId": ps })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "DUPLICATE_VALUE");

    // Five Salesforce Integration seats: four more fit, the sixth user does not.
    let mut users = vec![user];
    for i in 2..=5 {
        users.push(org.integration_user(&format!("contractor{i}")).await.0);
    }
    let profile = org
        .id_of("SELECT Id FROM Profile WHERE Name = 'Minimum Access - API Only Integrations'")
        .await;
    let sixth = json!({
        "Username": "sixth@contractor.example", "LastName": "Sixth", "Email": "ops@contractor.example",
        "Alias": "sixth", "TimeZoneSidKey": "Europe/London", "LocaleSidKey": "en_GB",
        "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US", "ProfileId": profile,
    });
    let (status, body) = org
        .admin(
            Method::POST,
            &format!("{V}/sobjects/User"),
            Some(sixth.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "LICENSE_LIMIT_EXCEEDED");
    let (status, body) = org
        .admin(Method::GET, &format!("{V}/query?q={}", common::urlencode("SELECT UsedLicenses, TotalLicenses FROM UserLicense WHERE Name = 'Salesforce Integration'")), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deactivating one frees its seat.
    let (status, _) = org
        .admin(
            Method::PATCH,
            &format!("{V}/sobjects/User/{}", users[4]),
            Some(json!({ "IsActive": false })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = org
        .admin(
            Method::POST,
            &format!("{V}/sobjects/User"),
            Some(sixth.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Usernames are unique.
    let (status, body) = org
        .admin(Method::POST, &format!("{V}/sobjects/User"), Some(sixth))
        .await;
    assert_eq!(error_code(&body), "DUPLICATE_USERNAME", "{status}");
}

#[tokio::test]
async fn field_level_security_and_sharing_decide_what_a_contractor_sees() {
    let org = Org::start().await;
    let (user, username) = org.integration_user("kinetic").await;
    grant_psl(&org, &user).await;
    let ps = case_reader_permission_set(&org, "Kinetic_Cases").await;
    org.create(
        "PermissionSetAssignment",
        json!({ "AssigneeId": user, "PermissionSetId": ps }),
    )
    .await;

    // Three cases shared with the contractor, one of them only for reading.
    let (_, cases) = org
        .query(
            &org.admin_token,
            "SELECT Id FROM Case ORDER BY CaseNumber LIMIT 4",
        )
        .await;
    let ids: Vec<String> = cases["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    for (id, level) in [(&ids[0], "Edit"), (&ids[1], "Edit"), (&ids[2], "Read")] {
        org.create(
            "CaseShare",
            json!({ "CaseId": id, "UserOrGroupId": user, "CaseAccessLevel": level }),
        )
        .await;
    }
    let token = org
        .jwt_token(&username)
        .await
        .expect("a token for the integration user");

    // describe: only the permitted fields (plus the ones no field-level security covers).
    let (status, describe) = org
        .call(
            &token,
            Method::GET,
            &format!("{V}/sobjects/Case/describe"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut fields: Vec<String> = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    fields.sort();
    let mut expected: Vec<String> = [
        "Id",
        "OwnerId",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "Status",
        "Subject",
        "Description",
        "Priority",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(fields, expected);
    let subject = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Subject")
        .unwrap();
    assert_eq!(subject["updateable"], false);

    // The sObject list holds only what the contractor may read.
    let (_, sobjects) = org
        .call(&token, Method::GET, &format!("{V}/sobjects"), None)
        .await;
    let names: Vec<&str> = sobjects["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Case"));
    assert!(
        !names.contains(&"Account") && !names.contains(&"PermissionSet"),
        "{names:?}"
    );

    // A hidden field in a query is INVALID_FIELD; an ungranted object is INVALID_TYPE.
    let (status, body) = org.query(&token, "SELECT Id, Origin FROM Case").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_FIELD");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .contains("No such column 'Origin' on entity 'Case'")
    );
    let (_, body) = org.query(&token, "SELECT Id FROM Account").await;
    assert_eq!(error_code(&body), "INVALID_TYPE");
    let (status, _) = org
        .call(
            &token,
            Method::GET,
            &format!("{V}/sobjects/Account/describe"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Exactly the shared records are visible.
    let (_, visible) = org
        .query(&token, "SELECT Id, Subject, Status FROM Case")
        .await;
    let mut seen: Vec<&str> = visible["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut want: Vec<&str> = ids[..3].iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(seen, want);
    let (_, count) = org.query(&token, "SELECT COUNT() FROM Case").await;
    assert_eq!(count["totalSize"], 3);

    // Status (object Edit) can be changed on an Edit share; Subject (read-only FLS) cannot.
    let path = format!("{V}/sobjects/Case/{}", ids[0]);
    let (status, body) = org
        .call(
            &token,
            Method::PATCH,
            &path,
            Some(json!({ "Status": "In Progress" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, reread) = org.call(&token, Method::GET, &path, None).await;
    assert_eq!(reread["Status"], "In Progress");
    assert!(
        reread.get("Origin").is_none(),
        "hidden fields are not returned"
    );
    let (status, body) = org
        .call(
            &token,
            Method::PATCH,
            &path,
            Some(json!({ "Subject": "mine now" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_FIELD_FOR_INSERT_UPDATE");
    // A read-only share allows no edit; an unshared record is not even there.
    let (status, body) = org
        .call(
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Case/{}", ids[2]),
            Some(json!({ "Status": "Closed" })),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "INSUFFICIENT_ACCESS_OR_READONLY")
    );
    let (status, _) = org
        .call(
            &token,
            Method::PATCH,
            &format!("{V}/sobjects/Case/{}", ids[3]),
            Some(json!({ "Status": "Closed" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = org
        .call(
            &token,
            Method::GET,
            &format!("{V}/sobjects/Case/{}", ids[3]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without Create permission, no new cases.
    let (status, body) = org
        .call(
            &token,
            Method::POST,
            &format!("{V}/sobjects/Case"),
            Some(json!({ "Subject": "x" })),
        )
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "INSUFFICIENT_ACCESS_OR_READONLY")
    );

    // An expired assignment takes the access away at once.
    let (_, psa) = org.query(&org.admin_token, &format!("SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{user}' AND PermissionSetId = '{ps}'")).await;
    let psa = psa["records"][0]["Id"].as_str().unwrap().to_string();
    let (status, _) = org
        .admin(
            Method::DELETE,
            &format!("{V}/sobjects/PermissionSetAssignment/{psa}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = org.query(&token, "SELECT Id FROM Case").await;
    assert_eq!(error_code(&body), "INVALID_TYPE");
}

#[tokio::test]
async fn owners_and_groups_give_visibility_too() {
    let org = Org::start().await;
    let (user, username) = org.integration_user("owner").await;
    grant_psl(&org, &user).await;
    let ps = case_reader_permission_set(&org, "Owner_Cases").await;
    org.create(
        "PermissionSetAssignment",
        json!({ "AssigneeId": user, "PermissionSetId": ps }),
    )
    .await;
    let (_, cases) = org
        .query(
            &org.admin_token,
            "SELECT Id FROM Case ORDER BY CaseNumber DESC LIMIT 2",
        )
        .await;
    let owned = cases["records"][0]["Id"].as_str().unwrap().to_string();
    let via_group = cases["records"][1]["Id"].as_str().unwrap().to_string();
    let (status, body) = org
        .admin(
            Method::PATCH,
            &format!("{V}/sobjects/Case/{owned}"),
            Some(json!({ "OwnerId": user })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let group = org
        .create(
            "Group",
            json!({ "Name": "Contractor cases", "Type": "Regular" }),
        )
        .await;
    org.create(
        "GroupMember",
        json!({ "GroupId": group, "UserOrGroupId": user }),
    )
    .await;
    org.create(
        "CaseShare",
        json!({ "CaseId": via_group, "UserOrGroupId": group, "CaseAccessLevel": "Read" }),
    )
    .await;
    let token = org.jwt_token(&username).await.unwrap();
    let (_, visible) = org.query(&token, "SELECT Id FROM Case ORDER BY Id").await;
    let mut seen: Vec<&str> = visible["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut want = vec![owned.as_str(), via_group.as_str()];
    want.sort();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn frozen_users_and_revoked_tokens_are_refused() {
    let org = Org::start().await;
    let (user, username) = org.integration_user("frosty").await;
    let token = org.jwt_token(&username).await.unwrap();
    let (status, _) = org
        .call(
            &token,
            Method::GET,
            &format!("{V}/sobjects/User/{user}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let login = org
        .id_of(&format!("SELECT Id FROM UserLogin WHERE UserId = '{user}'"))
        .await;
    let (status, _) = org
        .admin(
            Method::PATCH,
            &format!("{V}/sobjects/UserLogin/{login}"),
            Some(json!({ "IsFrozen": true })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Freezing does not end a token already issued (UNCONFIRMED; the stricter reading,
    // issue 14 item 10): revoking the app's tokens for the user does.
    let (status, _) = org
        .call(&token, Method::GET, &format!("{V}/limits"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a frozen user's issued token still works"
    );
    let (app_id, user_key) = {
        let data = org.org.org.read();
        let app = data
            .apps
            .values()
            .find(|a| a.developer_name == "Portcullis_Portal")
            .unwrap();
        (app.id.clone(), user.clone())
    };
    let (status, _) = org
        .admin(
            Method::DELETE,
            &format!("{V}/apps/oauth/usage/{app_id}/{user_key}/tokens"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = org
        .call(&token, Method::GET, &format!("{V}/limits"), None)
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID")
    );
    let refused = org.jwt_token(&username).await.unwrap_err();
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("frozen")
    );

    org.admin(
        Method::PATCH,
        &format!("{V}/sobjects/UserLogin/{login}"),
        Some(json!({ "IsFrozen": false })),
    )
    .await;
    let token = org
        .jwt_token(&username)
        .await
        .expect("unfrozen users get tokens again");
    let revoke = org
        .http
        .post(org.url("/services/oauth2/revoke"))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let (status, _) = org
        .call(&token, Method::GET, &format!("{V}/limits"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // People who are API-only users cannot use the login page; inactive users get nothing.
    org.admin(
        Method::PATCH,
        &format!("{V}/sobjects/User/{user}"),
        Some(json!({ "IsActive": false })),
    )
    .await;
    assert_eq!(
        org.jwt_token(&username).await.unwrap_err()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_daily_api_limit_is_enforced_and_reported() {
    let org = Org::start().await;
    let settings = org
        .http
        .patch(org.url("/__sandbox/settings"))
        .json(&json!({ "dailyApiLimit": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), StatusCode::OK);
    let mut last_header = String::new();
    for _ in 0..5 {
        let response = org
            .http
            .get(org.url(&format!("{V}/limits")))
            .bearer_auth(&org.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        last_header = response.headers()["sforce-limit-info"]
            .to_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(last_header, "api-usage=5/5");
    let response = org
        .http
        .get(org.url(&format!("{V}/limits")))
        .bearer_auth(&org.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "REQUEST_LIMIT_EXCEEDED");
    // The versions list is free.
    let response = org
        .http
        .get(org.url("/services/data/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("sforce-limit-info").is_none());
}
