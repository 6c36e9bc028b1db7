//! `blockyard run`: a program with the variables of one or more blocks, its output
//! masked as it streams, and with `--watch` started again (drained first) when one of
//! its blocks changes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use clap::Args;

use super::connect::{Target, target_of_block, variables};
use crate::block::Block;
use crate::connect::{EnvFormat, env};
use crate::error::{Error, ErrorKind, Result};
use crate::mask::Masker;
use crate::name::BlockName;
use crate::registry::Registry;
use crate::supervise::{self, Signals};
use serde_json::Value;

/// `blockyard run --block NAME[:PREFIX]... -- PROGRAM ARGS...`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A block whose variables to set: NAME gives the names `block env` prints (PG* for
    /// PostgreSQL, MYSQL_* for MySQL, DATABASE_* for SQLite, NAME_URL and NAME_API_KEY
    /// for an HTTP service, NAME_FIELD for each field of any other block, as ES_VALUE
    /// for a secret block es); NAME:PREFIX gives PREFIX_HOST, PREFIX_PASSWORD,
    /// PREFIX_URL... (PREFIX_FIELD). Repeat for several blocks; two blocks may not set
    /// one variable.
    #[arg(long = "block", short = 'b', required = true, value_name = "NAME[:PREFIX]",
          value_parser = parse_spec)]
    pub blocks: Vec<BlockSpec>,
    /// Pass the program's output on untouched (by default every secret of the blocks,
    /// and its URL-encoded and base64 forms, is shown as ********).
    #[arg(long)]
    pub no_masking: bool,
    /// Start the program again, with the new values, when one of its blocks changes:
    /// SIGTERM, --grace to exit, then SIGKILL.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how long the program has to exit after SIGTERM before it is killed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// With --watch: each restart waits a random time up to this, so many programs
    /// watching one block do not all restart at once.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub jitter: Duration,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// How long one ask for changes waits (a server answers sooner when one comes).
const WATCH_WAIT: Duration = Duration::from_secs(25);
/// After a failed ask, the pause before the next.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often the program's end and signals are looked at.
const TICK: Duration = Duration::from_millis(50);

/// One `--block`: a name and, if given, the prefix of its variables.
#[derive(Clone, Debug)]
pub struct BlockSpec {
    pub name: BlockName,
    pub prefix: Option<String>,
}

fn parse_spec(text: &str) -> std::result::Result<BlockSpec, String> {
    let (name, prefix) = match text.split_once(':') {
        Some((name, prefix)) => (name, Some(prefix.to_owned())),
        None => (text, None),
    };
    if let Some(prefix) = &prefix {
        env::check_prefix(prefix).map_err(|e| e.to_string())?;
    }
    let name = BlockName::parse(name).map_err(|e| e.to_string())?;
    Ok(BlockSpec { name, prefix })
}

/// What a run gives its program: the variables, and the secrets to mask.
struct Resolved {
    vars: Vec<(String, String)>,
    masker: Arc<Masker>,
}

/// Reads every block (each a secret read on record) into the program's variables and
/// the masker of all their secrets.
fn resolve(registry: &Registry, specs: &[BlockSpec]) -> Result<Resolved> {
    let mut vars: BTreeMap<String, (String, &BlockName)> = BTreeMap::new();
    let (mut secrets, mut users) = (Vec::new(), Vec::new());
    for spec in specs {
        let block = registry.read_block(&spec.name)?;
        for (_, value) in block.secrets().into_iter().flat_map(|s| s.iter()) {
            secrets.push(match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        let own = match target_of_block(registry, &block) {
            Ok(target) => {
                if let Target::Database(info, _) = &target {
                    users.extend(info.username.clone());
                }
                block_variables(&target, spec)?
            }
            Err(err) if err.kind() == ErrorKind::NotAConnection => field_variables(&block, spec)?,
            Err(err) => return Err(err),
        };
        for (key, value) in own {
            if let Some((_, other)) = vars.get(&key).filter(|(_, b)| *b != &spec.name) {
                return Err(Error::InvalidInput(format!(
                    "blocks {other} and {} both set {key}; give one a prefix \
                     (--block {}:PREFIX)",
                    spec.name, spec.name
                )));
            }
            vars.insert(key, (value, &spec.name));
        }
    }
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let masker = Masker::new(secrets.iter().map(String::as_str), users.iter().copied());
    Ok(Resolved {
        vars: vars.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        masker: Arc::new(masker),
    })
}

/// A connection's variables: the names `block env` prints, or with a prefix its
/// dotenv set (PREFIX_HOST, PREFIX_PASSWORD, PREFIX_URL...).
fn block_variables(target: &Target, spec: &BlockSpec) -> Result<Vec<(String, String)>> {
    match (target, &spec.prefix) {
        (Target::Database(info, _), Some(prefix)) => {
            env::variables(info, EnvFormat::Dotenv, Some(prefix))
        }
        _ => Ok(variables(target, &spec.name, None, spec.prefix.as_deref())?.0),
    }
}

/// Any other block's fields, each as PREFIX_PATH (`es` with `value` → `ES_VALUE`; the
/// prefix defaults to the block's name in capitals).
fn field_variables(block: &Block, spec: &BlockSpec) -> Result<Vec<(String, String)>> {
    let prefix = spec
        .prefix
        .clone()
        .unwrap_or_else(|| env::prefix_from_name(&spec.name));
    env::check_prefix(&prefix)?;
    Ok(crate::document::leaves(&block.document_or_masked())
        .into_iter()
        .map(|(path, value)| {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (format!("{prefix}_{}", env::prefix_from_name(&path)), value)
        })
        .collect())
}

/// Runs the program to its end (or, with `--watch`, until it ends by itself or a
/// signal ends it), and exits with its exit code.
pub fn run(registry: &Registry, args: RunArgs) -> Result<()> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::InvalidInput("no program given after --".into()))?;
    let exec_error = |source| Error::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    };
    let signals = Signals::forward().map_err(exec_error)?;
    let names: Vec<BlockName> = args.blocks.iter().map(|b| b.name.clone()).collect();
    // The cursor comes first: a change made while the blocks are read is still seen.
    let cursor = match args.watch {
        true => Some(registry.block_changes(&names, None, Duration::ZERO)?.cursor),
        false => None,
    };
    let mut resolved = resolve(registry, &args.blocks)?;
    let start = |resolved: &Resolved| {
        let mut command = std::process::Command::new(program);
        command.args(rest).envs(resolved.vars.iter().cloned());
        let masker = (!args.no_masking).then(|| resolved.masker.clone());
        supervise::spawn(command, masker, &signals).map_err(exec_error)
    };
    let Some(cursor) = cursor else {
        std::process::exit(start(&resolved)?.wait().map_err(exec_error)?);
    };
    std::thread::scope(|scope| {
        let changes = watch_in_background(scope, registry, &names, cursor);
        loop {
            let mut child = start(&resolved)?;
            let next = match next_change(&mut child, &changes, registry, &args.blocks, &signals) {
                Ok(Some(next)) => next,
                Ok(None) => std::process::exit(child.wait().map_err(exec_error)?),
                Err(err) => return Err(exec_error(err)),
            };
            let delay = args.jitter.mul_f64(fastrand::f64());
            if wait_while_running(&mut child, delay, &signals).map_err(exec_error)? {
                std::process::exit(child.wait().map_err(exec_error)?);
            }
            eprintln!("blockyard: a block changed; restarting the program");
            child.stop(args.grace).map_err(exec_error)?;
            resolved = next;
        }
    })
}

/// A thread asking for changes to `names` for as long as the run lasts; each change
/// is sent on (a failure too, as text, and asked again after a pause).
fn watch_in_background<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    registry: &'scope Registry,
    names: &'scope [BlockName],
    mut cursor: String,
) -> Receiver<std::result::Result<(), String>> {
    let (send, changes) = std::sync::mpsc::channel();
    scope.spawn(move || {
        loop {
            let sent = match registry.block_changes(names, Some(&cursor), WATCH_WAIT) {
                Ok(answer) => {
                    cursor = answer.cursor;
                    match answer.changed.is_empty() {
                        true => Ok(()),
                        false => send.send(Ok(())),
                    }
                }
                Err(err) => {
                    let sent = send.send(Err(err.to_string()));
                    std::thread::sleep(RETRY_AFTER);
                    sent
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    changes
}

/// Waits until a block changes and its new values resolve (`Some`, the new values),
/// or the program ends or a signal stops it (`None`: wait for its exit code).
fn next_change(
    child: &mut supervise::Child,
    changes: &Receiver<std::result::Result<(), String>>,
    registry: &Registry,
    specs: &[BlockSpec],
    signals: &Signals,
) -> std::io::Result<Option<Resolved>> {
    loop {
        if child.try_wait()?.is_some() || signals.received() {
            return Ok(None);
        }
        match changes.recv_timeout(TICK) {
            Ok(Ok(())) => match resolve(registry, specs) {
                Ok(next) => return Ok(Some(next)),
                Err(err) => eprintln!("blockyard: a block changed; kept the program: {err}"),
            },
            Ok(Err(why)) => eprintln!("blockyard: cannot watch for changes now: {why}"),
            Err(_) => {}
        }
    }
}

/// Waits `delay` unless the program ends or a signal stops it first (`true`).
fn wait_while_running(
    child: &mut supervise::Child,
    delay: Duration,
    signals: &Signals,
) -> std::io::Result<bool> {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if child.try_wait()?.is_some() || signals.received() {
            return Ok(true);
        }
        std::thread::sleep(TICK.min(until - Instant::now()));
    }
    Ok(false)
}
