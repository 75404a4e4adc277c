{{ config(enabled=var('spanning__enable_alerts', true) and var('spanning__enable_backups', true)) }}
-- Episodes of the alert user_backup_failing (warning; subject ms_id:workload): failing_users'
-- rule - a streak of var('failing_days') or more days running with a failed or partial
-- backup of one workload, over the days up to the tenant's latest_day
-- (int_spanning__alert_tenants). Open when the streak ends on latest_day; an earlier streak
-- is resolved the day after its last (a day missing ends a streak like a good day).
with tenants as (
    select tenant_id, latest_day
    from {{ ref('int_spanning__alert_tenants') }}
    where latest_day is not null
),

backups as (
    select
        held.tenant_id,
        held.ms_id,
        held.user_principal_name,
        held."type",
        held."date",
        held.failed,
        held.partial,
        tenants.latest_day
    from {{ ref('stg_spanning__user_backups') }} as held
    inner join tenants
        on tenants.tenant_id = held.tenant_id
        and held."date" <= tenants.latest_day
),

-- Consecutive bad days share day_number - row_number (gaps and islands).
bad_days as (
    select
        tenant_id,
        ms_id,
        "type",
        "date",
        latest_day,
        {{ dbt.datediff("cast('2000-01-01' as date)", '"date"', 'day') }}
            - row_number() over (
                partition by tenant_id, ms_id, "type" order by "date"
            ) as island
    from backups
    where failed > 0 or partial > 0
),

streaks as (
    select
        tenant_id,
        ms_id,
        "type",
        count(*) as streak_days,
        min("date") as first_day,
        max("date") as last_day,
        max(latest_day) as latest_day
    from bad_days
    group by tenant_id, ms_id, "type", island
    having count(*) >= {{ var('failing_days') }}
)

select
    streaks.tenant_id,
    cast('user_backup_failing' as {{ dbt.type_string() }}) as kind,
    {{ dbt.concat(['streaks.ms_id', "':'", 'streaks."type"']) }} as subject,
    cast('warning' as {{ dbt.type_string() }}) as severity,
    cast(
        case when streaks.last_day = streaks.latest_day then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    streaks.first_day as first_seen,
    streaks.last_day as last_seen,
    case
        when streaks.last_day < streaks.latest_day
            then cast({{ dbt.dateadd('day', 1, 'streaks.last_day') }} as date)
    end as resolved_on,
    {{ dbt.concat([
        "coalesce(backups.user_principal_name, streaks.ms_id)",
        "' '",
        'streaks."type"',
        "' backup failed or partial '",
        'cast(streaks.streak_days as ' ~ dbt.type_string() ~ ')',
        "' days running since '",
        'cast(streaks.first_day as ' ~ dbt.type_string() ~ ')',
    ]) }} as summary
from streaks
inner join backups
    on backups.tenant_id = streaks.tenant_id
    and backups.ms_id = streaks.ms_id
    and backups."type" = streaks."type"
    and backups."date" = streaks.last_day
