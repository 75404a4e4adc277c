{{ config(enabled=var('spanning__enable_backups', true)) }}
-- One row per tenant, workload and day held in backup_summaries (every day landed, past
-- Spanning's own 7): accounts (or sites) backed up, by result, and the success rate.
select
    summaries.tenant_id,
    names.tenant_name,
    summaries."date",
    summaries."type",
    summaries.total,
    summaries.successful,
    summaries.partial,
    summaries.failed,
    case
        when summaries.total > 0
            then cast(summaries.successful as double precision) / summaries.total
    end as success_rate
from {{ ref('stg_spanning__backup_summaries') }} as summaries
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = summaries.tenant_id
