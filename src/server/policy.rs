//! Who may do what, and what goes on record: [`authorize`] (the one scope check of every
//! route), the audit helpers, and [`Change`], the one path every changing route and web
//! form takes (checks, then the work with its audit record committed in the same
//! transaction, or the refusal or failure recorded before the error leaves).

use super::guard::{Ctx, forbidden};
use super::metrics::Metrics;
use super::response::{ApiError, ApiResult};
use super::state::{State, blocking, blocking_long};
use crate::audit::AuditEvent;
use crate::auth::Permission;
use crate::block::ChangeRecord;
use crate::error::{ErrorKind, Result};
use crate::name::BlockName;
use crate::registry::Registry;

/// What a route is about to do, for [`authorize`].
pub struct Access<'a> {
    pub wanted: Permission,
    /// The blocks it touches; none for admin routes.
    pub blocks: &'a [&'a str],
    /// How a refusal is recorded in the audit log (action, subject); `None` for plain
    /// reads, which are not audited.
    pub audited: Option<(&'static str, &'a str)>,
    /// For the 403 message: "token X does not allow {what}".
    pub what: &'a str,
    /// A listing: allowed when the token grants `wanted` on some block, since what it
    /// may not see is left out of the answer.
    pub listing: bool,
}

impl<'a> Access<'a> {
    /// Writing `blocks` (the first is the one the audit log names); a refusal is
    /// audited as `action`. A change checks this itself ([`Change::write`]); a form
    /// checks it before it shows what it would change.
    pub fn write(action: &'static str, blocks: &'a [&'a str], what: &'a str) -> Access<'a> {
        Access {
            wanted: Permission::Write,
            blocks,
            audited: blocks.first().map(|subject| (action, *subject)),
            what,
            listing: false,
        }
    }

    /// An admin route; a refusal is audited as `audited` (action, subject) if given.
    pub fn admin(audited: Option<(&'static str, &'a str)>, what: &'a str) -> Access<'a> {
        Access {
            wanted: Permission::Admin,
            blocks: &[],
            audited,
            what,
            listing: false,
        }
    }

    /// Reading any of the blocks (a listing); never audited.
    pub fn list(what: &'a str) -> Access<'a> {
        Access {
            wanted: Permission::Read,
            blocks: &[],
            audited: None,
            what,
            listing: true,
        }
    }

    /// Reading one block, with its secrets if `reveal` (a refused secret read is
    /// audited as `read-secrets`).
    pub fn read(name: &'a str, blocks: &'a [&'a str], reveal: bool) -> Access<'a> {
        match reveal {
            true => Access {
                wanted: Permission::ReadSecrets,
                blocks,
                audited: Some(("read-secrets", name)),
                what: "reading this block's secrets",
                listing: false,
            },
            false => Access {
                wanted: Permission::Read,
                blocks,
                audited: None,
                what: "reading this block",
                listing: false,
            },
        }
    }
}

/// The one scope check of every route: `Ok` when the caller's token allows `access`;
/// otherwise 403, and a refused secret read or change is on record before the 403
/// leaves. It runs before any lookup, so a refusal never says whether a block exists.
/// A listing (`Access::list`) is allowed when the token may read some block.
pub async fn authorize(state: &State, ctx: &Ctx, access: Access<'_>) -> ApiResult<()> {
    let actor = ctx.actor();
    let allowed = match access.blocks {
        _ if access.listing => actor.may_some(access.wanted),
        [] => actor.may(access.wanted, None),
        blocks => blocks.iter().all(|b| actor.may(access.wanted, Some(b))),
    };
    if allowed {
        return Ok(());
    }
    if let Some((action, subject)) = access.audited {
        audit(state, ctx, action, Some(subject), "FORBIDDEN").await?;
    }
    // The refusal names the scope that is missing, unless `what` already does.
    let scope = crate::auth::Scope {
        permission: access.wanted,
        pattern: None,
    };
    match access.what.contains("(needs ") {
        true => Err(forbidden(actor, access.what)),
        false => Err(forbidden(
            actor,
            &format!("{} (needs {scope})", access.what),
        )),
    }
}

/// Records an audit event; if it cannot be written, the request fails with 503.
pub async fn audit(
    state: &State,
    ctx: &Ctx,
    action: &'static str,
    block: Option<&str>,
    outcome: &str,
) -> ApiResult<()> {
    state
        .audit
        .record(event(ctx, action, block, outcome))
        .await
        .map_err(ApiError::from)?;
    if action == "read-secrets" {
        let counted = if outcome == "ok" { "ok" } else { "refused" };
        Metrics::count(&state.metrics.secret_reads, counted);
    }
    Ok(())
}

/// The audit event of `action` on `block` by the caller.
pub fn event(ctx: &Ctx, action: &'static str, block: Option<&str>, outcome: &str) -> AuditEvent {
    AuditEvent {
        request_id: ctx.request_id.clone(),
        actor: ctx.actor().name.clone(),
        action,
        block: block.map(str::to_owned),
        outcome: outcome.to_owned(),
    }
}

/// Records a secret read's (or a secret use's) outcome, success or error code, before
/// answering.
pub async fn audited<T>(
    state: &State,
    ctx: &Ctx,
    action: &'static str,
    block: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(err) if unrecordable(err) => return result,
        Err(err) => err.code(),
    };
    audit(state, ctx, action, Some(block), outcome).await?;
    result
}

/// A failure because the store does not answer: nothing was done or released, and the
/// store that would hold its record is the one not answering (the request log has it),
/// so the client is answered at once instead of after another wait.
fn unrecordable(err: &ApiError) -> bool {
    err.kind == ErrorKind::StoreUnavailable
}

/// One change by the caller: the checks it must pass, what the audit log calls it, and
/// how long its work may take. [`Change::run`] is the one way a route or form changes
/// the registry.
pub struct Change<'a> {
    action: &'static str,
    subject: &'a str,
    checks: Vec<(Permission, &'a [&'a str], &'a str)>,
    admin_block: Option<&'a str>,
    long: bool,
}

impl<'a> Change<'a> {
    /// Changing `blocks` (the first is the one the change is about, as the audit log
    /// names it): blocks:write on each; a refusal is audited as `action`.
    pub fn write(action: &'static str, blocks: &'a [&'a str], what: &'a str) -> Change<'a> {
        Change {
            action,
            subject: blocks.first().copied().unwrap_or_default(),
            checks: vec![(Permission::Write, blocks, what)],
            admin_block: None,
            long: false,
        }
    }

    /// Leasing users of `blocks` (or renewing, revoking their leases): blocks:lease on
    /// each; a refusal is audited as `action`.
    pub fn lease(action: &'static str, blocks: &'a [&'a str], what: &'a str) -> Change<'a> {
        Change {
            checks: vec![(Permission::Lease, blocks, what)],
            ..Change::write(action, blocks, what)
        }
    }

    /// A change only an admin may make, recorded as `action` on `subject`.
    pub fn admin(action: &'static str, subject: &'a str, what: &'a str) -> Change<'a> {
        Change {
            action,
            subject,
            checks: vec![(Permission::Admin, &[], what)],
            admin_block: None,
            long: false,
        }
    }

    /// Also needs `wanted` on `blocks` (none: on every block), checked after the rest.
    pub fn also(mut self, wanted: Permission, blocks: &'a [&'a str], what: &'a str) -> Self {
        self.checks.push((wanted, blocks, what));
        self
    }

    /// The change uses the admin block `name`'s password: that use is on record
    /// (`use-admin-block`) once the checks pass, before the work runs.
    pub fn using_admin_block(mut self, name: &'a str) -> Self {
        self.admin_block = Some(name);
        self
    }

    /// Work that may rightly take long (provisioning, an import): no store deadline.
    pub fn long(mut self) -> Self {
        self.long = true;
        self
    }

    /// Checks the caller, then runs `work` with a registry whose change record (this
    /// change, by this caller) commits with it; a refused or failed change is recorded
    /// before the error leaves.
    pub async fn run<T: Send + 'static>(
        self,
        state: &State,
        ctx: &Ctx,
        work: impl FnOnce(Registry) -> Result<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (action, subject) = (self.action, self.subject);
        let record = self.record(ctx);
        for (wanted, blocks, what) in self.checks {
            let access = Access {
                wanted,
                blocks,
                audited: Some((action, subject)),
                what,
                listing: false,
            };
            authorize(state, ctx, access).await?;
        }
        if let Some(admin) = self.admin_block {
            let admin = BlockName::parse(admin)?;
            audit(state, ctx, "use-admin-block", Some(&admin), "ok").await?;
        }
        let registry = state.registry.on_behalf(record);
        let result = match self.long {
            true => blocking_long(move || work(registry)).await,
            false => blocking(move || work(registry)).await,
        };
        state.metrics.change(action, result.is_ok());
        if let Err(err) = &result
            && !unrecordable(err)
        {
            audit(state, ctx, action, Some(subject), err.code()).await?;
        }
        result
    }

    fn record(&self, ctx: &Ctx) -> ChangeRecord {
        let actor = ctx.actor();
        ChangeRecord {
            request_id: ctx.request_id.clone(),
            actor: actor.name.clone(),
            action: self.action,
            subject: self.subject.to_owned(),
            token_id: Some(actor.token_id.clone()),
            admin: actor.may(Permission::Admin, None),
        }
    }
}
