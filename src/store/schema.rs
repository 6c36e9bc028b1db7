//! Diesel table definitions, portable across the store backends.

diesel::table! {
    store_meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    data_keys (id) {
        id -> Text,
        wrapped -> Binary,
        active -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    blocks (id) {
        id -> Text,
        name -> Text,
        block_type -> Text,
        version -> BigInt,
        data -> Text,
        sealed_secrets -> Nullable<Binary>,
        key_id -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    block_versions (block_id, version) {
        block_id -> Text,
        version -> BigInt,
        name -> Text,
        block_type -> Text,
        data -> Text,
        sealed_secrets -> Nullable<Binary>,
        key_id -> Nullable<Text>,
        change -> Text,
        created_at -> BigInt,
        actor -> Nullable<Text>,
    }
}

diesel::table! {
    block_types (slug) {
        slug -> Text,
        definition -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        mac -> Nullable<Binary>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Binary,
        scopes -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        mac -> Nullable<Binary>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        request_id -> Text,
        actor -> Text,
        action -> Text,
        block -> Nullable<Text>,
        outcome -> Text,
        event_count -> BigInt,
        last_at -> BigInt,
        last_request_id -> Nullable<Text>,
        open_until -> Nullable<BigInt>,
        detail -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(blocks, block_versions);

diesel::table! {
    leases (id) {
        id -> Text,
        block_id -> Text,
        block_name -> Text,
        username -> Text,
        admin_block -> Text,
        group_role -> Text,
        database_name -> Text,
        holder -> Text,
        state -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        max_expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        attempts -> BigInt,
        retry_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    ui_sessions (id_hash) {
        id_hash -> Text,
        token_id -> Text,
        csrf -> Text,
        held -> Nullable<Binary>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    block_tests (name) {
        name -> Text,
        passed -> Bool,
        code -> Text,
        tested_at -> BigInt,
    }
}

diesel::table! {
    server_heartbeats (server_id) {
        server_id -> Text,
        seen_at -> BigInt,
    }
}
