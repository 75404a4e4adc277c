-- The tap's tenants table, current rows only: every column as loaded, one row per tenant_id.
{{ spanning_current_rows(source('spanning', 'tenants'), ['tenant_id']) }}
