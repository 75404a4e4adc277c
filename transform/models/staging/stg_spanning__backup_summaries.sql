{{ config(enabled=var('spanning__enable_backups', true)) }}
-- Backup status per tenant, day and workload: the newest row of each key, date as a DATE
-- (target-duckdb stores it as text 'YYYY-MM-DD', target-postgres as a date).
with newest as (
    {{ spanning_newest_rows(
        source('spanning', 'backup_summaries'), ['tenant_id', '"date"', '"type"']
    ) }}
)

select
    tenant_id,
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
