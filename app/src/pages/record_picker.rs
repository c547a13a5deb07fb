//! The decision form's record picker: find an object's records by name (or list them, a
//! page at a time, with how many there are), add them as chips showing name and id, and
//! still paste ids. The chosen records travel as `picked_record_ids`, the pasted ones as
//! `record_ids`; the server checks both the same way (`DecisionForm::parse`).

use leptos::prelude::*;

use crate::api::records::{RecordHit, RecordSearchForm, SearchRecords};
use shared::records::RECORDS_PER_PAGE;

/// An object the picker searches: its API name and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerObject {
    pub name: String,
    pub label: String,
}

/// A record added to the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Picked {
    object: String,
    id: String,
    name: String,
}

/// The picker and the pasted-ids box. `start_ids` fill the box (the ids asked for, or an
/// earlier approval's); `ids_label` and `ids_described_by` are the box's.
#[component]
pub fn RecordPicker(
    objects: Vec<PickerObject>,
    start_ids: Vec<String>,
    ids_label: &'static str,
    ids_described_by: &'static str,
) -> impl IntoView {
    let search = ServerAction::<SearchRecords>::new();
    let first = objects.first().map(|o| o.name.clone()).unwrap_or_default();
    let object = RwSignal::new(first);
    let text = RwSignal::new(String::new());
    let picked = RwSignal::new(Vec::<Picked>::new());
    let run = move |offset: u32| {
        search.dispatch(SearchRecords {
            form: RecordSearchForm {
                object: object.get_untracked(),
                text: text.get_untracked(),
                offset,
            },
        });
    };
    let results = move || {
        search.value().get().map(|result| match result {
            Ok(page) => {
                let object_name = page.object.clone();
                let summary = if page.records.is_empty() {
                    format!("No {} records match.", page.object)
                } else {
                    format!(
                        "{} {} records, by {}",
                        page.summary(),
                        page.object,
                        page.name_label
                    )
                };
                let offset = page.offset;
                let more = page.has_more();
                let rows = page
                    .records
                    .into_iter()
                    .map(|hit| {
                        let RecordHit { id, name } = hit;
                        let shown = if name.is_empty() { id.clone() } else { name.clone() };
                        let record = Picked {
                            object: object_name.clone(),
                            id: id.clone(),
                            name: shown.clone(),
                        };
                        let chosen_id = id.clone();
                        let chosen = move || picked.read().iter().any(|p| p.id == chosen_id);
                        view! {
                            <li>
                                <span class="record-name">{shown.clone()}</span> " "
                                <code class="muted">{id.clone()}</code> " "
                                <button type="button" aria-label=format!("Add {shown} ({id})")
                                    disabled=chosen
                                    on:click=move |_| picked.update(|list| {
                                        if !list.iter().any(|p| p.id == record.id) {
                                            list.push(record.clone());
                                        }
                                    })>
                                    "Add"
                                </button>
                            </li>
                        }
                    })
                    .collect_view();
                view! {
                    <p role="status" id="record-search-summary">{summary}</p>
                    <ul class="record-results" aria-label="Records found">{rows}</ul>
                    <div class="actions">
                        {(offset > 0).then(|| view! {
                            <button type="button" on:click=move |_| run(offset.saturating_sub(RECORDS_PER_PAGE))>"Previous records"</button>
                        })}
                        {more.then(|| view! {
                            <button type="button" on:click=move |_| run(offset + RECORDS_PER_PAGE)>"Next records"</button>
                        })}
                    </div>
                }
                .into_any()
            }
            Err(e) => view! {
                <p class="notice error" role="alert" id="record-search-summary">
                    {e.field("record_search").unwrap_or_else(|| e.to_string())}
                </p>
            }
            .into_any(),
        })
    };
    let chips = move || {
        picked
            .get()
            .into_iter()
            .map(|p| {
                let id = p.id.clone();
                view! {
                    <li class="chip">
                        <span>{format!("{} {}", p.object, p.name)}</span> " "
                        <code>{p.id.clone()}</code> " "
                        <button type="button" class="link-button" aria-label=format!("Remove {} ({})", p.name, p.id)
                            on:click=move |_| picked.update(|list| list.retain(|q| q.id != id))>
                            "Remove"
                        </button>
                    </li>
                }
            })
            .collect_view()
    };
    let picked_ids = move || {
        picked
            .read()
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let has_objects = !objects.is_empty();
    view! {
        {has_objects.then(|| view! {
            <div class="record-picker" role="group" aria-labelledby="record-picker-heading">
                <p id="record-picker-heading"><strong>"Find records to share"</strong></p>
                <label for="record_search_object">"Object to search"</label>
                <select id="record_search_object" on:change=move |ev| object.set(event_target_value(&ev))>
                    {objects.iter().map(|o| view! { <option value=o.name.clone()>{o.label.clone()}</option> }).collect_view()}
                </select>
                <label for="record_search_text">"Name contains (empty: list all)"</label>
                <input id="record_search_text" type="search" autocomplete="off"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        // Enter searches; it must not submit the decision.
                        if ev.key() == "Enter" {
                            ev.prevent_default();
                            run(0);
                        }
                    } />
                <button type="button" on:click=move |_| run(0) disabled=move || search.pending().get()>"Search records"</button>
                {results}
                <ul class="chips" aria-label="Chosen records">{chips}</ul>
                <input type="hidden" name="picked_record_ids" prop:value=picked_ids />
            </div>
        }.into_any())}
        <label for="record_ids">{ids_label}</label>
        <textarea id="record_ids" aria-describedby=ids_described_by name="record_ids" rows="3">{start_ids.join("\n")}</textarea>
    }
    // Type-erased: the decision form's view type is otherwise too deep for the compiler.
    .into_any()
}

/// The objects the picker offers: the org's objects the decision can grant (only those
/// whose records can be shared when `shareable` is given), the requested ones first.
pub fn objects(
    org_objects: &[shared::org::OrgObject],
    shareable: Option<&Vec<String>>,
    requested: &shared::scope::Scope,
) -> Vec<PickerObject> {
    let mut objects: Vec<&shared::org::OrgObject> = org_objects
        .iter()
        .filter(|o| shareable.is_none_or(|names| names.contains(&o.name)))
        .collect();
    // A stable sort: the requested objects first, each group in the org's order.
    objects.sort_by_key(|o| requested.object(&o.name).is_none());
    objects
        .into_iter()
        .map(|o| PickerObject {
            name: o.name.clone(),
            label: o.label.clone(),
        })
        .collect()
}
