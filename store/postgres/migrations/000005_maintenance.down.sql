DROP TABLE maintenance_alerts;
DROP TABLE maintenance_events;
DROP TABLE maintenance_windows;
