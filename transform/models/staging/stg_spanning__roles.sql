-- The seven role tiers, one row per role_id (a loader that appends holds each once per run).
select distinct
    id as role_id,
    name,
    description
from {{ source('spanning', 'roles') }}
