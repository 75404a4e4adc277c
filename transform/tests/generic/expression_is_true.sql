{#
  Every row satisfies a SQL condition (a row where it is false fails; where it is null, too).
  At model level: expression is the whole condition. At column level: it follows the column
  (`expression: ">= 0"`).
    data_tests:
      - expression_is_true:
          arguments: {expression: "total = successful + partial + failed"}
#}
{% test expression_is_true(model, expression, column_name=None) %}
    select *
    from {{ model }}
    {% if column_name is none -%}
    where not coalesce(({{ expression }}), false)
    {%- else -%}
    where not coalesce(({{ column_name }} {{ expression }}), false)
    {%- endif %}
{% endtest %}
