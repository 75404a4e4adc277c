-- One row per tenant, workload and day held in backup_summaries (every day landed, past
-- Spanning's own 7): accounts (or sites) backed up, by result, and the success rate.
select
    tenant_id,
    "date",
    "type",
    total,
    successful,
    partial,
    failed,
    case
        when total > 0 then cast(successful as double precision) / total
    end as success_rate
from {{ ref('stg_spanning__backup_summaries') }}
