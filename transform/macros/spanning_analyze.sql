{#
  Fresh planner statistics, on PostgreSQL only (elsewhere nothing).

  The loader has just written the tap's tables and dbt has just created the models' tables:
  autovacuum has not analysed them yet, and without statistics PostgreSQL guesses a few rows
  for every table, then joins them in nested loops that grow with users x admins. ANALYZE
  samples each table in milliseconds. A table the dbt user does not own is skipped with a
  warning by PostgreSQL itself, not an error.
#}
{% macro spanning_analyze(relation) %}
    {{ return(adapter.dispatch('spanning_analyze', 'spanning')(relation)) }}
{% endmacro %}

{% macro default__spanning_analyze(relation) %}{% endmacro %}

{% macro postgres__spanning_analyze(relation) %}
    analyze {{ relation }}
{% endmacro %}


{# on-run-start: the tap's tables that exist (a first dbt run may precede the first load). #}
{% macro spanning_analyze_sources() %}
    {% if execute and target.type == 'postgres' %}
        {% set tables = [] %}
        {% for node in graph.sources.values()
            if node.package_name == 'spanning' and node.source_name == 'spanning' %}
            {% set relation = adapter.get_relation(node.database, node.schema, node.identifier) %}
            {% if relation is not none %}
                {% do tables.append(relation) %}
            {% endif %}
        {% endfor %}
        {% if tables %}
            {{ return('analyze ' ~ (tables | join(', '))) }}
        {% endif %}
    {% endif %}
    {{ return('') }}
{% endmacro %}
