{{ config(enabled=var('spanning__enable_alerts', true)) }}
-- One row per open problem of a tenant, or one resolved at most var('alert_resolved_days')
-- days before the tenant's latest day (window_day of int_spanning__alert_tenants): the
-- newest episode of each alert_key (tenant_id|kind|subject) of the models
-- int_spanning__alert_* - an open one first, else the one resolved last. The alert
-- delivery command sends an alert when it opens and when it resolves (its row resolved, or
-- gone). An offboarded tenant, or one without a complete run, has none.
-- The kinds of a group of marts turned off (spanning__enable_backups, _history:
-- transform/README.md, section As a package) are left out: their models are disabled
-- with the group.
{%- set kind_models = ['int_spanning__alert_sync_failing'] %}
{%- if var('spanning__enable_backups', true) %}
    {%- do kind_models.extend([
        'int_spanning__alert_backup_below_target',
        'int_spanning__alert_user_backup_failing',
        'int_spanning__alert_user_unprotected',
    ]) %}
{%- endif %}
{%- do kind_models.append('int_spanning__alert_global_admins') %}
{%- if var('spanning__enable_history', true) %}
    {%- do kind_models.append('int_spanning__alert_new_global_admin') %}
{%- endif %}
{%- do kind_models.append('int_spanning__alert_seats_over_licenses') %}
with episodes as (
    {% for kind_model in kind_models %}
    select
        tenant_id,
        kind,
        subject,
        severity,
        status,
        first_seen,
        last_seen,
        resolved_on,
        summary
    from {{ ref(kind_model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

newest as (
    select *
    from (
        select
            episodes.*,
            row_number() over (
                partition by tenant_id, kind, subject
                order by
                    case when status = 'open' then 0 else 1 end,
                    resolved_on desc,
                    first_seen desc
            ) as newest_first
        from episodes
    ) as ranked
    where newest_first = 1
)

select
    {{ dbt.concat(['newest.tenant_id', "'|'", 'newest.kind', "'|'", 'newest.subject']) }}
        as alert_key,
    newest.tenant_id,
    names.tenant_name,
    newest.kind,
    newest.subject,
    newest.severity,
    newest.status,
    newest.first_seen,
    newest.last_seen,
    newest.resolved_on,
    {{ dbt.concat([
        'coalesce(names.tenant_name, newest.tenant_id)', "': '", 'newest.summary'
    ]) }} as summary
from newest
inner join {{ ref('int_spanning__alert_tenants') }} as tenants
    on tenants.tenant_id = newest.tenant_id
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = newest.tenant_id
where newest.status = 'open'
    or {{ dbt.datediff('newest.resolved_on', 'tenants.window_day', 'day') }}
        <= {{ var('alert_resolved_days') }}
