-- The current-rows rule, as views (README, "Many tenants"). Runs unchanged on DuckDB and
-- PostgreSQL (on PostgreSQL, SET search_path TO <the tap's schema> first).
--
-- A row of tenant T is current when its sync_version is at least the greatest
-- sync_version of T's complete tenant_syncs rows; a tenant that never completed has no
-- current rows, nor has an offboarded tenant (no longer configured). Of several rows with
-- one key (a loader that appends), the newest is the one shown. So removals land per
-- tenant, even while another tenant fails, whatever the loader: upsert or append, with or
-- without ACTIVATE_VERSION. transform/macros/spanning_current_rows.sql is the same rule.

-- Offboarded: T is offboarded when another tenant that ran in T's newest run has run since
-- without T. The tenants of one job share each run's sync_version, and every tenant
-- configured in a run, failed or not, gets a tenant_syncs row of it when the run writes
-- records: a job that drops T runs its other tenants again without it, while another job
-- (a shard) loading this schema never runs T's run-mates, so shards keep their tenants. A
-- job whose tenants are all removed at once (a one-tenant job, say) leaves nobody to run
-- again: its tenants are never offboarded. Their history is kept; none of their rows is
-- current.
--
-- moved_on is every run one of whose tenants has run since: one pass over tenant_syncs
-- joined to each tenant's newest run by tenant_id. Pairing each tenant with its run-mates
-- instead would cost n^2 rows for a fleet of n tenants in one job.
CREATE OR REPLACE VIEW offboarded_tenants AS
WITH newest AS (
  SELECT tenant_id, max(sync_version) AS sync_version
  FROM tenant_syncs
  GROUP BY tenant_id
),
moved_on AS (
  SELECT DISTINCT earlier.sync_version
  FROM tenant_syncs AS earlier
  JOIN newest ON newest.tenant_id = earlier.tenant_id AND newest.sync_version > earlier.sync_version
)
SELECT newest.tenant_id, newest.sync_version AS last_sync_version
FROM newest
JOIN moved_on ON moved_on.sync_version = newest.sync_version;

-- Each tenant's last complete run, unless it is offboarded.
CREATE OR REPLACE VIEW tenant_current_versions AS
SELECT s.tenant_id, max(s.sync_version) AS sync_version
FROM tenant_syncs AS s
WHERE s.status = 'complete'
  AND NOT EXISTS (SELECT 1 FROM offboarded_tenants AS o WHERE o.tenant_id = s.tenant_id)
GROUP BY s.tenant_id;

CREATE OR REPLACE VIEW current_users AS
SELECT u.*
FROM users AS u
JOIN tenant_current_versions AS c
  ON c.tenant_id = u.tenant_id AND u.sync_version >= c.sync_version
WHERE NOT EXISTS (
  SELECT 1 FROM users AS n
  WHERE n.tenant_id = u.tenant_id AND n."msId" = u."msId" AND n.sync_version > u.sync_version
);

CREATE OR REPLACE VIEW current_role_memberships AS
SELECT m.*
FROM role_memberships AS m
JOIN tenant_current_versions AS c
  ON c.tenant_id = m.tenant_id AND m.sync_version >= c.sync_version
WHERE NOT EXISTS (
  SELECT 1 FROM role_memberships AS n
  WHERE n.tenant_id = m.tenant_id AND n."roleId" = m."roleId" AND n."msId" = m."msId"
    AND n.sync_version > m.sync_version
);

CREATE OR REPLACE VIEW current_tenants AS
SELECT t.*
FROM tenants AS t
JOIN tenant_current_versions AS c
  ON c.tenant_id = t.tenant_id AND t.sync_version >= c.sync_version
WHERE NOT EXISTS (
  SELECT 1 FROM tenants AS n
  WHERE n.tenant_id = t.tenant_id AND n.sync_version > t.sync_version
);
