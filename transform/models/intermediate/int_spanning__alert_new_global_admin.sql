{{ config(enabled=var('spanning__enable_alerts', true) and var('spanning__enable_history', true)) }}
-- Episodes of the alert new_global_admin (warning; subject ms_id): a grant of global_admin
-- (role_changes, complete runs only) on a day at most var('alert_new_admin_days') days
-- before the day of the tenant's newest complete run (newest_day of
-- int_spanning__alert_tenants). Of a user's grants in that window, the newest: open while
-- still held, resolved on the day of the revocation that followed it. first_seen = last_seen
-- = the grant's day.
with changes as (
    select
        changes.tenant_id,
        changes.ms_id,
        changes.user_principal_name,
        changes."day",
        changes.sync_version,
        changes.change,
        tenants.newest_day
    from {{ ref('role_changes') }} as changes
    inner join {{ ref('int_spanning__alert_tenants') }} as tenants
        on tenants.tenant_id = changes.tenant_id
    where changes.role_id = 'global_admin'
),

newest_grants as (
    select *
    from (
        select
            changes.*,
            row_number() over (
                partition by tenant_id, ms_id order by sync_version desc
            ) as newest_first
        from changes
        where change = 'granted'
            and {{ dbt.datediff('"day"', 'newest_day', 'day') }}
                <= {{ var('alert_new_admin_days') }}
    ) as ranked
    where newest_first = 1
),

revoked as (
    select
        newest_grants.tenant_id,
        newest_grants.ms_id,
        min(revocations."day") as revoked_on
    from newest_grants
    inner join changes as revocations
        on revocations.tenant_id = newest_grants.tenant_id
        and revocations.ms_id = newest_grants.ms_id
        and revocations.change = 'revoked'
        and revocations.sync_version > newest_grants.sync_version
    group by newest_grants.tenant_id, newest_grants.ms_id
)

select
    newest_grants.tenant_id,
    cast('new_global_admin' as {{ dbt.type_string() }}) as kind,
    cast(newest_grants.ms_id as {{ dbt.type_string() }}) as subject,
    cast('warning' as {{ dbt.type_string() }}) as severity,
    cast(
        case when revoked.revoked_on is null then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    newest_grants."day" as first_seen,
    newest_grants."day" as last_seen,
    revoked.revoked_on as resolved_on,
    {{ dbt.concat([
        "coalesce(newest_grants.user_principal_name, newest_grants.ms_id)",
        "' became a Global Admin on '",
        'cast(newest_grants."day" as ' ~ dbt.type_string() ~ ')',
    ]) }} as summary
from newest_grants
left join revoked
    on revoked.tenant_id = newest_grants.tenant_id
    and revoked.ms_id = newest_grants.ms_id
