{{ config(enabled=var('spanning__enable_backups', true)) }}
-- Users whose backup of one workload has been failed or partial for var('failing_days')
-- days running or more (a ticket each): the current streaks of int_spanning__failing_streaks
-- (the rule, written once), those ending on the tenant's latest backup day - the last day
-- of the window the tap asked in its newest complete run that read backups, never the
-- greatest date held, so that one stray row dated in the future cannot end every streak of
-- its tenant on a day nobody failed. A tenant without such a run has no failing users, nor
-- has an offboarded one (no ticket for a former client).
select
    streaks.tenant_id,
    names.tenant_name,
    streaks.ms_id,
    streaks.user_principal_name,
    streaks."type",
    streaks.streak_days,
    streaks.first_day,
    streaks.last_day
from {{ ref('int_spanning__failing_streaks') }} as streaks
left join {{ ref('tenant_names') }} as names
    on names.tenant_id = streaks.tenant_id
where streaks.last_day = streaks.latest_day
