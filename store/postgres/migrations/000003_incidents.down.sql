DROP TABLE IF EXISTS incident_timeline;
DROP TABLE IF EXISTS incidents;
DROP SEQUENCE IF EXISTS incident_seq;
DROP TABLE IF EXISTS alert_groups;
