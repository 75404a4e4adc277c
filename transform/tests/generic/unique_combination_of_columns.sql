{#
  The grain of a model: no two rows share these columns' values (dbt_utils has one of this
  name; dbt's package hub is out of reach here, so the project carries its own).
  Usage, at model level:
    data_tests:
      - unique_combination_of_columns:
          arguments: {combination_of_columns: [tenant_id, ms_id]}
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = [] -%}
    {%- for column in combination_of_columns -%}
        {%- do columns.append(adapter.quote(column)) -%}
    {%- endfor %}
    select {{ columns | join(', ') }}, count(*) as rows_with_this_key
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
