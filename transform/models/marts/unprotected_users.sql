{{ config(enabled=var('spanning__enable_backups', true)) }}
-- One row per protectable user (user_protection) with at least one unprotected workload:
-- which workloads, whether any workload was ever backed up successfully, and how long it has
-- been unprotected: the oldest last success of its unprotected workloads (null when one of
-- them never succeeded), counted to the tenant's latest day.
with protectable as (
    select * from {{ ref('user_protection') }}
    where protection = 'protectable'
),

-- Every workload of the user: its newest success of any (none: never backed up).
per_user as (
    select
        tenant_id,
        ms_id,
        max(tenant_name) as tenant_name,
        max(user_principal_name) as user_principal_name,
        max(display_name) as display_name,
        max(latest_day) as latest_day,
        max(last_success_day) as newest_success_day
    from protectable
    group by tenant_id, ms_id
),

-- Its unprotected workloads, and the oldest of their last successes: null when one of them
-- never succeeded (count of the column skips nulls).
unprotected_workloads as (
    select
        tenant_id,
        ms_id,
        {{ dbt.listagg('workload', "', '", 'order by workload') }} as unprotected_workloads,
        case
            when count(last_success_day) = count(*) then min(last_success_day)
        end as last_success_day
    from protectable
    where is_unprotected
    group by tenant_id, ms_id
)

select
    per_user.tenant_id,
    per_user.tenant_name,
    per_user.ms_id,
    per_user.user_principal_name,
    per_user.display_name,
    unprotected_workloads.unprotected_workloads,
    per_user.newest_success_day is null as never_backed_up,
    unprotected_workloads.last_success_day,
    cast(
        {{ dbt.datediff('unprotected_workloads.last_success_day', 'per_user.latest_day', 'day') }}
        as {{ dbt.type_bigint() }}
    ) as days_since_success
from per_user
inner join unprotected_workloads
    on unprotected_workloads.tenant_id = per_user.tenant_id
    and unprotected_workloads.ms_id = per_user.ms_id
