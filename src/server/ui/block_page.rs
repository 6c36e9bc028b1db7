//! A block's page as maud markup: its fields (secrets masked unless revealed), its
//! history with undo, the last Test, and the pages for a missing block and a delete.

use maud::{Markup, html};
use serde_json::Value;

use super::pages::{Viewer, layout, shown};
use crate::block::{Block, BlockVersion};
use crate::connect::TestReport;
use crate::document::{MASK, leaves};
use crate::registry::Lease;
use crate::time::rfc3339;

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
    /// What the viewer's last action did ("Rolled back to version 3.").
    pub done: Option<&'a str>,
    /// The block's live leases, for an admin viewer (who may revoke them).
    pub leases: Option<&'a [Lease]>,
}

pub fn block_page(viewer: &Viewer<'_>, view: &BlockView<'_>) -> Markup {
    let block = view.block;
    let data = block.shown(view.revealed);
    let use_of = UseOf::of(block);
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
        @if let Some(done) = view.done {
            p.notice role="status" { (done) " Now version " (block.version) "." }
        }
        div.actions {
            @if view.may_edit {
                a href={ "/ui/blocks/" (block.name) "/edit" } { "Edit" }
                a href={ "/ui/blocks/" (block.name) "/delete" } { "Delete…" }
            }
            @if use_of.client.is_some() {
                form method="post" action={ "/ui/blocks/" (block.name) "/test" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button.quiet type="submit" { "Test connection" }
                }
            }
        }
        h2 { "Fields" }
        (fields(&data))
        @if view.revealed {
            p.notice { "Secrets are shown: this read is in the audit log." }
        } @else if view.may_reveal && use_of.has_secrets {
            form method="post" action={ "/ui/blocks/" (block.name) "/reveal" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.quiet type="submit" { "Reveal secrets" }
            }
        }
        h2 { "Use it" }
        @if let Some(url) = connection_url(block, &data, view.revealed) {
            h3 { "Connection URL" @if !view.revealed { " (password masked)" } }
            (snippet("connection-url", &url))
        }
        (use_of.snippets(&block.name))
        @if let Some(leases) = view.leases { (lease_list(viewer, &block.name, leases)) }
        h2 { "History" }
        (history(view.history, view.may_undo.then_some((block.name.as_str(), viewer.csrf, block.version))))
    };
    layout(&block.name, Some(viewer), body)
}

/// What a block's type lets it be used for: the type decides the snippets offered,
/// whether Test can connect, and whether there is anything to reveal.
struct UseOf<'a> {
    block_type: &'a str,
    /// The command-line client of a connection's database (`psql`, `mysql`,
    /// `sqlite3`); `None` for a block that is not a connection.
    client: Option<&'static str>,
    has_secrets: bool,
}

impl<'a> UseOf<'a> {
    fn of(block: &'a Block) -> UseOf<'a> {
        let masked = block.masked_data();
        let client = masked.get("connection_info").map(|_| {
            let backend = crate::connect::ConnectionInfo::from_document(&block.name, masked)
                .ok()
                .and_then(|info| info.driver().ok())
                .map(|driver| driver.backend());
            match backend {
                Some(crate::db::Backend::Mysql) => "mysql",
                Some(crate::db::Backend::Sqlite) => "sqlite3",
                _ => "psql",
            }
        });
        UseOf {
            block_type: &block.block_type,
            client,
            has_secrets: masked.to_string().contains(MASK),
        }
    }

    fn snippets(&self, name: &str) -> Markup {
        let (shell, python) = match (self.client, self.block_type) {
            (Some(client), "async-sqlalchemy-connector") => (
                format!(
                    "blockyard exec {name} -- {client}\nblockyard block env {name} --format shell"
                ),
                format!(
                    "from prefect_sqlalchemy import AsyncSqlAlchemyConnector\nconnector = await AsyncSqlAlchemyConnector.load(\"{name}\")"
                ),
            ),
            (Some(client), _) => (
                format!(
                    "blockyard exec {name} -- {client}\nblockyard block env {name} --format shell"
                ),
                format!(
                    "from prefect_sqlalchemy import SqlAlchemyConnector\nconnector = SqlAlchemyConnector.load(\"{name}\")"
                ),
            ),
            (None, "http-service") => (
                format!(
                    "blockyard block env {name} --format shell   # {prefix}_URL, {prefix}_API_KEY\nblockyard block get {name} --field url",
                    prefix = name.to_ascii_uppercase().replace(['-', '.'], "_")
                ),
                format!(
                    "import httpx, os\n# after `blockyard exec {name} -- python app.py`:\nhttpx.get(os.environ[\"{prefix}_URL\"])",
                    prefix = name.to_ascii_uppercase().replace(['-', '.'], "_")
                ),
            ),
            (None, "secret") => (
                format!("blockyard block get {name} --field value"),
                format!(
                    "from prefect.blocks.system import Secret\nvalue = Secret.load(\"{name}\").get()"
                ),
            ),
            (None, "json") => (
                format!("blockyard block get {name} --field value"),
                format!(
                    "from prefect.blocks.system import JSON\nvalue = JSON.load(\"{name}\").value"
                ),
            ),
            (None, slug) => (
                format!("blockyard block get {name} -o json"),
                format!(
                    "from prefect.blocks.core import Block\nblock = Block.load(\"{slug}/{name}\")"
                ),
            ),
        };
        let rust = self
            .client
            .map(|_| format!("let pool = registry.pool(\"{name}\")?;"));
        html! {
            (snippet("use-shell", &shell))
            (snippet("use-python", &python))
            @if let Some(rust) = rust { (snippet("use-rust", &rust)) }
        }
    }
}

/// A connection's URL as SQLAlchemy reads it: with its password when the page shows the
/// secrets, masked otherwise.
fn connection_url(block: &Block, shown: &Value, revealed: bool) -> Option<String> {
    shown.get("connection_info")?;
    let info = crate::connect::ConnectionInfo::from_document(&block.name, shown).ok()?;
    info.display_url(revealed).ok()
}

/// A block of text to paste, with a Copy button (ui.js; without it, select and copy).
pub fn snippet(id: &str, text: &str) -> Markup {
    html! {
        div.snippet {
            pre { code id=(id) { (text) } }
            button.quiet type="button" data-copy=(id) aria-label="Copy to the clipboard" { "Copy" }
        }
    }
}

/// A block's live leases, each with a Revoke button (admin viewers only).
fn lease_list(viewer: &Viewer<'_>, block: &str, leases: &[Lease]) -> Markup {
    html! {
        h2 { "Leases" }
        @if leases.is_empty() {
            p { "No live leases. " code { "blockyard lease create " (block) } " makes one." }
        } @else {
            table {
                thead { tr { th { "User" } th { "Holder" } th { "State" } th { "Expires" } th { "Problem" } th {} } }
                tbody {
                    @for lease in leases {
                        tr {
                            td { code { (lease.username) } }
                            td { (lease.holder) }
                            td { (lease.state) }
                            td { (lease.expires_at) }
                            td { @if let Some(err) = &lease.last_error { (lease.attempts) " failed: " (err) } }
                            td {
                                form method="post" action={ "/ui/blocks/" (block) "/leases/revoke" }
                                    hx-confirm={ "Revoke the lease of " (lease.username) "? The user is dropped and its sessions ended." } {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    input type="hidden" name="id" value=(lease.lease_id);
                                    button.quiet type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every field of a document by dotted path; masked secrets stay masked.
fn fields(data: &Value) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "Field" } th scope="col" { "Value" } } }
            tbody {
                @for (i, (path, value)) in leaves(data).into_iter().enumerate() {
                    tr {
                        th scope="row" data-label="Field" { code { (path) } }
                        td data-label="Value" {
                            @match &value {
                                Value::String(text) if text == MASK => span.secret { (MASK) },
                                Value::String(text) => {
                                    span id={ "field-" (i) } { (text) } " "
                                    button.quiet.small type="button" data-copy={ "field-" (i) } aria-label={ "Copy " (path) } { "Copy" }
                                },
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
                                    form method="post" action={ "/ui/blocks/" (name) "/rollback" }
                                        hx-confirm={ "Roll " (name) " back to version " (v.version) "? Its fields and secrets become version " (v.version) "'s, as a new version." } {
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
            div.actions {
                button.danger type="submit" { "Delete " (block.name) }
                a href={ "/ui/blocks/" (block.name) } { "Cancel" }
            }
        }
    };
    layout("Delete", Some(viewer), body)
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
