//! The scope picker: for each of the org's objects a level (none, read, read and edit) and
//! for each field field-level security applies to a level, posted as
//! `object_level[Object]` and `field_level[Object.Field]` (a `ScopeSelection`). The request
//! form, the decision form and the catalog's package form use it; each names its controls
//! its own way (ids and labels the Playwright tests find them by).

use leptos::prelude::*;
use shared::org::{OrgField, OrgObject};
use shared::scope::{Level, Scope};

/// Which form the picker is on: its ids and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerFor {
    /// The contractor's request: "Access to Case records", "Case: Subject".
    Request,
    /// The catalog's new package: "Package access to Case records", "Case: Subject".
    Package,
    /// The approver's decision: "Grant on Case records", "Case.Subject".
    Decision,
}

impl PickerFor {
    fn prefix(self) -> &'static str {
        match self {
            PickerFor::Request => "object",
            PickerFor::Package => "package",
            PickerFor::Decision => "grant",
        }
    }

    fn field_prefix(self) -> &'static str {
        match self {
            PickerFor::Request => "field",
            PickerFor::Package => "package",
            PickerFor::Decision => "grant",
        }
    }

    fn object_label(self, object: &OrgObject) -> String {
        match self {
            PickerFor::Request => format!("Access to {} records", object.label),
            PickerFor::Package => format!("Package access to {} records", object.label),
            PickerFor::Decision => format!("Grant on {} records", object.label),
        }
    }

    fn field_label(self, object: &OrgObject, field: &OrgField) -> String {
        match self {
            PickerFor::Decision => format!("{}.{}", object.name, field.name),
            _ => format!("{}: {}", object.label, field.label),
        }
    }

    fn fieldset_class(self) -> Option<&'static str> {
        (self == PickerFor::Request).then_some("object-choice")
    }
}

/// One `<fieldset>` per object, its level and its fields' levels, starting from `start`
/// (nothing chosen when None).
#[component]
pub fn ScopePicker(
    objects: Vec<OrgObject>,
    on: PickerFor,
    #[prop(optional)] start: Option<Scope>,
) -> impl IntoView {
    objects
        .into_iter()
        .map(|object| {
            let chosen = start
                .as_ref()
                .and_then(|s| s.object(&object.name))
                .cloned();
            let level = chosen.as_ref().map(|o| o.level);
            let select_id = format!("{}-{}", on.prefix(), object.name);
            let fields = object
                .fields
                .iter()
                .map(|field| {
                    let level = chosen
                        .as_ref()
                        .and_then(|o| o.fields.get(&field.name).copied());
                    let id = format!("{}-{}-{}", on.field_prefix(), object.name, field.name);
                    view! {
                        <div>
                            <label for=id.clone()>{on.field_label(&object, field)}</label>
                            <select id=id name=format!("field_level[{}.{}]", object.name, field.name)>
                                <option value="none" selected=level.is_none()>"No access"</option>
                                <option value="read" selected=level == Some(Level::Read)>"Read"</option>
                                {field.editable.then(|| view! { <option value="edit" selected=level == Some(Level::Edit)>"Edit"</option> })}
                            </select>
                        </div>
                    }
                })
                .collect_view();
            view! {
                <fieldset class=on.fieldset_class()>
                    <legend>{object.label.clone()}</legend>
                    <label for=select_id.clone()>{on.object_label(&object)}</label>
                    <select id=select_id name=format!("object_level[{}]", object.name)>
                        <option value="none" selected=level.is_none()>"No access"</option>
                        <option value="read" selected=level == Some(Level::Read)>"Read"</option>
                        <option value="edit" selected=level == Some(Level::Edit)>"Read and edit"</option>
                    </select>
                    <div class="field-grid">{fields}</div>
                </fieldset>
            }
        })
        .collect_view()
}
