-- Each tenant's current license counters (the current-rows rule), one row per tenant_id:
-- those of its last complete sync, or of a later one. A tenant that never completed has none.
select
    tenant_id,
    name as tenant_name,
    region,
    base_url,
    cast(licenses as {{ dbt.type_bigint() }}) as licenses,
    cast("archivedLicenses" as {{ dbt.type_bigint() }}) as archived_licenses,
    cast(users as {{ dbt.type_bigint() }}) as users,
    cast(assigned as {{ dbt.type_bigint() }}) as assigned,
    cast("assignedStandard" as {{ dbt.type_bigint() }}) as assigned_standard,
    cast("assignedArchive" as {{ dbt.type_bigint() }}) as assigned_archive,
    status,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version
from {{ ref('current_tenants') }}
