-- The tap's role_memberships table, current rows only: every column as loaded, one row per
-- tenant_id, "roleId", "msId".
{{ spanning_current_rows(
    source('spanning', 'role_memberships'), ['tenant_id', '"roleId"', '"msId"']
) }}
