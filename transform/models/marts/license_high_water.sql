{{ config(enabled=var('spanning__enable_history', true)) }}
-- One row per tenant and month with license_history rows: the most Standard and archive
-- seats assigned in the month - over every complete run that read the counters, not only
-- each day's last (two runs of one day: the higher counts) - the first day it reached that
-- peak, and the most licenses bought, so a month that went over its licenses shows even if
-- it ended under them.
with counted_runs as (
    select
        tenant_id,
        sync_version,
        "day",
        cast({{ dbt.date_trunc('month', '"day"') }} as date) as "month",
        licenses,
        archived_licenses,
        assigned_standard,
        assigned_archive
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and "day" is not null
        and (
            licenses is not null
            or archived_licenses is not null
            or assigned_standard is not null
            or assigned_archive is not null
        )
),

months as (
    select
        tenant_id,
        "month",
        count(distinct "day") as days_observed,
        max(assigned_standard) as peak_assigned_standard,
        max(assigned_archive) as peak_assigned_archive,
        max(licenses) as licenses,
        max(archived_licenses) as archived_licenses
    from counted_runs
    group by tenant_id, "month"
),

peak_days as (
    select
        counted_runs.tenant_id,
        counted_runs."month",
        min(counted_runs."day") as peak_day
    from counted_runs
    inner join months
        on months.tenant_id = counted_runs.tenant_id
        and months."month" = counted_runs."month"
        and months.peak_assigned_standard = counted_runs.assigned_standard
    group by counted_runs.tenant_id, counted_runs."month"
)

select
    months.tenant_id,
    names.tenant_name,
    months."month",
    cast(months.days_observed as {{ dbt.type_bigint() }}) as days_observed,
    months.peak_assigned_standard,
    months.peak_assigned_archive,
    peak_days.peak_day,
    months.licenses,
    months.archived_licenses,
    coalesce(months.peak_assigned_standard > months.licenses, false) as is_over_licenses
from months
left join peak_days
    on peak_days.tenant_id = months.tenant_id
    and peak_days."month" = months."month"
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = months.tenant_id
