-- One row: the thresholds of "needs attention", each a dbt var of dbt_project.yml (override
-- with --vars). fleet_overview's flags read them here, so a report can print the thresholds
-- it was judged by.
select
    cast({{ var('spanning_backup_target_pct') }} as double precision) as backup_target_pct,
    cast({{ var('spanning_backup_bad_pct') }} as double precision) as backup_bad_pct,
    cast({{ var('spanning_global_admin_min') }} as {{ dbt.type_bigint() }}) as global_admin_min,
    cast({{ var('spanning_global_admin_max') }} as {{ dbt.type_bigint() }}) as global_admin_max,
    cast({{ var('spanning_global_admin_flag_at') }} as {{ dbt.type_bigint() }})
        as global_admin_flag_at,
    cast({{ var('spanning_seat_use_max_pct') }} as double precision) as seat_use_max_pct,
    cast({{ var('spanning_failing_users_pattern_at') }} as {{ dbt.type_bigint() }})
        as failing_users_pattern_at
