{# The date `days` days before today (current_date: the warehouse session's time zone). #}
{% macro spanning_days_ago(days) -%}
    cast({{ dbt.dateadd('day', -days, 'current_date') }} as date)
{%- endmacro %}
