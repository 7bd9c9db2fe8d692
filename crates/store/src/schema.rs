//! The schema, as numbered migrations kept in `PRAGMA user_version`.

/// Each entry takes the schema from version `i` to `i + 1`. Never edit one that has shipped: add
/// a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: checkpoints, runs, task states.
    "CREATE TABLE checkpoints (
        task        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        updated_at  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        task         TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        outcome      TEXT,
        disposition  TEXT,
        error        TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX runs_by_task ON runs (task, id);
    CREATE TABLE task_states (
        task        TEXT PRIMARY KEY,
        state       TEXT NOT NULL,
        since       TEXT NOT NULL,
        next_run    TEXT,
        updated_at  TEXT NOT NULL
    ) STRICT;",
    // 2: breaker and pause snapshots, credentials.
    "CREATE TABLE snapshots (
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        until       TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    ) STRICT;
    CREATE TABLE credentials (
        name        TEXT PRIMARY KEY,
        secret      TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    ) STRICT;",
    // 3: what the runner keeps of each task between processes; run summaries.
    "ALTER TABLE task_states ADD COLUMN reason TEXT;
    ALTER TABLE task_states ADD COLUMN last_slot TEXT;
    ALTER TABLE task_states ADD COLUMN last_success TEXT;
    ALTER TABLE task_states ADD COLUMN last_error TEXT;
    ALTER TABLE task_states ADD COLUMN last_disposition TEXT;
    ALTER TABLE task_states ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE task_states ADD COLUMN run_id INTEGER;
    ALTER TABLE runs ADD COLUMN summary TEXT;",
    // 4: the alert outbox: alerts, their deliveries (one per sink), open incidents.
    "CREATE TABLE alerts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        incident    TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('raised', 'recovered')),
        task        TEXT,
        title       TEXT NOT NULL,
        detail      TEXT NOT NULL,
        help        TEXT,
        created_at  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE alert_deliveries (
        alert            INTEGER NOT NULL REFERENCES alerts (id),
        sink             TEXT NOT NULL,
        delivered_at     TEXT,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT,
        PRIMARY KEY (alert, sink)
    ) STRICT;
    CREATE INDEX alert_deliveries_pending ON alert_deliveries (alert) WHERE delivered_at IS NULL;
    CREATE TABLE incidents (
        key        TEXT PRIMARY KEY,
        opened_at  TEXT NOT NULL,
        alert      INTEGER NOT NULL REFERENCES alerts (id)
    ) STRICT;",
    // 5: what engines keep beyond their checkpoint, by task, kind and key.
    "CREATE TABLE entries (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        task        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        UNIQUE (task, kind, key)
    ) STRICT;
    CREATE INDEX entries_in_order ON entries (task, kind, seq);",
    // 6: paces learned from the hosts' throttles.
    "CREATE TABLE paces (
        name        TEXT NOT NULL,
        key         TEXT NOT NULL,
        rate        REAL NOT NULL,
        learned_at  TEXT NOT NULL,
        PRIMARY KEY (name, key)
    ) STRICT;",
    // 7: several runners on one database: task leases, who ran a run, held services by holder.
    "CREATE TABLE leases (
        task         TEXT PRIMARY KEY,
        holder       TEXT NOT NULL,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        instance     INTEGER NOT NULL,
        expires_us   INTEGER NOT NULL,
        released     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    ALTER TABLE runs ADD COLUMN runner TEXT;
    CREATE TABLE held (
        kind        TEXT NOT NULL,
        holder      TEXT NOT NULL,
        key         TEXT NOT NULL,
        until       TEXT NOT NULL,
        until_us    INTEGER NOT NULL,
        PRIMARY KEY (kind, holder, key)
    ) STRICT;
    INSERT INTO held (kind, holder, key, until, until_us)
        SELECT kind, '', key, until, CAST(unixepoch(until, 'subsec') * 1000000 AS INTEGER)
        FROM snapshots;
    DROP TABLE snapshots;",
];

/// The schema version this program writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;
