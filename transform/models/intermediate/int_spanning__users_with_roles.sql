-- Each current user with a flag per role that the marts look at, and its protection: what
-- Spanning can do for it, were it licensed (models/docs.md, "protection"); a table, read by
-- several marts.
with memberships as (
    select * from {{ ref('stg_spanning__role_memberships') }}
),

held as (
    select
        tenant_id,
        ms_id,
        {{ dbt.bool_or("role_id = 'global_admin'") }} as is_global_admin,
        {{ dbt.bool_or("role_id = 'spanning_admin'") }} as is_spanning_admin,
        {{ dbt.bool_or("role_id = 'shared_mailbox'") }} as holds_shared_mailbox,
        {{ dbt.bool_or("role_id = 'archived'") }} as holds_archived,
        {{ dbt.bool_or("role_id = 'no_microsoft_license'") }} as holds_no_microsoft_license,
        {{ dbt.bool_or("role_id = 'deleted_from_microsoft'") }} as holds_deleted_from_microsoft
    from memberships
    group by tenant_id, ms_id
),

flagged as (
    select
        users.tenant_id,
        users.ms_id,
        users.user_principal_name,
        users.display_name,
        coalesce(users.assigned, false) as is_assigned,
        coalesce(users.is_archive, false) as is_archive,
        coalesce(users.is_deleted, false) as is_deleted,
        coalesce(users.disabled, false) as is_disabled,
        coalesce(held.is_global_admin, false) as is_global_admin,
        coalesce(held.is_spanning_admin, false) as is_spanning_admin,
        coalesce(held.holds_shared_mailbox, false) as holds_shared_mailbox,
        coalesce(held.holds_archived, false) as holds_archived,
        coalesce(held.holds_no_microsoft_license, false) as holds_no_microsoft_license,
        coalesce(held.holds_deleted_from_microsoft, false) as holds_deleted_from_microsoft
    from {{ ref('stg_spanning__users') }} as users
    left join held
        on held.tenant_id = users.tenant_id
        and held.ms_id = users.ms_id
)

select
    flagged.*,
    -- An archive license, archived, deleted or without a Microsoft license: nothing to back
    -- up; else a shared mailbox is counted apart; else a user Spanning can protect.
    case
        when is_archive
            or is_deleted
            or holds_archived
            or holds_no_microsoft_license
            or holds_deleted_from_microsoft
            then 'not_protectable'
        when holds_shared_mailbox then 'shared_mailbox'
        else 'protectable'
    end as protection
from flagged
