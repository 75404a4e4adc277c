{{ config(enabled=var('spanning__enable_alerts', true) and var('spanning__enable_backups', true)) }}
-- Episodes of the alert backup_below_target (tenant-wide): the tenant's backup success of a
-- day (sum successful / sum total over its workloads, backup_summaries) below
-- var('spanning_backup_target_pct'), days running. Only settled days count: those up to the
-- day before the tenant's latest_day (int_spanning__alert_tenants). Open when the run of
-- below-target days ends on that settled day; an earlier run is resolved on the first day at
-- or above the target after it, and has no row without one (a day with no figure - none
-- held, or total 0 - neither opens nor resolves, and ends a run of days).
-- Critical when the run's newest day is below var('spanning_backup_bad_pct') too.
with tenants as (
    select
        tenant_id,
        cast({{ dbt.dateadd('day', -1, 'latest_day') }} as date) as settled_day
    from {{ ref('int_spanning__alert_tenants') }}
    where latest_day is not null
),

daily as (
    select
        summaries.tenant_id,
        summaries."date",
        tenants.settled_day,
        100 * cast(sum(summaries.successful) as double precision) / sum(summaries.total)
            as success_pct
    from {{ ref('stg_spanning__backup_summaries') }} as summaries
    inner join tenants
        on tenants.tenant_id = summaries.tenant_id
        and summaries."date" <= tenants.settled_day
    group by summaries.tenant_id, summaries."date", tenants.settled_day
    having sum(summaries.total) > 0
),

-- Consecutive below-target days share day_number - row_number (gaps and islands).
below_days as (
    select
        tenant_id,
        "date",
        {{ dbt.datediff("cast('2000-01-01' as date)", '"date"', 'day') }}
            - row_number() over (partition by tenant_id order by "date") as island
    from daily
    where success_pct < {{ var('spanning_backup_target_pct') }}
),

below_runs as (
    select
        tenant_id,
        min("date") as first_day,
        max("date") as last_day
    from below_days
    group by tenant_id, island
),

episodes as (
    select
        below_runs.tenant_id,
        below_runs.first_day,
        below_runs.last_day,
        min(later_good."date") as resolved_on
    from below_runs
    left join daily as later_good
        on later_good.tenant_id = below_runs.tenant_id
        and later_good."date" > below_runs.last_day
        and later_good.success_pct >= {{ var('spanning_backup_target_pct') }}
    group by below_runs.tenant_id, below_runs.first_day, below_runs.last_day
)

select
    episodes.tenant_id,
    cast('backup_below_target' as {{ dbt.type_string() }}) as kind,
    cast('' as {{ dbt.type_string() }}) as subject,
    cast(
        case
            when newest.success_pct < {{ var('spanning_backup_bad_pct') }} then 'critical'
            else 'warning'
        end as {{ dbt.type_string() }}
    ) as severity,
    cast(
        case when episodes.resolved_on is null then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    episodes.first_day as first_seen,
    episodes.last_day as last_seen,
    episodes.resolved_on,
    {{ dbt.concat([
        "'backup success '",
        'cast(cast(newest.success_pct as decimal(5, 1)) as ' ~ dbt.type_string() ~ ')',
        "'% on '",
        'cast(episodes.last_day as ' ~ dbt.type_string() ~ ')',
        "', below the " ~ var('spanning_backup_target_pct') ~ "% target since '",
        'cast(episodes.first_day as ' ~ dbt.type_string() ~ ')',
    ]) }} as summary
from episodes
inner join daily as newest
    on newest.tenant_id = episodes.tenant_id
    and newest."date" = episodes.last_day
where episodes.resolved_on is not null
    or episodes.last_day = newest.settled_day
