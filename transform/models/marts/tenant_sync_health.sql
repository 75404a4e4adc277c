-- One row per tenant in tenant_syncs: how its last run went, its last complete run, how
-- many runs have failed since (docs/many-tenants.md, "Which tenants are failing"), and
-- whether it is offboarded: another tenant of its newest run has run since without it (no
-- longer configured; the model offboarded_tenants says why this rule), so its rows
-- are not current.
with syncs as (
    select * from {{ ref('stg_spanning__tenant_syncs') }}
),

newest_run as (
    select *
    from (
        select
            syncs.*,
            row_number() over (partition by tenant_id order by sync_version desc) as newest_first
        from syncs
    ) as ranked
    where newest_first = 1
),

last_complete as (
    select *
    from (
        select
            syncs.*,
            row_number() over (partition by tenant_id order by sync_version desc) as newest_first
        from syncs
        where status = 'complete'
    ) as ranked
    where newest_first = 1
),

offboarded as (
    select tenant_id from {{ ref('offboarded_tenants') }}
),

-- The runs after the last complete one (every run, for a tenant that never completed): all
-- of them failed, or the last complete one would be later.
since_complete as (
    select
        syncs.*,
        row_number() over (
            partition by syncs.tenant_id order by syncs.sync_version desc
        ) as newest_first
    from syncs
    left join last_complete
        on last_complete.tenant_id = syncs.tenant_id
    where syncs.status <> 'complete'
        and (last_complete.sync_version is null
            or syncs.sync_version > last_complete.sync_version)
),

failures as (
    select
        tenant_id,
        count(*) as consecutive_failed_runs,
        max(case when newest_first = 1 then reason end) as last_reason
    from since_complete
    group by tenant_id
)

select
    newest_run.tenant_id,
    names.tenant_name,
    newest_run.sync_version as last_sync_version,
    newest_run.finished_at as last_sync_at,
    newest_run.status as last_status,
    last_complete.sync_version as last_complete_sync_version,
    last_complete.finished_at as last_complete_at,
    coalesce(failures.consecutive_failed_runs, 0) as consecutive_failed_runs,
    failures.last_reason,
    (newest_run.status = 'complete' and offboarded.tenant_id is null) as is_current,
    offboarded.tenant_id is not null as is_offboarded
from newest_run
left join offboarded
    on offboarded.tenant_id = newest_run.tenant_id
left join last_complete
    on last_complete.tenant_id = newest_run.tenant_id
left join failures
    on failures.tenant_id = newest_run.tenant_id
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = newest_run.tenant_id
