//! `GET /api/v1/changes`: a watcher (`blockyard run --watch`) asks which of its blocks
//! changed since its cursor and is answered when one does, or when its wait runs out;
//! the server looks at just those blocks' stamps twice a second meanwhile.

use std::time::{Duration, Instant};

use rocket::get;

use super::guard::Ctx;
use super::http::parse_name;
use super::policy::{Access, authorize};
use super::response::{ApiResult, Json};
use super::state::{State, blocking};
use crate::error::Error;

/// The longest a watcher is kept waiting (clients time out at 30 s).
const LONGEST_WAIT: u64 = 25;
/// The most blocks one watcher watches.
const MOST_NAMES: usize = 100;
const POLL: Duration = Duration::from_millis(500);

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![changes]
}

#[get("/changes?<name>&<since>&<wait>")]
async fn changes(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Vec<String>,
    since: Option<String>,
    wait: Option<&str>,
) -> ApiResult<Json> {
    if name.is_empty() || name.len() > MOST_NAMES {
        let why = format!("name: give 1 to {MOST_NAMES} blocks to watch");
        return Err(Error::InvalidInput(why).into());
    }
    let names = name
        .iter()
        .map(|n| parse_name(n))
        .collect::<ApiResult<Vec<_>>>()?;
    let wait = match wait {
        None => 0,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= LONGEST_WAIT)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "wait: a number of seconds from 0 to {LONGEST_WAIT}"
                ))
            })?,
    };
    let all: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    authorize(state, &ctx, Access::read(all[0], &all, false)).await?;
    // Without a cursor nothing can have changed yet: the answer is the cursor of now.
    let wait = if since.is_some() { wait } else { 0 };
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let registry = state.registry.clone();
        let (names, since_now) = (names.clone(), since.clone());
        let answer =
            blocking(move || registry.block_changes(&names, since_now.as_deref(), Duration::ZERO))
                .await?;
        if !answer.changed.is_empty() || Instant::now() >= deadline {
            return Ok(Json::ok(&answer));
        }
        tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
    }
}
