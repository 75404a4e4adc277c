{{ config(enabled=var('spanning__enable_backups', true)) }}
-- One row per streak of var('failing_days') days running or more in which a user's backup
-- of one workload was failed or partial, over the days up to the tenant's latest backup day
-- (int_spanning__latest_backup_days: never the greatest date held, so a stray row dated in
-- the future is left out). A day missing from the history ends a streak like a good day.
-- A tenant without a latest day (offboarded, or no complete run that read backups) has
-- none. The one home of the rule: failing_users keeps the streaks ending on latest_day, the
-- alert user_backup_failing every one, open or resolved.
with backups as (
    select
        held.tenant_id,
        held.ms_id,
        held.user_principal_name,
        held."type",
        held."date",
        held.failed,
        held.partial,
        latest.latest_day
    from {{ ref('stg_spanning__user_backups') }} as held
    inner join {{ ref('int_spanning__latest_backup_days') }} as latest
        on latest.tenant_id = held.tenant_id
        and held."date" <= latest.latest_day
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

-- The user's principal name as of the streak's last day.
select
    streaks.tenant_id,
    streaks.ms_id,
    backups.user_principal_name,
    streaks."type",
    cast(streaks.streak_days as {{ dbt.type_bigint() }}) as streak_days,
    streaks.first_day,
    streaks.last_day,
    streaks.latest_day
from streaks
inner join backups
    on backups.tenant_id = streaks.tenant_id
    and backups.ms_id = streaks.ms_id
    and backups."type" = streaks."type"
    and backups."date" = streaks.last_day
