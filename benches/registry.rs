//! Registry benchmarks: with 10,000 blocks stored, load one by name (secrets
//! decrypted) and read one masked, on SQLite and on PostgreSQL.
//!
//! Run: `cargo bench --bench registry`. PostgreSQL is taken from
//! `BLOCKYARD_TEST_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres); a
//! database is created for the run and dropped afterwards.

use std::hint::black_box;

use blockyard::config::{Settings, Sources};
use blockyard::name::BlockName;
use blockyard::{Config, NewBlock, Registry};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::prelude::*;

const BLOCKS: usize = 10_000;

fn open(data_dir: &std::path::Path, database_url: Option<String>) -> Registry {
    let config = Config::load(Sources {
        flags: Settings {
            data_dir: Some(data_dir.to_path_buf()),
            database_url,
            ..Settings::default()
        },
        ..Sources::default()
    })
    .expect("config");
    Registry::open(config).expect("open registry").0
}

fn fill(registry: &Registry) {
    let started = std::time::Instant::now();
    for i in 0..BLOCKS {
        registry
            .create_block(NewBlock {
                name: BlockName::parse(&format!("crdb-{i:05}")).unwrap(),
                block_type: "sqlalchemy-connector".into(),
                document: serde_json::json!({"connection_info": {
                    "driver": "cockroachdb+psycopg2", "database": "sage", "username": "databot",
                    "host": "localhost", "port": 26257, "password": format!("pw-{i}")}}),
                id: None,
                replace_deleted: false,
            })
            .expect("create");
    }
    eprintln!("created {BLOCKS} blocks in {:.2?}", started.elapsed());
}

fn bench_backend(c: &mut Criterion, label: &str, registry: &Registry) {
    fill(registry);
    let mut group = c.benchmark_group(label);
    group.bench_function("load_block (decrypt)", |b| {
        b.iter(|| black_box(registry.load_block(black_box("crdb-04321")).unwrap()))
    });
    group.bench_function("get_block_masked", |b| {
        b.iter(|| black_box(registry.get_block_masked(black_box("crdb-04321")).unwrap()))
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path(), None);
    bench_backend(c, "sqlite", &registry);
}

fn postgres(c: &mut Criterion) {
    let admin_url = std::env::var("BLOCKYARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("blockyard_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&admin_url).expect("PostgreSQL must be running");
    diesel::sql_query(format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&db);
    let dir = tempfile::tempdir().unwrap();
    {
        let registry = open(dir.path(), Some(url.to_string()));
        bench_backend(c, "postgres", &registry);
    }
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
