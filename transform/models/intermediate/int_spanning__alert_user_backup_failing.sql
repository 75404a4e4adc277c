{{ config(enabled=var('spanning__enable_alerts', true) and var('spanning__enable_backups', true)) }}
-- Episodes of the alert user_backup_failing (warning; subject ms_id:workload): failing_users'
-- rule - a streak of var('failing_days') or more days running with a failed or partial
-- backup of one workload (int_spanning__failing_streaks), over the days up to the tenant's
-- latest backup day. Open when the streak ends on latest_day; an earlier streak is resolved
-- the day after its last (a day missing ends a streak like a good day).
select
    streaks.tenant_id,
    cast('user_backup_failing' as {{ dbt.type_string() }}) as kind,
    {{ dbt.concat(['streaks.ms_id', "':'", 'streaks."type"']) }} as subject,
    cast('warning' as {{ dbt.type_string() }}) as severity,
    cast(
        case when streaks.last_day = streaks.latest_day then 'open' else 'resolved' end
        as {{ dbt.type_string() }}
    ) as status,
    streaks.first_day as first_seen,
    streaks.last_day as last_seen,
    case
        when streaks.last_day < streaks.latest_day
            then cast({{ dbt.dateadd('day', 1, 'streaks.last_day') }} as date)
    end as resolved_on,
    {{ dbt.concat([
        "coalesce(streaks.user_principal_name, streaks.ms_id)",
        "' '",
        'streaks."type"',
        "' backup failed or partial '",
        'cast(streaks.streak_days as ' ~ dbt.type_string() ~ ')',
        "' days running since '",
        'cast(streaks.first_day as ' ~ dbt.type_string() ~ ')',
    ]) }} as summary
from {{ ref('int_spanning__failing_streaks') }} as streaks
