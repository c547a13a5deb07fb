//! The approvers' dashboard: the review queue with filters and counts, and a request's page
//! with its blast radius and the decision form.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_params_map, use_query_map};

use super::FieldMessage;
use super::ending::{AccessEnded, EndingSoonest, RevokeAccessForm};
use super::record_picker::{self, RecordPicker};
use super::scope_picker::{PickerFor, ScopePicker};
use super::time::{TextWithTimes, Time};
use shared::budget::HardAction;
use shared::request::RequestState;
use shared::scope::Level;

use crate::api::ApiError;
use crate::api::admin::{
    CancelGrant, Decide, DecisionResult, GrantActionResult, ProvisioningView, QueueForm, QueuePage,
    RequestView, RetryGrant, admin_queue, admin_request, grant_progress,
};
use crate::api::reveal::ReissueRevealLink;
use crate::api::revoke::RevokeAccess;
use crate::api::session::get_viewer;
use shared::reveal::CredentialStatus;

/// Who may open the approvers' pages.
pub fn approver_or_owner(roles: &shared::auth::Roles) -> bool {
    roles.approver || roles.owner
}

/// Who may open the owners' pages.
pub fn owner(roles: &shared::auth::Roles) -> bool {
    roles.owner
}

/// Loads a page's data only for a signed-in viewer whose roles pass `allow`, and `Ok(None)`
/// otherwise, so an anonymous visit renders the sign-in card with status 200 instead of
/// failing on the data call (which answers 401/403 to API clients).
pub async fn load_for<T>(
    allow: fn(&shared::auth::Roles) -> bool,
    load: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Option<T>, ApiError> {
    let viewer = get_viewer().await?;
    if viewer.user.is_some() && allow(&viewer.roles) {
        load.await.map(Some)
    } else {
        Ok(None)
    }
}

/// Gate for pages that need a role: sign-in when anonymous, "not authorised" when the
/// signed-in person has none of the roles `allow` accepts.
#[component]
pub fn RequireRole(allow: fn(&shared::auth::Roles) -> bool, children: ChildrenFn) -> impl IntoView {
    let viewer = Resource::new(|| (), |_| async { get_viewer().await });
    let location = use_location();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || viewer.get().map(|result| match result {
                Ok(viewer) => match &viewer.user {
                    None => {
                        let here = location.pathname.get();
                        view! {
                            <section class="card" aria-labelledby="signin-heading">
                                <h2 id="signin-heading">"Sign in to continue"</h2>
                                <p>"Approvers and security reviewers sign in with their Salesforce account."</p>
                                <a class="button" rel="external" href=format!("/auth/login?return_to={here}")>"Log in with Salesforce"</a>
                            </section>
                        }.into_any()
                    }
                    Some(user) if !allow(&viewer.roles) => view! {
                        <section class="card" aria-labelledby="denied-heading">
                            <h2 id="denied-heading">"Not authorised"</h2>
                            <p role="alert">
                                "You are signed in as " <strong>{user.username.clone()}</strong>
                                ", but this account has no Portcullis role that opens this page. An owner can grant one."
                            </p>
                        </section>
                    }.into_any(),
                    Some(_) => children.read_value()().into_any(),
                },
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

/// The links between the admins' pages.
#[component]
pub fn AdminNav() -> impl IntoView {
    // Owners also see the org readiness page.
    let viewer = Resource::new(|| (), |_| async { get_viewer().await });
    view! {
        <nav aria-label="Admin" class="subnav">
            <A href="/admin">"Requests"</A>
            " · "
            <A href="/admin/usage">"API usage"</A>
            " · "
            <A href="/admin/catalog">"Access catalog"</A>
            " · "
            <A href="/admin/settings">"Roles and settings"</A>
            " · "
            <A href="/admin/reviews">"Access reviews"</A>
            " · "
            <A href="/admin/assurance">"Assurance"</A>
            <Transition fallback=|| ()>
                {move || viewer.get().and_then(|v| v.ok()).filter(|v| v.user.is_some() && owner(&v.roles)).map(|_| view! {
                    " · "
                    <A href="/admin/org">"Org readiness"</A>
                })}
            </Transition>
        </nav>
    }
}

fn age_label(hours: i64) -> String {
    match hours {
        h if h < 1 => "under an hour".into(),
        h if h < 48 => format!("{h} h"),
        h => format!("{} days", h / 24),
    }
}

#[component]
pub fn AdminDashboard() -> impl IntoView {
    // Every resource is created here, outside the role check's <Suspense>: a resource created
    // inside a suspended branch takes its hydration id from however often the branch ran on
    // the server, and the client then reads another resource's data.
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        QueueForm {
            state: q.get("state"),
            company: q.get("company"),
            age: q.get("age"),
            before: q.get("before"),
        }
    };
    let page = Resource::new(params, |form| {
        load_for(approver_or_owner, admin_queue(form))
    });
    view! {
        <Title text="Admin dashboard" />
        <h1>"Admin dashboard"</h1>
        <RequireRole allow=approver_or_owner>
            <AdminNav />
            <Queue page />
        </RequireRole>
    }
}

#[component]
fn Queue(page: Resource<Result<Option<QueuePage>, ApiError>>) -> impl IntoView {
    let query = use_query_map();
    let current = move |key: &str| query.read().get(key).unwrap_or_default();
    view! {
        <form method="get" action="/admin" class="filters" aria-label="Filter requests">
            <label for="filter-state">"State"</label>
            <select id="filter-state" name="state">
                <option value="any" selected=move || current("state").is_empty()>"Waiting and decided"</option>
                {RequestState::ALL.iter().map(|s| {
                    let value = s.as_str();
                    view! { <option value=value selected=move || current("state") == value>{s.label()}</option> }
                }).collect_view()}
            </select>
            <label for="filter-company">"Company"</label>
            <input id="filter-company" name="company" type="search" value=move || current("company") />
            <label for="filter-age">"Age"</label>
            <select id="filter-age" name="age">
                <option value="any">"Any age"</option>
                <option value="day" selected=move || current("age") == "day">"Last 24 hours"</option>
                <option value="week" selected=move || current("age") == "week">"Last 7 days"</option>
                <option value="older-day" selected=move || current("age") == "older-day">"Older than a day"</option>
                <option value="older-week" selected=move || current("age") == "older-week">"Older than a week"</option>
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(Some(page)) => view! { <QueueTable page /> }.into_any(),
                Ok(None) => ().into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn QueueTable(page: QueuePage) -> impl IntoView {
    let QueuePage {
        rows,
        counts,
        next_cursor,
        extensions,
    } = page;
    view! {
        <super::renewal::ExtensionQueue rows=extensions />
        <ul class="counts" aria-label="Requests by state">
            {counts.into_iter().map(|(state, n)| view! {
                <li><a href=format!("/admin?state={}", state.as_str())>{format!("{}: {n}", state.label())}</a></li>
            }).collect_view()}
        </ul>
        {if rows.is_empty() {
            view! { <p>"No requests match."</p> }.into_any()
        } else {
            view! {
                <table class="data" aria-label="Requests">
                    <thead><tr><th>"Company"</th><th>"Contact"</th><th>"State"</th><th>"Age"</th><th>"Approvals"</th><th>"Calls per day"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| view! {
                            <tr>
                                <td>
                                    <a href=format!("/admin/requests/{}", row.id)>{row.company.clone()}</a>
                                    {row.risky.then(|| view! { " " <span class="risk">"risky"</span> })}
                                </td>
                                <td>{row.contact_name.clone()} <br /> <span class="muted">{row.contact_email.clone()}</span></td>
                                <td><span class=format!("state state-{}", row.state.as_str())>{row.state.label()}</span></td>
                                <td>{age_label(row.age_hours)}</td>
                                <td>{format!("{} of {}", row.approvals, row.approvals_required)}</td>
                                <td>{row.calls_per_day}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {next_cursor.map(|cursor| view! { <p><a href=format!("/admin?before={cursor}")>"Older requests"</a></p> })}
    }
}

/// The request page's actions, made once per page (outside any <Suspense>).
#[derive(Clone, Copy)]
struct PageActions {
    decide: ServerAction<Decide>,
    retry: ServerAction<RetryGrant>,
    cancel: ServerAction<CancelGrant>,
    reissue: ServerAction<ReissueRevealLink>,
    revoke: ServerAction<RevokeAccess>,
}

type ProgressResource = Resource<Result<Option<Option<ProvisioningView>>, ApiError>>;

#[component]
pub fn AdminRequest() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    // Every resource of the page is created here, outside the role check's <Suspense> (see
    // AdminDashboard): the grant's progress too, or a full page load of an approved request
    // hydrates with another resource's data and fails.
    let actions = PageActions {
        decide: ServerAction::new(),
        retry: ServerAction::new(),
        cancel: ServerAction::new(),
        reissue: ServerAction::new(),
        revoke: ServerAction::new(),
    };
    // The request (its state line, the Decide form, the decisions and the history) is read
    // again after every action that succeeded: a decision (approved, rejected or one
    // approval recorded), a retry, a cancel, a new credential link, a revoke; and when the
    // grant's state changes afterwards (provisioning, ready; revoking, revoked): see the
    // effect below. A refused decision does not read it again, so the form keeps what was
    // typed beside its messages.
    let history = RwSignal::new(0u32);
    let done = (
        succeeded(actions.decide),
        succeeded(actions.retry),
        succeeded(actions.cancel),
        succeeded(actions.reissue),
    );
    let request = Resource::new(
        move || {
            (
                id(),
                actions.revoke.version().get(),
                history.get(),
                done.0.get(),
                done.1.get(),
                done.2.get(),
                done.3.get(),
            )
        },
        |(id, ..)| load_for(approver_or_owner, admin_request(id)),
    );
    let tick = RwSignal::new(0u32);
    let progress: ProgressResource = Resource::new(
        move || {
            (
                id(),
                tick.get(),
                actions.decide.version().get(),
                actions.retry.version().get(),
                actions.cancel.version().get(),
                actions.reissue.version().get(),
                actions.revoke.version().get(),
            )
        },
        |(id, ..)| load_for(approver_or_owner, grant_progress(id)),
    );
    // Refreshed every two seconds while an approved request's grant is being provisioned
    // (in the browser only: effects do not run on the server).
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let approved = request
                    .get_untracked()
                    .and_then(|r| r.ok())
                    .flatten()
                    .flatten()
                    .is_some_and(|v| v.state == RequestState::Approved)
                    || matches!(
                        actions.decide.value().get_untracked(),
                        Some(Ok(DecisionResult::Approved))
                    );
                let finished = progress
                    .get_untracked()
                    .and_then(|r| r.ok())
                    .flatten()
                    .flatten()
                    .is_some_and(|p| p.finished());
                if approved && !finished {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_secs(2),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    });
    // When the grant's state changes after the first look (a revoke's teardown moving on),
    // the history is read again, so the page shows what changed without a reload (in the
    // browser only, like the refresh above).
    Effect::new(move |seen: Option<Option<shared::GrantState>>| {
        let now = progress
            .get()
            .and_then(|r| r.ok())
            .flatten()
            .flatten()
            .map(|p| p.state);
        if let Some(Some(before)) = seen
            && now.is_some_and(|now| now != before)
        {
            history.update(|h| *h += 1);
        }
        now.or(seen.flatten())
    });
    view! {
        <Title text="Review a request" />
        <RequireRole allow=approver_or_owner>
            // A Transition: reading the request again keeps the page on screen.
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || request.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(Some(view))) => view! { <RequestReview view actions progress /> }.into_any(),
                    Ok(Some(None)) => view! { <h1>"Request not found"</h1><p>"There is no request with this id."</p> }.into_any(),
                    Err(e) => view! { <h1>"Review a request"</h1><p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </RequireRole>
    }
}

/// How many times `action` has answered `Ok`: a version that moves only on success (on the
/// server and while hydrating, 0).
fn succeeded<S>(action: ServerAction<S>) -> Memo<usize>
where
    S: leptos::server_fn::ServerFn + Send + Sync + Clone + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    Memo::new(move |seen: Option<&usize>| {
        let ok = action.value().with(|v| matches!(v, Some(Ok(_))));
        let version = action.version().get();
        match seen {
            Some(&seen) if !ok => seen,
            _ if ok => version,
            _ => 0,
        }
    })
}

fn level_text(level: Option<Level>) -> &'static str {
    match level {
        None => "none",
        Some(Level::Read) => "read",
        Some(Level::Edit) => "edit",
    }
}

#[component]
fn RequestReview(
    view: RequestView,
    actions: PageActions,
    progress: ProgressResource,
) -> impl IntoView {
    let decide = actions.decide;
    let outcome = decide.value();
    let error = move |field: &'static str| {
        Signal::derive(move || match outcome.get() {
            Some(Err(e)) => e.field(field),
            _ => None,
        })
    };
    let banner = move || match outcome.get() {
        Some(Ok(DecisionResult::Approved)) => Some((
            "notice",
            "Approved: the grant is created and will be provisioned.".to_string(),
        )),
        Some(Ok(DecisionResult::Rejected)) => Some((
            "notice",
            "Rejected: the contractor has been told why.".to_string(),
        )),
        Some(Ok(DecisionResult::Recorded {
            approvals,
            required,
        })) => Some((
            "notice",
            format!(
                "Your approval is recorded ({approvals} of {required}); another approver must approve too."
            ),
        )),
        Some(Err(e)) => Some((
            "notice error",
            e.form_message().unwrap_or_else(|| {
                "Some answers need another look; see the messages in the form.".into()
            }),
        )),
        None => None,
    };
    let decidable = view.state == RequestState::Submitted;
    // The form starts from what was asked, or from the earlier approval.
    let proposal = view.proposal.clone();
    let requested = proposal.scope.clone();
    let budget = proposal.budget.clone();
    let request_id = view.id.clone();
    // Record sharing is offered only for objects whose sharing model allows a share.
    let sharing_rule = proposal.scope.visibility.rule == shared::scope::VisibilityRule::Shared;
    let record_sharing_error = view.record_sharing_error.clone();
    let (offered, refused): (Vec<_>, Vec<_>) = view.record_sharing.iter().partition(|r| r.offered);
    let shareable: Vec<String> = offered.iter().map(|r| r.object.clone()).collect();
    let offered_notes: Vec<String> = offered.iter().filter_map(|r| r.note.clone()).collect();
    let not_shareable: Vec<String> = refused.iter().filter_map(|r| r.note.clone()).collect();
    let nothing_to_share = sharing_rule
        && record_sharing_error.is_none()
        && !view.record_sharing.is_empty()
        && shareable.is_empty();
    let picker_objects = record_picker::objects(
        &view.org_objects,
        (sharing_rule && !shareable.is_empty()).then_some(&shareable),
        &requested,
    );
    let record_ids_described_by = if sharing_rule && !shareable.is_empty() {
        "record_ids-error record-sharing-offered"
    } else {
        "record_ids-error"
    };
    view! {
        <h1>{format!("{}'s request", view.company)}</h1>
        <p class="state-line">"State: " <strong class=format!("state state-{}", view.state.as_str())>{view.state.label()}</strong>
            {format!(" · approvals needed: {}", view.approvals_required)}
            {view.risky.then(|| view! { " · " <span class="risk">"risky"</span> })}
        </p>
        {move || banner().map(|(class, text)| view! { <p class=class role="status">{text}</p> })}
        <dl class="facts">
            <dt>"Contact"</dt><dd>{view.contact_name.clone()} " <" {view.contact_email.clone()} ">"</dd>
            <dt>"The work"</dt><dd>{view.justification.clone()}</dd>
            <dt>"Access asked for"</dt><dd>{view.scope.summary().join(", ")}</dd>
            <dt>"Records"</dt><dd>{view.scope.visibility.rule.describe()}</dd>
            <dt>"Calls per day"</dt><dd>{view.calls_per_day}</dd>
            <dt>"IP ranges"</dt><dd>{if view.ip_ranges.is_empty() { "any".to_string() } else { view.ip_ranges.join(", ") }}</dd>
            <dt>"Until"</dt><dd><Time at=view.end_date.clone() /></dd>
            <dt>"Sent"</dt><dd><Time at=view.created_at.clone() /></dd>
        </dl>
        <section aria-labelledby="blast-heading">
            <h2 id="blast-heading">"Blast radius"</h2>
            {view.blast_error.clone().map(|e| view! { <p class="notice error">{e}</p> })}
            {view.blast.clone().map(|blast| view! {
                {(!blast.risks.is_empty()).then(|| view! {
                    <ul class="risks">{blast.risks.iter().map(|r| view! { <li class="risk">{r.clone()}</li> }).collect_view()}</ul>
                })}
                {(!blast.problems.is_empty()).then(|| view! {
                    <ul>{blast.problems.iter().map(|p| view! { <li class="risk">{p.clone()}</li> }).collect_view()}</ul>
                })}
                <table class="data" aria-label="Blast radius">
                    <thead><tr><th>"Object"</th><th>"Access"</th><th>"Fields"</th><th>"Records exposed"</th></tr></thead>
                    <tbody>
                        {blast.objects.iter().map(|o| view! {
                            <tr>
                                <td>{o.object.clone()}</td>
                                <td>{o.level.as_str()}</td>
                                <td>{o.fields.iter().map(|(f, l)| format!("{f} ({})", l.as_str())).collect::<Vec<_>>().join(", ")}</td>
                                <td>{match o.record_count {
                                    Some(n) => format!("{n} of {}", o.total_records),
                                    None => format!("chosen at approval (of {})", o.total_records),
                                }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
        {(!view.decisions.is_empty()).then(|| view! {
            <section aria-labelledby="decisions-heading">
                <h2 id="decisions-heading">"Decisions"</h2>
                <ul>
                    {view.decisions.iter().map(|d| view! {
                        <li>
                            <strong>{d.approver.clone()}</strong> " " {d.decision.clone()} " on " <Time at=d.at.clone() absolute_first=true /> ": " {d.reason.clone()}
                            {(!d.changes.is_empty()).then(|| view! {
                                <ul>{d.changes.iter().map(|c| view! {
                                    <li class:widened=c.is_widening()>
                                        {format!("{}: asked {}, granted {}{}", c.item, level_text(c.requested), level_text(c.granted), if c.is_widening() { " (wider than asked)" } else { "" })}
                                    </li>
                                }).collect_view()}</ul>
                            })}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {decidable.then(|| view! {
            <section aria-labelledby="decide-heading">
                <h2 id="decide-heading">"Decide"</h2>
                <p class="muted">"Narrow the access if the work needs less. Anything wider than asked is recorded as such."</p>
                {proposal.from_approver.clone().map(|who| view! {
                    <p class="notice" role="note">{format!("The form starts from {who}'s approval. An approval counts towards this one only if it covers everything you grant: access, records, both budgets, the warning level, the over-budget action, the end date and the IP ranges.")}</p>
                })}
                <ActionForm action=decide attr:aria-label="Decision" attr:class="stacked-form">
                    <input type="hidden" name="id" value=view.id.clone() />
                    <FieldMessage id="access-error" message=error("access") />
                    <ScopePicker objects=view.org_objects.clone() on=PickerFor::Decision start=requested.clone() />
                    <fieldset>
                        <legend>"Records"</legend>
                        <input type="hidden" name="visibility" value=proposal.scope.visibility.rule.as_str() />
                        <p>{format!("Rule: {}.", proposal.scope.visibility.rule.describe())}</p>
                        {sharing_rule.then(|| view! {
                            {record_sharing_error.clone().map(|e| view! { <p class="notice" role="note">{e}</p> })}
                            {(!shareable.is_empty()).then(|| view! {
                                <p id="record-sharing-offered">{format!("Records can be shared for: {}.", shareable.join(", "))}</p>
                            })}
                            {(!offered_notes.is_empty()).then(|| view! {
                                <ul aria-label="Record sharing notes">{offered_notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
                            })}
                            {(!not_shareable.is_empty()).then(|| view! {
                                <ul aria-label="Records that cannot be shared">{not_shareable.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
                            })}
                        })}
                        {(!nothing_to_share).then(|| view! {
                            <RecordPicker objects=picker_objects.clone() start_ids=proposal.scope.visibility.record_ids.clone()
                                ids_label=if sharing_rule { "Record ids to share (one per line)" } else { "Record ids to share or assign (one per line)" }
                                ids_described_by=record_ids_described_by />
                        })}
                        <FieldMessage id="record_ids-error" message=error("record_ids") />
                        <label for="group">"Public group (for the group rule)"</label>
                        <input id="group" aria-describedby="visibility-error" name="group" type="text" value=proposal.scope.visibility.group.clone().unwrap_or_default() />
                        <FieldMessage id="visibility-error" message=error("visibility") />
                    </fieldset>
                    <fieldset>
                        <legend>"API budget"</legend>
                        <label for="calls_per_day">"Calls per day"</label>
                        <input id="calls_per_day" aria-describedby="calls_per_day-error" name="calls_per_day" type="number" min="1" value=budget.calls_per_day.to_string() />
                        <FieldMessage id="calls_per_day-error" message=error("calls_per_day") />
                        <label for="calls_per_7_days">"Calls per rolling 7 days"</label>
                        <input id="calls_per_7_days" aria-describedby="calls_per_7_days-error" name="calls_per_7_days" type="number" min="1" value=budget.calls_per_7_days.to_string() />
                        <FieldMessage id="calls_per_7_days-error" message=error("calls_per_7_days") />
                        <label for="warn_percent">"Warn at (% of the budget)"</label>
                        <input id="warn_percent" aria-describedby="warn_percent-error" name="warn_percent" type="number" min="1" max="99" value=budget.warn_percent.to_string() />
                        <FieldMessage id="warn_percent-error" message=error("warn_percent") />
                        <label for="hard_action">"When the budget is used up"</label>
                        <select id="hard_action" aria-describedby="hard_action-error" name="hard_action">
                            <option value="none" selected=budget.hard_action == HardAction::None>"Alert only"</option>
                            <option value="freeze" selected=budget.hard_action == HardAction::Freeze>"Alert and freeze the integration user"</option>
                        </select>
                        <FieldMessage id="hard_action-error" message=error("hard_action") />
                    </fieldset>
                    <fieldset>
                        <legend>"Term"</legend>
                        <label for="decision_end_date">"End date"</label>
                        <input id="decision_end_date" aria-describedby="end_date-error" name="end_date" type="date" value=proposal.end_date.clone() />
                        <FieldMessage id="end_date-error" message=error("end_date") />
                        <label for="decision_ip_ranges">"IP ranges (one CIDR per line; empty: any). Salesforce does not block the app's token by them: calls from elsewhere are found in the usage files, hours later, and then suspend the grant and freeze its user."</label>
                        <textarea id="decision_ip_ranges" aria-describedby="ip_ranges-error" name="ip_ranges" rows="2">{proposal.ip_ranges.join("\n")}</textarea>
                        <FieldMessage id="ip_ranges-error" message=error("ip_ranges") />
                    </fieldset>
                    <label for="reason">"Reason for the decision"</label>
                    <textarea id="reason" aria-describedby="reason-error" name="reason" rows="2" required></textarea>
                    <FieldMessage id="reason-error" message=error("reason") />
                    <div class="actions">
                        <button class="primary" type="submit" name="action" value="approve" disabled=move || decide.pending().get()>"Approve"</button>
                        " "
                        <button type="submit" name="action" value="reject" disabled=move || decide.pending().get()>"Reject"</button>
                    </div>
                </ActionForm>
            </section>
        })}
        <Provisioning request_id company=view.company.clone() progress actions />
        <section aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <ol class="history">
                {view.events.iter().map(|e| view! {
                    <li><Time at=e.at.clone() /> " " {e.message.clone()} {e.internal.then_some(" (internal)")}</li>
                }).collect_view()}
            </ol>
        </section>
    }
}

/// The grant's provisioning (refreshed by the page while it runs), its actions, and where
/// the credential stands.
#[component]
fn Provisioning(
    request_id: String,
    company: String,
    progress: ProgressResource,
    actions: PageActions,
) -> impl IntoView {
    let PageActions {
        retry,
        cancel,
        reissue,
        revoke,
        ..
    } = actions;
    view! {
        <Transition fallback=|| ()>
            {move || progress.get().map(|result| match result {
                Ok(Some(Some(p))) => {
                    let state = p.state;
                    let credential = p.credential.clone();
                    let access_end = p.access_end.clone();
                    // A teardown that stopped is carried on by revoking again (never retried
                    // or cancelled).
                    let stopped_teardown = access_end.as_ref().is_some_and(|e| e.stopped());
                    let revocable = state.is_revocable() || stopped_teardown;
                    let ending_soonest = p.ending_soonest.clone();
                    view! {
                        {access_end.map(|end| view! { <AccessEnded end /> })}
                        <ProvisioningSection progress=p />
                        <EndingSoonest grants=ending_soonest />
                        {(!stopped_teardown).then(|| view! { <GrantActions request_id=request_id.clone() state retry cancel /> })}
                        {credential.map(|status| view! { <Credential request_id=request_id.clone() status reissue /> })}
                        {matches!(state, shared::GrantState::Ready | shared::GrantState::Active).then(|| view! { <super::rotation::SecretRotation request_id=request_id.clone() /> })}
                        <RevokeAccessForm request_id=request_id.clone() revocable ended=state.has_ended() company=company.clone() revoke />
                        <super::assurance::GrantDrift request_id=request_id.clone() />
                    }.into_any()
                }
                Ok(_) => ().into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

/// The admin's actions on a grant being provisioned: retry a stopped run, or cancel it
/// (undoing what it made in Salesforce).
#[component]
fn GrantActions(
    request_id: String,
    state: shared::GrantState,
    retry: ServerAction<RetryGrant>,
    cancel: ServerAction<CancelGrant>,
) -> impl IntoView {
    use shared::GrantState;
    let can_retry = state == GrantState::NeedsAttention;
    let can_cancel = matches!(
        state,
        GrantState::Approved | GrantState::Provisioning | GrantState::NeedsAttention
    );
    let message = move || {
        [retry.value().get(), cancel.value().get()]
            .into_iter()
            .flatten()
            .last()
            .map(|result| match result {
                Ok(GrantActionResult::Done(m)) => {
                    view! { <p class="notice" role="status">{m}</p> }.into_any()
                }
                Err(e) => {
                    view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()
                }
            })
    };
    let retry_id = request_id.clone();
    view! {
        {(can_retry || can_cancel).then(|| view! {
            <div class="actions" role="group" aria-label="Provisioning actions">
                {can_retry.then(|| view! {
                    <ActionForm action=retry attr:aria-label="Retry provisioning">
                        <input type="hidden" name="id" value=retry_id.clone() />
                        <button type="submit" disabled=move || retry.pending().get()>"Retry the failed step"</button>
                    </ActionForm>
                })}
                {can_cancel.then(|| view! {
                    <ActionForm action=cancel attr:aria-label="Cancel provisioning">
                        <input type="hidden" name="id" value=request_id.clone() />
                        <button type="submit" disabled=move || cancel.pending().get()>"Cancel and undo in Salesforce"</button>
                    </ActionForm>
                })}
            </div>
        })}
        {message}
    }
}

/// Where the contractor's credential stands, and "send a new link" (which changes the
/// secret first).
#[component]
fn Credential(
    request_id: String,
    status: CredentialStatus,
    reissue: ServerAction<ReissueRevealLink>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="credential-heading">
            <h2 id="credential-heading">"Credential"</h2>
            <p role="status" class=format!("credential credential-{}", status.status)><TextWithTimes text=status.summary.clone() /></p>
            <p>{format!("Links sent: {}", status.links_sent)}</p>
            {status.can_reissue.then(|| view! {
                <ActionForm action=reissue attr:aria-label="Send a new credential link">
                    <input type="hidden" name="request_id" value=request_id.clone() />
                    <button type="submit" disabled=move || reissue.pending().get()>
                        "Send a new link (changes the secret)"
                    </button>
                </ActionForm>
            })}
            {move || reissue.value().get().map(|result| match result {
                Ok(()) => view! { <p class="notice" role="status">"A new link was sent and the secret was changed."</p> }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </section>
    }
}

#[component]
fn ProvisioningSection(progress: ProvisioningView) -> impl IntoView {
    let state = progress.state.label();
    view! {
        <section aria-labelledby="provisioning-heading">
            <h2 id="provisioning-heading">"Provisioning"</h2>
            <p role="status">{format!("Provisioning: {state} · {} Salesforce API calls", progress.api_calls)}</p>
            {progress.attention.clone().map(|a| view! { <p class="notice error" role="alert">{a}</p> })}
            <table class="data" aria-label="Provisioning steps">
                <thead><tr><th>"Step"</th><th>"State"</th><th>"Attempts"</th><th>"Last error"</th></tr></thead>
                <tbody>
                    {progress.steps.iter().map(|s| view! {
                        <tr>
                            <td>{s.label.clone()}</td>
                            <td>{s.state.label()}</td>
                            <td>{s.attempts}</td>
                            <td>{s.last_error.clone().unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(!progress.evidence.is_empty()).then(|| view! {
                <table class="data" aria-label="Least-privilege proof" tabindex="0">
                    <thead><tr><th>"Check"</th><th>"Expected"</th><th>"Observed"</th><th>"Result"</th></tr></thead>
                    <tbody>
                        {progress.evidence.iter().map(|c| view! {
                            <tr>
                                <td>{c.check.clone()}</td>
                                <td>{c.expected.clone()}</td>
                                <td>{c.observed.clone()}</td>
                                <td>{if c.pass { "pass" } else { "FAIL" }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
