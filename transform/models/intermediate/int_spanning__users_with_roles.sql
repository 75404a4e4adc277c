-- Each current user with a flag per role that the marts look at; a table, read by three marts.
with memberships as (
    select * from {{ ref('stg_spanning__role_memberships') }}
),

held as (
    select
        tenant_id,
        ms_id,
        {{ dbt.bool_or("role_id = 'global_admin'") }} as is_global_admin,
        {{ dbt.bool_or("role_id = 'spanning_admin'") }} as is_spanning_admin,
        {{ dbt.bool_or("role_id = 'archived'") }} as holds_archived,
        {{ dbt.bool_or("role_id = 'no_microsoft_license'") }} as holds_no_microsoft_license,
        {{ dbt.bool_or("role_id = 'deleted_from_microsoft'") }} as holds_deleted_from_microsoft
    from memberships
    group by tenant_id, ms_id
)

select
    users.tenant_id,
    users.ms_id,
    users.user_principal_name,
    users.display_name,
    coalesce(users.assigned, false) as is_assigned,
    coalesce(users.is_archive, false) as is_archive,
    coalesce(users.disabled, false) as is_disabled,
    coalesce(held.is_global_admin, false) as is_global_admin,
    coalesce(held.is_spanning_admin, false) as is_spanning_admin,
    coalesce(held.holds_archived, false) as holds_archived,
    coalesce(held.holds_no_microsoft_license, false) as holds_no_microsoft_license,
    coalesce(held.holds_deleted_from_microsoft, false) as holds_deleted_from_microsoft
from {{ ref('stg_spanning__users') }} as users
left join held
    on held.tenant_id = users.tenant_id
    and held.ms_id = users.ms_id
