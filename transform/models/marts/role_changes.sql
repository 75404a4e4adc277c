{{ config(enabled=var('spanning__enable_history', true)) }}
-- One row per grant or revocation of a role between two consecutive role sets a tenant's
-- complete runs sent (role_membership_history; a run with role_set_sent true sent its whole
-- set, an empty set included). A failed run's set never counts: the next complete run sends
-- it again, so a failure leaves a gap, never a false change. The first set ever sent is the
-- baseline: no changes. An offboarded tenant keeps its past changes and gets none new.
with sent_runs as (
    select
        tenant_id,
        sync_version,
        "day",
        lag(sync_version) over (
            partition by tenant_id order by sync_version
        ) as previous_sync_version
    from {{ ref('stg_spanning__tenant_syncs') }}
    where status = 'complete'
        and role_set_sent
),

sets as (
    select * from {{ ref('stg_spanning__role_membership_history') }}
),

granted as (
    select
        sent_runs.tenant_id,
        sent_runs."day",
        sent_runs.sync_version,
        newer.role_id,
        newer.ms_id,
        newer.user_principal_name,
        'granted' as change
    from sent_runs
    inner join sets as newer
        on newer.tenant_id = sent_runs.tenant_id
        and newer.sync_version = sent_runs.sync_version
    where sent_runs.previous_sync_version is not null
        and not exists (
            select 1
            from sets as older
            where older.tenant_id = newer.tenant_id
                and older.sync_version = sent_runs.previous_sync_version
                and older.role_id = newer.role_id
                and older.ms_id = newer.ms_id
        )
),

revoked as (
    select
        sent_runs.tenant_id,
        sent_runs."day",
        sent_runs.sync_version,
        older.role_id,
        older.ms_id,
        older.user_principal_name,
        'revoked' as change
    from sent_runs
    inner join sets as older
        on older.tenant_id = sent_runs.tenant_id
        and older.sync_version = sent_runs.previous_sync_version
    where not exists (
        select 1
        from sets as newer
        where newer.tenant_id = older.tenant_id
            and newer.sync_version = sent_runs.sync_version
            and newer.role_id = older.role_id
            and newer.ms_id = older.ms_id
    )
),

changes as (
    select * from granted
    union all
    select * from revoked
)

select
    changes.tenant_id,
    names.tenant_name,
    changes."day",
    changes.sync_version,
    changes.role_id,
    roles.name as role_name,
    changes.ms_id,
    changes.user_principal_name,
    changes.change
from changes
left join {{ ref('stg_spanning__roles') }} as roles
    on roles.role_id = changes.role_id
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = changes.tenant_id
