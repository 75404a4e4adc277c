-- Every run of every tenant, one row per tenant_id, sync_version (a history: all rows).
-- backup_last_day: the tap writes text YYYY-MM-DD (target-duckdb keeps it as text), a DATE here.
select
    tenant_id,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version,
    cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
    cast(finished_at as {{ dbt.type_timestamp() }}) as finished_at,
    status,
    reason,
    cast(users as {{ dbt.type_bigint() }}) as users,
    cast(role_memberships as {{ dbt.type_bigint() }}) as role_memberships,
    cast(requests as {{ dbt.type_bigint() }}) as requests,
    cast(retries as {{ dbt.type_bigint() }}) as retries,
    cast(backup_last_day as date) as backup_last_day
from {{ source('spanning', 'tenant_syncs') }}
