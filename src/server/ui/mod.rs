//! The web UI at `/ui`, served by the same server: sign-in with a token, the block list
//! and a block's page with Reveal, the block form, undo, and the admin pages. Every page
//! is HTML rendered here and works without JavaScript. It calls the registry through the
//! API's own door (`authorize`, `read_block`, `Change`, the audit log), never around it;
//! every form carries the session's CSRF token and is refused from another origin;
//! every response carries a strict Content-Security-Policy and is never cached.

mod admin;
mod assets;
mod block_page;
mod browse;
mod edit;
mod filled;
mod form;
mod form_page;
mod login;
mod pages;
mod undo;
mod viewing;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Catcher, Route, catch, catchers, routes};

pub use assets::SecurityHeaders;
use viewing::{Page, page};

pub fn routes() -> Vec<Route> {
    routes![
        assets::style,
        assets::htmx,
        assets::script,
        login::login_page,
        login::login,
        login::logout,
        browse::block_list,
        browse::show_page,
        browse::reveal,
        edit::new_block,
        edit::create_block,
        edit::edit_block,
        edit::save_block,
        edit::test_block,
        admin::tokens,
        admin::create_token,
        admin::revoke_token,
        browse::revoke_lease,
        admin::audit_log,
        admin::block_types,
        undo::rollback,
        undo::undelete,
        undo::confirm_delete,
        undo::delete,
    ]
}

pub fn catchers() -> Vec<Catcher> {
    catchers![signed_out, refused, not_found]
}

#[catch(401)]
fn signed_out() -> Redirect {
    Redirect::to("/ui/login")
}

#[catch(403)]
fn refused() -> Page {
    viewing::refusal()
}

#[catch(404)]
fn not_found() -> Page {
    page(
        Status::NotFound,
        pages::problem(None, "Not found", "There is no such page."),
    )
}
