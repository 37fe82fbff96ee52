-- npztui catalog, SQLite dialect, version 1.
-- Same logical schema as migrations/postgres/0001_initial.sql.
-- Ids are client-generated UUID text; timestamps are UTC ISO-8601 text with
-- microseconds ("2026-01-02T03:04:05.123456Z") so they sort as strings.
-- rev = the server revision this row was last seen at (0: never synced).

CREATE TABLE user_profiles (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner               TEXT NOT NULL,
    display_name        TEXT,
    default_grid_size   INTEGER NOT NULL DEFAULT 5 CHECK (default_grid_size > 0),
    default_min_freq    REAL NOT NULL DEFAULT 0.1 CHECK (default_min_freq > 0),
    default_max_freq    REAL NOT NULL DEFAULT 100000 CHECK (default_max_freq > default_min_freq),
    default_num_points  INTEGER NOT NULL DEFAULT 100 CHECK (default_num_points > 0),
    settings            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    is_public           INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin              TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                 INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    UNIQUE (owner)
);

CREATE TABLE circuit_configurations (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner               TEXT NOT NULL,
    name                TEXT NOT NULL CHECK (length(name) > 0),
    description         TEXT,
    circuit_parameters  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(circuit_parameters)),
    grid_size           INTEGER NOT NULL DEFAULT 5 CHECK (grid_size > 0),
    min_freq            REAL NOT NULL DEFAULT 0.1 CHECK (min_freq > 0),
    max_freq            REAL NOT NULL DEFAULT 100000 CHECK (max_freq > min_freq),
    num_points          INTEGER NOT NULL DEFAULT 100 CHECK (num_points > 0),
    is_public           INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin              TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                 INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
);
CREATE INDEX circuit_configurations_owner ON circuit_configurations (owner);

CREATE TABLE user_sessions (
    id                          TEXT PRIMARY KEY NOT NULL,
    owner                       TEXT NOT NULL,
    session_name                TEXT NOT NULL CHECK (length(session_name) > 0),
    current_circuit_config_id   TEXT REFERENCES circuit_configurations (id) DEFERRABLE INITIALLY DEFERRED,
    settings                    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    total_computations          INTEGER NOT NULL DEFAULT 0 CHECK (total_computations >= 0),
    total_models_generated      INTEGER NOT NULL DEFAULT 0 CHECK (total_models_generated >= 0),
    total_tagged                INTEGER NOT NULL DEFAULT 0 CHECK (total_tagged >= 0),
    last_active                 TEXT,
    is_public                   INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin                      TEXT,
    created_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                         INTEGER NOT NULL DEFAULT 0,
    deleted                     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
);
CREATE INDEX user_sessions_owner ON user_sessions (owner, last_active);

CREATE TABLE datasets (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner               TEXT NOT NULL,
    data_root           TEXT NOT NULL DEFAULT '',
    path                TEXT NOT NULL CHECK (length(path) > 0),
    filename            TEXT NOT NULL,
    kind                TEXT NOT NULL DEFAULT 'generic',
    sha256_16           TEXT,
    size                INTEGER CHECK (size >= 0),
    mtime_ns            INTEGER,
    rows                INTEGER CHECK (rows >= 0),
    n_frequencies       INTEGER CHECK (n_frequencies >= 0),
    grid_size           INTEGER CHECK (grid_size >= 0),
    freq_min            REAL,
    freq_max            REAL,
    best_resnorm        REAL,
    metadata            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    arrays              TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(arrays)),
    findings            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(findings)),
    storage_location    TEXT NOT NULL DEFAULT 'local' CHECK (storage_location IN ('local', 'cloud', 'hybrid')),
    is_available        INTEGER NOT NULL DEFAULT 1 CHECK (is_available IN (0, 1)),
    circuit_config_id   TEXT REFERENCES circuit_configurations (id) DEFERRABLE INITIALLY DEFERRED,
    session_id          TEXT REFERENCES user_sessions (id) DEFERRABLE INITIALLY DEFERRED,
    is_public           INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin              TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                 INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    UNIQUE (owner, path)
);
CREATE INDEX datasets_root ON datasets (data_root, path);
CREATE INDEX datasets_kind ON datasets (kind);
CREATE INDEX datasets_config ON datasets (circuit_config_id);

CREATE TABLE tags (
    id                      TEXT PRIMARY KEY NOT NULL,
    owner                   TEXT NOT NULL,
    dataset_id              TEXT NOT NULL REFERENCES datasets (id) DEFERRABLE INITIALLY DEFERRED,
    row_index               INTEGER NOT NULL CHECK (row_index >= 0),
    label                   TEXT NOT NULL CHECK (length(label) > 0),
    category                TEXT,
    notes                   TEXT,
    quality_score           REAL CHECK (quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)),
    is_reference            INTEGER NOT NULL DEFAULT 0 CHECK (is_reference IN (0, 1)),
    resnorm                 REAL,
    parameters              TEXT CHECK (parameters IS NULL OR json_valid(parameters)),
    frequency_index_start   INTEGER CHECK (frequency_index_start >= 0),
    frequency_index_end     INTEGER CHECK (frequency_index_end >= frequency_index_start),
    is_public               INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin                  TEXT,
    created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                     INTEGER NOT NULL DEFAULT 0,
    deleted                 INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    UNIQUE (dataset_id, owner, row_index)
);
CREATE INDEX tags_owner ON tags (owner);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner               TEXT NOT NULL,
    name                TEXT,
    dataset_id          TEXT REFERENCES datasets (id) DEFERRABLE INITIALLY DEFERRED,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    config              TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
    best_score          REAL,
    iterations          INTEGER NOT NULL DEFAULT 0 CHECK (iterations >= 0),
    samples_evaluated   INTEGER NOT NULL DEFAULT 0 CHECK (samples_evaluated >= 0),
    started_at          TEXT,
    finished_at         TEXT,
    error_message       TEXT,
    tags                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    is_public           INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin              TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev                 INTEGER NOT NULL DEFAULT 0,
    deleted             INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    CHECK (finished_at IS NULL OR status IN ('completed', 'failed', 'cancelled'))
);
CREATE INDEX runs_leaderboard ON runs (best_score);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_dataset ON runs (dataset_id);

CREATE TABLE run_iterations (
    id              TEXT PRIMARY KEY NOT NULL,
    owner           TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    iteration       INTEGER NOT NULL CHECK (iteration >= 0),
    best_score      REAL,
    rows_done       INTEGER CHECK (rows_done >= 0),
    elapsed_s       REAL CHECK (elapsed_s >= 0),
    is_public       INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    origin          TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    rev             INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    UNIQUE (run_id, iteration)
);

-- Views: live rows only.
CREATE VIEW datasets_with_config AS
SELECT d.*,
       c.name               AS config_name,
       c.circuit_parameters AS config_parameters,
       c.grid_size          AS config_grid_size,
       c.min_freq           AS config_min_freq,
       c.max_freq           AS config_max_freq,
       c.num_points         AS config_num_points
FROM datasets d
LEFT JOIN circuit_configurations c ON c.id = d.circuit_config_id AND c.deleted = 0
WHERE d.deleted = 0;

CREATE VIEW tag_summary AS
SELECT t.dataset_id                                  AS dataset_id,
       count(*)                                      AS tag_count,
       sum(t.is_reference)                           AS reference_count,
       count(DISTINCT t.category)                    AS category_count,
       avg(t.quality_score)                          AS avg_quality,
       max(t.quality_score)                          AS best_quality,
       min(t.resnorm)                                AS best_resnorm,
       max(t.updated_at)                             AS last_tagged_at
FROM tags t
WHERE t.deleted = 0
GROUP BY t.dataset_id;

-- Local-only bookkeeping (never synced).
-- One entry per local change, written in the same transaction as the change.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name  TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    created_at  TEXT NOT NULL
);
CREATE INDEX outbox_row ON outbox (table_name, row_id);

-- Key/value: owner, client_id, server_id, last_pulled_rev, last_sync_at, ...
CREATE TABLE sync_state (
    key     TEXT PRIMARY KEY NOT NULL,
    value   TEXT
);

-- The losing side of each concurrent edit, kept so nothing is silently lost.
CREATE TABLE conflicts (
    id              TEXT PRIMARY KEY NOT NULL,
    table_name      TEXT NOT NULL,
    row_id          TEXT NOT NULL,
    winner          TEXT NOT NULL CHECK (winner IN ('local', 'server')),
    local_version   TEXT NOT NULL CHECK (json_valid(local_version)),
    server_version  TEXT NOT NULL CHECK (json_valid(server_version)),
    detected_at     TEXT NOT NULL,
    resolved        INTEGER NOT NULL DEFAULT 0 CHECK (resolved IN (0, 1))
);
CREATE INDEX conflicts_row ON conflicts (table_name, row_id);
