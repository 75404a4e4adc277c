-- One row per current user whose Standard license could be reclaimed: assigned, not on an
-- archive license, and deleted from Microsoft, archived or without a Microsoft license.
select
    tenant_id,
    ms_id,
    user_principal_name,
    case
        when holds_deleted_from_microsoft then 'deleted_from_microsoft'
        when holds_archived then 'archived'
        else 'no_microsoft_license'
    end as reason
from {{ ref('int_spanning__users_with_roles') }}
where is_assigned
    and not is_archive
    and (holds_deleted_from_microsoft or holds_archived or holds_no_microsoft_license)
