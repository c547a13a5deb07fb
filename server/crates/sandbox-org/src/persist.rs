//! Keeping the org across restarts: `state.json` (data, tokens, published log files) is
//! rewritten atomically after changes, `usage.jsonl` is appended with new API calls.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::state::{Org, Tokens};
use crate::store::OrgData;
use crate::usage::{Usage, UsageEvent};

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    data: OrgData,
    tokens: Tokens,
    files: std::collections::BTreeMap<String, crate::usage::PublishedFile>,
    published_upto: usize,
    portal_private_key_pem: Option<String>,
}

/// Loads a saved org, if the directory holds one.
/// A loaded org: data, tokens, usage, and the portal app's private key.
pub type Loaded = (OrgData, Tokens, Usage, Option<String>);

pub fn load(dir: &Path) -> Result<Option<Loaded>, String> {
    let path = dir.join("state.json");
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let state: StateFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a sandbox org state file: {e}", path.display()))?;
    let mut usage = Usage::default();
    usage.files = state.files;
    usage.published_upto = state.published_upto;
    let events_path = dir.join("usage.jsonl");
    if events_path.exists() {
        let file = std::fs::File::open(&events_path)
            .map_err(|e| format!("reading {}: {e}", events_path.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| format!("reading {}: {e}", events_path.display()))?;
            // A line cut short by a crash is skipped rather than refusing to start.
            if let Ok(event) = serde_json::from_str::<UsageEvent>(&line) {
                usage.events.push(event);
            }
        }
    }
    usage.published_upto = usage.published_upto.min(usage.events.len());
    let offset = chrono::Duration::seconds(state.data.settings.clock_offset_seconds);
    usage.reindex(chrono::Utc::now() + offset);
    Ok(Some((
        state.data,
        state.tokens,
        usage,
        state.portal_private_key_pem,
    )))
}

/// Writes the org's state; appends usage events after `persisted_events`.
pub fn save(org: &Org, dir: &Path, persisted_events: &mut usize) -> Result<(), String> {
    let data = org.read().clone();
    let tokens: Tokens = org.tokens().clone();
    let (files, published_upto, new_events) = {
        let usage = org.usage();
        let start = (*persisted_events).min(usage.events.len());
        (
            usage.files.clone(),
            usage.published_upto,
            usage.events[start..].to_vec(),
        )
    };
    let state = StateFile {
        version: 1,
        data,
        tokens,
        files,
        published_upto,
        portal_private_key_pem: org.portal_key(),
    };
    let json = serde_json::to_vec(&state).map_err(|e| format!("serialising the org: {e}"))?;
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, &json).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, dir.join("state.json"))
        .map_err(|e| format!("replacing state.json: {e}"))?;
    if !new_events.is_empty() {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("usage.jsonl"))
            .map_err(|e| format!("opening usage.jsonl: {e}"))?;
        let mut buffer = Vec::new();
        for event in &new_events {
            serde_json::to_writer(&mut buffer, event).map_err(|e| e.to_string())?;
            buffer.push(b'\n');
        }
        file.write_all(&buffer)
            .map_err(|e| format!("appending usage.jsonl: {e}"))?;
        *persisted_events += new_events.len();
    }
    Ok(())
}

/// Saves the org shortly after changes (debounced), and once more on shutdown.
pub async fn flusher(
    org: Arc<Org>,
    dir: std::path::PathBuf,
    mut persisted_events: usize,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = org.changed.notified() => {}
            () = shutdown.cancelled() => break,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = shutdown.cancelled() => {}
        }
        if org.take_dirty() {
            let org2 = org.clone();
            let dir2 = dir.clone();
            let mut count = persisted_events;
            let result =
                tokio::task::spawn_blocking(move || save(&org2, &dir2, &mut count).map(|_| count))
                    .await;
            match result {
                Ok(Ok(count)) => persisted_events = count,
                Ok(Err(e)) => tracing::error!(error = %e, "sandbox org: could not save its state"),
                Err(e) => tracing::error!(error = %e, "sandbox org: the save task failed"),
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    if org.take_dirty()
        && let Err(e) = save(&org, &dir, &mut persisted_events)
    {
        tracing::error!(error = %e, "sandbox org: could not save its state at shutdown");
    }
}
