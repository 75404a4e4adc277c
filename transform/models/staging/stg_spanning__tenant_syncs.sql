-- Every run of every tenant, one row per tenant_id, sync_version (a history: all rows).
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
    cast(retries as {{ dbt.type_bigint() }}) as retries
from {{ source('spanning', 'tenant_syncs') }}
