//! `blockyard login`, `logout` and `status`: a server and token kept for every shell
//! (see [`crate::config::login`]), and where the CLI points now.

use std::io::{IsTerminal, Read};

use clap::Args;
use serde_json::json;

use super::output::{Printer, details};
use crate::config::{Config, login};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::remote::RemoteClient;

/// `blockyard login`'s arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The Blockyard server (https://blockyard.internal, http://127.0.0.1:4200).
    pub url: String,
    /// Read the token from stdin (`... --token-stdin <<< "$TOKEN"`) instead of asking.
    #[arg(long)]
    pub token_stdin: bool,
    /// Allow plain http:// to a server that is not this machine.
    #[arg(long)]
    pub insecure: bool,
}

/// Checks the token against the server, then keeps both; nothing is kept if the server
/// refuses the token or cannot be reached.
pub fn login(args: LoginArgs, out: &Printer) -> Result<()> {
    let token = read_token(&args)?;
    let settings = crate::config::remote_settings(
        Some(args.url.clone()),
        Some(token.to_string()),
        args.insecure,
    )?
    .ok_or_else(|| Error::Internal("remote settings without a server".into()))?;
    let url = settings.url.to_string();
    let identity = RemoteClient::new(settings)?.own_token()?;
    let kept_in = login::save(&url, &token)?;
    let report = json!({
        "server": url, "token": identity.name, "scopes": identity.scopes, "kept_in": kept_in,
    });
    out.emit(&report, || {
        format!(
            "Logged in to {url} as token {:?} ({}); the token is kept in {kept_in}.",
            identity.name,
            identity.scopes.join(", ")
        )
    });
    Ok(())
}

/// The token: from stdin with `--token-stdin`, else asked for on the terminal (never
/// echoed). Piped input without the flag, or an empty token, is refused.
fn read_token(args: &LoginArgs) -> Result<zeroize::Zeroizing<String>> {
    let text = match (args.token_stdin, std::io::stdin().is_terminal()) {
        (true, _) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| Error::io("reading the token from stdin", err))?;
            text
        }
        (false, true) => rpassword::prompt_password(format!("Token for {}: ", args.url))
            .map_err(|err| Error::io("reading the token", err))?,
        (false, false) => {
            return Err(Error::InvalidInput(
                "stdin is not a terminal: pass --token-stdin to read the token from it".into(),
            ));
        }
    };
    let token = zeroize::Zeroizing::new(text.trim().to_owned());
    match token.is_empty() {
        true => Err(Error::InvalidInput(
            "the token is empty (create one on the server with `blockyard token create`)".into(),
        )),
        false => Ok(token),
    }
}

pub fn logout(out: &Printer) -> Result<()> {
    let forgotten = login::forget()?;
    out.emit(&json!({ "logged_out": forgotten }), || match &forgotten {
        Some(url) => format!("Logged out of {url}; the CLI uses the local store again."),
        None => "Not logged in.".to_owned(),
    });
    Ok(())
}

/// Where the CLI points (a server and its token, or the local store) and whether that
/// works now; exit 1 when it does not.
pub fn status(config: Config, out: &Printer) -> Result<()> {
    let server = config.remote.as_ref().map(|r| r.url.to_string());
    let origin = config.origin("server_url").to_owned();
    let data_dir = config.data_dir.display().to_string();
    let store = config.database_url.to_string();
    let Some(server) = server else {
        let exists = Registry::open_existing(config)?.is_some();
        let report = json!({ "mode": "local", "store": store, "exists": exists });
        out.emit(&report, || {
            details(&[
                ("mode", "local store (not logged in to a server)".to_owned()),
                ("store", store.clone()),
                ("data dir", data_dir),
                (
                    "created",
                    if exists {
                        "yes"
                    } else {
                        "not yet: the first command creates it"
                    }
                    .into(),
                ),
            ])
        });
        return Ok(());
    };
    let registry = Registry::open_existing(config)?
        .ok_or_else(|| Error::Internal("a server registry is always there".into()))?;
    let identity = registry
        .own_token()?
        .ok_or_else(|| Error::Internal("no token".into()))?;
    let report = json!({
        "mode": "server", "server": server, "from": origin,
        "token": identity.name, "scopes": identity.scopes,
    });
    out.emit(&report, || {
        details(&[
            ("mode", "server".to_owned()),
            ("server", server.clone()),
            ("from", origin.clone()),
            ("token", identity.name.clone()),
            ("scopes", identity.scopes.join(", ")),
        ])
    });
    Ok(())
}
