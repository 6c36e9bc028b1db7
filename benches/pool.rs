//! Checkout cost: `registry.pool(name).get()` on a warm cache versus a bare r2d2
//! `get()` on the same PostgreSQL database with the same pool settings, with and
//! without the check-out ping.
//!
//! Run: `cargo bench --bench pool`. The database is `BLOCKYARD_TEST_PG_URL` (default
//! postgres://postgres@127.0.0.1:5432/postgres).

use std::hint::black_box;

use blockyard::config::{Settings, Sources, Span};
use blockyard::name::BlockName;
use blockyard::{Config, NewBlock, Registry};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::PgConnection;
use diesel::r2d2::ConnectionManager;

fn pg_url() -> String {
    std::env::var("BLOCKYARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        Config::load(Sources {
            flags: Settings {
                data_dir: Some(dir.path().to_path_buf()),
                pool_refresh: Some(Span(std::time::Duration::from_secs(3600))),
                ..Settings::default()
            },
            ..Sources::default()
        })
        .unwrap(),
    )
    .unwrap()
    .0;
    let url = url::Url::parse(&pg_url()).unwrap();
    for (name, ping) in [("pg-ping", true), ("pg-noping", false)] {
        registry
            .create_block(NewBlock {
                name: BlockName::parse(name).unwrap(),
                block_type: "sqlalchemy-connector".into(),
                document: serde_json::json!({
                    "connection_info": url.as_str(),
                    "pool": {"max_size": 4, "min_idle": 4, "test_on_check_out": ping}
                }),
                id: None,
                replace_deleted: false,
            })
            .unwrap();
    }
    let mut group = c.benchmark_group("checkout");
    for (name, ping) in [("pg-ping", true), ("pg-noping", false)] {
        let bare = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(4))
            .test_on_check_out(ping)
            .build(ConnectionManager::<PgConnection>::new(url.as_str()))
            .unwrap();
        drop(registry.pool::<PgConnection>(name).unwrap().get().unwrap());
        let label = if ping { "ping" } else { "no ping" };
        group.bench_function(format!("bare r2d2 get ({label})"), |b| {
            b.iter(|| black_box(bare.get().unwrap()))
        });
        group.bench_function(format!("registry.pool(name).get ({label})"), |b| {
            b.iter(|| black_box(registry.pool::<PgConnection>(name).unwrap().get().unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
