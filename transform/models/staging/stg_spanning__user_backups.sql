{{ config(enabled=var('spanning__enable_backups', true)) }}
-- Backup status per user, day and workload: the newest row of each key, date as a DATE.
-- A history: a user gone from the tenant keeps the days already landed.
with newest as (
    {{ spanning_newest_rows(
        source('spanning', 'user_backups'),
        ['tenant_id', '"msId"', '"date"', '"type"']
    ) }}
)

select
    tenant_id,
    "msId" as ms_id,
    "userPrincipalName" as user_principal_name,
    "userId" as user_id,
    cast("date" as date) as "date",
    "type",
    cast(total as {{ dbt.type_bigint() }}) as total,
    cast(successful as {{ dbt.type_bigint() }}) as successful,
    cast(partial as {{ dbt.type_bigint() }}) as partial,
    cast(failed as {{ dbt.type_bigint() }}) as failed,
    cast(items_created as {{ dbt.type_bigint() }}) as items_created,
    cast(items_deleted as {{ dbt.type_bigint() }}) as items_deleted,
    cast(items_failed as {{ dbt.type_bigint() }}) as items_failed,
    cast(items_total as {{ dbt.type_bigint() }}) as items_total,
    cast(attempts as {{ dbt.type_bigint() }}) as attempts,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version
from newest
