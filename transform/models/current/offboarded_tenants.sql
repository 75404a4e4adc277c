-- The offboarded tenants (no longer configured), each with its newest run: tenant_id,
-- last_sync_version. Their history is kept; none of their rows is current.
--
-- T is offboarded when another tenant that ran in T's newest run has run since without T.
-- The tenants of one job share each run's sync_version, and every tenant configured in a
-- run, failed or not, gets a tenant_syncs row of it when the run writes records: a job that
-- drops T runs its other tenants again without it, while another job (a shard) loading the
-- same schema never runs T's run-mates, so shards keep their tenants. A job whose tenants
-- are all removed at once (a one-tenant job, say) leaves nobody to run again: its tenants
-- are never offboarded.
--
-- moved_on is every run one of whose tenants has run since: one pass over tenant_syncs
-- joined to each tenant's newest run by tenant_id. Pairing each tenant with its run-mates
-- instead would cost n^2 rows for a fleet of n tenants in one job.
with newest as (
    select tenant_id, max(sync_version) as sync_version
    from {{ source('spanning', 'tenant_syncs') }}
    group by tenant_id
),

moved_on as (
    select distinct earlier.sync_version
    from {{ source('spanning', 'tenant_syncs') }} as earlier
    inner join newest
        on newest.tenant_id = earlier.tenant_id
        and newest.sync_version > earlier.sync_version
)

select
    newest.tenant_id,
    newest.sync_version as last_sync_version
from newest
inner join moved_on
    on moved_on.sync_version = newest.sync_version
