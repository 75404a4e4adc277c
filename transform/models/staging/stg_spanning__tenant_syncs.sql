-- Every run of every tenant, one row per tenant_id, sync_version (a history: all rows).
-- backup_last_day and "day": the tap writes text YYYY-MM-DD (target-duckdb keeps it as text),
-- DATEs here. The counters are those read in the run (null when not read).
select
    tenant_id,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version,
    name as tenant_name,
    cast("day" as date) as "day",
    cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
    cast(finished_at as {{ dbt.type_timestamp() }}) as finished_at,
    status,
    reason,
    cast(users as {{ dbt.type_bigint() }}) as users,
    cast(role_memberships as {{ dbt.type_bigint() }}) as role_memberships,
    cast(requests as {{ dbt.type_bigint() }}) as requests,
    cast(retries as {{ dbt.type_bigint() }}) as retries,
    cast(backup_last_day as date) as backup_last_day,
    cast(licenses as {{ dbt.type_bigint() }}) as licenses,
    cast(archived_licenses as {{ dbt.type_bigint() }}) as archived_licenses,
    cast(assigned_standard as {{ dbt.type_bigint() }}) as assigned_standard,
    cast(assigned_archive as {{ dbt.type_bigint() }}) as assigned_archive,
    cast(role_set_sent as {{ dbt.type_boolean() }}) as role_set_sent
from {{ source('spanning', 'tenant_syncs') }}
