//! `blockyard lease ...`: leased database users, each its own login role that expires
//! by itself (the block declares `lease.admin` and `lease.role`).

use clap::Subcommand;

use super::output::{Printer, details, table};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::registry::{Lease, Registry};

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Make a user for one holder in the block's group role (`lease.role`), with the
    /// admin block's credentials; it expires after --ttl (the block's `lease.ttl`),
    /// never past `lease.max_ttl`. The password is shown this once.
    ///
    /// Examples:
    ///   blockyard block update crdb-sage --set lease.admin=pg-admin --set lease.role=sage_rw
    ///   blockyard lease create crdb-sage --ttl 1h -o json
    #[command(verbatim_doc_comment)]
    Create {
        /// The block to lease a user of.
        block: BlockName,
        /// How long the lease lasts (e.g. 15m, 1h).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// List leases (live and being revoked; --all: revoked ones too).
    #[command(visible_alias = "list")]
    Ls {
        /// Only this block's.
        #[arg(long, value_name = "BLOCK")]
        block: Option<BlockName>,
        /// Revoked leases too.
        #[arg(long)]
        all: bool,
    },
    /// Extend a live lease from now by --ttl (the block's `lease.ttl`), never past its
    /// max_expires_at.
    Renew {
        /// The lease (its id, from `lease create` or `lease ls`).
        lease_id: String,
        /// How long from now (e.g. 15m, 1h).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Revoke a lease now (or every lease of --block): no more logins, its sessions
    /// ended, what it owns handed to the group role, the user dropped.
    ///
    /// Examples:
    ///   blockyard lease revoke 6f1c...
    ///   blockyard lease revoke --block crdb-sage
    #[command(verbatim_doc_comment)]
    Revoke {
        /// The lease (its id, from `lease create` or `lease ls`).
        #[arg(required_unless_present = "block", conflicts_with = "block")]
        lease_id: Option<String>,
        /// Every live lease of this block instead.
        #[arg(long, value_name = "BLOCK")]
        block: Option<BlockName>,
    },
    /// Revoke what is due (expired leases, work a crash cut short) and drop managed users
    /// the store does not know; `blockyard server` does this every minute.
    Reconcile,
}

fn ttl(text: Option<&str>) -> Result<Option<std::time::Duration>> {
    text.map(|t| {
        humantime::parse_duration(t.trim()).map_err(|_| {
            Error::InvalidInput(format!("--ttl {t:?} is not a duration such as 15m or 1h"))
        })
    })
    .transpose()
}

pub fn run(cmd: LeaseCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        LeaseCommand::Create { block, ttl: t } => create(registry, &block, t.as_deref(), out),
        LeaseCommand::Ls { block, all } => {
            let leases = registry.leases(block.as_ref(), all)?;
            out.emit(&leases, || listing(&leases));
            Ok(())
        }
        LeaseCommand::Renew { lease_id, ttl: t } => {
            let lease = registry.renew_lease(&lease_id, ttl(t.as_deref())?)?;
            out.emit(&lease, || {
                format!(
                    "lease {} now expires at {}",
                    lease.lease_id, lease.expires_at
                )
            });
            Ok(())
        }
        LeaseCommand::Revoke { lease_id, block } => {
            let revoked = match (lease_id, block) {
                (Some(id), _) => vec![registry.revoke_lease(&id)?],
                (None, Some(block)) => registry.revoke_block_leases(&block)?,
                (None, None) => Vec::new(),
            };
            out.emit(&revoked, || {
                revoked
                    .iter()
                    .map(|l| format!("revoked lease {} (user {})\n", l.lease_id, l.username))
                    .collect()
            });
            Ok(())
        }
        LeaseCommand::Reconcile => reconcile(registry, out),
    }
}

fn create(registry: &Registry, block: &BlockName, t: Option<&str>, out: &Printer) -> Result<()> {
    let issued = registry.issue_lease(block, ttl(t)?)?;
    out.emit(&issued, || {
        details(&[
            ("lease_id", issued.lease.lease_id.clone()),
            ("username", issued.lease.username.clone()),
            ("password", issued.password.to_string()),
            ("expires_at", issued.lease.expires_at.clone()),
            ("max_expires_at", issued.lease.max_expires_at.clone()),
        ])
    });
    Ok(())
}

fn reconcile(registry: &Registry, out: &Printer) -> Result<()> {
    let report = registry.reconcile_leases()?;
    out.emit(&report, || {
        let orphans = match report.orphans.is_empty() {
            true => String::new(),
            false => format!(": {}", report.orphans.join(", ")),
        };
        format!(
            "revoked {} lease(s), {} failed again, dropped {} unknown user(s){orphans}",
            report.revoked.len(),
            report.failed.len(),
            report.orphans.len(),
        )
    });
    match report.failed.is_empty() {
        true => Ok(()),
        false => Err(Error::provision(
            crate::error::ProvisionCode::StepFailed,
            format!(
                "{} revocation(s) failed again; `blockyard lease ls` shows why",
                report.failed.len()
            ),
        )),
    }
}

fn listing(leases: &[Lease]) -> String {
    let rows = leases.iter().map(|l| {
        vec![
            l.lease_id.clone(),
            l.block.clone(),
            l.username.clone(),
            l.holder.clone(),
            l.state.clone(),
            l.expires_at.clone(),
            match &l.last_error {
                Some(e) => format!("{} failed: {e}", l.attempts),
                None => String::new(),
            },
        ]
    });
    table(
        &[
            "LEASE", "BLOCK", "USER", "HOLDER", "STATE", "EXPIRES", "PROBLEM",
        ],
        rows,
    )
}
