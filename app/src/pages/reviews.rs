//! Access reviews (issue 18): `/admin/reviews` (the campaigns; owners start one) and
//! `/admin/reviews/<id>` (each grant under review, what its credential can do and what it
//! used, with Keep / Narrow / Revoke).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::FieldMessage;
use super::admin::{AdminNav, RequireRole, load_for};
use super::time::Time;
use crate::api::reviews::{
    CampaignView, DecideReviewItem, ReviewDecisionResult, ReviewsView, StartReview, admin_review,
    admin_reviews,
};
use shared::access_review::{ReviewDecision, ReviewItemView};

/// Who may open the review pages: approvers, owners and security reviewers.
fn any_reviewer(roles: &shared::auth::Roles) -> bool {
    roles.any()
}

/// `/admin/reviews`.
#[component]
pub fn ReviewsPage() -> impl IntoView {
    let start = ServerAction::<StartReview>::new();
    let reviews = Resource::new(
        move || start.version().get(),
        |_| load_for(any_reviewer, admin_reviews()),
    );
    view! {
        <Title text="Access reviews" />
        <RequireRole allow=any_reviewer>
            <AdminNav />
            <h1>"Access reviews"</h1>
            <p class="muted">"Each grant under review shows what its credential can do (the last proof) next to what the contractor actually used. Reviewers keep, narrow or revoke it; what is left unanswered at the due date takes the campaign's default."</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || reviews.get().map(|result| match result {
                    Ok(Some(view)) => view! { <Campaigns view start /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
fn Campaigns(view: ReviewsView, start: ServerAction<StartReview>) -> impl IntoView {
    let outcome = start.value();
    let error = move |field: &'static str| {
        Signal::derive(move || match outcome.get() {
            Some(Err(e)) => e.field(field),
            _ => None,
        })
    };
    let banner = move || {
        match outcome.get() {
        Some(Ok(started)) => Some(view! {
            <p class="notice" role="status">"Access review started. " <a href=format!("/admin/reviews/{}", started.0)>"Open it"</a></p>
        }.into_any()),
        Some(Err(e)) => e.form_message().map(|m| view! { <p class="notice error" role="alert">{m}</p> }.into_any()),
        None => None,
    }
    };
    view! {
        {banner}
        <section aria-labelledby="campaigns-heading">
            <h2 id="campaigns-heading">"Campaigns"</h2>
            {if view.campaigns.is_empty() {
                view! { <p>"No access review yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data" aria-label="Campaigns">
                        <thead><tr><th>"Name"</th><th>"Grants"</th><th>"Due"</th><th>"Default"</th><th>"Decided"</th><th>"State"</th></tr></thead>
                        <tbody>
                            {view.campaigns.iter().map(|c| view! {
                                <tr>
                                    <td><a href=format!("/admin/reviews/{}", c.id)>{c.name.clone()}</a></td>
                                    <td>{c.selection.clone()}</td>
                                    <td><Time at=c.due_date.clone() /></td>
                                    <td>{c.default_decision.as_str()}</td>
                                    <td>{format!("{} of {}", c.decided, c.items)}</td>
                                    <td>{c.state.label()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        {view.can_start.then(|| view! {
            <section aria-labelledby="start-review-heading">
                <h2 id="start-review-heading">"Start an access review"</h2>
                <ActionForm action=start attr:aria-label="Start an access review" attr:class="stacked-form">
                    <label for="review_name">"Name"</label>
                    <input id="review_name" name="name" aria-describedby="name-error" required />
                    <FieldMessage id="name-error" message=error("name") />
                    <label for="review_selection">"Grants to review"</label>
                    <select id="review_selection" name="selection" aria-describedby="selection-error">
                        <option value="all">"Every ready or active grant"</option>
                        <option value="package">"The grants of an access package"</option>
                        <option value="object">"The grants that reach an object"</option>
                    </select>
                    <FieldMessage id="selection-error" message=error("selection") />
                    <label for="review_package">"Access package"</label>
                    <select id="review_package" name="package">
                        <option value="">"—"</option>
                        {view.packages.iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                    </select>
                    <label for="review_object">"Object (API name)"</label>
                    <input id="review_object" name="object" aria-describedby="selection_value-error" placeholder="Case" />
                    <FieldMessage id="selection_value-error" message=error("selection_value") />
                    <label for="review_due">"Due date"</label>
                    <input id="review_due" name="due_date" type="date" min=view.min_due_date.clone() aria-describedby="due_date-error" required />
                    <FieldMessage id="due_date-error" message=error("due_date") />
                    <label for="review_reviewers">"Reviewers (Salesforce usernames; empty: any approver)"</label>
                    <textarea id="review_reviewers" name="reviewers" rows="2" aria-describedby="reviewers-error"></textarea>
                    <FieldMessage id="reviewers-error" message=error("reviewers") />
                    <label for="review_default">"Unanswered at the due date"</label>
                    <select id="review_default" name="default_decision" aria-describedby="default_decision-error">
                        <option value="keep">"Keep the access"</option>
                        <option value="revoke">"Revoke the access"</option>
                    </select>
                    <FieldMessage id="default_decision-error" message=error("default_decision") />
                    <div class="actions">
                        <button class="primary" type="submit" disabled=move || start.pending().get()>"Start the review"</button>
                    </div>
                </ActionForm>
            </section>
        })}
    }
}

/// `/admin/reviews/<id>`.
#[component]
pub fn ReviewCampaignPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let decide = ServerAction::<DecideReviewItem>::new();
    let campaign = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| load_for(any_reviewer, admin_review(id)),
    );
    view! {
        <Title text="Access review" />
        <RequireRole allow=any_reviewer>
            <AdminNav />
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || campaign.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(Some(view))) => view! { <CampaignPage view decide /> }.into_any(),
                    Ok(Some(None)) => view! { <h1>"Not found"</h1><p>"There is no access review with this id."</p> }.into_any(),
                    Err(e) => view! { <h1>"Access review"</h1><p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
fn CampaignPage(view: CampaignView, decide: ServerAction<DecideReviewItem>) -> impl IntoView {
    let outcome = decide.value();
    let banner = move || {
        match outcome.get() {
        Some(Ok(ReviewDecisionResult::Kept)) => Some(("notice", "Kept: the access stays as it is.".to_string())),
        Some(Ok(ReviewDecisionResult::Narrowing)) => Some((
            "notice",
            "Narrowed: the dropped access was taken out of Salesforce and the narrower access proven with the contractor's credential (see the item).".to_string(),
        )),
        Some(Ok(ReviewDecisionResult::Revoking)) => Some((
            "notice",
            "Revoked: the credential is being cut off and the access torn down.".to_string(),
        )),
        Some(Err(e)) => e
            .field("comment")
            .or_else(|| e.field("drop"))
            .or_else(|| e.field("decision"))
            .or_else(|| e.form_message())
            .map(|m| ("notice error", m)),
        None => None,
    }
    };
    let c = view.campaign.clone();
    view! {
        <h1>{format!("Access review: {}", c.name)}</h1>
        {move || banner().map(|(class, message)| view! { <p class=class role="status">{message}</p> })}
        <dl class="facts">
            <dt>"Grants"</dt><dd>{c.selection.clone()}</dd>
            <dt>"Due"</dt><dd><Time at=c.due_date.clone() /></dd>
            <dt>"Unanswered items"</dt><dd>{format!("{} at the due date", c.default_decision.label())}</dd>
            <dt>"Reviewers"</dt><dd>{if view.reviewers.is_empty() { "any approver".to_string() } else { view.reviewers.join(", ") }}</dd>
            <dt>"Usage since"</dt><dd><Time at=view.window_start.clone() /></dd>
            <dt>"Decided"</dt><dd>{format!("{} of {} ({})", c.decided, c.items, c.state.label())}</dd>
        </dl>
        <p><a href=format!("/admin/reviews/{}/decisions.csv", c.id) download="">"Download the decisions (CSV)"</a></p>
        {view.items.into_iter().map(|item| view! { <Item item campaign=c.id.clone() decide /> }).collect_view()}
    }
}

#[component]
fn Item(
    item: ReviewItemView,
    campaign: String,
    decide: ServerAction<DecideReviewItem>,
) -> impl IntoView {
    let heading = format!("item-{}", item.grant_id);
    let title = format!("{} ({})", item.company, item.contact_email);
    let decision = item.decision.map(|d| {
        let by = match item.decided_by.as_deref() {
            Some("default") => "by default at the due date".to_string(),
            Some(by) => format!("by {by}"),
            None => String::new(),
        };
        format!("Decision: {} {by}", d.label())
    });
    let narrowing = item.narrow_state.clone().map(|s| match s.as_str() {
        "done" => "The narrower access is applied and proven.".to_string(),
        "pending" => "The narrower access is being applied.".to_string(),
        _ => format!(
            "Narrowing failed: {}",
            item.narrow_error.clone().unwrap_or_default()
        ),
    });
    let grant_id = item.grant_id.clone();
    view! {
        <section class="review-item" aria-labelledby=heading.clone()>
            <h2 id=heading.clone()>{title.clone()}</h2>
            <p class="state-line">"Grant: " <strong>{item.grant_state.label()}</strong> " · ends " <Time at=item.end_date.clone() /> " · " <a href=format!("/admin/requests/{}", item.request_id)>"the request"</a></p>
            {decision.map(|d| view! { <p role="note">{d} {item.comment.clone().filter(|c| !c.is_empty()).map(|c| format!(": {c}"))}</p> })}
            {narrowing.map(|n| view! { <p class="notice" role="note">{n}</p> })}
            <h3>"Approved access"</h3>
            <ul aria-label=format!("Approved access of {title}")>
                {item.access.iter().map(|a| view! { <li>{a.clone()}</li> }).collect_view()}
            </ul>
            <h3>"What the credential can do (last proof)"</h3>
            {item.proof_at.clone().map(|at| view! { <p class="muted">"Proven " <Time at=at /></p> })}
            <super::assurance::ProofTable lines=item.proof.clone() label=format!("Proof of {title}") />
            <h3>"What the contractor used"</h3>
            {if item.used.is_empty() {
                view! { <p>"No API call on any object in the review window."</p> }.into_any()
            } else {
                view! {
                    <table class="data" aria-label=format!("Usage of {title}") tabindex="0">
                        <thead><tr><th>"Object"</th><th>"Calls"</th><th>"Days"</th><th>"Granted fields"</th></tr></thead>
                        <tbody>
                            {item.used.iter().map(|u| view! {
                                <tr>
                                    <td>{u.object.clone()} {(!u.granted).then_some(" (not granted)")}</td>
                                    <td>{u.calls}</td>
                                    <td>{u.days}</td>
                                    <td>{u.granted_fields.join(", ")}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {item.can_decide.then(|| {
                let comment_id = format!("comment-{grant_id}");
                view! {
                    <ActionForm action=decide attr:aria-label=format!("Decision on {title}") attr:class="stacked-form">
                        <input type="hidden" name="campaign" value=campaign.clone() />
                        <input type="hidden" name="grant" value=grant_id.clone() />
                        <fieldset>
                            <legend>"To narrow: drop"</legend>
                            {item.droppable.iter().map(|d| {
                                let id = format!("drop-{grant_id}-{}", d.key);
                                view! {
                                    <div>
                                        <input type="checkbox" id=id.clone() name=format!("drop[{}]", d.key) />
                                        <label for=id>{format!("Drop {}", d.label)} {(!d.used).then_some(" (not used)")}</label>
                                    </div>
                                }
                            }).collect_view()}
                        </fieldset>
                        <label for=comment_id.clone()>"Comment"</label>
                        <textarea id=comment_id name="comment" rows="2"></textarea>
                        <p class="muted">"A comment is required to narrow or revoke."</p>
                        <div class="actions">
                            <button type="submit" name="decision" value=ReviewDecision::Keep.as_str() disabled=move || decide.pending().get()>"Keep"</button>
                            " "
                            <button type="submit" name="decision" value=ReviewDecision::Narrow.as_str() disabled=move || decide.pending().get()>"Narrow"</button>
                            " "
                            <button class="danger" type="submit" name="decision" value=ReviewDecision::Revoke.as_str() disabled=move || decide.pending().get()>"Revoke"</button>
                        </div>
                    </ActionForm>
                }
            })}
        </section>
    }
}
