-- One row: when this build ran and the newest tenant sync it saw. A reader compares
-- newest_sync_at with max(finished_at) of the raw tenant_syncs: a later sync there means the
-- marts are stale (a load ran, dbt did not). built_at is UTC on both warehouses (AT TIME
-- ZONE 'UTC' of a timestamp with time zone is the UTC wall clock, whatever the session's
-- zone), like the tap's finished_at.
select
    cast(current_timestamp at time zone 'UTC' as {{ dbt.type_timestamp() }}) as built_at,
    max(finished_at) as newest_sync_at
from {{ ref('stg_spanning__tenant_syncs') }}
