-- The tap's users table, current rows only (macros/spanning_current_rows.sql): every column
-- as loaded, one row per tenant_id, "msId".
{{ spanning_current_rows(source('spanning', 'users'), ['tenant_id', '"msId"']) }}
