-- One row per tenant with a latest backup day: latest_day, the backup_last_day of its newest
-- complete run that has one (the last day the tap asked, never the greatest date held): the
-- day failing streaks end on and protection is counted to. An offboarded tenant, or one
-- without such a run, has no row: no user of it is judged protected or failing.
with backup_runs as (
    select tenant_id, sync_version, backup_last_day
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and backup_last_day is not null
)

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
