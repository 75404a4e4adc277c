{{ config(enabled=var('spanning__enable_alerts', true)) }}
-- Episodes of the alert seats_over_licenses (warning, tenant-wide), over the tenant's
-- complete runs that read its counters (licenses and assigned_standard not null): more
-- Standard licenses assigned than bought. Consecutive such runs make an episode: first_seen
-- and last_seen their first and newest days; open when they reach the newest run with
-- counters, else resolved on the day of the next run with counters (back within them).
with counted_runs as (
    select
        tenant_id,
        sync_version,
        "day",
        licenses,
        assigned_standard,
        assigned_standard > licenses as is_over
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and licenses is not null
        and assigned_standard is not null
),

-- The runs over between two runs within share this count (gaps and islands).
numbered as (
    select
        counted_runs.*,
        count(case when not is_over then 1 end) over (
            partition by tenant_id
            order by sync_version
            rows between unbounded preceding and current row
        ) as within_so_far
    from counted_runs
),

episodes as (
    select
        tenant_id,
        within_so_far,
        min("day") as first_day,
        max("day") as last_day,
        max(sync_version) as newest_version
    from numbered
    where is_over
    group by tenant_id, within_so_far
)

select
    episodes.tenant_id,
    cast('seats_over_licenses' as {{ dbt.type_string() }}) as kind,
    cast('' as {{ dbt.type_string() }}) as subject,
    cast('warning' as {{ dbt.type_string() }}) as severity,
    cast(
        case when back_within.tenant_id is null then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    episodes.first_day as first_seen,
    episodes.last_day as last_seen,
    back_within."day" as resolved_on,
    {{ dbt.concat([
        'cast(newest.assigned_standard as ' ~ dbt.type_string() ~ ')',
        "' Standard licenses assigned, '",
        'cast(newest.licenses as ' ~ dbt.type_string() ~ ')',
        "' bought'",
    ]) }} as summary
from episodes
inner join {{ ref('int_spanning__alert_tenants') }} as tenants
    on tenants.tenant_id = episodes.tenant_id
inner join numbered as newest
    on newest.tenant_id = episodes.tenant_id
    and newest.sync_version = episodes.newest_version
left join numbered as back_within
    on back_within.tenant_id = episodes.tenant_id
    and not back_within.is_over
    and back_within.within_so_far = episodes.within_so_far + 1
