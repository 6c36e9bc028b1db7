//! The web UI over real HTTP: sign-in with a token, cookies and security headers, the
//! block list limited to what a token may read, a block's page with secrets masked,
//! Reveal only with the right scope (audited either way), CSRF and cross-origin forms
//! refused, sign-out and revocation ending the session. The planted secret is searched
//! in every page received.

use crate::support::*;
use std::collections::HashMap;

const PLANTED: &str = "planted-UI-secret";

/// A browser without JavaScript: follows nothing by itself, keeps cookies for `/ui`.
pub(crate) struct Browser {
    agent: ureq::Agent,
    base: String,
    cookies: HashMap<String, String>,
    /// Every page body received, to search for secrets.
    seen: Vec<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    headers: HashMap<String, Vec<String>>,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The value of the first hidden `csrf` field.
    pub(crate) fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_owned()
    }
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Browser {
        Browser::at(&server.base)
    }

    /// A browser of the site at `base` (a load balancer's address).
    pub(crate) fn at(base: &str) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: base.to_owned(),
            cookies: HashMap::new(),
            seen: Vec::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.set("Cookie", &jar.join("; "));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match form {
            Some(fields) => req.send_form(fields),
            None => req.call(),
        };
        let res = match result {
            Ok(res) | Err(ureq::Error::Status(_, res)) => res,
            Err(err) => panic!("{method} {path}: {err}"),
        };
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for name in res.headers_names() {
            let values = res.all(&name).into_iter().map(str::to_owned).collect();
            headers.insert(name.to_ascii_lowercase(), values);
        }
        for cookie in headers.get("set-cookie").cloned().unwrap_or_default() {
            let (pair, _) = cookie.split_once(';').unwrap_or((&cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            match value.is_empty() {
                true => self.cookies.remove(name),
                false => self.cookies.insert(name.to_owned(), value.to_owned()),
            };
        }
        let status = res.status();
        let body = res.into_string().unwrap_or_default();
        self.seen.push(body.clone());
        Page {
            status,
            headers,
            body,
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None, &[])
    }

    pub(crate) fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form), &[])
    }

    pub(crate) fn sign_in(&mut self, token: &str) -> Page {
        let csrf = self.get("/ui/login").csrf();
        self.post("/ui/login", &[("token", token), ("csrf", &csrf)])
    }
}

fn seed(env: &TestEnv) {
    env.ok(&["init"]);
    create_crdb_sage(env, PLANTED, &[]).success();
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    env.ok(&[
        "block",
        "create",
        "other",
        "--type",
        "json",
        "--set-json",
        "value=1",
    ]);
}

#[test]
fn sign_in_list_and_headers() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let reader = token(&env, "reader", &["blocks:read:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);

    let away = browser.get("/ui");
    assert_eq!(
        (away.status, away.header("location")),
        (303, Some("/ui/login"))
    );
    let login = browser.get("/ui/login");
    assert_eq!(login.status, 200);
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(login.header("cache-control"), Some("no-store"));
    let cookie = &login.headers["set-cookie"][0];
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(login.body.contains("<label for=\"token\">"));

    // A wrong token, a form without the sign-in cookie's token, a form from elsewhere.
    let wrong = browser.post(
        "/ui/login",
        &[("token", "byd_nope"), ("csrf", &login.csrf())],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not valid"));
    assert!(!browser.cookies.contains_key("blockyard_session"));
    let csrf = browser.get("/ui/login").csrf();
    let forged = browser.post("/ui/login", &[("token", &reader), ("csrf", "x")]);
    assert_eq!(forged.status, 403);
    let elsewhere = browser.send(
        "POST",
        "/ui/login",
        Some(&[("token", &reader), ("csrf", &csrf)]),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(elsewhere.status, 403);
    assert!(!browser.cookies.contains_key("blockyard_session"));

    let signed_in = browser.sign_in(&reader);
    assert_eq!(
        (signed_in.status, signed_in.header("location")),
        (303, Some("/ui"))
    );
    let session = &signed_in.headers["set-cookie"]
        .iter()
        .find(|c| c.starts_with("blockyard_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let list = browser.get("/ui");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("/ui/blocks/crdb-sage"), "{}", list.body);
    assert!(
        !list.body.contains("other"),
        "a block outside the token's patterns is listed"
    );
    let filtered = browser.get("/ui?type=json&q=crdb");
    assert!(
        filtered.body.contains("No blocks match."),
        "{}",
        filtered.body
    );
    assert_eq!(browser.get("/ui/style.css").status, 200);

    // The reader sees the block masked, with its history, and no Reveal.
    let block = browser.get("/ui/blocks/crdb-sage");
    assert_eq!(block.status, 200);
    assert!(block.body.contains("********") && block.body.contains("26257 → 26258"));
    assert!(!block.body.contains("Reveal"));
    assert_eq!(browser.get("/ui/blocks/other").status, 403);
    assert_eq!(browser.get("/ui/blocks/Not%20A%20Name").status, 400);

    // Sign-out ends the session for good.
    let csrf = block.csrf();
    assert_eq!(browser.post("/ui/logout", &[("csrf", "wrong")]).status, 403);
    assert_eq!(browser.post("/ui/logout", &[("csrf", &csrf)]).status, 303);
    assert_eq!(browser.get("/ui").status, 303);
    for page in &browser.seen {
        assert!(!page.contains(PLANTED), "the secret reached the browser");
    }
}

#[test]
fn reveal_needs_the_scope_and_is_audited() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    let full = token(&env, "full", &["blocks:read-secrets"], &[]);
    // Tokens checked on every request, so a revocation shows at once.
    let server = Server::start(&env, &["--token-cache", "0s"]);

    let mut browser = Browser::new(&server);
    browser.sign_in(&reader);
    let csrf = browser.get("/ui/blocks/crdb-sage").csrf();
    let refused = browser.post("/ui/blocks/crdb-sage/reveal", &[("csrf", &csrf)]);
    assert_eq!(refused.status, 403);
    for page in &browser.seen {
        assert!(!page.contains(PLANTED), "the secret reached the browser");
    }

    let mut browser = Browser::new(&server);
    browser.sign_in(&full);
    let block = browser.get("/ui/blocks/crdb-sage");
    assert!(block.body.contains("Reveal secrets") && !block.body.contains(PLANTED));
    let forged = browser.post("/ui/blocks/crdb-sage/reveal", &[("csrf", "nope")]);
    assert_eq!(forged.status, 403);
    assert!(!forged.body.contains(PLANTED));
    let shown = browser.post("/ui/blocks/crdb-sage/reveal", &[("csrf", &block.csrf())]);
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains(PLANTED));
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    // Only the revealed page held it.
    assert!(!browser.get("/ui/blocks/crdb-sage").body.contains(PLANTED));

    let audit = env
        .json(&["audit", "ls", "--block", "crdb-sage"])
        .to_string();
    assert!(
        audit.contains("\"actor\":\"reader\"") && audit.contains("FORBIDDEN"),
        "{audit}"
    );
    assert!(audit.contains("\"actor\":\"full\""), "{audit}");

    // Revoking the token ends its session.
    assert_eq!(browser.get("/ui").status, 200);
    env.ok(&["token", "revoke", "full"]);
    assert_eq!(browser.get("/ui").status, 303);
    assert!(!server.log().contains(PLANTED));
}

/// The form's inputs as a browser would send them: `csrf`, `version`, and `fields`.
fn form_with(page: &Page, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut sent = vec![("csrf".to_owned(), page.csrf())];
    if let Some(at) = page.body.find("name=\"version\" value=\"") {
        let rest = &page.body[at + 22..];
        sent.push(("version".into(), rest[..rest.find('"').unwrap()].to_owned()));
    }
    sent.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    sent
}

fn post_form(browser: &mut Browser, path: &str, fields: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(path, &pairs)
}

#[test]
fn create_edit_test_and_conflict_through_forms() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let role = format!("ui_role_{}", uuid::Uuid::new_v4().simple());
    env.sql(&format!(
        "CREATE ROLE {role} LOGIN IN ROLE blockyard_password_auth PASSWORD '{PLANTED}'"
    ));
    let writer = token(
        &env,
        "writer",
        &["blocks:write", "blocks:read-secrets"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&writer);

    let choose = browser.get("/ui/new");
    assert!(choose.body.contains("/ui/new?type=sqlalchemy-connector"));
    let form = browser.get("/ui/new?type=sqlalchemy-connector");
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("name=\"f:connection_info/port\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("name=\"switch:connection_info\""));
    let db = url::Url::parse(&pg_admin_url()).unwrap();
    let port = db.port().unwrap_or(5432).to_string();
    let fields = |port: &str| {
        vec![
            ("name", "crdb-sage"),
            ("switch:connection_info", "ConnectionComponents"),
            ("f:connection_info/driver", "postgresql"),
            ("f:connection_info/database", "postgres"),
            ("f:connection_info/username", role.as_str()),
            ("f:connection_info/password", PLANTED),
            ("f:connection_info/host", "127.0.0.1"),
            ("f:connection_info/port", port),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>()
    };
    // A port out of range: the CLI's message, next to the port field; nothing stored.
    let mut bad = form_with(&form, &[]);
    bad.extend(fields("70000"));
    let refused = post_form(&mut browser, "/ui/new?type=sqlalchemy-connector", &bad);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("connection_info.port: value is greater than the maximum of 65535"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"70000\""));
    assert_eq!(env.json(&["block", "ls"]), serde_json::json!([]));

    let mut good = form_with(&form, &[]);
    good.extend(fields(&port));
    let created = post_form(&mut browser, "/ui/new?type=sqlalchemy-connector", &good);
    assert_eq!(
        (created.status, created.header("location")),
        (303, Some("/ui/blocks/crdb-sage")),
        "{}",
        created.body
    );
    let stored = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(stored["data"]["connection_info"]["password"], PLANTED);

    // Test uses the stored secret against the stored host.
    let block = browser.get("/ui/blocks/crdb-sage");
    let tested = browser.post("/ui/blocks/crdb-sage/test", &[("csrf", &block.csrf())]);
    assert!(tested.body.contains("Connected."), "{}", tested.body);
    assert!(
        browser.get("/ui").body.contains(">passed just now<"),
        "the list shows the last test"
    );

    // Edit: the secret input is empty (the stored one is kept); the port changes.
    let edit = browser.get("/ui/blocks/crdb-sage/edit");
    assert!(edit.body.contains("unchanged: type to replace"));
    let mut changed = form_with(&edit, &[]);
    changed.extend(
        fields(&port)
            .into_iter()
            .filter(|(k, _)| !k.ends_with("password") && k != "name"),
    );
    changed.retain(|(k, _)| k != "f:connection_info/host");
    changed.push(("f:connection_info/host".into(), "localhost".into()));
    let saved = post_form(&mut browser, "/ui/blocks/crdb-sage/edit", &changed);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(stored["data"]["connection_info"]["password"], PLANTED);
    assert_eq!(stored["data"]["connection_info"]["host"], "localhost");
    // An empty secret input invents no secret where none was stored.
    assert!(stored["data"].get("rotation").is_none(), "{stored}");
    let history = browser.get("/ui/blocks/crdb-sage");
    assert!(
        history.body.contains("127.0.0.1 → localhost"),
        "{}",
        history.body
    );
    assert!(history.body.contains("writer"));

    // A second editor with the old version sees a conflict and the difference.
    let stale = post_form(&mut browser, "/ui/blocks/crdb-sage/edit", &changed);
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("changed since you opened it"));
    for page in &browser.seen {
        assert!(!page.contains(PLANTED), "the secret reached the browser");
    }
    env.sql(&format!("DROP ROLE IF EXISTS {role}"));
}

#[test]
fn admin_pages_tokens_audit_and_types() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let admin = token(&env, "ops", &["admin"], &[]);
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let server = Server::start(&env, &["--token-cache", "0s"]);

    // Not for a token without admin.
    let mut browser = Browser::new(&server);
    browser.sign_in(&reader);
    assert!(!browser.get("/ui").body.contains("/ui/admin/tokens"));
    for path in ["/ui/admin/tokens", "/ui/admin/audit", "/ui/admin/types"] {
        assert_eq!(browser.get(path).status, 403, "{path}");
    }
    let csrf = browser.get("/ui").csrf();
    let refused = browser.post(
        "/ui/admin/tokens",
        &[("csrf", &csrf), ("name", "sneaky"), ("scopes", "admin")],
    );
    assert_eq!(refused.status, 403);

    let mut browser = Browser::new(&server);
    browser.sign_in(&admin);
    let tokens = browser.get("/ui/admin/tokens");
    assert_eq!(tokens.status, 200);
    assert!(tokens.body.contains("reader") && tokens.body.contains("blocks:read-secrets"));
    // A new token is shown once, and works.
    let created = browser.post(
        "/ui/admin/tokens",
        &[
            ("csrf", &tokens.csrf()),
            ("name", "bot"),
            ("scopes", "blocks:read:crdb-*"),
        ],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let at = created.body.find("<code id=\"new-token\">").unwrap() + 21;
    let secret = created.body[at..].split('<').next().unwrap().to_owned();
    let api = Api::new(&server, Some(&secret));
    assert_eq!(api.get("/blocks/crdb-sage").status, 200);
    assert!(
        !browser.get("/ui/admin/tokens").body.contains(&secret),
        "shown twice"
    );
    // Revoked from the page: the token stops working.
    let page = browser.get("/ui/admin/tokens");
    let id = env
        .json(&["token", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bot")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = browser.post(
        "/ui/admin/tokens/revoke",
        &[("csrf", &page.csrf()), ("id", &id)],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(
        revoked
            .body
            .contains("revoked: every request with it is refused"),
        "says what happened"
    );
    assert!(
        page.body.contains("hx-confirm=\"Revoke token bot?"),
        "asks first: {}",
        page.body
    );
    assert_eq!(api.get("/blocks/crdb-sage").status, 401);

    // The audit log, filtered by block; the types.
    let audit = browser.get("/ui/admin/audit?block=token%3Abot");
    assert!(
        audit.body.contains("create-token") && audit.body.contains("revoke-token"),
        "{}",
        audit.body
    );
    assert!(!audit.body.contains("read-secrets"));
    assert_eq!(browser.get("/ui/admin/audit?since=nonsense").status, 400);
    let types = browser.get("/ui/admin/types");
    assert!(
        types.body.contains("sqlalchemy-connector")
            && types.body.contains("connection_info.password")
    );
    for page in &browser.seen {
        assert!(!page.contains(PLANTED));
    }
}

#[test]
fn roll_back_delete_with_its_readers_and_undelete() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let admin = token(&env, "ops", &["admin"], &[]);
    let bot = token(&env, "flow-bot", &["blocks:read-secrets"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&bot));
    assert_eq!(
        api.get("/blocks/crdb-sage?include_secrets=true").status,
        200
    );
    let mut browser = Browser::new(&server);
    browser.sign_in(&admin);

    // Roll back to version 1 (the port was 26257).
    let block = browser.get("/ui/blocks/crdb-sage");
    assert!(
        block.body.contains("Roll back to version 1"),
        "{}",
        block.body
    );
    let back = browser.post(
        "/ui/blocks/crdb-sage/rollback",
        &[("csrf", &block.csrf()), ("to", "1"), ("version", "2")],
    );
    assert_eq!(back.status, 303, "{}", back.body);
    let now = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(
        (
            now["version"].as_i64(),
            &now["data"]["connection_info"]["port"]
        ),
        (Some(3), &serde_json::json!(26257))
    );
    assert_eq!(now["data"]["connection_info"]["password"], PLANTED);
    // A stale rollback (version 2 was read) is refused.
    let stale = browser.post(
        "/ui/blocks/crdb-sage/rollback",
        &[("csrf", &block.csrf()), ("to", "1"), ("version", "2")],
    );
    assert_eq!(stale.status, 412);

    // Delete shows who read it lately, then deletes; undelete brings it back.
    let confirm = browser.get("/ui/blocks/crdb-sage/delete");
    assert!(confirm.body.contains("flow-bot"), "{}", confirm.body);
    let gone = browser.post(
        "/ui/blocks/crdb-sage/delete",
        &[("csrf", &confirm.csrf()), ("version", "3")],
    );
    assert_eq!(gone.status, 303, "{}", gone.body);
    let missing = browser.get("/ui/blocks/crdb-sage");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Undelete crdb-sage"));
    let again = browser.post(
        "/ui/blocks/crdb-sage/undelete",
        &[("csrf", &missing.csrf())],
    );
    assert_eq!(again.status, 303, "{}", again.body);
    let now = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(now["data"]["connection_info"]["password"], PLANTED);
    let history = env.json(&["block", "history", "crdb-sage"]);
    assert_eq!(history.as_array().unwrap().last().unwrap()["actor"], "ops");
    for page in &browser.seen {
        assert!(!page.contains(PLANTED));
    }
}

/// Issue 26 #9: with the audit log down, the token pages' Create and Revoke do nothing
/// (their records commit with them), and say so.
#[test]
fn token_changes_in_the_ui_happen_only_with_their_audit_record() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let admin = token(&env, "ops", &["admin"], &[]);
    token(&env, "victim", &["blocks:read"], &[]);
    let server = Server::start(&env, &["--token-cache", "0s"]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&admin);
    let page = browser.get("/ui/admin/tokens");
    let tokens_before = env.json(&["token", "ls"]);
    env.sql(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'audit log refused'); END",
    );
    let created = browser.post(
        "/ui/admin/tokens",
        &[
            ("csrf", &page.csrf()),
            ("name", "unaudited"),
            ("scopes", "admin"),
        ],
    );
    assert_eq!(created.status, 503, "{}", created.body);
    let id = tokens_before
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "victim")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = browser.post(
        "/ui/admin/tokens/revoke",
        &[("csrf", &page.csrf()), ("id", &id)],
    );
    assert_eq!(revoked.status, 503, "{}", revoked.body);
    assert_eq!(
        env.json(&["token", "ls"]),
        tokens_before,
        "a token change took effect unaudited"
    );
}

/// Issue 26 #16: the UI's Test opens no SQLite file on the server (its own store
/// included), and what a non-database port sends back is not echoed.
#[test]
fn ui_test_opens_no_local_file_and_echoes_no_banner() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let store = env.data_dir().join("blockyard.db");
    env.ok(&[
        "block",
        "create",
        "own-store",
        "--type",
        "sqlalchemy-connector",
        "--set",
        "connection_info.driver=sqlite",
        "--set",
        &format!("connection_info.database={}", store.display()),
    ]);
    // A port that answers with a banner of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"SSH-2.0-BANNER-9f3c\r\n");
        }
    });
    env.run_stdin(
        &[
            "block",
            "create",
            "probe",
            "--type",
            "sqlalchemy-connector",
            "--set",
            "connection_info.driver=postgresql",
            "--set",
            "connection_info.host=127.0.0.1",
            "--set",
            &format!("connection_info.port={port}"),
            "--set",
            "connection_info.database=x",
            "--set",
            "connection_info.username=x",
            "--password-stdin",
        ],
        "pw",
    )
    .success();
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&reader);
    let page = browser.get("/ui/blocks/own-store");
    let tested = browser.post("/ui/blocks/own-store/test", &[("csrf", &page.csrf())]);
    assert!(
        tested.body.contains("FORBIDDEN") && tested.body.contains("SQLite file"),
        "{}",
        tested.body
    );
    let page = browser.get("/ui/blocks/probe");
    let tested = browser.post("/ui/blocks/probe/test", &[("csrf", &page.csrf())]);
    assert!(!tested.body.contains("BANNER-9f3c"), "{}", tested.body);
    assert!(!tested.body.contains("SSH-2.0"), "{}", tested.body);
    // Not even the one byte libpq quotes ("received invalid response ...: S").
    assert!(
        tested
            .body
            .contains("block probe: TLS negotiation failed</p>")
            || tested.body.contains("did not answer as its database does"),
        "{}",
        tested.body
    );
}

/// Issue 27 #5: a block's page offers what its type can do: a connection gets its
/// database's client, Prefect's connector, the pool and Test; a secret, a JSON value
/// and an HTTP service get their own snippets, no Test, and Reveal only with a secret.
#[test]
fn the_type_decides_what_a_block_page_offers() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    create_secret(&env, "api-key", "k").success();
    env.run_stdin(
        &[
            "block",
            "create",
            "es",
            "--type",
            "http-service",
            "--set",
            "url=https://es.internal",
            "--password-stdin",
        ],
        "es-key",
    )
    .success();
    env.ok(&[
        "block",
        "create",
        "maria",
        "--url",
        "mysql+pymysql://app@db/app",
        "--no-password",
    ]);
    let full = token(&env, "full", &["blocks:read-secrets"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&full);
    let page = |browser: &mut Browser, name: &str| browser.get(&format!("/ui/blocks/{name}")).body;
    let crdb = page(&mut browser, "crdb-sage");
    assert!(
        crdb.contains("Connection URL")
            && crdb.contains("cockroachdb+psycopg2://databot:********@localhost:26258/sage"),
        "{crdb}"
    );
    let csrf = crdb
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let revealed = browser
        .post("/ui/blocks/crdb-sage/reveal", &[("csrf", &csrf)])
        .body;
    assert!(
        revealed.contains(&format!("databot:{PLANTED}@localhost:26258/sage")),
        "the URL with its password, on Reveal"
    );
    for offered in [
        "-- psql",
        "SqlAlchemyConnector.load(",
        "registry.pool(",
        "Test connection",
        "Reveal secrets",
    ] {
        assert!(crdb.contains(offered), "crdb-sage lacks {offered}");
    }
    let maria = page(&mut browser, "maria");
    assert!(
        maria.contains("exec maria -- mysql") && !maria.contains("psql"),
        "{maria}"
    );
    assert!(
        !maria.contains("Reveal secrets"),
        "no password, nothing to reveal"
    );
    let json = page(&mut browser, "other");
    let secret = page(&mut browser, "api-key");
    let http = page(&mut browser, "es");
    assert!(json.contains("JSON.load(") && !json.contains("Reveal secrets"));
    assert!(secret.contains("Secret.load(") && secret.contains("Reveal secrets"));
    assert!(http.contains("ES_URL") && http.contains("Reveal secrets"));
    for (name, body) in [("other", &json), ("api-key", &secret), ("es", &http)] {
        for wrong in [
            "psql",
            "SqlAlchemyConnector",
            "registry.pool",
            "Test connection",
        ] {
            assert!(!body.contains(wrong), "{name} offers {wrong}");
        }
    }
}

/// The list's search matches any part of a name, takes any text (a NUL, LIKE's own `%`
/// and `_`) as text, and never fails.
#[test]
fn the_search_takes_any_text_as_text() {
    let env = TestEnv::new(Backend::Postgres);
    seed(&env);
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&reader);
    let found = browser.get("/ui?q=sag");
    assert!(found.body.contains("1 block match.") && found.body.contains("crdb-sage"));
    for q in ["%00x", "%25", "_", "cr%25db", "%5C"] {
        let page = browser.get(&format!("/ui?q={q}"));
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        assert!(page.body.contains("No blocks match."), "{q}");
    }
    let everything = browser.get("/ui");
    assert!(
        !everything.body.contains("+ New block"),
        "a reader may not create"
    );
}

/// Issue 27 #13: the form reads as people read a connection (titles, driver, host, port,
/// database, username, password), offers none of what Blockyard writes (a rotation's
/// state) and keeps it on save, folds Blockyard's own settings under "Advanced", and
/// marks required and number inputs.
#[test]
fn the_form_reads_as_a_connection_and_keeps_what_blockyard_writes() {
    let env = TestEnv::new(Backend::Sqlite);
    seed(&env);
    let owner = token(&env, "owner", &["blocks:write", "blocks:read-secrets"], &[]);
    // A rotation's state, as `rotate-password` leaves it.
    let registry = env.registry("30s");
    let mut doc = registry
        .load_block("crdb-sage")
        .unwrap()
        .document()
        .unwrap();
    doc["rotation"] = serde_json::json!({"last_rotated_at": "2026-12-01T00:00:00Z"});
    registry.update_block("crdb-sage", doc, None).unwrap();
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&owner);
    let form = browser.get("/ui/new?type=sqlalchemy-connector").body;
    let at = |text: &str| {
        form.find(text)
            .unwrap_or_else(|| panic!("{text} not in the form"))
    };
    let order = ["Driver", "Host", "Port", "Database", "Username", "Password"]
        .map(|title| at(&format!(">{title} (required)").replace(" (required)", "")));
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "connection fields in order: {order:?}"
    );
    assert!(!form.contains("pending_password") && !form.contains("last_rotated_at"));
    assert!(
        at("<details class=\"advanced\"") < at("pool.max_size"),
        "pool under Advanced"
    );
    assert!(at("Advanced") > at("connection_info.password"));
    assert!(
        form.contains("type=\"number\"") && form.contains(" required"),
        "number and required inputs"
    );
    // Saving an edit keeps the rotation's state the form never showed.
    let edit = browser.get("/ui/blocks/crdb-sage/edit");
    let mut sent = form_with(&edit, &[("switch:connection_info", "ConnectionComponents")]);
    for (path, value) in [
        ("connection_info/driver", "cockroachdb+psycopg2"),
        ("connection_info/host", "localhost"),
        ("connection_info/port", "26259"),
        ("connection_info/database", "sage"),
        ("connection_info/username", "databot"),
    ] {
        sent.push((format!("f:{path}"), value.to_owned()));
    }
    let saved = post_form(&mut browser, "/ui/blocks/crdb-sage/edit", &sent);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = env.json(&["block", "get", "crdb-sage", "--show-secrets"]);
    assert_eq!(stored["data"]["connection_info"]["port"], 26259);
    assert_eq!(
        stored["data"]["connection_info"]["password"], PLANTED,
        "the password kept"
    );
    assert_eq!(
        stored["data"]["rotation"]["last_rotated_at"],
        "2026-12-01T00:00:00Z"
    );
}

/// Issue 27 #13: a refused form does not make the user type the password again: the
/// server holds it for that form in that session (never rendered), uses it when the
/// input comes back empty, and forgets it once saved; another session gets nothing.
#[test]
fn a_refused_form_keeps_the_password_typed() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let writer = token(
        &env,
        "writer",
        &["blocks:write", "blocks:read-secrets"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let mut browser = Browser::new(&server);
    browser.sign_in(&writer);
    let mut other = Browser::new(&server);
    other.sign_in(&writer);
    let path = "/ui/new?type=sqlalchemy-connector";
    let fields = |port: &str, password: &str| {
        [
            ("name", "held-db"),
            ("switch:connection_info", "ConnectionComponents"),
            ("f:connection_info/driver", "postgresql"),
            ("f:connection_info/database", "app"),
            ("f:connection_info/host", "db.internal"),
            ("f:connection_info/port", port),
            ("f:connection_info/password", password),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    };
    let form = browser.get(path);
    let mut bad = form_with(&form, &[]);
    bad.extend(fields("70000", PLANTED));
    let refused = post_form(&mut browser, path, &bad);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("kept from your last try"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("Nothing was saved: 1 problem"),
        "{}",
        refused.body
    );
    // Another session of the same token holds nothing.
    let form2 = other.get(path);
    let mut theirs = form_with(&form2, &[]);
    theirs.extend(fields("5432", ""));
    theirs.iter_mut().for_each(|(k, v)| {
        if k == "name" {
            *v = "other-db".into();
        }
    });
    let created = post_form(&mut other, path, &theirs);
    assert_eq!(created.status, 303, "{}", created.body);
    let none = env.json(&["block", "get", "other-db", "--show-secrets"]);
    assert!(
        none["data"]["connection_info"].get("password").is_none(),
        "{none}"
    );
    // The same session: the port fixed, the password left empty, and it is the one typed.
    let mut good = form_with(&refused, &[]);
    good.extend(fields("5432", ""));
    let saved = post_form(&mut browser, path, &good);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = env.json(&["block", "get", "held-db", "--show-secrets"]);
    assert_eq!(stored["data"]["connection_info"]["password"], PLANTED);
    for page in browser.seen.iter().chain(&other.seen) {
        assert!(!page.contains(PLANTED), "a held secret was rendered");
    }
}
