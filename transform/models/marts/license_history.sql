{{ config(enabled=var('spanning__enable_history', true)) }}
-- One row per tenant and day with a complete run that read its license counters: the
-- counters of the newest such run of that day (tenant_syncs.day, the tenant's today).
-- Offboarded tenants keep their days: a history.
with counted_runs as (
    select *
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and "day" is not null
        and (
            licenses is not null
            or archived_licenses is not null
            or assigned_standard is not null
            or assigned_archive is not null
        )
)

select
    counted_runs.tenant_id,
    names.tenant_name,
    counted_runs."day",
    counted_runs.sync_version,
    counted_runs.licenses,
    counted_runs.archived_licenses,
    counted_runs.assigned_standard,
    counted_runs.assigned_archive
from counted_runs
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = counted_runs.tenant_id
where not exists (
    select 1
    from counted_runs as newer
    where newer.tenant_id = counted_runs.tenant_id
        and newer."day" = counted_runs."day"
        and newer.sync_version > counted_runs.sync_version
)
