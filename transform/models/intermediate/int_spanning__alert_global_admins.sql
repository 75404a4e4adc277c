{{ config(enabled=var('spanning__enable_alerts', true)) }}
-- Episodes of the alert global_admins_out_of_band (warning, tenant-wide), over the
-- tenant's complete runs with a known role set (role_set_sent not null; the set of such a
-- run is the one last sent by a complete run, role_set_sent true, at or before it - a failed
-- run's set never counts). A run is out of band when its set holds fewer Global Admins
-- than var('spanning_global_admin_min') and the run read users, or at least
-- var('spanning_global_admin_flag_at'). Consecutive out-of-band runs make an episode:
-- first_seen and last_seen their first and newest days; open when they reach the newest
-- known run, else resolved on the day of the next known run (back in band).
with known_runs as (
    select
        tenant_id,
        sync_version,
        "day",
        users,
        set_version
    from (
        select
            tenant_id,
            sync_version,
            "day",
            users,
            role_set_sent,
            max(case when role_set_sent then sync_version end) over (
                partition by tenant_id
                order by sync_version
                rows between unbounded preceding and current row
            ) as set_version
        from {{ ref('stg_spanning__tenant_syncs') }}
        where status = 'complete'
    ) as complete_runs
    where role_set_sent is not null
        and set_version is not null
),

admins_per_set as (
    select
        tenant_id,
        sync_version,
        count(*) as global_admins
    from {{ ref('stg_spanning__role_membership_history') }}
    where role_id = 'global_admin'
    group by tenant_id, sync_version
),

judged as (
    select
        known_runs.tenant_id,
        known_runs.sync_version,
        known_runs."day",
        coalesce(admins_per_set.global_admins, 0) as global_admins,
        coalesce(admins_per_set.global_admins, 0) >= {{ var('spanning_global_admin_flag_at') }}
            or (
                coalesce(admins_per_set.global_admins, 0) < {{ var('spanning_global_admin_min') }}
                and coalesce(known_runs.users, 0) > 0
            ) as is_out_of_band
    from known_runs
    left join admins_per_set
        on admins_per_set.tenant_id = known_runs.tenant_id
        and admins_per_set.sync_version = known_runs.set_version
),

-- The out-of-band runs between two in-band runs share this count (gaps and islands).
counted as (
    select
        judged.*,
        count(case when not is_out_of_band then 1 end) over (
            partition by tenant_id
            order by sync_version
            rows between unbounded preceding and current row
        ) as in_band_so_far
    from judged
),

episodes as (
    select
        tenant_id,
        in_band_so_far,
        min("day") as first_day,
        max("day") as last_day,
        max(sync_version) as newest_version
    from counted
    where is_out_of_band
    group by tenant_id, in_band_so_far
)

select
    episodes.tenant_id,
    cast('global_admins_out_of_band' as {{ dbt.type_string() }}) as kind,
    cast('' as {{ dbt.type_string() }}) as subject,
    cast('warning' as {{ dbt.type_string() }}) as severity,
    cast(
        case when back_in_band.tenant_id is null then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    episodes.first_day as first_seen,
    episodes.last_day as last_seen,
    back_in_band."day" as resolved_on,
    {{ dbt.concat([
        "'Global Admins: '",
        'cast(newest.global_admins as ' ~ dbt.type_string() ~ ')',
        "', outside the band of " ~ var('spanning_global_admin_min') ~ " to "
            ~ (var('spanning_global_admin_flag_at') - 1) ~ "'",
    ]) }} as summary
from episodes
inner join {{ ref('int_spanning__alert_tenants') }} as tenants
    on tenants.tenant_id = episodes.tenant_id
inner join counted as newest
    on newest.tenant_id = episodes.tenant_id
    and newest.sync_version = episodes.newest_version
left join counted as back_in_band
    on back_in_band.tenant_id = episodes.tenant_id
    and not back_in_band.is_out_of_band
    and back_in_band.in_band_so_far = episodes.in_band_so_far + 1
