{{ config(enabled=var('spanning__enable_alerts', true)) }}
-- Episodes of the alert sync_failing (critical, tenant-wide): var('alert_failed_runs') or
-- more runs of a tenant failed in a row. Open while no complete run has followed the streak
-- (its runs are the tenant's newest); else resolved on the day of the complete run that
-- ended it. first_seen and last_seen: the days of the streak's first and newest failed runs.
-- Tenants of int_spanning__alert_tenants only (a complete run, not offboarded).
with runs as (
    select
        tenant_id,
        sync_version,
        "day",
        status,
        reason,
        -- The failed runs between two complete runs share this count (gaps and islands).
        count(case when status = 'complete' then 1 end) over (
            partition by tenant_id
            order by sync_version
            rows between unbounded preceding and current row
        ) as complete_runs_so_far
    from {{ ref('stg_spanning__tenant_syncs') }}
),

streaks as (
    select
        tenant_id,
        complete_runs_so_far,
        count(*) as failed_runs,
        min("day") as first_day,
        max("day") as last_day,
        max(sync_version) as newest_failed_version
    from runs
    where status <> 'complete'
    group by tenant_id, complete_runs_so_far
)

select
    streaks.tenant_id,
    cast('sync_failing' as {{ dbt.type_string() }}) as kind,
    cast('' as {{ dbt.type_string() }}) as subject,
    cast('critical' as {{ dbt.type_string() }}) as severity,
    cast(
        case when ended_by.tenant_id is null then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    streaks.first_day as first_seen,
    streaks.last_day as last_seen,
    ended_by."day" as resolved_on,
    {{ dbt.concat([
        'cast(streaks.failed_runs as ' ~ dbt.type_string() ~ ')',
        "' syncs in a row failed since '",
        'cast(streaks.first_day as ' ~ dbt.type_string() ~ ')',
        "', the newest: '",
        "coalesce(newest_failed.reason, 'no reason given')",
    ]) }} as summary
from streaks
inner join {{ ref('int_spanning__alert_tenants') }} as tenants
    on tenants.tenant_id = streaks.tenant_id
inner join runs as newest_failed
    on newest_failed.tenant_id = streaks.tenant_id
    and newest_failed.sync_version = streaks.newest_failed_version
-- The complete run right after the streak, if any: the one that counts one more.
left join runs as ended_by
    on ended_by.tenant_id = streaks.tenant_id
    and ended_by.status = 'complete'
    and ended_by.complete_runs_so_far = streaks.complete_runs_so_far + 1
where streaks.failed_runs >= {{ var('alert_failed_runs') }}
