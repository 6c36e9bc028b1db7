//! The settings a command line takes as flags, made from the one table in `config`:
//! each flag's name, value, choices and help (with its variable and default) come from
//! there, and what is given is read back into [`Settings`].

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use crate::config::{SETTINGS, Scope, Setting, Settings};

/// The settings every command takes (`--data-dir`, `--server-url`, ...).
#[derive(Debug, Default)]
pub struct GlobalFlags(pub Settings);

/// The settings `blockyard server` takes (`--port`, `--audit-retention`, ...).
#[derive(Debug, Default)]
pub struct ServerFlags(pub Settings);

/// One setting's flag.
fn arg(setting: &'static Setting, global: bool) -> Arg {
    let mut help = format!("{} [env: {}]", setting.help(), setting.env);
    if let Some(default) = setting.default.filter(|_| !setting.is_switch()) {
        help.push_str(&format!(" [default: {default}]"));
    }
    let mut arg = Arg::new(setting.name).long(setting.flag()).help(help);
    if let Some(alias) = setting.alias {
        arg = arg.visible_alias(alias);
    }
    if global {
        arg = arg.global(true).help_heading("Global options");
    }
    if setting.is_switch() {
        return arg.action(ArgAction::SetTrue);
    }
    arg = arg.value_name(setting.value_name).action(ArgAction::Set);
    if setting.secret {
        arg = arg.hide_env_values(true);
    }
    match setting.choices {
        [] => arg.value_parser(move |text: &str| setting.check(text).map(|_| text.to_owned())),
        choices => arg.value_parser(PossibleValuesParser::new(choices.iter().copied())),
    }
}

fn augment(cmd: Command, scope: Scope) -> Command {
    let global = scope == Scope::Global;
    cmd.args(
        SETTINGS
            .iter()
            .filter(|s| s.scope == scope)
            .map(|s| arg(s, global)),
    )
}

/// The flags of `scope` that were given, as settings.
fn read(matches: &ArgMatches, scope: Scope) -> Result<Settings, clap::Error> {
    let mut settings = Settings::default();
    for setting in SETTINGS.iter().filter(|s| s.scope == scope) {
        let text = match setting.is_switch() {
            true => matches.get_flag(setting.name).then(|| "true".to_owned()),
            false => matches.get_one::<String>(setting.name).cloned(),
        };
        if let Some(text) = text {
            settings
                .set(setting.name, &text)
                .map_err(|err| clap::Error::raw(clap::error::ErrorKind::ValueValidation, err))?;
        }
    }
    Ok(settings)
}

macro_rules! flags_of {
    ($ty:ident, $scope:expr) => {
        impl FromArgMatches for $ty {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                read(matches, $scope).map($ty)
            }
            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                self.0 = read(matches, $scope)?.or(std::mem::take(&mut self.0));
                Ok(())
            }
        }

        impl Args for $ty {
            fn augment_args(cmd: Command) -> Command {
                augment(cmd, $scope)
            }
            fn augment_args_for_update(cmd: Command) -> Command {
                augment(cmd, $scope)
            }
        }
    };
}

flags_of!(GlobalFlags, Scope::Global);
flags_of!(ServerFlags, Scope::Server);
