-- One row per admin membership (global_admin, spanning_admin) of a current user: who holds
-- admin rights, and which of them should not (disabled, deleted from Microsoft, without a
-- Microsoft license, archived).
with memberships as (
    select * from {{ ref('stg_spanning__role_memberships') }}
    where role_id in ('global_admin', 'spanning_admin')
),

users as (
    select * from {{ ref('int_spanning__users_with_roles') }}
)

select
    memberships.tenant_id,
    names.tenant_name,
    memberships.ms_id,
    coalesce(users.user_principal_name, memberships.user_principal_name) as user_principal_name,
    users.display_name,
    memberships.role_id,
    coalesce(users.is_disabled, false) as is_disabled,
    coalesce(users.holds_deleted_from_microsoft, false) as is_deleted_from_microsoft,
    coalesce(users.holds_no_microsoft_license, false) as has_no_microsoft_license,
    coalesce(users.holds_archived, false) as is_archived,
    (
        coalesce(users.is_disabled, false)
        or coalesce(users.holds_deleted_from_microsoft, false)
        or coalesce(users.holds_no_microsoft_license, false)
        or coalesce(users.holds_archived, false)
    ) as needs_review
from memberships
left join users
    on users.tenant_id = memberships.tenant_id
    and users.ms_id = memberships.ms_id
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = memberships.tenant_id
