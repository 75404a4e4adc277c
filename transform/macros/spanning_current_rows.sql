{#
  The current-rows rule (README "Many tenants"), as sql/current_rows.sql spells it.

  A row of tenant T is current when its sync_version is at least the greatest sync_version of
  T's tenant_syncs rows with status 'complete'; of several rows with one key, the newest
  (greatest sync_version). A tenant that never completed has no current rows, and neither has
  an offboarded one (spanning_offboarded_tenants, below).

  Returns a SELECT of every column of `relation`, current rows only; the staging model picks
  and renames the columns it keeps. `key_columns`: the table's key columns, as SQL (quote
  camelCase names: '"msId"').

  Written as an anti-join (NOT EXISTS a newer row), not as row_number() = 1: PostgreSQL
  estimates an anti-join's rows well, where a filter on a window function's output is
  guessed at a fraction of a percent, which turned the marts' joins into nested loops.
#}
{% macro spanning_current_rows(relation, key_columns) %}
    {%- set syncs = source('spanning', 'tenant_syncs') %}
    select loaded.*
    from {{ relation }} as loaded
    inner join (
        -- Each tenant's last complete run, unless it is offboarded (a tenant that never
        -- completed has none, so the join below keeps none of its rows).
        select ran.tenant_id, max(ran.sync_version) as sync_version
        from {{ syncs }} as ran
        where ran.status = 'complete'
            and not exists (
                select 1
                from ({{ spanning_offboarded_tenants(syncs) }}) as offboarded
                where offboarded.tenant_id = ran.tenant_id
            )
        group by ran.tenant_id
    ) as last_complete
        on last_complete.tenant_id = loaded.tenant_id
        and loaded.sync_version >= last_complete.sync_version
    where {{ spanning_no_newer_row(relation, key_columns) }}
{% endmacro %}


{#
  The offboarded tenants of `syncs` (tenant_syncs, or its staging model): tenant_id and
  last_sync_version, its newest run.

  T is offboarded when another tenant that ran in T's newest run has run since without T.
  The tenants of one job share each run's sync_version, and every tenant configured in a run,
  failed or not, gets a tenant_syncs row of it when the run writes records: a job that drops
  T runs its other tenants again without it, while another job (a shard) loading the same
  schema never runs T's run-mates, so shards keep their tenants. A job whose tenants are all
  removed at once (a one-tenant job, say) leaves nobody to run again: its tenants are never
  offboarded.

  moved_on is every run one of whose tenants has run since: one pass over `syncs` joined to
  each tenant's newest run by tenant_id. Pairing each tenant with its run-mates instead would
  cost n^2 rows for a fleet of n tenants in one job.
#}
{% macro spanning_offboarded_tenants(syncs) %}
    with newest as (
        select tenant_id, max(sync_version) as sync_version
        from {{ syncs }}
        group by tenant_id
    ),

    moved_on as (
        select distinct earlier.sync_version
        from {{ syncs }} as earlier
        inner join newest
            on newest.tenant_id = earlier.tenant_id
            and newest.sync_version > earlier.sync_version
    )

    select newest.tenant_id, newest.sync_version as last_sync_version
    from newest
    inner join moved_on
        on moved_on.sync_version = newest.sync_version
{% endmacro %}


{#
  The newest row of each key of a history (backup_summaries, user_backups): a day's counts
  settle after the day, and each run upserts (or appends) the days it read.
#}
{% macro spanning_newest_rows(relation, key_columns) %}
    select loaded.*
    from {{ relation }} as loaded
    where {{ spanning_no_newer_row(relation, key_columns) }}
{% endmacro %}


{# No row of `relation` with the same key as `loaded` has a greater sync_version. #}
{% macro spanning_no_newer_row(relation, key_columns) %}
    not exists (
        select 1
        from {{ relation }} as newer
        where newer.sync_version > loaded.sync_version
        {%- for key in key_columns %}
            and newer.{{ key }} = loaded.{{ key }}
        {%- endfor %}
    )
{% endmacro %}
