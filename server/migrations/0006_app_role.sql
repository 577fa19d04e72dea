-- The application's privileges, apart from the schema owner's: the group
-- role paytrackr_app may read and write rows, nothing else (no DDL, no
-- TRUNCATE, no changing the migration record). `paytrackr-server migrate`
-- makes the application's login role a member of it when it runs with
-- PAYTRACKR_MIGRATE_DATABASE_URL or PAYTRACKR_MIGRATE_KEYVAULT_SECRET.
--
-- Roles belong to the whole cluster, so the role may exist already (another
-- database, a concurrent migration), and a migrating role without
-- CREATEROLE cannot make it: the grants are then skipped, as they would
-- have nobody to go to.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytrackr_app') THEN
        BEGIN
            CREATE ROLE paytrackr_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN
            NULL;
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytrackr_app') THEN
        GRANT USAGE ON SCHEMA public TO paytrackr_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO paytrackr_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO paytrackr_app;
        REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM paytrackr_app;
        -- Tables and sequences later migrations create (as this role).
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO paytrackr_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT ON SEQUENCES TO paytrackr_app;
    END IF;
END
$$;
