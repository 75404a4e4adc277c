{#
  A column's values lie in [min_value, max_value] (either bound may be left out); nulls pass.
    columns:
      - name: seat_use_pct
        data_tests:
          - accepted_range: {arguments: {min_value: 0, max_value: 100}, config: {severity: warn}}
#}
{% test accepted_range(model, column_name, min_value=None, max_value=None) %}
    select *
    from {{ model }}
    where {{ column_name }} is not null
      and (
        false
        {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
      )
{% endtest %}
