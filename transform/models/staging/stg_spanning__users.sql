-- Current users (the current-rows rule: the model current_users), one row per
-- tenant_id, ms_id. Flags stay as the tap sent them (null when the API left one out).
select
    tenant_id,
    "msId" as ms_id,
    "userPrincipalName" as user_principal_name,
    email,
    "displayName" as display_name,
    assigned,
    "isAdmin" as is_admin,
    "isDeleted" as is_deleted,
    "isArchive" as is_archive,
    tags,
    disabled,
    cast(sync_version as {{ dbt.type_bigint() }}) as sync_version
from {{ ref('current_users') }}
