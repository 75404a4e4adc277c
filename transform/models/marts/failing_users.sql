-- Users whose backup of one workload has been failed or partial for var('failing_days')
-- days running or more (a ticket each): the current streak, ending on the latest day held
-- for the tenant (its greatest date in user_backups). A day missing from the history ends a
-- streak like a good day.
with backups as (
    select * from {{ ref('stg_spanning__user_backups') }}
),

latest_day as (
    select tenant_id, max("date") as latest_day
    from backups
    group by tenant_id
),

-- Consecutive bad days share day_number - row_number (gaps and islands).
bad_days as (
    select
        tenant_id,
        ms_id,
        "type",
        "date",
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
        max("date") as last_day
    from bad_days
    group by tenant_id, ms_id, "type", island
)

select
    streaks.tenant_id,
    streaks.ms_id,
    backups.user_principal_name,
    streaks."type",
    streaks.streak_days,
    streaks.first_day,
    streaks.last_day
from streaks
inner join latest_day
    on latest_day.tenant_id = streaks.tenant_id
    and latest_day.latest_day = streaks.last_day
inner join backups
    on backups.tenant_id = streaks.tenant_id
    and backups.ms_id = streaks.ms_id
    and backups."type" = streaks."type"
    and backups."date" = streaks.last_day
where streaks.streak_days >= {{ var('failing_days') }}
