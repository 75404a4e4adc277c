-- One row per current tenant (one with a current version: its last complete run, not
-- offboarded) and each role tier: how many current users hold the role, and how many of
-- them are disabled. A role nobody holds has a row with 0 members.
with tenants as (
    select tenant_id from {{ ref('tenant_current_versions') }}
),

members as (
    select
        memberships.tenant_id,
        memberships.role_id,
        count(*) as members,
        count(case when users.disabled then 1 end) as disabled_members
    from {{ ref('stg_spanning__role_memberships') }} as memberships
    left join {{ ref('stg_spanning__users') }} as users
        on users.tenant_id = memberships.tenant_id
        and users.ms_id = memberships.ms_id
    group by memberships.tenant_id, memberships.role_id
)

select
    tenants.tenant_id,
    names.tenant_name,
    roles.role_id,
    roles.name as role_name,
    coalesce(members.members, 0) as members,
    coalesce(members.disabled_members, 0) as disabled_members
from tenants
cross join {{ ref('stg_spanning__roles') }} as roles
left join members
    on members.tenant_id = tenants.tenant_id
    and members.role_id = roles.role_id
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = tenants.tenant_id
