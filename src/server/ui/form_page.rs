//! The block form as maud markup: one input per field of the type's schema, the
//! errors beside the fields they are about, and what differs after a conflict.

use maud::{Markup, html};
use serde_json::Value;

use super::filled::Filled;
use super::form::{Field, FormModel, Input, input_name, switch_name};
use super::pages::{Viewer, layout, shown};
use crate::document::FieldChange;

/// A block form: create (with a name input) or edit (with the version read, for
/// `If-Match`), generated from the type's schema.
pub struct FormView<'a> {
    pub title: &'a str,
    pub action: &'a str,
    pub type_name: &'a str,
    /// `Some(name)` when creating: the name input's value.
    pub new_name: Option<&'a str>,
    pub version: Option<i64>,
    pub model: &'a FormModel,
    pub filled: &'a Filled,
    /// When an edit lost a race: what differs between the block now and this form.
    pub conflict: Option<&'a [FieldChange]>,
}

pub fn block_form(viewer: &Viewer<'_>, view: &FormView<'_>) -> Markup {
    let errors = |path: &str| view.filled.errors.get(path).cloned().unwrap_or_default();
    let editing = view.version.is_some();
    let body = html! {
        p { a href="/ui" { "← Blocks" } }
        h1 { (view.title) }
        p.muted { "Type: " (view.type_name) }
        @if let Some(changes) = view.conflict {
            div.notice role="alert" {
                p.error { "This block changed since you opened it. Nothing was saved. What differs between the block now and this form:" }
                (change_list(changes))
                p { "The form now holds the current version: apply your change again and save." }
            }
        }
        @for message in errors("") { p.error role="alert" { (message) } }
        form method="post" action=(view.action) novalidate {
            input type="hidden" name="csrf" value=(viewer.csrf);
            @if let Some(version) = view.version {
                input type="hidden" name="version" value=(version);
            }
            @if let Some(name) = view.new_name {
                div.field {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(name) required aria-describedby="name-help";
                    p.muted #name-help { "Lowercase letters, digits, '-', '_' and '.'." }
                    @for message in errors("name") { p.error { (message) } }
                }
            }
            @for switch in &view.model.switches {
                fieldset {
                    legend { (switch.path) }
                    @if let Some(help) = &switch.help { p.muted { (help) } }
                    @for option in &switch.options {
                        @let id = format!("switch-{}-{}", switch.path.replace('.', "-"), option);
                        label for=(id) {
                            input #(id) type="radio" name=(switch_name(&switch.path)) value=(option)
                                checked[view.filled.chosen.get(&switch.path) == Some(option)];
                            " " (option)
                        }
                    }
                }
            }
            @for field in &view.model.fields {
                (field_input(field, view.filled, editing, &errors(&field.path)))
            }
            p { button type="submit" { "Save" } }
        }
    };
    layout(view.title, Some(viewer), body)
}

fn field_input(field: &Field, filled: &Filled, editing: bool, errors: &[String]) -> Markup {
    let id = format!("field-{}", field.path.replace('.', "-"));
    let help_id = format!("{id}-help");
    let value = filled
        .values
        .get(&field.path)
        .map(String::as_str)
        .unwrap_or_default();
    let placeholder = field.default.as_ref().map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    html! {
        div.field {
            label for=(id) {
                (field.path)
                @if field.required { " (required)" }
                @if let Some((_, option)) = &field.variant { span.muted { " · " (option) } }
            }
            @match &field.input {
                Input::Secret => input #(id) type="password" name=(input_name(&field.path))
                    autocomplete="new-password" aria-describedby=(help_id)
                    aria-invalid=[(!errors.is_empty()).then_some("true")]
                    placeholder=[editing.then_some("unchanged: type to replace")];
                Input::Boolean => select #(id) name=(input_name(&field.path)) aria-describedby=(help_id) {
                    option value="" { "(not set)" }
                    option value="true" selected[value == "true"] { "yes" }
                    option value="false" selected[value == "false"] { "no" }
                },
                Input::Choice(choices) => select #(id) name=(input_name(&field.path)) aria-describedby=(help_id) {
                    option value="" { "(not set)" }
                    @for choice in choices { option value=(choice) selected[value == choice] { (choice) } }
                },
                Input::Json => textarea #(id) name=(input_name(&field.path)) rows="2"
                    aria-describedby=(help_id) aria-invalid=[(!errors.is_empty()).then_some("true")] { (value) },
                Input::Integer | Input::Number => input #(id) type="text" inputmode="numeric"
                    name=(input_name(&field.path)) value=(value) placeholder=[placeholder]
                    aria-describedby=(help_id) aria-invalid=[(!errors.is_empty()).then_some("true")];
                Input::Text => input #(id) type="text" name=(input_name(&field.path)) value=(value)
                    placeholder=[placeholder] aria-describedby=(help_id)
                    aria-invalid=[(!errors.is_empty()).then_some("true")];
            }
            p.muted #(help_id) {
                @if let Some(help) = &field.help { (help) }
                @if field.input == Input::Secret && editing { " Leave empty to keep the stored secret." }
                @if field.input == Input::Json { " JSON." }
            }
            @for message in errors { p.error role="alert" { (field.path) ": " (message) } }
        }
    }
}

fn change_list(changes: &[FieldChange]) -> Markup {
    html! {
        ul {
            @for change in changes {
                li {
                    code { (change.path) } ": "
                    @if change.secret { span.secret { "secret differs" } }
                    @else { (shown(change.before.as_ref())) " → " (shown(change.after.as_ref())) }
                }
            }
        }
    }
}
