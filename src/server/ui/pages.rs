//! The UI's pages as maud markup (checked when compiled, every value escaped): the
//! layout, sign-in, the block list, a problem and the type chooser; a block's page is in
//! `block_page`, the block form in `form_page`. No inline script or style: the one
//! stylesheet is `/ui/style.css`, so the Content-Security-Policy can forbid the rest.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::block::BlockSummary;
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
        let query = [
            ("cursor", Some(cursor)),
            ("type", view.block_type),
            ("q", view.prefix),
        ];
        page_url("/ui", &query)
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
            (block_table(view))
        }
        @if let Some(next) = next {
            p.pager { a href=(next) rel="next" { "Next page →" } }
        }
    };
    layout("Blocks", Some(viewer), body)
}

/// The listed blocks, each with its last test.
fn block_table(view: &ListView<'_>) -> Markup {
    html! {
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
}

/// A link to `path` with the query's given pairs (the absent ones left out), encoded.
pub fn page_url(path: &str, query: &[(&str, Option<&str>)]) -> String {
    let mut url = url::Url::parse("http://x/").expect("a valid base");
    {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in query {
            if let Some(value) = value {
                pairs.append_pair(key, value);
            }
        }
    }
    format!("{path}?{}", url.query().unwrap_or_default())
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

/// A value as a change list shows it (`(absent)` when there is none).
pub fn shown(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}
