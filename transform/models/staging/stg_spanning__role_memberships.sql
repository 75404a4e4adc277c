-- Current role memberships (the current-rows rule), one row per tenant_id, role_id, ms_id.
select
    tenant_id,
    "roleId" as role_id,
    "msId" as ms_id,
    "userPrincipalName" as user_principal_name,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version
from {{ ref('current_role_memberships') }}
