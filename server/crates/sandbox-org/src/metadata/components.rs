//! The components of a deploy: reading the zip's metadata files, planning what to create,
//! update and delete, and building External Client Apps (and legacy Connected Apps) from
//! their files, with the checks a real org makes.

use super::*;

/// A component read from the zip.
pub(super) struct Component {
    pub(super) component_type: &'static str,
    pub(super) file: String,
    pub(super) full_name: String,
    pub(super) app: String,
}

/// What a deploy would do.
pub(super) struct Planned {
    pub(super) apps: Vec<App>,
    pub(super) components: Vec<Component>,
    pub(super) failures: Vec<Value>,
    pub(super) rotate_key: Vec<String>,
    pub(super) rotate_secret: Vec<String>,
    pub(super) explicit_key: HashMap<String, String>,
    pub(super) explicit_secret: HashMap<String, String>,
    pub(super) needs_ignore_warnings: bool,
    pub(super) rotation_file: String,
    pub(super) rotation_app: String,
    /// From `destructiveChanges*.xml`: (metadata type, member, file) to delete.
    pub(super) deletes: Vec<(&'static str, String, String)>,
}

fn failure(
    component_type: &str,
    file: &str,
    full_name: &str,
    problem: String,
    line: Option<u32>,
    column: Option<u32>,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "changed": false, "columnNumber": column, "componentType": component_type, "created": false,
        "createdDate": sf_datetime(at), "deleted": false, "fileName": file, "fullName": full_name,
        "id": null, "lineNumber": line, "problem": problem, "problemType": "Error", "success": false,
    })
}

/// The text of each direct child element, by name (repeated elements joined by newlines).
fn fields_of(doc: &roxmltree::Document<'_>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for child in doc.root_element().children().filter(|n| n.is_element()) {
        if child.children().any(|c| c.is_element()) {
            // Structured values (trusted IP ranges) are flattened as "a=b;c=d".
            let flat: Vec<String> = child
                .children()
                .filter(|c| c.is_element())
                .map(|c| format!("{}={}", c.tag_name().name(), c.text().unwrap_or("").trim()))
                .collect();
            out.entry(child.tag_name().name().to_string())
                .or_default()
                .push(flat.join(";"));
        } else {
            out.entry(child.tag_name().name().to_string())
                .or_default()
                .push(child.text().unwrap_or("").trim().to_string());
        }
    }
    out
}

fn first<'a>(fields: &'a BTreeMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(|v| v.first())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

fn flag(fields: &BTreeMap<String, Vec<String>>, name: &str, default: bool) -> bool {
    first(fields, name)
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(default)
}

fn list(fields: &BTreeMap<String, Vec<String>>, name: &str) -> Vec<String> {
    first(fields, name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Default)]
struct AppFiles {
    header: Option<(String, BTreeMap<String, Vec<String>>)>,
    oauth: Option<(String, BTreeMap<String, Vec<String>>)>,
    global: Option<(String, BTreeMap<String, Vec<String>>)>,
    policies: Option<(String, BTreeMap<String, Vec<String>>)>,
    connected: Option<(String, BTreeMap<String, Vec<String>>)>,
}

pub(super) fn run_deploy(
    data: &mut OrgData,
    deployer: &str,
    zip: &[u8],
    at: DateTime<Utc>,
) -> Result<Planned, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("The deploy file is not a valid zip archive: {e}"))?;
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("Cannot read the zip archive: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map(|n| n.trim_start_matches("unpackaged/").to_string())
            .map_err(|e| format!("Cannot read a file name in the zip archive: {e}"))?;
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|_| format!("{name}: not a UTF-8 text file"))?;
        files.push((name, text));
    }
    if !files.iter().any(|(n, _)| n == "package.xml") {
        return Err("No package.xml found".into());
    }
    let mut planned = Planned {
        apps: Vec::new(),
        components: Vec::new(),
        failures: Vec::new(),
        rotate_key: Vec::new(),
        rotate_secret: Vec::new(),
        explicit_key: HashMap::new(),
        explicit_secret: HashMap::new(),
        needs_ignore_warnings: false,
        rotation_file: String::new(),
        rotation_app: String::new(),
        deletes: Vec::new(),
    };
    let mut by_app: BTreeMap<String, AppFiles> = BTreeMap::new();
    for (name, text) in &files {
        if name == "package.xml" {
            if let Err(e) = roxmltree::Document::parse(text) {
                let pos = e.pos();
                planned.failures.push(failure(
                    "",
                    name,
                    "package.xml",
                    format!("Error parsing file: {e}"),
                    Some(pos.row),
                    Some(pos.col),
                    at,
                ));
            }
            continue;
        }
        if matches!(
            name.as_str(),
            "destructiveChanges.xml" | "destructiveChangesPre.xml" | "destructiveChangesPost.xml"
        ) {
            plan_deletes(name, text, at, &mut planned);
            continue;
        }
        let (folder, file) = name.split_once('/').unwrap_or(("", name.as_str()));
        let (stem, suffix) = file.rsplit_once('.').unwrap_or((file, ""));
        let kind = match (folder, suffix) {
            ("externalClientApps", "eca") => "ExternalClientApplication",
            ("extlClntAppOauthSettings", "ecaOauth") => "ExtlClntAppOauthSettings",
            ("extlClntAppGlobalOauthSets", "ecaGlblOauth") => "ExtlClntAppGlobalOauthSettings",
            ("extlClntAppOauthPolicies", "ecaOauthPlcy") => "ExtlClntAppOauthConfigurablePolicies",
            ("extlClntAppPolicies", "ecaPlcy") => "ExtlClntAppConfigurablePolicies",
            ("connectedApps", "connectedApp") => "ConnectedApp",
            _ => {
                planned.failures.push(failure("", name, stem, format!("An object '{stem}' of type {folder} was named in package.xml, but was not found in zipped directory: unknown metadata folder or file suffix"), None, None, at));
                continue;
            }
        };
        // "Opt in to External Client Apps" (ExternalClientAppSettings.enableExternalClientApps)
        // is needed to deploy any of the app's components. UNCONFIRMED: the exact problem text.
        if kind != "ConnectedApp" && !data.settings.external_client_apps {
            planned.failures.push(failure(
                kind,
                name,
                stem,
                "External Client Apps are not enabled in this org (External Client App Settings)"
                    .into(),
                None,
                None,
                at,
            ));
            continue;
        }
        let doc = match roxmltree::Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let pos = e.pos();
                planned.failures.push(failure(
                    kind,
                    name,
                    stem,
                    format!("Error parsing file: {e}"),
                    Some(pos.row),
                    Some(pos.col),
                    at,
                ));
                continue;
            }
        };
        let fields = fields_of(&doc);
        let app_name = match kind {
            "ExternalClientApplication" | "ConnectedApp" => stem.to_string(),
            _ => match first(&fields, "externalClientApplication") {
                Some(app) => app.to_string(),
                None => {
                    planned.failures.push(failure(
                        kind,
                        name,
                        stem,
                        "Required field is missing: externalClientApplication".into(),
                        None,
                        None,
                        at,
                    ));
                    continue;
                }
            },
        };
        planned.components.push(Component {
            component_type: kind,
            file: name.clone(),
            full_name: stem.to_string(),
            app: app_name.clone(),
        });
        let slot = by_app.entry(app_name).or_default();
        let value = Some((name.clone(), fields));
        match kind {
            "ExternalClientApplication" => slot.header = value,
            "ExtlClntAppOauthSettings" => slot.oauth = value,
            "ExtlClntAppGlobalOauthSettings" => slot.global = value,
            "ExtlClntAppOauthConfigurablePolicies" => slot.policies = value,
            "ConnectedApp" => slot.connected = value,
            _ => {}
        }
    }

    for (app_name, files) in by_app {
        let before = planned.failures.len();
        let app = if let Some((file, fields)) = &files.connected {
            build_connected_app(data, deployer, &app_name, file, fields, at, &mut planned)
        } else {
            build_eca(data, deployer, &app_name, &files, at, &mut planned)
        };
        if planned.failures.len() == before {
            if let Some(app) = app {
                planned.apps.push(app);
            }
        } else {
            planned.components.retain(|c| c.app != app_name);
        }
    }
    Ok(planned)
}

/// The id of the app of this type and name, if it exists.
pub(super) fn app_named(data: &OrgData, component_type: &str, name: &str) -> Option<String> {
    data.apps
        .values()
        .find(|a| {
            a.developer_name.eq_ignore_ascii_case(name)
                && (component_type == "ConnectedApp") == (a.kind == AppKind::ConnectedApp)
        })
        .map(|a| a.id.clone())
}

/// The app a deleted component belongs to: the app itself, or the app whose settings
/// component of that type has that member name.
pub(super) fn delete_target(data: &OrgData, component_type: &str, member: &str) -> Option<String> {
    match component_type {
        "ExternalClientApplication" | "ConnectedApp" => app_named(data, component_type, member),
        _ => data
            .apps
            .values()
            .find(|a| {
                a.component_names
                    .get(component_type)
                    .is_some_and(|m| m.eq_ignore_ascii_case(member))
            })
            .map(|a| a.id.clone()),
    }
}

/// Reads a `destructiveChanges*.xml` manifest: the apps it deletes.
fn plan_deletes(file: &str, text: &str, at: DateTime<Utc>, planned: &mut Planned) {
    let doc = match roxmltree::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.pos();
            planned.failures.push(failure(
                "",
                file,
                file.trim_end_matches(".xml"),
                format!("Error parsing file: {e}"),
                Some(pos.row),
                Some(pos.col),
                at,
            ));
            return;
        }
    };
    for types in doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("types"))
    {
        let text_of = |n: roxmltree::Node<'_, '_>| n.text().unwrap_or("").trim().to_string();
        let name = types
            .children()
            .find(|n| n.has_tag_name("name"))
            .map(text_of)
            .unwrap_or_default();
        let component_type = match name.as_str() {
            "ExternalClientApplication" => "ExternalClientApplication",
            "ConnectedApp" => "ConnectedApp",
            "ExtlClntAppOauthSettings" => "ExtlClntAppOauthSettings",
            "ExtlClntAppGlobalOauthSettings" => "ExtlClntAppGlobalOauthSettings",
            "ExtlClntAppOauthConfigurablePolicies" => "ExtlClntAppOauthConfigurablePolicies",
            other => {
                planned.failures.push(failure(
                    other,
                    file,
                    other,
                    format!("Unknown type name '{other}' specified in {file}"),
                    None,
                    None,
                    at,
                ));
                continue;
            }
        };
        for member in types.children().filter(|n| n.has_tag_name("members")) {
            planned
                .deletes
                .push((component_type, text_of(member), file.to_string()));
        }
    }
}

fn valid_api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
        && name.len() <= 80
}

fn check_run_as(data: &OrgData, username: &str, at: DateTime<Utc>) -> Result<(), String> {
    let Some((user_id, user)) = data.find_by("User", "Username", username) else {
        return Err(format!(
            "clientCredentialsFlowUser: no user with the username {username} exists"
        ));
    };
    if !user
        .get("IsActive")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(format!(
            "clientCredentialsFlowUser: the user {username} is inactive"
        ));
    }
    if !Access::compute(data, user_id, at).has("ApiUserOnly") {
        return Err(format!(
            "clientCredentialsFlowUser: the user {username} must have the API Only permission"
        ));
    }
    Ok(())
}

fn parse_ip_ranges(values: &[String]) -> Result<Vec<IpRange>, String> {
    values
        .iter()
        .map(|flat| {
            let mut start = None;
            let mut end = None;
            let mut description = String::new();
            for pair in flat.split(';') {
                match pair.split_once('=') {
                    Some(("startIpAddress", v)) => start = Some(v.to_string()),
                    Some(("endIpAddress", v)) => end = Some(v.to_string()),
                    Some(("description", v)) => description = v.to_string(),
                    _ => {}
                }
            }
            let start: std::net::IpAddr = start
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("trustedIpRanges: invalid startIpAddress in {flat}"))?;
            let end: std::net::IpAddr = end
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("trustedIpRanges: invalid endIpAddress in {flat}"))?;
            if start.is_ipv4() != end.is_ipv4() || start > end {
                return Err(format!(
                    "trustedIpRanges: {start} - {end} is not a valid range"
                ));
            }
            Ok(IpRange {
                start,
                end,
                description,
            })
        })
        .collect()
}

fn build_eca(
    data: &mut OrgData,
    deployer: &str,
    app_name: &str,
    files: &AppFiles,
    at: DateTime<Utc>,
    planned: &mut Planned,
) -> Option<App> {
    let mut fail = |kind: &str, file: &str, problem: String| {
        planned
            .failures
            .push(failure(kind, file, app_name, problem, None, None, at));
    };
    let Some((header_file, header)) = &files.header else {
        let file = files
            .oauth
            .as_ref()
            .or(files.global.as_ref())
            .or(files.policies.as_ref())
            .map(|(f, _)| f.clone())
            .unwrap_or_default();
        let exists = data
            .apps
            .values()
            .any(|a| a.developer_name.eq_ignore_ascii_case(app_name));
        if !exists {
            fail(
                "ExternalClientApplication",
                &file,
                format!(
                    "externalClientApplication: no External Client App named {app_name} exists or is part of this deploy"
                ),
            );
            return None;
        }
        // Settings for an existing app: merge onto it.
        let existing = data
            .apps
            .values()
            .find(|a| a.developer_name.eq_ignore_ascii_case(app_name))
            .cloned()?;
        return merge_settings(data, existing, files, at, planned);
    };
    if !valid_api_name(app_name) {
        fail(
            "ExternalClientApplication",
            header_file,
            format!(
                "Invalid fullName '{app_name}': use letters, numbers and single underscores, starting with a letter"
            ),
        );
        return None;
    }
    for required in ["label", "contactEmail", "distributionState"] {
        if first(header, required).is_none() {
            fail(
                "ExternalClientApplication",
                header_file,
                format!("Required field is missing: {required}"),
            );
        }
    }
    if let Some(state) = first(header, "distributionState")
        && state != "Local"
        && state != "Packaged"
    {
        fail(
            "ExternalClientApplication",
            header_file,
            format!("distributionState: bad value '{state}' (Local or Packaged)"),
        );
    }
    let id = data.new_id("0xI").as_str().to_string();
    let consumer_id = data.new_id("0Hx").as_str().to_string();
    let connected_app_id = data.new_id("0H4").as_str().to_string();
    let app = App {
        id,
        connected_app_id,
        developer_name: app_name.to_string(),
        label: first(header, "label").unwrap_or(app_name).to_string(),
        kind: AppKind::ExternalClientApp,
        contact_email: first(header, "contactEmail").unwrap_or("").to_string(),
        description: first(header, "description").unwrap_or("").to_string(),
        enabled: true,
        created_by_id: deployer.to_string(),
        created_date: at,
        consumer: Consumer {
            id: consumer_id,
            key: new_consumer_key(),
            secret: new_consumer_secret(),
        },
        staged: Vec::new(),
        callback_urls: Vec::new(),
        scopes: Vec::new(),
        certificate_pem: None,
        client_credentials_enabled: false,
        pkce_required: true,
        consumer_secret_optional: false,
        trusted_ip_ranges: Vec::new(),
        component_names: Default::default(),
        active_from: None,
        policy: Policy {
            client_credentials_enabled: false,
            client_credentials_user: None,
            permitted_users: PermittedUsers::AllSelfAuthorized,
            permission_sets: Vec::new(),
            profiles: Vec::new(),
            ip_relaxation: "Enforce".into(),
            refresh_token_policy: "Infinite".into(),
        },
    };
    merge_settings(data, app, files, at, planned)
}

fn merge_settings(
    data: &OrgData,
    mut app: App,
    files: &AppFiles,
    at: DateTime<Utc>,
    planned: &mut Planned,
) -> Option<App> {
    let app_name = app.developer_name.clone();
    let mut problems: Vec<(&str, String, String)> = Vec::new();
    if let Some((file, oauth)) = &files.oauth {
        if first(oauth, "label").is_none() {
            problems.push((
                "ExtlClntAppOauthSettings",
                file.clone(),
                "Required field is missing: label".into(),
            ));
        }
        app.scopes = list(oauth, "commaSeparatedOauthScopes");
        match parse_ip_ranges(
            oauth
                .get("trustedIpRanges")
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        ) {
            Ok(ranges) => app.trusted_ip_ranges = ranges,
            Err(problem) => problems.push(("ExtlClntAppOauthSettings", file.clone(), problem)),
        }
    }
    if let Some((file, global)) = &files.global {
        if first(global, "label").is_none() {
            problems.push((
                "ExtlClntAppGlobalOauthSettings",
                file.clone(),
                "Required field is missing: label".into(),
            ));
        }
        match first(global, "callbackUrl") {
            Some(urls) => {
                app.callback_urls = urls
                    .split(['\n', ','])
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect()
            }
            None => problems.push((
                "ExtlClntAppGlobalOauthSettings",
                file.clone(),
                "Required field is missing: callbackUrl".into(),
            )),
        }
        for url in &app.callback_urls {
            if url::Url::parse(url).is_err() {
                problems.push((
                    "ExtlClntAppGlobalOauthSettings",
                    file.clone(),
                    format!("callbackUrl: '{url}' is not a valid URL"),
                ));
            }
        }
        app.client_credentials_enabled = flag(global, "isClientCredentialsFlowEnabled", false);
        app.pkce_required = flag(global, "isPkceRequired", true);
        app.consumer_secret_optional = flag(global, "isConsumerSecretOptional", false);
        app.certificate_pem = first(global, "certificate").map(String::from);
        if let Some(pem) = &app.certificate_pem
            && crate::tls::rsa_decoding_key(pem).is_none()
        {
            problems.push((
                "ExtlClntAppGlobalOauthSettings",
                file.clone(),
                "certificate: not a PEM X.509 certificate with an RSA key".into(),
            ));
        }
        if let Some(key) = first(global, "consumerKey") {
            app.consumer.key = key.to_string();
            planned
                .explicit_key
                .insert(app_name.clone(), key.to_string());
        }
        // Setting the secret needs "Allow access to OAuth consumer secrets via Metadata API"
        // (enableConsumerSecretApiAccess). UNCONFIRMED: the exact problem text.
        if first(global, "consumerSecret").is_some() && !data.settings.consumer_secrets_via_metadata
        {
            problems.push((
                "ExtlClntAppGlobalOauthSettings",
                file.clone(),
                "consumerSecret: access to OAuth consumer secrets via Metadata API is not enabled in this org".into(),
            ));
        }
        if let Some(secret) = first(global, "consumerSecret") {
            app.consumer.secret = secret.to_string();
            planned
                .explicit_secret
                .insert(app_name.clone(), secret.to_string());
        }
        let rotate_key = flag(global, "shouldRotateConsumerKey", false);
        let rotate_secret = flag(global, "shouldRotateConsumerSecret", false);
        if rotate_key || rotate_secret {
            planned.needs_ignore_warnings = true;
            planned.rotation_file = file.clone();
            planned.rotation_app = app_name.clone();
            if rotate_key {
                app.consumer.key = new_consumer_key();
                planned.rotate_key.push(app_name.clone());
            }
            if rotate_secret {
                app.consumer.secret = new_consumer_secret();
                planned.rotate_secret.push(app_name.clone());
            }
        }
    }
    if let Some((file, policies)) = &files.policies {
        if first(policies, "label").is_none() {
            problems.push((
                "ExtlClntAppOauthConfigurablePolicies",
                file.clone(),
                "Required field is missing: label".into(),
            ));
        }
        app.policy.client_credentials_enabled =
            flag(policies, "isClientCredentialsFlowEnabled", false);
        app.policy.client_credentials_user =
            first(policies, "clientCredentialsFlowUser").map(|u| u.to_ascii_lowercase());
        app.policy.permitted_users = match first(policies, "permittedUsersPolicyType") {
            Some("AdminApprovedPreAuthorized") => PermittedUsers::AdminApprovedPreAuthorized,
            Some("AllSelfAuthorized") | None => PermittedUsers::AllSelfAuthorized,
            Some(other) => {
                problems.push((
                    "ExtlClntAppOauthConfigurablePolicies",
                    file.clone(),
                    format!("permittedUsersPolicyType: bad value '{other}'"),
                ));
                PermittedUsers::AllSelfAuthorized
            }
        };
        app.policy.permission_sets = list(policies, "commaSeparatedPermissionSet");
        app.policy.profiles = list(policies, "commaSeparatedProfile");
        app.policy.ip_relaxation = first(policies, "ipRelaxationPolicyType")
            .unwrap_or("Enforce")
            .to_string();
        app.policy.refresh_token_policy = first(policies, "refreshTokenPolicyType")
            .unwrap_or("Infinite")
            .to_string();
        if app.policy.client_credentials_enabled {
            match &app.policy.client_credentials_user {
                None => problems.push(("ExtlClntAppOauthConfigurablePolicies", file.clone(), "clientCredentialsFlowUser: required when the client credentials flow is enabled".into())),
                Some(user) => {
                    if let Err(problem) = check_run_as(data, user, at) {
                        problems.push(("ExtlClntAppOauthConfigurablePolicies", file.clone(), problem));
                    }
                }
            }
        }
        for name in &app.policy.permission_sets {
            match data.find_by("PermissionSet", "Name", name) {
                None => problems.push((
                    "ExtlClntAppOauthConfigurablePolicies",
                    file.clone(),
                    format!("commaSeparatedPermissionSet: no permission set named {name}"),
                )),
                // A permission set tied to a licence (the Salesforce API Integration
                // permission set licence, say) reportedly cannot be assigned apps (3P,
                // citing a Salesforce knowledge article; UNCONFIRMED): the stricter reading.
                Some((_, set))
                    if set
                        .get("LicenseId")
                        .and_then(Value::as_str)
                        .is_some_and(|l| !l.is_empty()) =>
                {
                    problems.push((
                        "ExtlClntAppOauthConfigurablePolicies",
                        file.clone(),
                        format!(
                            "commaSeparatedPermissionSet: the permission set {name} is associated with a license; apps can't be assigned to it"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        for name in &app.policy.profiles {
            if data.find_by("Profile", "Name", name).is_none() {
                problems.push((
                    "ExtlClntAppOauthConfigurablePolicies",
                    file.clone(),
                    format!("commaSeparatedProfile: no profile named {name}"),
                ));
            }
        }
    }
    for (kind, file, problem) in &problems {
        planned.failures.push(failure(
            kind,
            file,
            &app_name,
            problem.clone(),
            None,
            None,
            at,
        ));
    }
    problems.is_empty().then_some(app)
}

fn build_connected_app(
    data: &mut OrgData,
    deployer: &str,
    app_name: &str,
    file: &str,
    fields: &BTreeMap<String, Vec<String>>,
    at: DateTime<Utc>,
    planned: &mut Planned,
) -> Option<App> {
    let mut fail = |problem: String| {
        planned.failures.push(failure(
            "ConnectedApp",
            file,
            app_name,
            problem,
            None,
            None,
            at,
        ))
    };
    if !data.settings.allow_connected_app_creation
        && !data
            .apps
            .values()
            .any(|a| a.developer_name.eq_ignore_ascii_case(app_name))
    {
        fail("Connected apps creation is restricted as of Spring '26. Use an External Client App instead, or contact Salesforce Support.".into());
        return None;
    }
    if first(fields, "contactEmail").is_none() {
        fail("Required field is missing: contactEmail".into());
        return None;
    }
    let oauth: BTreeMap<String, Vec<String>> = fields
        .get("oauthConfig")
        .and_then(|v| v.first())
        .map(|flat| {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for pair in flat.split(';') {
                if let Some((k, v)) = pair.split_once('=') {
                    map.entry(k.to_string()).or_default().push(v.to_string());
                }
            }
            map
        })
        .unwrap_or_default();
    let callback = oauth.get("callbackUrl").and_then(|v| v.first()).cloned();
    let Some(callback) = callback else {
        fail("oauthConfig.callbackUrl: Required field is missing".into());
        return None;
    };
    let run_as = oauth
        .get("oauthClientCredentialUser")
        .and_then(|v| v.first())
        .map(|u| u.to_ascii_lowercase());
    let cc = oauth
        .get("isClientCredentialEnabled")
        .and_then(|v| v.first())
        .is_some_and(|v| v == "true");
    if cc {
        match &run_as {
            None => {
                fail(
                    "oauthClientCredentialUser: required when isClientCredentialEnabled is true"
                        .into(),
                );
                return None;
            }
            Some(user) => {
                if let Err(problem) = check_run_as(data, user, at) {
                    fail(problem.replace("clientCredentialsFlowUser", "oauthClientCredentialUser"));
                    return None;
                }
            }
        }
    }
    let admin_approved = oauth
        .get("isAdminApproved")
        .and_then(|v| v.first())
        .is_some_and(|v| v == "true");
    let id = data.new_id("0H4").as_str().to_string();
    let consumer_id = data.new_id("0Hx").as_str().to_string();
    Some(App {
        id: id.clone(),
        connected_app_id: id,
        developer_name: app_name.to_string(),
        label: first(fields, "label").unwrap_or(app_name).to_string(),
        kind: AppKind::ConnectedApp,
        contact_email: first(fields, "contactEmail").unwrap_or("").to_string(),
        description: first(fields, "description").unwrap_or("").to_string(),
        enabled: true,
        created_by_id: deployer.to_string(),
        created_date: at,
        consumer: Consumer {
            id: consumer_id,
            key: oauth
                .get("consumerKey")
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_else(new_consumer_key),
            secret: oauth
                .get("consumerSecret")
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_else(new_consumer_secret),
        },
        staged: Vec::new(),
        callback_urls: vec![callback],
        scopes: oauth.get("scopes").cloned().unwrap_or_default(),
        certificate_pem: oauth.get("certificate").and_then(|v| v.first()).cloned(),
        client_credentials_enabled: cc,
        pkce_required: oauth
            .get("isPkceRequired")
            .and_then(|v| v.first())
            .is_some_and(|v| v == "true"),
        consumer_secret_optional: false,
        trusted_ip_ranges: Vec::new(),
        component_names: Default::default(),
        active_from: None,
        policy: Policy {
            client_credentials_enabled: cc,
            client_credentials_user: run_as,
            permitted_users: if admin_approved {
                PermittedUsers::AdminApprovedPreAuthorized
            } else {
                PermittedUsers::AllSelfAuthorized
            },
            permission_sets: fields.get("permissionSetName").cloned().unwrap_or_default(),
            profiles: fields.get("profileName").cloned().unwrap_or_default(),
            ip_relaxation: "Enforce".into(),
            refresh_token_policy: "Zero".into(),
        },
    })
}
