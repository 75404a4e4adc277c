{{ config(enabled=var('spanning__enable_backups', true)) }}
-- Users whose backup of one workload has been failed or partial for var('failing_days')
-- days running or more (a ticket each): the current streak, ending on the tenant's
-- backup_last_day - the last day of the window the tap asked in the tenant's newest complete
-- run that read backups (tenant_syncs) - never on the greatest date held, so that one stray
-- row dated in the future cannot end every streak of its tenant on a day nobody failed.
-- Days after it are left out. A tenant without such a run has no failing users, nor has an
-- offboarded one (no ticket for a former client). A day missing from the history ends a
-- streak like a good day.
with backup_runs as (
    select tenant_id, sync_version, backup_last_day
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and backup_last_day is not null
),

latest_day as (
    select
        backup_runs.tenant_id,
        backup_runs.backup_last_day as latest_day
    from backup_runs
    inner join {{ ref('tenant_sync_health') }} as health
        on health.tenant_id = backup_runs.tenant_id
        and not health.is_offboarded
    where not exists (
        select 1
        from backup_runs as newer
        where newer.tenant_id = backup_runs.tenant_id
            and newer.sync_version > backup_runs.sync_version
    )
),

backups as (
    select
        held.*,
        latest_day.latest_day
    from {{ ref('stg_spanning__user_backups') }} as held
    inner join latest_day
        on latest_day.tenant_id = held.tenant_id
        and held."date" <= latest_day.latest_day
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
)

select
    streaks.tenant_id,
    names.tenant_name,
    streaks.ms_id,
    backups.user_principal_name,
    streaks."type",
    streaks.streak_days,
    streaks.first_day,
    streaks.last_day
from streaks
inner join backups
    on backups.tenant_id = streaks.tenant_id
    and backups.ms_id = streaks.ms_id
    and backups."type" = streaks."type"
    and backups."date" = streaks.last_day
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = streaks.tenant_id
where streaks.last_day = streaks.latest_day
    and streaks.streak_days >= {{ var('failing_days') }}
