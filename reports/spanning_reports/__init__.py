"""The reports of tap-spanning, drawn from the dbt marts of transform/ (docs/warehouse.md,
"Fleet report").

marts.py reads the marts (the columns of transform/models/marts/marts.yml) from DuckDB or
PostgreSQL, freshness.py says how current they are, tenants.py, charts.py and tables.py choose
and place what the page shows, page.py renders templates/ with Jinja2 (autoescape), names.py
shows the hidden characters of names; fleet.py and roles.py are the two reports' commands and
utility.py their Meltano utility. `python -m spanning_reports fleet|roles|utility ...`.
"""
