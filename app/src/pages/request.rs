//! The contractor's entry point: asking for access to the org, then confirming the email
//! address with the code we send.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::FieldMessage;
use super::scope_picker::{PickerFor, ScopePicker};
use crate::api::ApiError;
use crate::api::intake::{
    FormOptions, SubmitOutcome, SubmitRequest, VerifyCode, VerifyOutcome, request_form,
};

/// The message for `field` from the last submission, if any.
fn error_of(outcome: Option<Result<SubmitOutcome, ApiError>>, field: &str) -> Option<String> {
    match outcome {
        Some(Err(e)) => e.field(field),
        _ => None,
    }
}

#[component]
pub fn RequestAccess() -> impl IntoView {
    let options = Resource::new(|| (), |_| async { request_form().await });
    view! {
        <Title text="Request access" />
        <h1>"Request access"</h1>
        <p class="lead">
            "Tell us who you are, what the work is and which Salesforce data it needs. An "
            "approver reviews every request; you follow its progress from a link we email you."
        </p>
        <Suspense fallback=|| view! { <p>"Loading the form…"</p> }>
            {move || {
                options
                    .get()
                    .map(|result| match result {
                        Ok(options) => view! { <RequestFlow options /> }.into_any(),
                        Err(e) => {
                            view! {
                                <p class="notice error" role="alert">
                                    "The form could not be loaded: " {e.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

#[component]
fn RequestFlow(options: FormOptions) -> impl IntoView {
    let submit = ServerAction::<SubmitRequest>::new();
    let outcome = submit.value();
    let submitted = move || match outcome.get() {
        Some(Ok(SubmitOutcome::Submitted {
            request_id,
            contact_email,
        })) => Some((request_id, contact_email)),
        _ => None,
    };
    let message = move |field: &'static str| Signal::derive(move || error_of(outcome.get(), field));
    let refused =
        move || match outcome.get() {
            Some(Err(e)) => Some(e.form_message().unwrap_or_else(|| {
                "Some answers need another look; see the messages below.".into()
            })),
            _ => None,
        };
    let FormOptions {
        objects,
        packages,
        min_end_date,
        max_end_date,
        submission_key,
    } = options;

    view! {
        {move || submitted().map(|(request_id, email)| view! { <VerifyPanel request_id email /> })}
        <div hidden=move || submitted().is_some()>
            {move || refused().map(|m| view! { <p class="notice error" role="alert">{m}</p> })}
            <ActionForm action=submit attr:class="stacked-form" attr:aria-label="Access request">
                <input type="hidden" name="submission_key" value=submission_key.clone() />
                <fieldset>
                    <legend>"Who you are"</legend>
                    <label for="company">"Company"</label>
                    <input id="company" name="company" type="text" autocomplete="organization" required maxlength="100" aria-describedby="company-error" />
                    <FieldMessage id="company-error" message=message("company") />
                    <label for="contact_name">"Your name"</label>
                    <input id="contact_name" name="contact_name" type="text" autocomplete="name" required maxlength="100" aria-describedby="contact_name-error" />
                    <FieldMessage id="contact_name-error" message=message("contact_name") />
                    <label for="contact_email">"Work email"</label>
                    <input id="contact_email" name="contact_email" type="email" autocomplete="email" required maxlength="254" aria-describedby="contact_email-error" />
                    <FieldMessage id="contact_email-error" message=message("contact_email") />
                </fieldset>
                <fieldset>
                    <legend>"The work"</legend>
                    <label for="justification">"What the work is"</label>
                    <textarea id="justification" name="justification" rows="4" required maxlength="2000" aria-describedby="justification-error"></textarea>
                    <FieldMessage id="justification-error" message=message("justification") />
                </fieldset>
                <fieldset>
                    <legend>"Access the work needs"</legend>
                    <FieldMessage id="access-error" message=message("access") />
                    {(!packages.is_empty()).then(|| view! {
                        <p class="muted">"Start from a package, and/or choose objects and fields below."</p>
                        <ul class="packages">
                            {packages.iter().map(|p| {
                                let id = format!("package-{}", p.id);
                                view! {
                                    <li>
                                        <input type="checkbox" id=id.clone() name=format!("package[{}]", p.id) value="on" />
                                        <label for=id>{p.name.clone()}</label>
                                        <span class="muted">" — " {p.description.clone()} " (" {p.summary.join(", ")} ")"</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    })}
                    <ScopePicker objects on=PickerFor::Request />
                    <fieldset class="inline">
                        <legend>"Which records"</legend>
                        <input type="radio" id="visibility-shared" name="visibility" value="shared" checked />
                        <label for="visibility-shared">"Records an admin shares with us"</label>
                        <input type="radio" id="visibility-owned" name="visibility" value="owned" />
                        <label for="visibility-owned">"Records assigned to us"</label>
                        <input type="radio" id="visibility-group" name="visibility" value="group" />
                        <label for="visibility-group">"Records our team's public group sees"</label>
                    </fieldset>
                    <FieldMessage id="visibility-error" message=message("visibility") />
                </fieldset>
                <fieldset>
                    <legend>"Limits"</legend>
                    <label for="calls_per_day">"Expected API calls per day"</label>
                    <input id="calls_per_day" name="calls_per_day" type="number" min="1" max="100000" required aria-describedby="calls_per_day-error" />
                    <FieldMessage id="calls_per_day-error" message=message("calls_per_day") />
                    <label for="ip_ranges">"Source IP ranges (optional, one CIDR per line): calls from elsewhere suspend your access once Salesforce reports them"</label>
                    <textarea id="ip_ranges" name="ip_ranges" rows="2" placeholder="203.0.113.0/24" aria-describedby="ip_ranges-error"></textarea>
                    <FieldMessage id="ip_ranges-error" message=message("ip_ranges") />
                    <label for="end_date">"Access needed until"</label>
                    <input id="end_date" name="end_date" type="date" min=min_end_date max=max_end_date required aria-describedby="end_date-error" />
                    <FieldMessage id="end_date-error" message=message("end_date") />
                </fieldset>
                <FieldMessage id="submission_key-error" message=message("submission_key") />
                <button class="primary" type="submit" disabled=move || submit.pending().get()>
                    "Send request"
                </button>
            </ActionForm>
        </div>
    }
}

#[component]
fn VerifyPanel(request_id: String, email: String) -> impl IntoView {
    let verify = ServerAction::<VerifyCode>::new();
    let outcome = verify.value();
    let error = move || match outcome.get() {
        Some(Err(crate::api::ApiError::Invalid(errors))) => {
            errors.0.first().map(|e| e.message.clone())
        }
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let verified = move || matches!(outcome.get(), Some(Ok(VerifyOutcome::Verified)));
    view! {
        <section class="card" aria-labelledby="verify-heading">
            {move || verified().then(|| view! {
                <h2 id="verified-heading">"Thank you"</h2>
                <p role="status">
                    "Your email is confirmed and the request is with the approvers. We emailed you a link to follow its progress."
                </p>
            })}
            <div hidden=verified>
                <h2 id="verify-heading">"Check your email"</h2>
                <p>"We sent a six-digit code to " <strong>{email.clone()}</strong> ". Enter it here, or open the link in the message."</p>
                <ActionForm action=verify attr:aria-label="Email confirmation">
                    <input type="hidden" name="request_id" value=request_id.clone() />
                    <label for="code">"Confirmation code"</label>
                    <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required aria-describedby="code-error" />
                    <p class="field-error" id="code-error" role="alert">{error}</p>
                    <button class="primary" type="submit">"Confirm"</button>
                </ActionForm>
            </div>
        </section>
    }
}
