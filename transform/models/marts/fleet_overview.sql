-- One row per tenant that appears in tenant_syncs: licenses and their use, admins, seats that
-- could be reclaimed (license_waste's rows), users without a license, backup coverage (of
-- user_protection: protectable users, protected or not), how its syncs and backups are going.
-- A tenant that never completed a sync has no current rows: its counts are 0, its license
-- columns null. So has an offboarded tenant (is_offboarded: a tenant of its newest run has
-- run since without it), whose backup figures are null too: its row says when it was last
-- synced, and no fleet figure counts it.
-- Then what needs attention: a flag per rule, each threshold a column of attention_thresholds
-- (dbt vars), and attention_score, the weighted sum of the flags the fleet report sorts by.
-- An offboarded tenant needs nothing: every flag false, score 0.
-- With a group of marts turned off (spanning__enable_backups, spanning__enable_alerts:
-- transform/README.md, section As a package), its figures read from no rows: counts 0,
-- rates null, their flags false.
{%- set backups_enabled = var('spanning__enable_backups', true) %}
{%- set alerts_enabled = var('spanning__enable_alerts', true) %}
with health as (
    select * from {{ ref('tenant_sync_health') }}
),

tenants as (
    select * from {{ ref('stg_spanning__tenants') }}
),

users as (
    select
        tenant_id,
        count(*) as users,
        count(case when is_assigned then 1 end) as licensed_users,
        count(case when is_assigned and is_archive then 1 end) as licensed_archive_users,
        -- Would be protectable (models/docs.md), but holds no Spanning license.
        count(
            case when not is_assigned and not is_disabled and protection = 'protectable' then 1 end
        ) as unlicensed_users,
        count(case when is_disabled and (is_global_admin or is_spanning_admin) then 1 end)
            as disabled_admins
    from {{ ref('int_spanning__users_with_roles') }}
    group by tenant_id
),

wasted as (
    select tenant_id, count(*) as wasted_seats
    from {{ ref('license_waste') }}
    group by tenant_id
),

-- Backup coverage: each licensed user counted once, by its protection; a protectable user
-- is protected when none of its workloads is unprotected.
{% if backups_enabled -%}
judged_users as (
    select
        tenant_id,
        ms_id,
        max(protection) as protection,
        {{ dbt.bool_or('is_unprotected') }} as is_unprotected
    from {{ ref('user_protection') }}
    group by tenant_id, ms_id
),

coverage as (
    select
        tenant_id,
        count(case when protection = 'protectable' then 1 end) as protectable_users,
        count(case when protection = 'protectable' and not is_unprotected then 1 end)
            as protected_users,
        count(case when protection = 'protectable' and is_unprotected then 1 end)
            as unprotected_users,
        count(case when protection = 'shared_mailbox' then 1 end) as shared_mailboxes,
        count(case when protection = 'not_protectable' then 1 end) as not_protectable_users
    from judged_users
    group by tenant_id
),
{%- else %}
coverage as (
    select
        cast(null as {{ dbt.type_string() }}) as tenant_id,
        cast(null as {{ dbt.type_bigint() }}) as protectable_users,
        cast(null as {{ dbt.type_bigint() }}) as protected_users,
        cast(null as {{ dbt.type_bigint() }}) as unprotected_users,
        cast(null as {{ dbt.type_bigint() }}) as shared_mailboxes,
        cast(null as {{ dbt.type_bigint() }}) as not_protectable_users
    where 1 = 0
),
{%- endif %}

admins as (
    select
        tenant_id,
        count(case when role_id = 'global_admin' then 1 end) as global_admins,
        count(case when role_id = 'spanning_admin' then 1 end) as spanning_admins
    from {{ ref('stg_spanning__role_memberships') }}
    group by tenant_id
),

{% if backups_enabled -%}
backups as (
    select
        tenant_id,
        sum(case when "date" = {{ spanning_days_ago(1) }} then successful end)
            as successful_yesterday,
        sum(case when "date" = {{ spanning_days_ago(1) }} then total end) as total_yesterday,
        sum(case when "date" >= {{ spanning_days_ago(7) }} then successful end)
            as successful_7d,
        sum(case when "date" >= {{ spanning_days_ago(7) }} then total end) as total_7d
    from {{ ref('stg_spanning__backup_summaries') }}
    where "date" >= {{ spanning_days_ago(7) }}
        and "date" < current_date
    group by tenant_id
),
{%- else %}
backups as (
    select
        cast(null as {{ dbt.type_string() }}) as tenant_id,
        cast(null as {{ dbt.type_bigint() }}) as successful_yesterday,
        cast(null as {{ dbt.type_bigint() }}) as total_yesterday,
        cast(null as {{ dbt.type_bigint() }}) as successful_7d,
        cast(null as {{ dbt.type_bigint() }}) as total_7d
    where 1 = 0
),
{%- endif %}

-- The tenant's open problems (the mart alerts: one row per problem, open or resolved).
alerts as (
    {%- if alerts_enabled %}
    select
        tenant_id,
        count(*) as open_alerts
    from {{ ref('alerts') }}
    where status = 'open'
    group by tenant_id
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as tenant_id,
        cast(null as {{ dbt.type_bigint() }}) as open_alerts
    where 1 = 0
    {%- endif %}
),

figures as (
    select
        health.tenant_id,
        names.tenant_name,
        tenants.status as license_status,
        coalesce(users.users, 0) as users,
        coalesce(users.licensed_users, 0) as licensed_users,
        tenants.licenses,
        tenants.archived_licenses,
        tenants.assigned_standard,
        tenants.assigned_archive,
        -- The tenant's own counters against its current users: they disagree when the
        -- tenant changed during the sync, or the counters and the users come from different
        -- syncs (a sync again settles it).
        tenants.users as counted_users,
        tenants.assigned as counted_assigned,
        tenants.users is not null
            and tenants.assigned is not null
            and tenants.assigned_archive is not null
            and (
                tenants.users <> coalesce(users.users, 0)
                or tenants.assigned <> coalesce(users.licensed_users, 0)
                or tenants.assigned_archive <> coalesce(users.licensed_archive_users, 0)
            ) as counters_disagree,
        case
            when tenants.licenses > 0
                then 100 * cast(tenants.assigned_standard as double precision) / tenants.licenses
        end as seat_use_pct,
        case
            when tenants.archived_licenses > 0
                then 100 * cast(tenants.assigned_archive as double precision)
                    / tenants.archived_licenses
        end as archive_seat_use_pct,
        coalesce(admins.global_admins, 0) as global_admins,
        coalesce(admins.spanning_admins, 0) as spanning_admins,
        coalesce(users.disabled_admins, 0) as disabled_admins,
        coalesce(wasted.wasted_seats, 0) as wasted_seats,
        coalesce(users.unlicensed_users, 0) as unlicensed_users,
        coalesce(coverage.protectable_users, 0) as protectable_users,
        coalesce(coverage.protected_users, 0) as protected_users,
        coalesce(coverage.unprotected_users, 0) as unprotected_users,
        coalesce(coverage.shared_mailboxes, 0) as shared_mailboxes,
        coalesce(coverage.not_protectable_users, 0) as not_protectable_users,
        case
            when coverage.protectable_users > 0
                then 100 * cast(coverage.protected_users as double precision)
                    / coverage.protectable_users
        end as coverage_pct,
        coalesce(alerts.open_alerts, 0) as open_alerts,
        health.last_complete_at as last_complete_sync_at,
        health.consecutive_failed_runs as failed_syncs_in_a_row,
        case
            when backups.total_yesterday > 0
                then 100 * cast(backups.successful_yesterday as double precision)
                    / backups.total_yesterday
        end as backup_success_yesterday_pct,
        case
            when backups.total_7d > 0
                then 100 * cast(backups.successful_7d as double precision) / backups.total_7d
        end as backup_success_7d_pct,
        health.is_offboarded
    from health
    left join tenants
        on tenants.tenant_id = health.tenant_id
    left join {{ ref('tenant_names') }} as names
        on names.tenant_id = health.tenant_id
    left join users
        on users.tenant_id = health.tenant_id
    left join wasted
        on wasted.tenant_id = health.tenant_id
    left join coverage
        on coverage.tenant_id = health.tenant_id
    left join alerts
        on alerts.tenant_id = health.tenant_id
    left join admins
        on admins.tenant_id = health.tenant_id
    left join backups
        on backups.tenant_id = health.tenant_id
        and not health.is_offboarded
),

failing as (
    {%- if backups_enabled %}
    select
        tenant_id,
        count(distinct ms_id) as failing_users,
        max(streak_days) as longest_failing_streak_days
    from {{ ref('failing_users') }}
    group by tenant_id
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as tenant_id,
        cast(null as {{ dbt.type_bigint() }}) as failing_users,
        cast(null as {{ dbt.type_bigint() }}) as longest_failing_streak_days
    where 1 = 0
    {%- endif %}
),

-- Each rule of "needs attention", false for an offboarded tenant. Sync: never synced (no
-- complete run) or, else, failing (failed runs since the last complete one, or the newest
-- run not current).
flagged as (
    select
        figures.*,
        coalesce(failing.failing_users, 0) as failing_users,
        coalesce(failing.longest_failing_streak_days, 0) as longest_failing_streak_days,
        thresholds.failing_users_pattern_at,
        thresholds.backup_bad_pct,
        not figures.is_offboarded and figures.last_complete_sync_at is null as is_never_synced,
        not figures.is_offboarded
            and figures.last_complete_sync_at is not null
            and (figures.failed_syncs_in_a_row > 0 or not health.is_current) as is_sync_failing,
        not figures.is_offboarded
            and coalesce(figures.backup_success_yesterday_pct < thresholds.backup_target_pct, false)
            as is_backup_below_target,
        not figures.is_offboarded
            and coalesce(figures.backup_success_yesterday_pct < thresholds.backup_target_pct, false)
            and figures.backup_success_yesterday_pct < thresholds.backup_bad_pct
            as is_backup_bad,
        not figures.is_offboarded and coalesce(failing.failing_users, 0) > 0 as has_failing_users,
        not figures.is_offboarded and figures.global_admins >= thresholds.global_admin_flag_at
            as has_too_many_global_admins,
        not figures.is_offboarded
            and figures.global_admins < thresholds.global_admin_flag_at
            and figures.global_admins < thresholds.global_admin_min
            and figures.users > 0
            as has_too_few_global_admins,
        not figures.is_offboarded and figures.disabled_admins > 0 as has_disabled_admins,
        not figures.is_offboarded
            and coalesce(figures.seat_use_pct > thresholds.seat_use_max_pct, false)
            as is_over_licensed,
        not figures.is_offboarded and figures.unprotected_users > 0 as has_unprotected_users,
        not figures.is_offboarded and figures.unlicensed_users > 0 as has_unlicensed_users,
        not figures.is_offboarded and figures.wasted_seats > 0 as has_wasted_seats
    from figures
    inner join health
        on health.tenant_id = figures.tenant_id
    cross join {{ ref('attention_thresholds') }} as thresholds
    left join failing
        on failing.tenant_id = figures.tenant_id
),

scored as (
    select
        flagged.*,
        (case when is_never_synced then 10 else 0 end)
        + (case when is_sync_failing then 8 else 0 end)
        + (case when is_backup_bad then 6 when is_backup_below_target then 3 else 0 end)
        + (case
            when has_failing_users and failing_users >= failing_users_pattern_at then 6
            when has_failing_users then 4
            else 0
        end)
        + (case when has_too_many_global_admins then 3 else 0 end)
        + (case when has_too_few_global_admins then 1 else 0 end)
        + (case when has_disabled_admins then 3 else 0 end)
        + (case when is_over_licensed then 3 else 0 end)
        + (case when has_unprotected_users then 2 else 0 end)
        + (case when has_unlicensed_users then 1 else 0 end)
        + (case when has_wasted_seats then 1 else 0 end) as attention_score
    from flagged
)

select
    tenant_id,
    tenant_name,
    license_status,
    users,
    licensed_users,
    licenses,
    archived_licenses,
    assigned_standard,
    assigned_archive,
    counted_users,
    counted_assigned,
    counters_disagree,
    seat_use_pct,
    archive_seat_use_pct,
    global_admins,
    spanning_admins,
    disabled_admins,
    wasted_seats,
    unlicensed_users,
    protectable_users,
    protected_users,
    unprotected_users,
    shared_mailboxes,
    not_protectable_users,
    coverage_pct,
    open_alerts,
    last_complete_sync_at,
    failed_syncs_in_a_row,
    backup_success_yesterday_pct,
    backup_success_7d_pct,
    is_offboarded,
    failing_users,
    longest_failing_streak_days,
    is_never_synced,
    is_sync_failing,
    is_backup_below_target,
    is_backup_bad,
    has_failing_users,
    has_too_many_global_admins,
    has_too_few_global_admins,
    has_disabled_admins,
    is_over_licensed,
    has_unprotected_users,
    has_unlicensed_users,
    has_wasted_seats,
    cast(attention_score as {{ dbt.type_bigint() }}) as attention_score,
    attention_score > 0 as needs_attention
from scored
