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
        @if !view.filled.errors.is_empty() { (error_summary(view.filled)) }
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
                    legend { (switch.title) " " code.muted { (switch.path) } }
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
            @for field in view.model.fields.iter().filter(|f| !f.advanced) {
                (field_input(field, view.filled, editing, &errors(&field.path)))
            }
            @let advanced: Vec<&Field> = view.model.fields.iter().filter(|f| f.advanced).collect();
            @if !advanced.is_empty() {
                @let open = advanced.iter().any(|f| !errors(&f.path).is_empty() || view.filled.values.contains_key(&f.path));
                details.advanced open[open] {
                    summary { "Advanced: pool, requirements, rotation, leases" }
                    @for field in advanced {
                        (field_input(field, view.filled, editing, &errors(&field.path)))
                    }
                }
            }
            p { button type="submit" { "Save" } }
        }
    };
    layout(view.title, Some(viewer), body)
}

/// Every error of a refused form, at the top, taking focus; each links to its field.
fn error_summary(filled: &Filled) -> Markup {
    let count = filled.errors.values().map(Vec::len).sum::<usize>();
    html! {
        div.error-summary role="alert" tabindex="-1" autofocus {
            p.error { "Nothing was saved: " (count) @if count == 1 { " problem" } @else { " problems" } " to fix." }
            ul {
                @for (path, messages) in &filled.errors {
                    @for message in messages {
                        li {
                            @if path.is_empty() { (message) }
                            @else if path == "name" { a href="#name" { "Name: " (message) } }
                            @else { a href={ "#field-" (path.replace('.', "-")) } { (path) ": " (message) } }
                        }
                    }
                }
            }
        }
    }
}

/// What an empty secret input says it will do.
fn secret_placeholder(held: bool, editing: bool) -> Option<&'static str> {
    match (held, editing) {
        (true, _) => Some("kept from your last try: type to replace"),
        (false, true) => Some("unchanged: type to replace"),
        (false, false) => None,
    }
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
    let (switch, option) = field.variant.clone().unzip();
    // Required only where it always applies (not inside one alternative of a switch);
    // the form is `novalidate`, so every error comes back from the server in one pass.
    let required = field.required && switch.is_none() && !field.advanced;
    html! {
        div.field data-switch=[switch] data-option=[option] {
            label for=(id) {
                (field.title)
                @if field.required { " (required)" }
                " " code.muted { (field.path) }
            }
            @match &field.input {
                Input::Secret => input #(id) type="password" name=(input_name(&field.path))
                    autocomplete="new-password" aria-describedby=(help_id)
                    aria-invalid=[(!errors.is_empty()).then_some("true")]
                    placeholder=[secret_placeholder(filled.held.contains(&field.path), editing)];
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
                Input::Integer | Input::Number => input #(id) type="number"
                    step=[(field.input == Input::Number).then_some("any")] required[required]
                    name=(input_name(&field.path)) value=(value) placeholder=[placeholder]
                    aria-describedby=(help_id) aria-invalid=[(!errors.is_empty()).then_some("true")];
                Input::Text => input #(id) type="text" name=(input_name(&field.path)) value=(value)
                    placeholder=[placeholder] aria-describedby=(help_id) required[required]
                    aria-invalid=[(!errors.is_empty()).then_some("true")];
            }
            p.muted #(help_id) {
                @if let Some(help) = &field.help { (help) }
                @if filled.held.contains(&field.path) { " The server holds what you typed last time (not shown): leave it empty to use it." }
                @else if field.input == Input::Secret && editing { " Leave empty to keep the stored secret." }
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
