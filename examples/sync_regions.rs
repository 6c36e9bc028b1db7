//! A small data flow: take pooled connections to a block by name and sync reference
//! data into its database, the way Sage's databot updates region data.
//!
//! ```text
//! blockyard block create crdb-sage --url 'postgresql://databot@localhost:26257/sage' --password-stdin
//! cargo run --example sync_regions -- crdb-sage
//! ```
//!
//! The registry comes from the environment, exactly as for the `blockyard` command
//! (`BLOCKYARD_DATA_DIR`, `BLOCKYARD_DATABASE_URL`, `BLOCKYARD_MASTER_KEY`, ...).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const REGIONS: &[(&str, &str)] = &[
    ("eu-central", "Central Europe"),
    ("eu-north", "Northern Europe"),
    ("us-east", "Eastern United States"),
    ("ap-south", "South Asia"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let block = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "crdb-sage".into());
    let registry = blockyard::Registry::from_env()?;
    // An r2d2 pool, cached by name: later calls cost no registry round trip.
    let pool = registry.pool::<diesel::PgConnection>(&block)?;
    let mut conn = pool.get()?;

    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS regions (code TEXT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .execute(&mut *conn)?;
    let mut changed = 0;
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for (code, name) in REGIONS {
            changed += diesel::sql_query(
                "INSERT INTO regions (code, name) VALUES ($1, $2) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name \
                 WHERE regions.name IS DISTINCT FROM excluded.name",
            )
            .bind::<Text, _>(code)
            .bind::<Text, _>(name)
            .execute(conn)?;
        }
        Ok(())
    })?;
    let total = diesel::sql_query("SELECT count(*) AS n FROM regions")
        .get_result::<Count>(&mut *conn)?
        .n;
    println!("{block}: {changed} region(s) inserted or changed, {total} in all");
    Ok(())
}
