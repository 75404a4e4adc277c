"""Singer tap for Kaseya Spanning Backup for Office 365."""
