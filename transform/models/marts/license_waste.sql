-- One row per current user whose Standard license could be reclaimed: assigned, not on an
-- archive license, and deleted from Microsoft, archived or without a Microsoft license.
-- fleet_overview.wasted_seats counts these rows.
select
    users.tenant_id,
    names.tenant_name,
    users.ms_id,
    users.user_principal_name,
    case
        when users.holds_deleted_from_microsoft then 'deleted_from_microsoft'
        when users.holds_archived then 'archived'
        else 'no_microsoft_license'
    end as reason
from {{ ref('int_spanning__users_with_roles') }} as users
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = users.tenant_id
where users.is_assigned
    and not users.is_archive
    and (
        users.holds_deleted_from_microsoft
        or users.holds_archived
        or users.holds_no_microsoft_license
    )
