//! The security reviewers' view of the tamper-evident audit log: filters, text search,
//! cursor paging, one entry in full, exports, the evidence pack and "Verify chain".

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::audit::{AuditAction, Target, families, url_encode};

use crate::api::audit::{
    AnchorReport, AuditPage, AuditSearchForm, AuditVerify, EntryView, VerifyAnswer, VerifyJobView,
    VerifyStatus, VerifyView, audit_entry, audit_search, audit_verify_status, reviewer_or_owner,
};
use crate::pages::admin::{RequireRole, load_for};
use crate::pages::audit_stream::StreamSinks;
use crate::pages::time::Time;

#[component]
pub fn AuditLog() -> impl IntoView {
    // Created outside the role check's <Suspense> (see AdminDashboard).
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        AuditSearchForm {
            query: shared::audit::AuditQuery {
                actor: q.get("actor"),
                action: q.get("action"),
                target_type: q.get("target_type"),
                target_id: q.get("target_id"),
                outcome: q.get("outcome"),
                from: q.get("from"),
                to: q.get("to"),
                q: q.get("q"),
            },
            before: q.get("before"),
        }
    };
    let page = Resource::new(params, |form| {
        load_for(reviewer_or_owner, audit_search(form))
    });
    let verify = ServerAction::<AuditVerify>::new();
    view! {
        <Title text="Audit log" />
        <h1>"Audit log"</h1>
        <RequireRole allow=reviewer_or_owner>
            <p class="lead">
                "Every request, approval, provisioning step and credential reveal, hash-chained so "
                "that any change to the record shows. Times are UTC."
            </p>
            <Filters />
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || page.get().map(|result| match result {
                    Ok(Some(page)) => view! { <Entries page /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
            <VerifyChain verify />
            <StreamSinks />
        </RequireRole>
    }
}

#[component]
fn Filters() -> impl IntoView {
    let query = use_query_map();
    let current = move |key: &str| query.read().get(key).unwrap_or_default();
    view! {
        <form method="get" action="/audit" class="filters" aria-label="Filter the audit log">
            <label for="audit-actor">"Actor"</label>
            <input id="audit-actor" name="actor" type="text" maxlength="200" value=move || current("actor") />
            <label for="audit-action">"Action"</label>
            <select id="audit-action" name="action">
                <option value="any">"Any action"</option>
                <optgroup label="All events of">
                    {families().into_iter().map(|family| {
                        let value = format!("{family}.*");
                        let shown = value.clone();
                        let selected = value.clone();
                        view! { <option value=value selected=move || current("action") == selected>{shown}</option> }
                    }).collect_view()}
                </optgroup>
                <optgroup label="One action">
                    {AuditAction::ALL.iter().map(|action| {
                        let value = action.as_str();
                        let shown = format!("{} ({value})", action.label());
                        view! { <option value=value selected=move || current("action") == value>{shown}</option> }
                    }).collect_view()}
                </optgroup>
            </select>
            <label for="audit-target-type">"Target type"</label>
            <select id="audit-target-type" name="target_type">
                <option value="any">"Any target"</option>
                {Target::ALL.iter().map(|t| {
                    let value = t.as_str();
                    view! { <option value=value selected=move || current("target_type") == value>{t.label()}</option> }
                }).collect_view()}
            </select>
            <label for="audit-target-id">"Target id"</label>
            <input id="audit-target-id" name="target_id" type="text" maxlength="200" value=move || current("target_id") />
            <label for="audit-outcome">"Outcome"</label>
            <select id="audit-outcome" name="outcome">
                <option value="any">"Any outcome"</option>
                {["success", "failure", "denied"].into_iter().map(|o| {
                    view! { <option value=o selected=move || current("outcome") == o>{o}</option> }
                }).collect_view()}
            </select>
            <label for="audit-from">"From (UTC)"</label>
            <input id="audit-from" name="from" type="datetime-local" value=move || current("from") />
            <label for="audit-to">"To (UTC)"</label>
            <input id="audit-to" name="to" type="datetime-local" value=move || current("to") />
            <label for="audit-q">"Search details"</label>
            <input id="audit-q" name="q" type="search" maxlength="200" value=move || current("q") />
            <button type="submit">"Filter"</button>
        </form>
    }
}

#[component]
fn Entries(page: AuditPage) -> impl IntoView {
    let AuditPage {
        rows,
        next_before,
        total,
        query,
        grant,
    } = page;
    let with = |extra: String| {
        if query.is_empty() {
            extra
        } else if extra.is_empty() {
            query.clone()
        } else {
            format!("{query}&{extra}")
        }
    };
    let csv = format!("/audit/export.csv?{query}");
    let jsonl = format!("/audit/export.jsonl?{query}");
    let older = next_before.map(|n| format!("/audit?{}", with(format!("before={n}"))));
    let newest = format!("/audit?{query}");
    let shown = rows.len();
    view! {
        <p class="muted">{format!("{total} entries in the log.")}</p>
        <p class="actions">
            <a href=csv rel="external" download="">"Export CSV"</a>
            " · "
            <a href=jsonl rel="external" download="">"Export JSON Lines"</a>
            {grant.map(|g| view! {
                " · "
                <a href=format!("/audit/evidence/{}", url_encode(&g)) rel="external" download="">"Download the evidence pack"</a>
            })}
        </p>
        {if rows.is_empty() {
            view! { <p role="status">"No entries match."</p> }.into_any()
        } else {
            view! {
                <table class="data audit" aria-label="Audit entries">
                    <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Details"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| view! {
                            <tr>
                                <td><a href=format!("/audit/entries/{}", row.seq) aria-label=format!("Entry {}", row.seq)>{row.seq}</a></td>
                                <td><Time at=row.at.clone() /></td>
                                <td>{row.actor.clone()}<br /><span class="muted">{row.actor_ip.clone()}</span></td>
                                <td><code>{row.action.clone()}</code></td>
                                <td>{row.target_type.clone()}<br /><span class="muted">{row.target_id.clone()}</span></td>
                                <td><span class=format!("outcome outcome-{}", row.outcome)>{row.outcome.clone()}</span></td>
                                <td class="details"><code>{row.summary.clone()}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <nav aria-label="Pages" class="pager">
            <span class="muted">{format!("{shown} shown")}</span>
            " "
            <a href=newest>"Newest entries"</a>
            {older.map(|href| view! { " " <a href=href>"Older entries"</a> })}
        </nav>
    }
}

#[component]
fn VerifyChain(verify: ServerAction<AuditVerify>) -> impl IntoView {
    let result = verify.value();
    // The background verification: read again after every press, and every second while
    // one runs (in the browser only: effects do not run on the server).
    // Rendered in the browser only, once the page has hydrated: a verification may finish
    // between the server's markup and hydration, and the two must never disagree.
    let tick = RwSignal::new(0u32);
    let status = LocalResource::new(move || {
        verify.version().track();
        tick.track();
        load_for(reviewer_or_owner, audit_verify_status())
    });
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let running = status
                    .get_untracked()
                    .and_then(|r| r.ok())
                    .flatten()
                    .is_some_and(|s| s.running.is_some());
                if running {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    });
    view! {
        <section class="card" aria-labelledby="verify-heading">
            <h2 id="verify-heading">"Verify the chain"</h2>
            <p>"Recomputes every entry's hash from its content and the entry before it, and checks the chain's anchors (HMACs under a key kept outside the database). A range of up to 10,000 entries is checked at once; leave the range empty to verify the whole log in the background (one verification at a time, its progress below)."</p>
            <ActionForm action=verify attr:aria-label="Verify the chain" attr:class="filters">
                <label for="verify-from">"From entry"</label>
                <input id="verify-from" name="from_seq" type="number" min="1" />
                <label for="verify-to">"To entry"</label>
                <input id="verify-to" name="to_seq" type="number" min="1" />
                <button type="submit">"Verify chain"</button>
            </ActionForm>
            {move || verify.pending().get().then(|| view! { <p role="status">"Verifying…"</p> })}
            {move || result.get().map(|outcome| match outcome {
                Ok(VerifyAnswer::Checked(view)) => view! { <VerifyResult view /> }.into_any(),
                Ok(VerifyAnswer::Started) => view! {
                    <p class="notice" role="status">"The verification started in the background; its progress shows below."</p>
                }.into_any(),
                Ok(VerifyAnswer::AlreadyRunning) => view! {
                    <p class="notice" role="status">"A verification is already running (below); wait for it to finish before starting another."</p>
                }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            {move || hydrated.get().then(|| view! {
                <Transition fallback=|| ()>
                    {move || status.get().map(|loaded| match loaded {
                        Ok(Some(status)) => view! { <Background status /> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Transition>
            })}
        </section>
    }
}

/// What a verification covers, in words.
fn covered(job: &VerifyJobView) -> String {
    match (job.from_seq, job.to_seq) {
        (None, None) => "the whole log".to_string(),
        (from, to) => format!(
            "entries {} to {}",
            from.unwrap_or(1),
            to.map_or_else(|| "the last".to_string(), |t| t.to_string())
        ),
    }
}

/// The background verification running, and the last one finished.
#[component]
fn Background(status: VerifyStatus) -> impl IntoView {
    let VerifyStatus { running, last } = status;
    view! {
        {running.map(|job| {
            let total = job.total.map(|t| format!(" of {t}")).unwrap_or_default();
            let line = format!(
                "Verifying {}: {}{total} entries checked ({} a second).",
                covered(&job),
                job.checked,
                job.rate
            );
            view! {
                <div class="notice" role="status" aria-label="Verification in progress">
                    <p>
                        <strong>{line}</strong>
                        " Asked for by " {job.requested_by.clone()} " "
                        <Time at=job.requested_at.clone() />
                        "."
                    </p>
                    {job.first_problem.clone().map(|p| view! {
                        <p class="notice error" role="alert">
                            {format!("First problem: entry {} ({}). {} ", p.seq, p.problem, p.detail)}
                            <a href=format!("/audit/entries/{}", p.seq)>{format!("Open entry {}", p.seq)}</a>
                            {format!(" ({} problems so far.)", job.problems)}
                        </p>
                    })}
                </div>
            }
        })}
        {last.map(|job| {
            let heading = format!("Last verification, of {}", covered(&job));
            view! {
                <div data-testid="last-verification">
                    <h3>{heading}</h3>
                    <p class="hint">
                        "Finished "
                        {job.finished_at.clone().map(|at| view! { <Time at /> })}
                        {format!(", asked for by {}: {} entries checked", job.requested_by, job.checked)}
                        {(job.problems > 1).then(|| format!(", {} problems", job.problems))}
                        "."
                    </p>
                    {match (job.result.clone(), job.error.clone()) {
                        (Some(view), _) => view! { <VerifyResult view /> }.into_any(),
                        (None, error) => view! {
                            <p class="notice error" role="alert">
                                {format!("It could not finish: {}", error.unwrap_or_default())}
                            </p>
                        }.into_any(),
                    }}
                </div>
            }
        })}
    }
}

/// What a verification found.
#[component]
fn VerifyResult(view: VerifyView) -> impl IntoView {
    match view {
        VerifyView::Intact {
            entries,
            first_seq,
            last_seq,
            anchors,
        } => view! {
            <p class="notice" role="status">
                <strong>"Intact. "</strong>
                {if entries == 0 {
                    "There are no entries in that range.".to_string()
                } else {
                    format!("Entries {first_seq} to {last_seq} ({entries}) match their hashes and follow each other.")
                }}
            </p>
            {(entries > 0).then(|| view! { <AnchorsLine anchors /> })}
        }
        .into_any(),
        VerifyView::Broken {
            seq,
            problem,
            detail,
            anchors,
        } => view! {
            <p class="notice error" role="alert">
                <strong>{format!("Broken at entry {seq} ({problem}). ")}</strong>
                {detail}
                " "
                <a href=format!("/audit/entries/{seq}")>{format!("Open entry {seq}")}</a>
            </p>
            <AnchorsLine anchors />
        }
        .into_any(),
    }
}

/// How far the anchors vouch, and from where the log is only self-consistent.
#[component]
fn AnchorsLine(anchors: AnchorReport) -> impl IntoView {
    let vouched = if anchors.anchored_through == 0 {
        "No anchor vouches for these entries yet.".to_string()
    } else {
        format!(
            "Anchors ({} checked) vouch for the log up to entry {}.",
            anchors.checked, anchors.anchored_through
        )
    };
    let rest = match anchors.self_consistent_from {
        Some(from) => format!(
            " From entry {from} on the log is only self-consistent: someone who can write the database could have rewritten it (anchors are made every {} entries and at shutdown).",
            anchors.every
        ),
        None => String::new(),
    };
    let others = (anchors.other_keys > 0).then(|| {
        format!(
            " {} anchors were made with another key and cannot be checked here.",
            anchors.other_keys
        )
    });
    view! {
        <p class="hint" data-testid="anchors">{vouched}{rest}{others}</p>
        {anchors.overdue.then(|| view! {
            <p class="notice error" role="alert">
                {format!("Anchoring is overdue: more than {} entries have no anchor. The portal may be behind, or anchors were deleted.", 2 * anchors.every)}
            </p>
        })}
    }
}

#[component]
pub fn AuditEntry() -> impl IntoView {
    let params = use_params_map();
    let entry = Resource::new(
        move || params.read().get("seq").unwrap_or_default(),
        |seq| load_for(reviewer_or_owner, audit_entry(seq)),
    );
    view! {
        <Title text="Audit entry" />
        <h1>"Audit entry"</h1>
        <RequireRole allow=reviewer_or_owner>
            <p><a href="/audit">"Back to the audit log"</a></p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || entry.get().map(|result| match result {
                    Ok(Some(Some(entry))) => view! { <EntryDetail entry /> }.into_any(),
                    Ok(Some(None)) => view! { <p role="alert">"There is no entry with that number."</p> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
fn EntryDetail(entry: EntryView) -> impl IntoView {
    let about = format!(
        "/audit?target_type={}&target_id={}",
        url_encode(&entry.target_type),
        url_encode(&entry.target_id)
    );
    let evidence = (entry.target_type == Target::Grant.as_str())
        .then(|| format!("/audit/evidence/{}", url_encode(&entry.target_id)));
    view! {
        <h2>{format!("Entry {}: {}", entry.seq, entry.action)}</h2>
        <dl class="entry" aria-label=format!("Entry {}", entry.seq)>
            <dt>"Time"</dt><dd><Time at=entry.at.clone() /></dd>
            <dt>"Actor"</dt><dd>{entry.actor.clone()}</dd>
            <dt>"IP address"</dt><dd>{entry.actor_ip.clone()}</dd>
            <dt>"Browser"</dt><dd>{entry.user_agent.clone()}</dd>
            <dt>"Action"</dt><dd><code>{entry.action.clone()}</code></dd>
            <dt>"Target"</dt><dd>{format!("{} {}", entry.target_type, entry.target_id)}</dd>
            <dt>"Outcome"</dt><dd>{entry.outcome.clone()}</dd>
            <dt>"Details"</dt><dd><pre>{entry.details.clone()}</pre></dd>
            <dt>"Previous hash"</dt><dd><code class="hash">{entry.prev_hash.clone()}</code></dd>
            <dt>"Hash"</dt><dd><code class="hash">{entry.hash.clone()}</code></dd>
        </dl>
        <p class="actions">
            <a href=about>"All entries about this target"</a>
            {evidence.map(|href| view! {
                " · "
                <a href=href rel="external" download="">"Download the evidence pack"</a>
            })}
        </p>
    }
}
