//! The UI's pages as maud markup (checked when compiled, every value escaped): the
//! layout, sign-in, the block list, a problem and the type chooser; a block's page is in
//! `block_page`, the block form in `form_page`. No inline script or style: the one
//! stylesheet is `/ui/style.css`, so the Content-Security-Policy can forbid the rest.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::block::BlockSummary;
use crate::time::{relative_millis, rfc3339};

/// What every signed-in page knows about its viewer.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    /// Whether the admin pages are linked.
    pub admin: bool,
    /// Whether the token may create blocks (so "+ New block" is offered).
    pub writer: bool,
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
                script src="/ui/ui.js" defer {}
            }
            body hx-boost="true" hx-history="false" {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/ui" { "Blockyard" }
                    @if let Some(viewer) = viewer {
                        (nav(title, viewer))
                        span.muted { "Signed in as " (viewer.name) }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The header's links; the page's own is marked `aria-current`.
fn nav(title: &str, viewer: &Viewer<'_>) -> Markup {
    let mut links = vec![("/ui", "Blocks")];
    if viewer.admin {
        links.extend([
            ("/ui/admin/tokens", "Tokens"),
            ("/ui/admin/audit", "Audit log"),
            ("/ui/admin/types", "Types"),
        ]);
    }
    html! {
        nav aria-label="Main" {
            @for (href, label) in links {
                @if title == label || (label == "Types" && title == "Block types") {
                    a href=(href) aria-current="page" { (label) }
                } @else {
                    a href=(href) { (label) }
                }
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
    let filtered = view.block_type.is_some() || view.prefix.is_some();
    let body = html! {
        h1 { "Blocks" }
        @if viewer.writer { p { a.button href="/ui/new" { "+ New block" } } }
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
                label for="q" { "Name contains" }
                input #q type="search" name="q" value=(view.prefix.unwrap_or_default());
            }
            div { button type="submit" { "Search" } }
            @if filtered { div { a href="/ui" { "Clear" } } }
        }
        @if view.blocks.is_empty() {
            (empty_list(viewer, filtered))
        } @else {
            p.muted role="status" { (count(view.blocks.len(), next.is_some(), filtered)) }
            (block_table(view))
        }
        @if let Some(next) = next {
            p.pager { a href=(next) rel="next" { "Next page →" } }
        }
    };
    layout("Blocks", Some(viewer), body)
}

/// "3 blocks", "3 blocks match", or "the first 50 blocks (more on the next page)".
fn count(shown: usize, more: bool, filtered: bool) -> String {
    let noun = if shown == 1 { "block" } else { "blocks" };
    match (more, filtered) {
        (true, _) => format!("The first {shown} {noun}; more on the next page."),
        (false, true) => format!("{shown} {noun} match."),
        (false, false) => format!("{shown} {noun}."),
    }
}

/// What an empty list says, and what to do next.
fn empty_list(viewer: &Viewer<'_>, filtered: bool) -> Markup {
    html! {
        div.empty {
            @if filtered {
                p { "No blocks match." }
                p { a href="/ui" { "Clear the search" } }
            } @else {
                p { "No blocks yet. A block is a named connection, secret or setting, stored once and used by name." }
                @if viewer.writer {
                    p { a.button href="/ui/new" { "Create the first block" } }
                } @else {
                    p.muted { "This token may not create blocks (it needs " code { "blocks:write" } ")." }
                }
            }
        }
    }
}

/// The listed blocks, each with its last test; columns sort in the browser (ui.js).
fn block_table(view: &ListView<'_>) -> Markup {
    html! {
        table.blocks {
            thead { tr {
                th scope="col" data-sort="text" { button.sort type="button" { "Name" } }
                th scope="col" data-sort="text" { button.sort type="button" { "Type" } }
                th scope="col" data-sort="number" { button.sort type="button" { "Version" } }
                th.optional scope="col" data-sort="text" { button.sort type="button" { "Updated" } }
                th scope="col" data-sort="text" { button.sort type="button" { "Last test" } }
            } }
            tbody {
                @for (block, test) in view.blocks.iter().zip(view.tests) {
                    tr {
                        td data-label="Name" { a href={ "/ui/blocks/" (block.name) } { (block.name) } }
                        td data-label="Type" { (block.block_type) }
                        td data-label="Version" { (block.version) }
                        td.optional data-label="Updated" data-value=(rfc3339(block.updated_at)) {
                            time datetime=(rfc3339(block.updated_at)) title=(rfc3339(block.updated_at)) {
                                (relative_millis(block.updated_at))
                            }
                        }
                        td data-label="Last test" {
                            @match test {
                                None => span.muted { "not tested" },
                                Some((true, _, at)) => span title=(rfc3339(*at)) { "passed " (relative_millis(*at)) },
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
