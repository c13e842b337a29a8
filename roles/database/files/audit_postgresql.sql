-- The audit of data changes (issue 12, item 2; seed 000 "trigger-based audit logging"): who, when, what, for the
-- student tables. Applied by roles/database/tasks/audit.yml as the server's admin; rollcall.owner and
-- rollcall.report name the matrix's roles (set_config before this runs). Idempotent. The function runs as the owner
-- role (SECURITY DEFINER): the app writes audit rows only through the triggers and cannot read, change or delete them.
DO $audit$
DECLARE
  owner text := current_setting('rollcall.owner');
  report text := current_setting('rollcall.report');
BEGIN
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS audit AUTHORIZATION %I', owner);
  CREATE TABLE IF NOT EXISTS audit.data_changes (
    id bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    db_user text NOT NULL,
    actor text,
    table_name text NOT NULL,
    operation text NOT NULL,
    old_row jsonb,
    new_row jsonb
  );
  CREATE INDEX IF NOT EXISTS data_changes_changed_at ON audit.data_changes (changed_at);
  CREATE OR REPLACE FUNCTION audit.record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $record$
  BEGIN
    INSERT INTO audit.data_changes (db_user, actor, table_name, operation, old_row, new_row)
    VALUES (session_user, nullif(current_setting('rollcall.actor', true), ''), TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
  END
  $record$;
  COMMENT ON FUNCTION audit.record() IS 'rollcall audit v1';
  EXECUTE format('ALTER SCHEMA audit OWNER TO %I', owner);
  EXECUTE format('ALTER TABLE audit.data_changes OWNER TO %I', owner);
  EXECUTE format('ALTER FUNCTION audit.record() OWNER TO %I', owner);
  REVOKE ALL ON SCHEMA audit FROM PUBLIC;
  REVOKE ALL ON FUNCTION audit.record() FROM PUBLIC;
  EXECUTE format('GRANT USAGE ON SCHEMA audit TO %I', report);
  EXECUTE format('GRANT SELECT ON audit.data_changes TO %I', report);
END
$audit$;
