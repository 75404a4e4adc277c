{{ config(enabled=var('spanning__enable_alerts', true) and var('spanning__enable_backups', true)) }}
-- The alert user_unprotected (subject ms_id), open only: each user of unprotected_users - a
-- protectable user with a workload not backed up for var('unprotected_days') days or more,
-- or never. Critical when the user was never backed up, else a warning. first_seen: the day
-- the user's first unprotected workload (user_protection) became so - for a workload never
-- backed up, the tenant's first day held in user_backups (up to latest_day); else its last
-- success + var('unprotected_days') - a day that stays the same while the episode lasts.
-- last_seen: latest_day. Its resolution is the row gone (nothing keeps a resolved row).
with tenants as (
    select tenant_id, latest_day
    from {{ ref('int_spanning__alert_tenants') }}
    where latest_day is not null
),

first_held as (
    select
        held.tenant_id,
        min(held."date") as first_day
    from {{ ref('stg_spanning__user_backups') }} as held
    inner join tenants
        on tenants.tenant_id = held.tenant_id
        and held."date" <= tenants.latest_day
    group by held.tenant_id
),

since as (
    select
        workloads.tenant_id,
        workloads.ms_id,
        min(
            case
                when workloads.last_success_day is null
                    then coalesce(first_held.first_day, tenants.latest_day)
                else cast(
                    {{ dbt.dateadd('day', var('unprotected_days'), 'workloads.last_success_day') }}
                    as date
                )
            end
        ) as unprotected_since
    from {{ ref('user_protection') }} as workloads
    inner join tenants
        on tenants.tenant_id = workloads.tenant_id
    left join first_held
        on first_held.tenant_id = workloads.tenant_id
    where workloads.is_unprotected
    group by workloads.tenant_id, workloads.ms_id
),

unprotected as (
    select
        users.*,
        tenants.latest_day,
        since.unprotected_since
    from {{ ref('unprotected_users') }} as users
    inner join tenants
        on tenants.tenant_id = users.tenant_id
    inner join since
        on since.tenant_id = users.tenant_id
        and since.ms_id = users.ms_id
)

select
    tenant_id,
    cast('user_unprotected' as {{ dbt.type_string() }}) as kind,
    cast(ms_id as {{ dbt.type_string() }}) as subject,
    cast(
        case when never_backed_up then 'critical' else 'warning' end as {{ dbt.type_string() }}
    ) as severity,
    cast('open' as {{ dbt.type_string() }}) as status,
    unprotected_since as first_seen,
    latest_day as last_seen,
    cast(null as date) as resolved_on,
    {{ dbt.concat([
        "coalesce(user_principal_name, ms_id)",
        "' unprotected ('",
        "unprotected_workloads",
        "case when never_backed_up then '): never backed up' else '): last backup ' end",
        "coalesce(cast(last_success_day as " ~ dbt.type_string() ~ "), '')",
    ]) }} as summary
from unprotected
