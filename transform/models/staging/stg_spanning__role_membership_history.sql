-- Every role set a run sent, one row per tenant_id, sync_version, role_id, ms_id (a
-- history: all rows, failed runs' included). A set counts only when its run is complete
-- and says it sent one (stg_spanning__tenant_syncs.role_set_sent): role_changes applies it.
select
    tenant_id,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version,
    "roleId" as role_id,
    "msId" as ms_id,
    "userPrincipalName" as user_principal_name
from {{ source('spanning', 'role_membership_history') }}
