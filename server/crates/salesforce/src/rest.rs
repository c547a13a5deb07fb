//! sObject REST: list, describe, create, read, update, delete, upsert (§2.2, §2.7).
//!
//! Object and field names are checked like SOQL identifiers before they go into a URL;
//! ids are [`SalesforceId`]s; external id values are percent-encoded as one path segment.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ApiRequest, Client};
use crate::error::{ApiError, Error, Result};
use crate::id::SalesforceId;
use crate::retry::Idempotency;
use crate::soql::validate_identifier;
use crate::wire;

/// One object in `GET /sobjects/` (§2.7).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectSummary {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub label_plural: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub custom: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub createable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub updateable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub deletable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub queryable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub retrieveable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub searchable: bool,
}

/// `GET /sobjects/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectList {
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_opt_u64")]
    pub max_batch_size: Option<u64>,
    #[serde(default, deserialize_with = "wire::one_or_many")]
    pub sobjects: Vec<SObjectSummary>,
}

/// A picklist entry of a field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    #[serde(default, deserialize_with = "wire::lenient_string")]
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub active: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub default_value: bool,
}

/// One field of a describe (§2.7; the SOAP `DescribeSObjectResult` field list).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    /// `id`, `string`, `picklist`, `reference`, `boolean`, `datetime`, ...
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub label: String,
    #[serde(default, deserialize_with = "wire::lenient_u64")]
    pub length: u64,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub updateable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub createable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub nillable: bool,
    /// Whether FieldPermissions rows may exist for it (§3.6).
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub permissionable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub defaulted_on_create: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub custom: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub calculated: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub auto_number: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub unique: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub external_id: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub filterable: bool,
    /// The object's name field (`Name`, `Subject`, `CaseNumber`): what a record is called.
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub name_field: bool,
    #[serde(default, deserialize_with = "wire::one_or_many")]
    pub reference_to: Vec<String>,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default, deserialize_with = "wire::one_or_many")]
    pub picklist_values: Vec<PicklistValue>,
}

/// `GET /sobjects/{SObject}/describe/`, the parts the portal uses; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Describe {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub custom: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub createable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub updateable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub deletable: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub queryable: bool,
    #[serde(default, deserialize_with = "wire::one_or_many")]
    pub fields: Vec<FieldDescribe>,
}

impl Describe {
    /// The field named `name` (case-insensitive, as Salesforce names are).
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// The body of a create (201) or upsert answer (§2.2), and one entry of a SaveResult array
/// (§2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<SalesforceId>,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub success: bool,
    #[serde(default, deserialize_with = "wire::one_or_many")]
    pub errors: Vec<ApiError>,
    /// Upsert only: whether a record was inserted.
    #[serde(
        default,
        deserialize_with = "wire::lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub created: Option<bool>,
}

impl SaveResult {
    /// The id if the save succeeded, else its errors as [`Error::Api`] with `status`.
    pub fn into_result(self, status: u16) -> Result<SalesforceId> {
        match (self.success, self.id) {
            (true, Some(id)) => Ok(id),
            (true, None) => Err(Error::decode("save result", "success without an id")),
            (false, _) => Err(Error::Api {
                status,
                errors: self.errors,
            }),
        }
    }
}

/// The outcome of an upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertResult {
    pub id: SalesforceId,
    /// `true` if a record was inserted, `false` if one was updated.
    pub created: bool,
}

fn checked(names: &[&str]) -> Result<()> {
    for name in names {
        validate_identifier(name)?;
    }
    Ok(())
}

impl Client {
    /// `GET /sobjects/`: every object in the org.
    pub async fn sobjects(&self) -> Result<SObjectList> {
        self.get_json(&self.rest_url(&["sobjects", ""])?).await
    }

    /// `GET /sobjects/{sobject}/describe/`.
    pub async fn describe(&self, sobject: &str) -> Result<Describe> {
        checked(&[sobject])?;
        self.get_json(&self.rest_url(&["sobjects", sobject, "describe", ""])?)
            .await
    }

    /// `POST /sobjects/{sobject}/` (201): creates a record and returns its id.
    ///
    /// Not retried once it may have reached Salesforce: a timeout or 500 gives
    /// [`Error::OutcomeUnknown`], and the caller looks the record up before retrying.
    pub async fn create<B: Serialize + ?Sized>(
        &self,
        sobject: &str,
        body: &B,
    ) -> Result<SalesforceId> {
        checked(&[sobject])?;
        let request =
            ApiRequest::new(Method::POST, self.rest_url(&["sobjects", sobject, ""])?).json(body)?;
        let result: SaveResult = self.send_json(&request).await?;
        result.into_result(400)
    }

    /// `GET /sobjects/{sobject}/{id}[?fields=...]`: the record with its `attributes`.
    pub async fn get(
        &self,
        sobject: &str,
        id: &SalesforceId,
        fields: Option<&[&str]>,
    ) -> Result<Value> {
        self.get_as(sobject, id, fields).await
    }

    /// Like [`Client::get`], decoded into `T` (unknown keys such as `attributes` are
    /// ignored by serde's default).
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        sobject: &str,
        id: &SalesforceId,
        fields: Option<&[&str]>,
    ) -> Result<T> {
        checked(&[sobject])?;
        let mut url = self.rest_url(&["sobjects", sobject, id.as_str()])?;
        if let Some(fields) = fields {
            checked(fields)?;
            url.query_pairs_mut()
                .append_pair("fields", &fields.join(","));
        }
        self.get_json(&url).await
    }

    /// `PATCH /sobjects/{sobject}/{id}` (204).
    pub async fn update<B: Serialize + ?Sized>(
        &self,
        sobject: &str,
        id: &SalesforceId,
        body: &B,
    ) -> Result<()> {
        checked(&[sobject])?;
        let request = ApiRequest::new(
            Method::PATCH,
            self.rest_url(&["sobjects", sobject, id.as_str()])?,
        )
        .json(body)?;
        self.send_no_content(&request).await
    }

    /// `DELETE /sobjects/{sobject}/{id}` (204).
    pub async fn delete(&self, sobject: &str, id: &SalesforceId) -> Result<()> {
        checked(&[sobject])?;
        let request = ApiRequest::new(
            Method::DELETE,
            self.rest_url(&["sobjects", sobject, id.as_str()])?,
        );
        self.send_no_content(&request).await
    }

    /// `PATCH /sobjects/{sobject}/{ext_field}/{value}`: inserts (201) or updates (200) the
    /// record with that external id. Older API versions answer an update with 204 and no
    /// body; the id is then read back by the external id.
    pub async fn upsert<B: Serialize + ?Sized>(
        &self,
        sobject: &str,
        ext_field: &str,
        value: &str,
        body: &B,
    ) -> Result<UpsertResult> {
        checked(&[sobject, ext_field])?;
        let url = self.rest_url(&["sobjects", sobject, ext_field, value])?;
        // Upsert by external id converges on one record however often it is sent.
        let request = ApiRequest::new(Method::PATCH, url.clone())
            .json(body)?
            .idempotency(Idempotency::Idempotent);
        let response = self.execute(&request).await?;
        let status = response.status().as_u16();
        let bytes = crate::http::read_body(response).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            #[derive(Deserialize)]
            struct IdOnly {
                #[serde(rename = "Id")]
                id: SalesforceId,
            }
            let mut lookup = url;
            lookup.query_pairs_mut().append_pair("fields", "Id");
            let record: IdOnly = self.get_json(&lookup).await?;
            return Ok(UpsertResult {
                id: record.id,
                created: status == 201,
            });
        }
        let result: SaveResult =
            serde_json::from_slice(&bytes).map_err(|e| Error::decode("upsert result", e))?;
        let created = result.created.unwrap_or(status == 201);
        let id = result.into_result(400)?;
        Ok(UpsertResult { id, created })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_response_decodes() {
        let result: SaveResult = serde_json::from_str(
            r#"{ "id" : "001D000000IqhSLIAZ", "errors" : [ ], "success" : true }"#,
        )
        .unwrap();
        assert_eq!(
            result.clone().into_result(400).unwrap().as_str(),
            "001D000000IqhSLIAZ"
        );
        assert_eq!(result.created, None);
        // Unknown keys such as `warnings` are ignored.
        let result: SaveResult = serde_json::from_str(
            r#"{"id":"001D000000IqhSLIAZ","errors":[],"success":true,"created":true,"warnings":[]}"#,
        )
        .unwrap();
        assert_eq!(result.created, Some(true));
    }

    #[test]
    fn failed_save_results_become_api_errors() {
        let result: SaveResult = serde_json::from_str(
            r#"{"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]}"#,
        )
        .unwrap();
        let err = result.into_result(400).unwrap_err();
        assert_eq!(err.error_code(), Some("DUPLICATES_DETECTED"));
    }

    #[test]
    fn describe_decodes_and_ignores_unknown_keys() {
        let body = serde_json::json!({
            "name": "Case", "label": "Case", "keyPrefix": "500", "custom": false,
            "createable": true, "updateable": true, "deletable": true, "queryable": true,
            "urls": {"sobject": "/services/data/v66.0/sobjects/Case"},
            "childRelationships": [{"field": "ParentId", "deprecatedAndHidden": false}],
            "fields": [
                {"name": "Id", "type": "id", "label": "Case ID", "length": 18, "updateable": false,
                 "createable": false, "nillable": false, "permissionable": false,
                 "defaultValue": null, "referenceTo": []},
                {"name": "Status", "type": "picklist", "label": "Status", "length": 40,
                 "updateable": true, "createable": true, "nillable": true, "permissionable": false,
                 "defaultedOnCreate": true,
                 "picklistValues": [{"value": "New", "label": "New", "active": true, "defaultValue": true}]},
                {"name": "OwnerId", "type": "reference", "label": "Owner ID", "length": 18,
                 "updateable": true, "createable": true, "nillable": false, "permissionable": "false",
                 "referenceTo": ["Group", "User"], "relationshipName": "Owner"},
                {"name": "Subject", "type": "string", "label": "Subject", "length": 255,
                 "updateable": true, "createable": true, "nillable": true, "permissionable": true,
                 "somethingNew": {"x": 1}}
            ]
        });
        let describe: Describe = serde_json::from_value(body).unwrap();
        assert_eq!(describe.key_prefix.as_deref(), Some("500"));
        assert_eq!(describe.fields.len(), 4);
        let status = describe.field("status").unwrap();
        assert_eq!(status.type_, "picklist");
        assert!(status.defaulted_on_create);
        assert!(!status.permissionable);
        assert_eq!(status.picklist_values[0].value, "New");
        let owner = describe.field("OwnerId").unwrap();
        assert_eq!(owner.reference_to, vec!["Group", "User"]);
        assert_eq!(owner.relationship_name.as_deref(), Some("Owner"));
        assert!(describe.field("Subject").unwrap().permissionable);
    }

    #[test]
    fn sobject_list_decodes() {
        let body = serde_json::json!({"encoding":"UTF-8","maxBatchSize":200,"sobjects":[
            {"activateable":false,"custom":false,"customSetting":false,"createable":true,"deletable":true,
             "deprecatedAndHidden":false,"feedEnabled":true,"keyPrefix":"001","label":"Account",
             "labelPlural":"Accounts","layoutable":true,"mergeable":true,"mruEnabled":true,"name":"Account",
             "queryable":true,"replicateable":true,"retrieveable":true,"searchable":true,"triggerable":true,
             "undeletable":true,"updateable":true,
             "urls":{"sobject":"/services/data/v66.0/sobjects/Account","describe":"/services/data/v66.0/sobjects/Account/describe","rowTemplate":"/services/data/v66.0/sobjects/Account/{ID}"}},
            {"name":"AccountHistory","keyPrefix":null,"queryable":true}
        ]});
        let list: SObjectList = serde_json::from_value(body).unwrap();
        assert_eq!(list.max_batch_size, Some(200));
        assert_eq!(list.sobjects[0].key_prefix.as_deref(), Some("001"));
        assert_eq!(list.sobjects[0].label_plural, "Accounts");
        assert!(list.sobjects[1].key_prefix.is_none());
    }

    #[tokio::test]
    async fn hostile_names_are_refused_before_sending() {
        let client = crate::client::tests::test_client();
        let id = SalesforceId::parse("001D000000IqhSL").unwrap();
        for result in [
            client.describe("Case/../User").await.map(|_| ()),
            client
                .get("Case", &id, Some(&["Id", "Name,Owner"]))
                .await
                .map(|_| ()),
            client.delete("Case?x=1", &id).await,
            client
                .upsert("Contact", "Ext__c/x", "1", &serde_json::json!({}))
                .await
                .map(|_| ()),
        ] {
            assert!(matches!(result, Err(Error::Soql(_))), "{result:?}");
        }
    }
}
