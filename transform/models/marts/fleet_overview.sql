-- One row per tenant that appears in tenant_syncs: licenses and their use, admins, seats that
-- could be reclaimed, users left unprotected, how its syncs and its backups are going.
-- A tenant that never completed a sync has no current rows: its counts are 0, its license
-- columns null. So has an offboarded tenant (is_offboarded: a tenant of its newest run has
-- run since without it), whose backup figures are null too: its row says when it was last
-- synced, and no fleet figure counts it.
with health as (
    select * from {{ ref('tenant_sync_health') }}
),

tenants as (
    select * from {{ ref('stg_spanning__tenants') }}
),

users as (
    select
        tenant_id,
        count(*) as users,
        count(case when is_assigned then 1 end) as licensed_users,
        count(case when is_disabled and is_assigned and not is_archive then 1 end)
            as wasted_seats,
        count(case when not is_disabled and not is_assigned then 1 end)
            as unprotected_active_users,
        count(case when is_disabled and (is_global_admin or is_spanning_admin) then 1 end)
            as disabled_admins
    from {{ ref('int_spanning__users_with_roles') }}
    group by tenant_id
),

admins as (
    select
        tenant_id,
        count(case when role_id = 'global_admin' then 1 end) as global_admins,
        count(case when role_id = 'spanning_admin' then 1 end) as spanning_admins
    from {{ ref('stg_spanning__role_memberships') }}
    group by tenant_id
),

backups as (
    select
        tenant_id,
        sum(case when "date" = {{ spanning_days_ago(1) }} then successful end)
            as successful_yesterday,
        sum(case when "date" = {{ spanning_days_ago(1) }} then total end) as total_yesterday,
        sum(case when "date" >= {{ spanning_days_ago(7) }} then successful end)
            as successful_7d,
        sum(case when "date" >= {{ spanning_days_ago(7) }} then total end) as total_7d
    from {{ ref('stg_spanning__backup_summaries') }}
    where "date" >= {{ spanning_days_ago(7) }}
        and "date" < current_date
    group by tenant_id
)

select
    health.tenant_id,
    tenants.status as license_status,
    coalesce(users.users, 0) as users,
    coalesce(users.licensed_users, 0) as licensed_users,
    tenants.licenses,
    tenants.archived_licenses,
    tenants.assigned_standard,
    tenants.assigned_archive,
    case
        when tenants.licenses > 0
            then 100 * cast(tenants.assigned_standard as double precision) / tenants.licenses
    end as seat_use_pct,
    case
        when tenants.archived_licenses > 0
            then 100 * cast(tenants.assigned_archive as double precision)
                / tenants.archived_licenses
    end as archive_seat_use_pct,
    coalesce(admins.global_admins, 0) as global_admins,
    coalesce(admins.spanning_admins, 0) as spanning_admins,
    coalesce(users.disabled_admins, 0) as disabled_admins,
    coalesce(users.wasted_seats, 0) as wasted_seats,
    coalesce(users.unprotected_active_users, 0) as unprotected_active_users,
    health.last_complete_at as last_complete_sync_at,
    health.consecutive_failed_runs as failed_syncs_in_a_row,
    case
        when backups.total_yesterday > 0
            then 100 * cast(backups.successful_yesterday as double precision)
                / backups.total_yesterday
    end as backup_success_yesterday_pct,
    case
        when backups.total_7d > 0
            then 100 * cast(backups.successful_7d as double precision) / backups.total_7d
    end as backup_success_7d_pct,
    health.is_offboarded
from health
left join tenants
    on tenants.tenant_id = health.tenant_id
left join users
    on users.tenant_id = health.tenant_id
left join admins
    on admins.tenant_id = health.tenant_id
left join backups
    on backups.tenant_id = health.tenant_id
    and not health.is_offboarded
