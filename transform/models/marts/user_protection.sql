{{ config(enabled=var('spanning__enable_backups', true)) }}
-- One row per current user holding a Spanning license (assigned) and per-user workload
-- (MAIL, CALENDAR, CONTACT, DRIVE): its protection (models/docs.md), the newest day its
-- backup of that workload succeeded, and whether it is unprotected - protectable, and never
-- backed up or not since var('unprotected_days') days or more. Days are counted to the
-- tenant's latest day (int_spanning__latest_backup_days, as in failing_users); days after
-- it are left out. An offboarded tenant, or one without such a day, has no rows.
with latest_day as (
    select * from {{ ref('int_spanning__latest_backup_days') }}
),

workloads as (
    select 'MAIL' as workload
    union all select 'CALENDAR'
    union all select 'CONTACT'
    union all select 'DRIVE'
),

licensed as (
    select
        users.tenant_id,
        users.ms_id,
        users.user_principal_name,
        users.display_name,
        users.protection,
        latest_day.latest_day
    from {{ ref('int_spanning__users_with_roles') }} as users
    inner join latest_day
        on latest_day.tenant_id = users.tenant_id
    where users.is_assigned
),

successes as (
    select
        backups.tenant_id,
        backups.ms_id,
        backups."type" as workload,
        max(backups."date") as last_success_day
    from {{ ref('stg_spanning__user_backups') }} as backups
    inner join latest_day
        on latest_day.tenant_id = backups.tenant_id
        and backups."date" <= latest_day.latest_day
    where backups.successful > 0
    group by backups.tenant_id, backups.ms_id, backups."type"
),

judged as (
    select
        licensed.tenant_id,
        licensed.ms_id,
        licensed.user_principal_name,
        licensed.display_name,
        workloads.workload,
        licensed.protection,
        successes.last_success_day,
        cast(
            {{ dbt.datediff('successes.last_success_day', 'licensed.latest_day', 'day') }}
            as {{ dbt.type_bigint() }}
        ) as days_since_success,
        licensed.latest_day
    from licensed
    cross join workloads
    left join successes
        on successes.tenant_id = licensed.tenant_id
        and successes.ms_id = licensed.ms_id
        and successes.workload = workloads.workload
)

select
    judged.tenant_id,
    names.tenant_name,
    judged.ms_id,
    judged.user_principal_name,
    judged.display_name,
    judged.workload,
    judged.protection,
    judged.last_success_day,
    judged.days_since_success,
    judged.latest_day,
    (
        judged.protection = 'protectable'
        and (
            judged.last_success_day is null
            or judged.days_since_success >= {{ var('unprotected_days') }}
        )
    ) as is_unprotected
from judged
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = judged.tenant_id
