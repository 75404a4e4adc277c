-- One row per tenant in tenant_syncs: its name, as configured in its newest run (null when
-- that run named it not). Every mart takes tenant_name from here, so a client renamed in
-- the configuration is shown by its new name everywhere, its history included.
with runs as (
    select tenant_id, sync_version, tenant_name
    from {{ ref('stg_spanning__tenant_syncs') }}
)

select
    runs.tenant_id,
    runs.tenant_name
from runs
where not exists (
    select 1
    from runs as newer
    where newer.tenant_id = runs.tenant_id
        and newer.sync_version > runs.sync_version
)
