-- Current role memberships (the current-rows rule), one row per tenant_id, role_id, ms_id.
with current_rows as (
    {{ spanning_current_rows(
        source('spanning', 'role_memberships'), ['tenant_id', '"roleId"', '"msId"']
    ) }}
)

select
    tenant_id,
    "roleId" as role_id,
    "msId" as ms_id,
    "userPrincipalName" as user_principal_name,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version
from current_rows
