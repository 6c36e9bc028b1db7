//! The UI's pages as maud markup (checked when compiled, every value escaped): the
//! layout, sign-in, the block list and a block. No inline script or style: the one
//! stylesheet is `/ui/style.css`, so the Content-Security-Policy can forbid the rest.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::form::{Field, Filled, FormModel, Input, input_name, switch_name};
use crate::block::{Block, BlockSummary, BlockVersion};
use crate::connect::TestReport;
use crate::document::{FieldChange, MASK, leaves};
use crate::time::rfc3339;

/// What every signed-in page knows about its viewer.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    /// Whether the admin pages are linked.
    pub admin: bool,
}

const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false, "historyCacheSize": 0, "refreshOnHistoryMiss": true, "responseHandling": [{"code": "204", "swap": false}, {"code": "...", "swap": true}]}"#;

pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Blockyard" }
                link rel="stylesheet" href="/ui/style.css";
                // htmx only improves pages that work without it: links and forms load
                // the next page into this one. No eval, no inline styles or scripts (the
                // CSP forbids them), no copies of pages in the browser's storage (a
                // revealed secret must not stay there), and error pages are shown too.
                meta name="htmx-config" content=(HTMX_CONFIG);
                script src="/ui/htmx.js" defer {}
            }
            body hx-boost="true" hx-history="false" {
                header {
                    a.brand href="/ui" { "Blockyard" }
                    @if let Some(viewer) = viewer {
                        a href="/ui" { "Blocks" }
                        @if viewer.admin {
                            a href="/ui/admin/tokens" { "Tokens" }
                            a href="/ui/admin/audit" { "Audit log" }
                            a href="/ui/admin/types" { "Types" }
                        }
                        span.muted { "Signed in as " (viewer.name) }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            p.muted { "Sign in with an API token (" code { "blockyard token create" } ")." }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

/// The block list's filters and page, as the viewer asked for them.
pub struct ListView<'a> {
    pub blocks: &'a [BlockSummary],
    /// Each block's last Test on this server: passed, code, when.
    pub tests: &'a [Option<(bool, String, i64)>],
    pub types: &'a [String],
    pub block_type: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub next_cursor: Option<&'a str>,
}

pub fn block_list(viewer: &Viewer<'_>, view: &ListView<'_>) -> Markup {
    let next = view.next_cursor.map(|cursor| {
        let mut url = url::Url::parse("http://x/ui").expect("a valid base");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("cursor", cursor);
            if let Some(t) = view.block_type {
                query.append_pair("type", t);
            }
            if let Some(p) = view.prefix {
                query.append_pair("q", p);
            }
        }
        format!("/ui?{}", url.query().unwrap_or_default())
    });
    let body = html! {
        h1 { "Blocks" }
        p { a href="/ui/new" { "+ New block" } }
        form.filters method="get" action="/ui" role="search" {
            div {
                label for="type" { "Type" }
                select #type name="type" {
                    option value="" { "All types" }
                    @for slug in view.types {
                        option value=(slug) selected[view.block_type == Some(slug.as_str())] { (slug) }
                    }
                }
            }
            div {
                label for="q" { "Name starts with" }
                input #q type="search" name="q" value=(view.prefix.unwrap_or_default());
            }
            div { button type="submit" { "Filter" } }
        }
        @if view.blocks.is_empty() {
            p.notice { "No blocks to show." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Type" }
                    th scope="col" { "Version" }
                    th.optional scope="col" { "Updated" }
                    th scope="col" { "Last test" }
                } }
                tbody {
                    @for (block, test) in view.blocks.iter().zip(view.tests) {
                        tr {
                            td { a href={ "/ui/blocks/" (block.name) } { (block.name) } }
                            td { (block.block_type) }
                            td { (block.version) }
                            td.optional { (rfc3339(block.updated_at)) }
                            td {
                                @match test {
                                    None => span.muted { "not tested" },
                                    Some((true, _, at)) => span title=(rfc3339(*at)) { "passed" },
                                    Some((false, code, at)) => span.error title=(rfc3339(*at)) { (code) },
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p.pager { a href=(next) rel="next" { "Next page →" } }
        }
    };
    layout("Blocks", Some(viewer), body)
}

/// A block's page: its fields (secrets masked unless `revealed`), Reveal for viewers
/// who may read its secrets, snippets for using it, and its history.
pub struct BlockView<'a> {
    pub block: &'a Block,
    pub revealed: bool,
    pub may_reveal: bool,
    pub may_edit: bool,
    /// Write and read secrets: roll back.
    pub may_undo: bool,
    pub history: &'a [BlockVersion],
    /// The result of the Test just run, if one was.
    pub tested: Option<&'a Tested>,
}

pub fn block_page(viewer: &Viewer<'_>, view: &BlockView<'_>) -> Markup {
    let block = view.block;
    let data = match view.revealed {
        true => block
            .document()
            .unwrap_or_else(|| block.masked_data().clone()),
        false => block.masked_data().clone(),
    };
    let body = html! {
        p { a href="/ui" { "← Blocks" } }
        h1 { (block.name) }
        dl.meta {
            dt { "Type" } dd { (block.block_type) }
            dt { "Version" } dd { (block.version) }
            dt { "Updated" } dd { (rfc3339(block.updated_at)) }
            dt { "Id" } dd { code { (block.id) } }
        }
        @if let Some(tested) = view.tested { (test_result(tested)) }
        div.actions {
            @if view.may_edit {
                a href={ "/ui/blocks/" (block.name) "/edit" } { "Edit" }
                a href={ "/ui/blocks/" (block.name) "/delete" } { "Delete…" }
            }
            form method="post" action={ "/ui/blocks/" (block.name) "/test" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.quiet type="submit" { "Test connection" }
            }
        }
        h2 { "Fields" }
        (fields(&data))
        @if view.revealed {
            p.notice { "Secrets are shown: this read is in the audit log." }
        } @else if view.may_reveal {
            form method="post" action={ "/ui/blocks/" (block.name) "/reveal" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.quiet type="submit" { "Reveal secrets" }
            }
        }
        h2 { "Use it" }
        pre { code {
            "blockyard block env " (block.name) " --format shell\n"
            "blockyard exec " (block.name) " -- psql\n"
        } }
        pre { code {
            "from prefect_sqlalchemy import SqlAlchemyConnector\n"
            "connector = SqlAlchemyConnector.load(\"" (block.name) "\")\n"
        } }
        pre { code {
            "let pool = registry.pool(\"" (block.name) "\")?;\n"
        } }
        h2 { "History" }
        (history(view.history, view.may_undo.then_some((block.name.as_str(), viewer.csrf, block.version))))
    };
    layout(&block.name, Some(viewer), body)
}

/// Every field of a document by dotted path; masked secrets stay masked.
fn fields(data: &Value) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "Field" } th scope="col" { "Value" } } }
            tbody {
                @for (path, value) in leaves(data) {
                    tr {
                        th scope="row" { code { (path) } }
                        td {
                            @match &value {
                                Value::String(text) if text == MASK => span.secret { (MASK) },
                                Value::String(text) => (text),
                                other => code { (other.to_string()) },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The history table; with `undo` (the viewer may roll back: write and read secrets),
/// a "Roll back" button on each earlier version.
fn history(versions: &[BlockVersion], undo: Option<(&str, &str, i64)>) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Version" }
                th scope="col" { "Change" }
                th scope="col" { "By" }
                th.optional scope="col" { "At" }
                th scope="col" { "What changed" }
                @if undo.is_some() { th scope="col" { "" } }
            } }
            tbody {
                @for v in versions.iter().rev() {
                    tr {
                        td { (v.version) }
                        td { (v.change) }
                        td { (v.actor.as_deref().unwrap_or("local")) }
                        td.optional { (rfc3339(v.created_at)) }
                        td {
                            @for change in &v.changes {
                                div {
                                    code { (change.path) } ": "
                                    @if change.secret { span.secret { "changed (secret)" } }
                                    @else { (shown(change.before.as_ref())) " → " (shown(change.after.as_ref())) }
                                }
                            }
                        }
                        @if let Some((name, csrf, current)) = undo {
                            td {
                                @if v.version < current && v.change != "delete" {
                                    form method="post" action={ "/ui/blocks/" (name) "/rollback" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="to" value=(v.version);
                                        input type="hidden" name="version" value=(current);
                                        button.quiet type="submit" aria-label={ "Roll back to version " (v.version) } { "Roll back" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A block that is not here: with `undelete`, a button that brings back the one last
/// deleted under the name.
pub fn missing_block(viewer: &Viewer<'_>, name: &str, message: &str, undelete: bool) -> Markup {
    let body = html! {
        p { a href="/ui" { "← Blocks" } }
        h1 { (name) }
        p.error role="alert" { (message) }
        @if undelete {
            form method="post" action={ "/ui/blocks/" (name) "/undelete" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                p.muted { "If a block of this name was deleted, it can be brought back with its history." }
                button type="submit" { "Undelete " (name) }
            }
        }
    };
    layout(name, Some(viewer), body)
}

/// Confirming a delete: who read the block lately (the audit log), so a block still in
/// use is not deleted by surprise.
pub fn confirm_delete(
    viewer: &Viewer<'_>,
    block: &Block,
    readers: Option<&[(String, i64, i64)]>,
) -> Markup {
    let body = html! {
        p { a href={ "/ui/blocks/" (block.name) } { "← " (block.name) } }
        h1 { "Delete " (block.name) "?" }
        @match readers {
            None => p.muted { "Who uses it is in the audit log, which only admin tokens may read." },
            Some([]) => p { "No token read it in the last 30 days." },
            Some(readers) => {
                p { "Read in the last 30 days by:" }
                table {
                    thead { tr { th scope="col" { "Token" } th scope="col" { "Reads" } th scope="col" { "Last" } } }
                    tbody {
                        @for (actor, count, last) in readers {
                            tr { td { (actor) } td { (count) } td { (rfc3339(*last)) } }
                        }
                    }
                }
            }
        }
        p { "Its history is kept, and it can be brought back (undelete) until it is purged." }
        form method="post" action={ "/ui/blocks/" (block.name) "/delete" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="version" value=(block.version);
            button type="submit" { "Delete " (block.name) }
        }
    };
    layout("Delete", Some(viewer), body)
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// An error page (403, 404, a refused form), with nothing of what was sent.
pub fn problem(viewer: Option<&Viewer<'_>>, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/ui" { "Back to the blocks" } }
        },
    )
}

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

/// The block types to create a block of.
pub fn choose_type(viewer: &Viewer<'_>, types: &[(String, String, String)]) -> Markup {
    let body = html! {
        p { a href="/ui" { "← Blocks" } }
        h1 { "New block" }
        ul {
            @for (slug, name, description) in types {
                li {
                    a href={ "/ui/new?type=" (slug) } { (name) } " "
                    span.muted { "(" (slug) ")" }
                    @if !description.is_empty() { br; span.muted { (description) } }
                }
            }
        }
    };
    layout("New block", Some(viewer), body)
}

/// The outcome of a block's Test, for its page.
pub enum Tested {
    Passed(TestReport),
    Failed { code: String, message: String },
}

pub fn test_result(tested: &Tested) -> Markup {
    html! {
        div.notice role="status" {
            @match tested {
                Tested::Passed(report) => {
                    p { strong { "Connected." } " " (report.url) }
                    p.muted {
                        "Server " (report.server_version) "; connect "
                        (format!("{:.1}", report.connect_ms)) " ms; round trip "
                        (format!("{:.2}", report.latency_ms)) " ms."
                    }
                    @for r in &report.requirements {
                        p { (r.requirement) ": " (r.found) @if !r.ok { span.error { " (not met)" } } }
                    }
                }
                Tested::Failed { code, message } => {
                    p.error { (code) } p { (message) }
                }
            }
        }
    }
}
