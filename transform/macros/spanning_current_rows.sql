{#
  The current-rows rule (docs/many-tenants.md), written once: the models of models/current
  call it, and everything else reads those models.

  A row of tenant T is current when its sync_version is at least T's version in
  tenant_current_versions (T's last complete run, unless T is offboarded); of several rows
  with one key, the newest (greatest sync_version). A tenant that never completed has no
  current rows, and neither has an offboarded one.

  Returns a SELECT of every column of `relation`, current rows only. `key_columns`: the
  table's key columns, as SQL (quote camelCase names: '"msId"').

  Written as an anti-join (NOT EXISTS a newer row), not as row_number() = 1: PostgreSQL
  estimates an anti-join's rows well, where a filter on a window function's output is
  guessed at a fraction of a percent, which turned the marts' joins into nested loops.
#}
{% macro spanning_current_rows(relation, key_columns) %}
    select loaded.*
    from {{ relation }} as loaded
    inner join {{ ref('tenant_current_versions') }} as current_version
        on current_version.tenant_id = loaded.tenant_id
        and loaded.sync_version >= current_version.sync_version
    where {{ spanning_no_newer_row(relation, key_columns) }}
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
