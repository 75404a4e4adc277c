-- Each tenant's last complete run (tenant_id, sync_version), unless it is offboarded: the
-- version from which its rows are current. A tenant that never completed has none.
select
    ran.tenant_id,
    max(ran.sync_version) as sync_version
from {{ source('spanning', 'tenant_syncs') }} as ran
where ran.status = 'complete'
    and not exists (
        select 1
        from {{ ref('offboarded_tenants') }} as offboarded
        where offboarded.tenant_id = ran.tenant_id
    )
group by ran.tenant_id
