-- The current-rows rule, as views (README, "Many tenants"). Runs unchanged on DuckDB and
-- PostgreSQL (on PostgreSQL, SET search_path TO <the tap's schema> first).
--
-- A row of tenant T is current when its sync_version is at least the greatest
-- sync_version of T's complete tenant_syncs rows; a tenant that never completed has no
-- current rows. Of several rows with one key (a loader that appends), the newest is the
-- one shown. So removals land per tenant, even while another tenant fails, whatever the
-- loader: upsert or append, with or without ACTIVATE_VERSION.

-- Each tenant's last complete run.
CREATE OR REPLACE VIEW tenant_current_versions AS
SELECT tenant_id, max(sync_version) AS sync_version
FROM tenant_syncs
WHERE status = 'complete'
GROUP BY tenant_id;

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
