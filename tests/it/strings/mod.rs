//! Connection strings as their readers read them: `block env` output in python-dotenv
//! and POSIX shells, and connection URLs field by field against libpq's and SQLAlchemy's
//! own parsers.

mod env_formats;
mod resolution;
mod urls;
