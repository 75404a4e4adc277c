{{ config(enabled=var('spanning__enable_alerts', true)) }}
-- One row per tenant that may have alerts: it has a complete run and is not offboarded (a
-- former client gets none). latest_day: the tenant's latest backup day
-- (int_spanning__latest_backup_days, failing_users' rule; null when no complete run read
-- backups); newest_day: the day of its newest complete run; window_day: the day the alerts'
-- windows count back from, latest_day, else newest_day (a tenant whose runs read no backups
-- still has role and license alerts).
with newest_complete as (
    select tenant_id, "day" as newest_day
    from (
        select
            tenant_id,
            "day",
            row_number() over (partition by tenant_id order by sync_version desc) as newest_first
        from {{ ref('stg_spanning__tenant_syncs') }}
        where status = 'complete'
    ) as ranked
    where newest_first = 1
)

select
    newest_complete.tenant_id,
    latest.latest_day,
    newest_complete.newest_day,
    coalesce(latest.latest_day, newest_complete.newest_day) as window_day
from newest_complete
inner join {{ ref('tenant_sync_health') }} as health
    on health.tenant_id = newest_complete.tenant_id
    and not health.is_offboarded
left join {{ ref('int_spanning__latest_backup_days') }} as latest
    on latest.tenant_id = newest_complete.tenant_id
