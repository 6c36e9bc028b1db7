//! `blockyard run` (masked output, several blocks, --watch) and `blockyard inject`
//! (templates to 0600 files), against the real binary, locally and through a server.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::{
    Backend, Server, TestEnv, create_crdb_sage, create_from_json, create_secret, token,
    update_password, write_file,
};

/// A child that prints every secret (as is, in a URL, in basic auth) in random pieces,
/// written one by one, about a third spread over stdout and stderr.
const PRINTER: &str = r#"
import os, random, sys, time, base64, urllib.parse
rng = random.Random(int(sys.argv[1]))
secrets = [l for l in open(sys.argv[2]).read().split("\n") if l]
for s in secrets:
    form = rng.choice([s, "postgresql://databot:%s@db/x" % urllib.parse.quote(s, safe=""),
                       base64.b64encode(("databot:" + s).encode()).decode()])
    text = ("\x1b[32mline\x1b[0m " + form + "\n").encode()
    cut = sorted(rng.sample(range(1, len(text)), 3))
    stream, across = rng.choice([1, 2]), rng.random() < 0.3
    for a, b in zip([0] + cut, cut + [len(text)]):
        os.write(rng.choice([1, 2]) if across else stream, text[a:b])
        if rng.random() < 0.3: time.sleep(0.001)
"#;

/// Twenty planted secrets (8 to 64 characters): the password of crdb-sage and nineteen
/// secret blocks, run with all twenty blocks.
fn twenty_secrets(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet: Vec<char> = "abcdefghXYZ0123456789@:/%$#&+= ".chars().collect();
    let secrets: Vec<String> = (0..20)
        .map(|i| {
            let len = rng.usize(8..=64);
            let body: String = (0..len - 2)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            format!("S{i:02}{body}")[..len].to_owned()
        })
        .collect();
    create_crdb_sage(env, &secrets[0], &[]).success();
    let mut args = vec!["--block".to_owned(), "crdb-sage".to_owned()];
    for (i, secret) in secrets.iter().enumerate().skip(1) {
        create_secret(env, &format!("s{i}"), secret).success();
        args.extend(["--block".to_owned(), format!("s{i}:S{i}")]);
    }
    (secrets, args)
}

fn forms(secret: &str) -> Vec<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![
        secret.to_owned(),
        encoded.replace('+', "%20"),
        STANDARD.encode(format!("databot:{secret}")),
    ]
}

#[test]
fn run_masks_every_planted_secret_however_the_output_is_cut() {
    let env = TestEnv::new(Backend::Sqlite);
    let (secrets, blocks) = twenty_secrets(&env);
    let list = write_file(env.dir.path(), "secrets.txt", &secrets.join("\n"));
    for seed in 0..40 {
        let mut args: Vec<&str> = vec!["run"];
        args.extend(blocks.iter().map(String::as_str));
        let seed = seed.to_string();
        args.extend([
            "--",
            "python3",
            "-c",
            PRINTER,
            &seed,
            list.to_str().unwrap(),
        ]);
        // stdout and stderr apart, then both into one file (as on one terminal).
        let apart = env.run(&args).success();
        let both_path = env.dir.path().join("both.txt");
        let both = std::fs::File::create(&both_path).unwrap();
        let status = env
            .command(&args)
            .stdout(both.try_clone().unwrap())
            .stderr(both)
            .status()
            .unwrap();
        assert!(status.success());
        let both = std::fs::read_to_string(&both_path).unwrap();
        for text in [&apart.stdout, &apart.stderr, &both] {
            for secret in &secrets {
                for form in forms(secret) {
                    assert!(
                        !text.contains(&form),
                        "seed {seed}: a secret leaked: {text}"
                    );
                }
            }
        }
        // A secret begun on one stream and ended on the other is masked by neither
        // (neither holds it), and shows on the terminal only after the other's part.
        assert!(
            both.matches("********").count() >= 10,
            "seed {seed}: {both}"
        );
        assert_eq!(both.matches('\x1b').count(), 40, "every colour code passes");
    }
}

#[test]
fn run_passes_colours_exit_codes_and_a_terminal_through() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "pty-Secret-99", &[]).success();
    // Under a pseudo-terminal (script), the program sees terminals and keeps its
    // escape codes; the password is still masked.
    let inner = format!(
        "{} run --block crdb-sage -- sh -c '[ -t 1 ] && echo out-tty; [ -t 2 ] && echo err-tty >&2; \
         printf \"\\033[31m%s\\033[0m\\n\" \"$PGPASSWORD\"; exit 3'",
        crate::support::BIN
    );
    let out = env
        .program(
            std::path::Path::new("script"),
            &["-qec", &inner, "/dev/null"],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("out-tty") && text.contains("err-tty"),
        "{text}"
    );
    assert!(text.contains("\x1b[31m********\x1b[0m"), "{text:?}");
    assert!(!text.contains("pty-Secret-99"));
    // Piped: the program sees pipes; --no-masking shows the value.
    let run = env.run(&[
        "run",
        "--block",
        "crdb-sage",
        "--",
        "sh",
        "-c",
        "[ -t 1 ] || echo piped; exit 4",
    ]);
    assert_eq!(run.code, 4);
    assert_eq!(run.stdout, "piped\n");
    let run = env.ok(&[
        "run",
        "--no-masking",
        "--block",
        "crdb-sage",
        "--",
        "printenv",
        "PGPASSWORD",
    ]);
    assert_eq!(run.stdout, "pty-Secret-99\n");
}

#[test]
fn run_sets_several_blocks_and_refuses_a_variable_set_twice() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "several-Secret-1", &[]).success();
    create_secret(&env, "es", "es-api-key-123").success();
    create_secret(&env, "es-two", "es-api-key-456").success();
    let run = env.ok(&[
        "run",
        "--block",
        "crdb-sage",
        "--block",
        "crdb-sage:SAGE",
        "--block",
        "es:ES",
        "--no-masking",
        "--",
        "sh",
        "-c",
        "echo $PGHOST $SAGE_NAME $SAGE_PASSWORD $ES_VALUE",
    ]);
    assert_eq!(
        run.stdout,
        "localhost sage several-Secret-1 es-api-key-123\n"
    );
    env.run(&["run", "--block", "es", "--block", "es-two:ES", "--", "true"])
        .fails_with("INVALID_INPUT");
    env.run(&["run", "--block", "nope", "--", "true"])
        .fails_with("BLOCK_NOT_FOUND");
}

#[test]
fn run_through_a_server_masks_and_needs_read_secrets() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "remote-Secret-77", &[]).success();
    let server = Server::start(&env, &[]);
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let run = server.cli(
        &env,
        &reader,
        &[
            "run",
            "--block",
            "crdb-sage",
            "--",
            "printenv",
            "PGPASSWORD",
        ],
    );
    assert_eq!(run.success().stdout, "********\n");
    let masked = token(&env, "masked", &["blocks:read"], &[]);
    let run = server.cli(
        &env,
        &masked,
        &["run", "--block", "crdb-sage", "--", "true"],
    );
    run.fails_with("FORBIDDEN");
    assert!(!server.log().contains("remote-Secret-77"));
}

/// A `run --watch` child: logs when it starts (with its password), when SIGTERM comes
/// and when it has finished its half-second of draining.
const WATCHED: &str = r#"echo "start $(date +%s.%N) $PGPASSWORD" >> "$1"
trap 'echo "term $(date +%s.%N)" >> "$1"; sleep 0.5; echo "drained $(date +%s.%N)" >> "$1"; exit 0' TERM
while :; do sleep 0.05; done"#;

fn seconds(line: &str) -> f64 {
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn watchers_restart_spread_over_the_jitter_after_their_grace() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "watch-Secret-1", &[]).success();
    let logs: Vec<_> = (0..5)
        .map(|i| env.dir.path().join(format!("w{i}.log")))
        .collect();
    let mut watchers: Vec<_> = logs
        .iter()
        .map(|log| {
            let args = [
                "run",
                "--watch",
                "--no-masking",
                "--jitter",
                "3s",
                "--grace",
                "5s",
                "--block",
                "crdb-sage",
                "--",
                "sh",
                "-c",
                WATCHED,
                "sh",
                log.to_str().unwrap(),
            ];
            env.command(&args).stdin(Stdio::null()).spawn().unwrap()
        })
        .collect();
    let read = |i: usize| std::fs::read_to_string(&logs[i]).unwrap_or_default();
    let until = |what: &dyn Fn(usize) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(0..5).all(what) {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                (0..5).map(read).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(&|i| read(i).contains("start"));
    let changed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    update_password(&env, "crdb-sage", "watch-Secret-2");
    until(&|i| read(i).contains("watch-Secret-2"));
    let mut restarts = Vec::new();
    for i in 0..5 {
        let log = read(i);
        let lines: Vec<&str> = log.lines().collect();
        assert!(
            lines[0].ends_with("watch-Secret-1") && lines[1].starts_with("term"),
            "{log}"
        );
        assert!(
            lines[2].starts_with("drained"),
            "killed before its grace: {log}"
        );
        assert!(lines[3].ends_with("watch-Secret-2"), "{log}");
        let term = seconds(lines[1]) - changed;
        assert!(term < 2.0 + 3.0, "SIGTERM {term:.2} s after the change");
        restarts.push(seconds(lines[1]));
    }
    restarts.sort_by(f64::total_cmp);
    assert!(
        restarts[4] - restarts[0] > 0.3,
        "restarts not spread: {restarts:?}"
    );
    for watcher in &mut watchers {
        let _ = Command::new("kill")
            .args(["-TERM", &watcher.id().to_string()])
            .status();
        assert_eq!(watcher.wait().unwrap().code(), Some(0));
    }
}

/// `inject -i INPUT --out-file OUTPUT`.
fn inject_args<'a>(input: &'a std::path::Path, output: &'a std::path::Path) -> [&'a str; 5] {
    let path = |p: &'a std::path::Path| p.to_str().unwrap();
    ["inject", "-i", path(input), "--out-file", path(output)]
}

#[test]
fn inject_renders_yaml_env_and_json_into_0600_files() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "in\"ject$Secret", &[]).success();
    create_secret(&env, "es", "es-key-42").success();
    let cases = [
        (
            "config.tpl.yaml",
            "db:\n  password: {{ blockyard://crdb-sage/connection_info.password | json }}\n  \
             port: {{ blockyard://crdb-sage/connection_info.port }}\n  \
             pool: {{ blockyard://crdb-sage/pool.max_size | default \"5\" }}\n  \
             chart: {{ .Values.keep }}\n",
            "db:\n  password: \"in\\\"ject$Secret\"\n  port: 26257\n  pool: 5\n  chart: {{ .Values.keep }}\n",
        ),
        (
            "app.env.tpl",
            "{{ env blockyard://crdb-sage APP }}\nES_KEY={{ blockyard://es/value }}\n",
            "APP_DRIVER='cockroachdb+psycopg2'\nAPP_HOST='localhost'\nAPP_PORT='26257'\n\
             APP_NAME='sage'\nAPP_USER='databot'\nAPP_PASSWORD='in\"ject$Secret'\n\
             APP_URL='cockroachdb+psycopg2://databot:in%22ject%24Secret@localhost:26257/sage'\n\
             ES_KEY=es-key-42\n",
        ),
        (
            "settings.tpl.json",
            "{\"url\": {{ url blockyard://crdb-sage | json }}, \"key\": {{ blockyard://es/value | json }}}\n",
            "{\"url\": \"cockroachdb+psycopg2://databot:in%22ject%24Secret@localhost:26257/sage\", \"key\": \"es-key-42\"}\n",
        ),
    ];
    for (name, template, expected) in cases {
        let input = write_file(env.dir.path(), name, template);
        let output = env.dir.path().join(format!("{name}.out"));
        env.ok(&inject_args(&input, &output));
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            expected,
            "{name}"
        );
        let mode = std::fs::metadata(&output).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    // From stdin to stdout.
    let run = env.run_stdin(&["inject"], "k={{ blockyard://es/value }}");
    assert_eq!(run.success().stdout, "k=es-key-42");
}

#[test]
fn inject_names_each_missing_reference_and_writes_nothing() {
    let env = TestEnv::new(Backend::Sqlite);
    create_secret(&env, "es", "es-key-42").success();
    let input = write_file(
        env.dir.path(),
        "bad.tpl",
        "ok: {{ blockyard://es/value }}\nmissing:\n  x: {{ blockyard://nope/value }} {{ blockyard://es/nofield }}\n",
    );
    let output = write_file(env.dir.path(), "out.yaml", "old contents\n");
    let run = env.run(&inject_args(&input, &output));
    let run = run.fails_with("BLOCK_NOT_FOUND");
    assert!(
        run.stderr.contains("bad.tpl:3:6:") && run.stderr.contains("bad.tpl:3:35:"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("es-key-42"));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "old contents\n");
    let run = env.run(&["inject", "-i", input.to_str().unwrap(), "--check"]);
    run.fails_with("BLOCK_NOT_FOUND");
    let good = write_file(env.dir.path(), "good.tpl", "k={{ blockyard://es/value }}\n");
    let run = env.ok(&["inject", "-i", good.to_str().unwrap(), "--check"]);
    assert!(
        run.stdout.contains("1 references to 1 blocks resolve"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("es-key-42"));
}

#[test]
fn inject_crashing_before_the_rename_leaves_the_old_file_whole() {
    let env = TestEnv::new(Backend::Sqlite);
    create_secret(&env, "es", "es-key-42").success();
    let input = write_file(
        env.dir.path(),
        "t.tpl",
        &"k={{ blockyard://es/value }}\n".repeat(10_000),
    );
    let output = write_file(env.dir.path(), "out.env", "old contents\n");
    let args = inject_args(&input, &output);
    let run = env.run_with(
        &args,
        None,
        &[("BLOCKYARD_CRASH_AT", "inject-before-rename")],
    );
    assert_ne!(run.code, 0);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "old contents\n");
    env.ok(&args);
    assert_eq!(
        std::fs::read_to_string(&output).unwrap().lines().count(),
        10_000
    );
}

#[test]
fn inject_through_a_server_is_a_secret_read_on_record_for_each_block() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "audit-Secret-5", &[]).success();
    create_secret(&env, "es", "es-key-42").success();
    let server = Server::start(&env, &[]);
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let stdin = "{{ blockyard://crdb-sage/connection_info.password }} {{ blockyard://es/value }}";
    let run = env.run_with(
        &["inject"],
        Some(stdin),
        &[
            ("BLOCKYARD_URL", server.base.as_str()),
            ("BLOCKYARD_TOKEN", &reader),
        ],
    );
    assert_eq!(run.success().stdout, "audit-Secret-5 es-key-42");
    let admin = token(&env, "admin", &["admin"], &[]);
    let audit = server
        .cli(&env, &admin, &["audit", "ls", "-o", "json"])
        .success()
        .stdout;
    for block in ["crdb-sage", "es"] {
        assert!(
            audit.contains(&format!("\"block\": \"{block}\"")) && audit.contains("read-secrets"),
            "{audit}"
        );
    }
}

/// `app`'s password refers to `pg-admin`'s.
fn create_referring_block(env: &TestEnv) {
    let admin_args = [
        "block",
        "create",
        "pg-admin",
        "--url",
        "postgresql://postgres@localhost:5432/postgres",
        "--password-stdin",
    ];
    env.run_stdin(&admin_args, "ref-Admin-Secret-3").success();
    let doc = r#"{"connection_info": {"driver": "postgresql", "database": "app", "username": "postgres",
        "host": "localhost", "port": 5432,
        "password": {"$ref": "blockyard://pg-admin/connection_info.password"}}}"#;
    create_from_json(env, "app", "sqlalchemy-connector", doc).success();
}

#[test]
fn a_reference_is_resolved_when_read_and_a_cycle_or_missing_block_is_refused() {
    let env = TestEnv::new(Backend::Sqlite);
    create_referring_block(&env);
    // Masked, the reference shows as written; read for use, it holds the value.
    let masked = env.json(&["block", "get", "app"]);
    assert_eq!(
        masked["data"]["connection_info"]["password"]["$ref"],
        "blockyard://pg-admin/connection_info.password"
    );
    let run = env.ok(&["block", "get", "app", "--field", "connection_info.password"]);
    assert_eq!(run.stdout, "ref-Admin-Secret-3");
    let run = env.ok(&[
        "run",
        "--block",
        "app",
        "--no-masking",
        "--",
        "printenv",
        "PGPASSWORD",
    ]);
    assert_eq!(run.stdout, "ref-Admin-Secret-3\n");
    // Masked in run's output too: the resolved value is a secret of app.
    let run = env.ok(&["run", "--block", "app", "--", "printenv", "PGPASSWORD"]);
    assert_eq!(run.stdout, "********\n");
    // A cycle, and a reference to a block that does not exist, are refused when written.
    let cycle = write_file(
        env.dir.path(),
        "cycle.json",
        r#"{"connection_info": {"driver": "postgresql", "database": "postgres", "username": "postgres",
            "host": "localhost", "password": {"$ref": "blockyard://app/connection_info.password"}}}"#,
    );
    let run = env.run(&[
        "block",
        "update",
        "pg-admin",
        "--data",
        cycle.to_str().unwrap(),
    ]);
    let run = run.fails_with("INVALID_BLOCK_DATA");
    assert!(
        run.stderr.contains("pg-admin → app → pg-admin"),
        "{}",
        run.stderr
    );
    let missing = std::fs::read_to_string(&cycle)
        .unwrap()
        .replace("blockyard://app/", "blockyard://nope/");
    create_from_json(&env, "x", "sqlalchemy-connector", &missing).fails_with("INVALID_BLOCK_DATA");
    let run = env.ok(&[
        "block",
        "get",
        "pg-admin",
        "--field",
        "connection_info.password",
    ]);
    assert_eq!(
        run.stdout, "ref-Admin-Secret-3",
        "the refused update left the block as it was"
    );
}

#[test]
fn a_reference_read_through_a_server_needs_read_access_to_both_blocks() {
    let env = TestEnv::new(Backend::Sqlite);
    create_referring_block(&env);
    let server = Server::start(&env, &[]);
    let both = token(&env, "both", &["blocks:read-secrets"], &[]);
    let run = server.cli(
        &env,
        &both,
        &["block", "get", "app", "--field", "connection_info.password"],
    );
    assert_eq!(run.success().stdout, "ref-Admin-Secret-3");
    // A token that may read app's secrets but not pg-admin's is refused, and the
    // refusal names no block it cannot see.
    let app_only = token(&env, "app-only", &["blocks:read-secrets:app"], &[]);
    let run = server.cli(
        &env,
        &app_only,
        &["block", "get", "app", "--field", "connection_info.password"],
    );
    let run = run.fails_with("FORBIDDEN");
    assert!(
        !run.stderr.contains("pg-admin") && !run.stderr.contains("ref-Admin-Secret-3"),
        "{}",
        run.stderr
    );
    let run = server.cli(&env, &app_only, &["run", "--block", "app", "--", "true"]);
    run.fails_with("FORBIDDEN");
    // Each read is on record: app's and pg-admin's, and the refusal.
    let admin = token(&env, "admin", &["admin"], &[]);
    let audit: serde_json::Value = serde_json::from_str(
        &server
            .cli(&env, &admin, &["audit", "ls", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    let rows = audit
        .as_array()
        .or_else(|| audit["events"].as_array())
        .expect("audit rows")
        .clone();
    let seen = |block: &str, outcome: &str| {
        rows.iter().any(|r| {
            r["block"] == block && r["action"] == "read-secrets" && r["outcome"] == outcome
        })
    };
    assert!(
        seen("app", "ok") && seen("pg-admin", "ok") && seen("pg-admin", "FORBIDDEN"),
        "{audit}"
    );
}
