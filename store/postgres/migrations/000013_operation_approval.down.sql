ALTER TABLE operations DROP COLUMN approval;
