-- npztui catalog, PostgreSQL dialect, version 1.
-- Same logical schema as migrations/sqlite/0001_initial.sql, in schema "npztui".
--
-- rev: a server-wide revision from npztui.rev_seq, assigned by trigger on every
-- INSERT/UPDATE, so clients pull "rows with rev > N". The trigger takes a shared
-- advisory lock (7263, 1) for the rest of the writing transaction and
-- npztui.safe_revision() takes it exclusively for an instant: every revision at
-- or below the value it returns belongs to a finished transaction, so a pull
-- never skips a row committed late with a lower revision.
--
-- Security: tables are owned by the role that runs migrations and use FORCE ROW
-- LEVEL SECURITY, so even that owner is filtered (only superusers and BYPASSRLS
-- roles are not). A row is visible to its owner (current_user) or when
-- is_public; only its owner may insert, change or delete it. Privileges go to
-- PUBLIC: who may connect at all is decided by CONNECT / pg_hba.conf.
-- Views are security_invoker so they do not leak rows past the policies.

CREATE SEQUENCE npztui.rev_seq AS bigint;

CREATE TABLE npztui.server_info (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    server_id   uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO npztui.server_info DEFAULT VALUES;

CREATE FUNCTION npztui.assign_rev() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, npztui AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7263, 1);
    NEW.rev := nextval('npztui.rev_seq');
    RETURN NEW;
END
$$;

CREATE FUNCTION npztui.safe_revision() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, npztui AS $$
DECLARE
    v bigint;
    called boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(7263, 1);
    SELECT last_value, is_called INTO v, called FROM npztui.rev_seq;
    RETURN CASE WHEN called THEN v ELSE 0 END;
END
$$;

CREATE TABLE npztui.user_profiles (
    id                  uuid PRIMARY KEY,
    owner               text NOT NULL DEFAULT current_user,
    display_name        text,
    default_grid_size   integer NOT NULL DEFAULT 5 CHECK (default_grid_size > 0),
    default_min_freq    double precision NOT NULL DEFAULT 0.1 CHECK (default_min_freq > 0),
    default_max_freq    double precision NOT NULL DEFAULT 100000 CHECK (default_max_freq > default_min_freq),
    default_num_points  integer NOT NULL DEFAULT 100 CHECK (default_num_points > 0),
    settings            jsonb NOT NULL DEFAULT '{}',
    is_public           boolean NOT NULL DEFAULT false,
    origin              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    rev                 bigint NOT NULL DEFAULT 0,
    deleted             boolean NOT NULL DEFAULT false,
    UNIQUE (owner)
);

CREATE TABLE npztui.circuit_configurations (
    id                  uuid PRIMARY KEY,
    owner               text NOT NULL DEFAULT current_user,
    name                text NOT NULL CHECK (length(name) > 0),
    description         text,
    circuit_parameters  jsonb NOT NULL DEFAULT '{}',
    grid_size           integer NOT NULL DEFAULT 5 CHECK (grid_size > 0),
    min_freq            double precision NOT NULL DEFAULT 0.1 CHECK (min_freq > 0),
    max_freq            double precision NOT NULL DEFAULT 100000 CHECK (max_freq > min_freq),
    num_points          integer NOT NULL DEFAULT 100 CHECK (num_points > 0),
    is_public           boolean NOT NULL DEFAULT false,
    origin              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    rev                 bigint NOT NULL DEFAULT 0,
    deleted             boolean NOT NULL DEFAULT false
);

CREATE TABLE npztui.user_sessions (
    id                          uuid PRIMARY KEY,
    owner                       text NOT NULL DEFAULT current_user,
    session_name                text NOT NULL CHECK (length(session_name) > 0),
    current_circuit_config_id   uuid REFERENCES npztui.circuit_configurations (id),
    settings                    jsonb NOT NULL DEFAULT '{}',
    total_computations          integer NOT NULL DEFAULT 0 CHECK (total_computations >= 0),
    total_models_generated      integer NOT NULL DEFAULT 0 CHECK (total_models_generated >= 0),
    total_tagged                integer NOT NULL DEFAULT 0 CHECK (total_tagged >= 0),
    last_active                 timestamptz,
    is_public                   boolean NOT NULL DEFAULT false,
    origin                      text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    rev                         bigint NOT NULL DEFAULT 0,
    deleted                     boolean NOT NULL DEFAULT false
);

CREATE TABLE npztui.datasets (
    id                  uuid PRIMARY KEY,
    owner               text NOT NULL DEFAULT current_user,
    data_root           text NOT NULL DEFAULT '',
    path                text NOT NULL CHECK (length(path) > 0),
    filename            text NOT NULL,
    kind                text NOT NULL DEFAULT 'generic',
    sha256_16           text,
    size                bigint CHECK (size >= 0),
    mtime_ns            bigint,
    rows                bigint CHECK (rows >= 0),
    n_frequencies       integer CHECK (n_frequencies >= 0),
    grid_size           integer CHECK (grid_size >= 0),
    freq_min            double precision,
    freq_max            double precision,
    best_resnorm        double precision,
    metadata            jsonb NOT NULL DEFAULT '{}',
    arrays              jsonb NOT NULL DEFAULT '[]',
    findings            jsonb NOT NULL DEFAULT '{}',
    storage_location    text NOT NULL DEFAULT 'local' CHECK (storage_location IN ('local', 'cloud', 'hybrid')),
    is_available        boolean NOT NULL DEFAULT true,
    circuit_config_id   uuid REFERENCES npztui.circuit_configurations (id),
    session_id          uuid REFERENCES npztui.user_sessions (id),
    is_public           boolean NOT NULL DEFAULT false,
    origin              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    rev                 bigint NOT NULL DEFAULT 0,
    deleted             boolean NOT NULL DEFAULT false,
    UNIQUE (owner, path)
);

CREATE TABLE npztui.tags (
    id                      uuid PRIMARY KEY,
    owner                   text NOT NULL DEFAULT current_user,
    dataset_id              uuid NOT NULL REFERENCES npztui.datasets (id),
    row_index               integer NOT NULL CHECK (row_index >= 0),
    label                   text NOT NULL CHECK (length(label) > 0),
    category                text,
    notes                   text,
    quality_score           double precision CHECK (quality_score >= 0 AND quality_score <= 1),
    is_reference            boolean NOT NULL DEFAULT false,
    resnorm                 double precision,
    parameters              jsonb,
    frequency_index_start   integer CHECK (frequency_index_start >= 0),
    frequency_index_end     integer CHECK (frequency_index_end >= frequency_index_start),
    is_public               boolean NOT NULL DEFAULT false,
    origin                  text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    rev                     bigint NOT NULL DEFAULT 0,
    deleted                 boolean NOT NULL DEFAULT false,
    UNIQUE (dataset_id, owner, row_index)
);

CREATE TABLE npztui.runs (
    id                  uuid PRIMARY KEY,
    owner               text NOT NULL DEFAULT current_user,
    name                text,
    dataset_id          uuid REFERENCES npztui.datasets (id),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    config              jsonb NOT NULL DEFAULT '{}',
    best_score          double precision,
    iterations          integer NOT NULL DEFAULT 0 CHECK (iterations >= 0),
    samples_evaluated   bigint NOT NULL DEFAULT 0 CHECK (samples_evaluated >= 0),
    started_at          timestamptz,
    finished_at         timestamptz,
    error_message       text,
    tags                jsonb NOT NULL DEFAULT '[]',
    is_public           boolean NOT NULL DEFAULT false,
    origin              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    rev                 bigint NOT NULL DEFAULT 0,
    deleted             boolean NOT NULL DEFAULT false,
    CHECK (finished_at IS NULL OR status IN ('completed', 'failed', 'cancelled'))
);

CREATE TABLE npztui.run_iterations (
    id              uuid PRIMARY KEY,
    owner           text NOT NULL DEFAULT current_user,
    run_id          uuid NOT NULL REFERENCES npztui.runs (id),
    iteration       integer NOT NULL CHECK (iteration >= 0),
    best_score      double precision,
    rows_done       bigint CHECK (rows_done >= 0),
    elapsed_s       double precision CHECK (elapsed_s >= 0),
    is_public       boolean NOT NULL DEFAULT false,
    origin          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    rev             bigint NOT NULL DEFAULT 0,
    deleted         boolean NOT NULL DEFAULT false,
    UNIQUE (run_id, iteration)
);

-- Triggers, row-level security, indexes and grants: identical for every table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['user_profiles', 'circuit_configurations', 'user_sessions',
                             'datasets', 'tags', 'runs', 'run_iterations']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON npztui.%I '
                       'FOR EACH ROW EXECUTE FUNCTION npztui.assign_rev()', t || '_rev', t);
        EXECUTE format('CREATE INDEX %I ON npztui.%I (rev)', t || '_rev_idx', t);
        EXECUTE format('CREATE INDEX %I ON npztui.%I (owner)', t || '_owner_idx', t);
        EXECUTE format('ALTER TABLE npztui.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE npztui.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON npztui.%I FOR SELECT '
                       'USING (owner = current_user OR is_public)', t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON npztui.%I FOR INSERT '
                       'WITH CHECK (owner = current_user)', t || '_insert', t);
        EXECUTE format('CREATE POLICY %I ON npztui.%I FOR UPDATE '
                       'USING (owner = current_user) WITH CHECK (owner = current_user)', t || '_update', t);
        EXECUTE format('CREATE POLICY %I ON npztui.%I FOR DELETE '
                       'USING (owner = current_user)', t || '_delete', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON npztui.%I TO PUBLIC', t);
    END LOOP;
END
$$;

CREATE INDEX datasets_root_idx ON npztui.datasets (data_root, path);
CREATE INDEX tags_dataset_idx ON npztui.tags (dataset_id);
CREATE INDEX runs_leaderboard_idx ON npztui.runs (best_score);
CREATE INDEX run_iterations_run_idx ON npztui.run_iterations (run_id);

CREATE VIEW npztui.datasets_with_config WITH (security_invoker = true) AS
SELECT d.*,
       c.name               AS config_name,
       c.circuit_parameters AS config_parameters,
       c.grid_size          AS config_grid_size,
       c.min_freq           AS config_min_freq,
       c.max_freq           AS config_max_freq,
       c.num_points         AS config_num_points
FROM npztui.datasets d
LEFT JOIN npztui.circuit_configurations c ON c.id = d.circuit_config_id AND NOT c.deleted
WHERE NOT d.deleted;

CREATE VIEW npztui.tag_summary WITH (security_invoker = true) AS
SELECT t.dataset_id                                  AS dataset_id,
       count(*)                                      AS tag_count,
       count(*) FILTER (WHERE t.is_reference)        AS reference_count,
       count(DISTINCT t.category)                    AS category_count,
       avg(t.quality_score)                          AS avg_quality,
       max(t.quality_score)                          AS best_quality,
       min(t.resnorm)                                AS best_resnorm,
       max(t.updated_at)                             AS last_tagged_at
FROM npztui.tags t
WHERE NOT t.deleted
GROUP BY t.dataset_id;

GRANT USAGE ON SCHEMA npztui TO PUBLIC;
GRANT SELECT ON npztui.server_info, npztui.datasets_with_config, npztui.tag_summary TO PUBLIC;
GRANT EXECUTE ON FUNCTION npztui.safe_revision() TO PUBLIC;
