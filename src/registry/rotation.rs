//! Password rotation as a block declares it (`rotation.every` with `rotation.admin`):
//! the schedule, who may set one up, and who the server's scheduler acts for. The
//! admin block a rotation names decides whose credentials change a role's password,
//! and the pending password decides what it becomes, so both are destinations: the
//! pending password is written only by a rotation under way, and a schedule is set
//! up (and later run) only for an actor that may use admin blocks.

use serde_json::{Value, json};

use super::handle::Registry;
use crate::auth::Permission;
use crate::block::{Block, ChangeRecord};
use crate::error::{Error, Result};
use crate::store::NewAuditRow;

const CONNECTOR: &str = "sqlalchemy-connector";

/// `rotation.set_by` of a schedule set up through the CLI on the store itself (whoever
/// holds the master key).
pub const LOCAL_SETTER: &str = "local";

/// A block's scheduled rotation (`rotation.every` with `rotation.admin`), as `block
/// inspect` shows it and the server runs it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RotationSchedule {
    pub admin: String,
    pub every: String,
    pub last_rotated_at: Option<String>,
    /// When the next rotation is due (from the last one, or from the block's creation).
    pub next_rotation_at: String,
    pub due: bool,
    /// Who set the schedule up (a token id, or `local`); the scheduler acts only while
    /// that token may still use admin blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
}

/// The schedule in a block's (masked) data, if it has one; `now` in Unix milliseconds.
pub fn rotation_schedule(block: &Block, now: i64) -> Option<RotationSchedule> {
    let rotation = block.masked_data().get("rotation")?;
    let every = rotation.get("every")?.as_str()?;
    let admin = rotation.get("admin")?.as_str()?;
    let period = humantime::parse_duration(every).ok()?.as_millis() as i64;
    let last = rotation
        .get("last_rotated_at")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_rfc3339);
    let next = last.unwrap_or(block.created_at).saturating_add(period);
    let pending = rotation
        .get("pending_password")
        .is_some_and(|p| !p.is_null());
    Some(RotationSchedule {
        admin: admin.to_owned(),
        every: every.to_owned(),
        last_rotated_at: last.map(crate::time::rfc3339),
        next_rotation_at: crate::time::rfc3339(next),
        due: pending || next <= now,
        set_by: rotation
            .get("set_by")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The lock a server holds while it runs scheduled rotations (PostgreSQL advisory lock
/// key: "blockyard rotation" in ASCII, folded into 63 bits).
pub const ROTATION_LOCK: i64 = 0x626c_6f63_6b72_6f74;

impl Registry {
    /// Blocks whose scheduled rotation is due, with their schedules.
    pub fn due_rotations(&self) -> Result<Vec<(String, RotationSchedule)>> {
        let now = crate::time::now_millis();
        let mut due = Vec::new();
        // Only connections whose document names a rotation are read and parsed: with
        // 100,000 blocks, reading each one every minute cost the server 50 MB and CPU.
        for row in self.store()?.blocks_mentioning(CONNECTOR, "rotation")? {
            let block = super::local::block_from_row(row, None)?;
            if let Some(schedule) = rotation_schedule(&block, now)
                && schedule.due
            {
                due.push((block.name.into(), schedule));
            }
        }
        Ok(due)
    }
}

/// `rotation.pending_password` set (a rotation under way) or cleared with the time of
/// the finished rotation recorded.
pub(super) fn set_rotation(doc: &mut Value, pending: Option<&str>) {
    if !doc.get("rotation").is_some_and(Value::is_object) {
        doc["rotation"] = json!({});
    }
    match pending {
        Some(password) => doc["rotation"]["pending_password"] = json!(password),
        None => {
            if let Some(rotation) = doc["rotation"].as_object_mut() {
                rotation.remove("pending_password");
                rotation.insert(
                    "last_rotated_at".into(),
                    json!(crate::time::rfc3339(crate::time::now_millis())),
                );
            }
        }
    }
}

/// The parts of a schedule that decide which admin block acts and when.
fn settings(doc: &Value) -> (Option<&Value>, Option<&Value>) {
    let rotation = doc.get("rotation").filter(|r| r.is_object());
    (
        rotation
            .and_then(|r| r.get("admin"))
            .filter(|v| !v.is_null()),
        rotation
            .and_then(|r| r.get("every"))
            .filter(|v| !v.is_null()),
    )
}

fn pending(doc: &Value) -> Option<&Value> {
    doc.pointer("/rotation/pending_password")
        .filter(|v| !v.is_null())
}

/// What a write may do to a block's `rotation` (`current`: the block as stored, with
/// its secrets; `None` for a new block): it never chooses the pending password (a
/// pending one is carried over, so a rotation under way is never lost); a changed
/// schedule needs an actor who may use admin blocks (`record`: `None` is the CLI on
/// the store), who is stamped in `rotation.set_by`; an unchanged one keeps its setter.
pub(super) fn guard_rotation(
    current: Option<&Value>,
    document: &mut Value,
    record: Option<&ChangeRecord>,
) -> Result<()> {
    let stored_pending = current.and_then(pending).cloned();
    if pending(document).is_some() && pending(document) != stored_pending.as_ref() {
        return Err(Error::Forbidden(
            "rotation.pending_password is written only by a rotation under way \
             (`blockyard block rotate-password`); leave it out"
                .into(),
        ));
    }
    let changed = settings(document) != current.map(settings).unwrap_or((None, None));
    let setter = match (settings(document), changed) {
        ((None, _), _) => None,
        (_, false) => current.and_then(|c| c.pointer("/rotation/set_by")).cloned(),
        (_, true) => match record {
            None => Some(json!(LOCAL_SETTER)),
            Some(record) if record.admin => Some(json!(record.token_id)),
            Some(_) => {
                return Err(Error::Forbidden(
                    "a scheduled rotation (rotation.admin, rotation.every) acts with the \
                     admin block's credentials; setting one up needs an admin token"
                        .into(),
                ));
            }
        },
    };
    let has_rotation = document.get("rotation").is_some_and(Value::is_object);
    if let Some(pending) = stored_pending {
        if !has_rotation {
            document["rotation"] = json!({});
        }
        document["rotation"]["pending_password"] = pending;
    }
    if let Some(rotation) = document.get_mut("rotation").and_then(Value::as_object_mut) {
        match setter {
            Some(setter) => rotation.insert("set_by".into(), setter),
            None => rotation.remove("set_by"),
        };
    }
    Ok(())
}

impl Registry {
    /// Runs a due scheduled rotation for whoever set it up, if they still may use admin
    /// blocks; a refusal is on record (`rotate-password`, outcome `forbidden`).
    pub fn run_scheduled_rotation(
        &self,
        block: &str,
        schedule: &RotationSchedule,
        request_id: String,
    ) -> Result<Block> {
        let setter = self.rotation_authority(schedule);
        let record = ChangeRecord {
            request_id,
            actor: match &setter {
                Ok(name) => format!("scheduler for {name}"),
                Err(_) => "scheduler".into(),
            },
            action: "rotate-password",
            subject: block.to_owned(),
            token_id: None,
            admin: false,
        };
        if let Err(err) = setter {
            self.store()?.record_audit(&[NewAuditRow::single(
                crate::time::now_millis(),
                record.request_id.clone(),
                record.actor.clone(),
                record.action.into(),
                Some(block.to_owned()),
                "forbidden".into(),
            )])?;
            return Err(err);
        }
        self.on_behalf(record)
            .rotate_password(block, &schedule.admin)
    }

    /// The name of who a schedule acts for: `local`, or a token (by name) that is
    /// bound to this master key, active, and holds `admin` on every block.
    fn rotation_authority(&self, schedule: &RotationSchedule) -> Result<String> {
        let refused = |why: &str| {
            Error::Forbidden(format!(
                "the scheduled rotation using admin block {} {why}; set it up again with \
                 an admin token or the CLI on the store",
                schedule.admin
            ))
        };
        match schedule.set_by.as_deref() {
            None => Err(refused(
                "was set up before rotations recorded who set them up",
            )),
            Some(LOCAL_SETTER) => Ok(LOCAL_SETTER.into()),
            Some(id) => {
                let actor = crate::auth::stored_actor(self.store()?, &self.row_key()?, id)?;
                match actor {
                    Some(actor) if actor.may(Permission::Admin, None) => Ok(actor.name.clone()),
                    _ => Err(refused(
                        "was set up by a token that is no longer an active admin token",
                    )),
                }
            }
        }
    }
}
