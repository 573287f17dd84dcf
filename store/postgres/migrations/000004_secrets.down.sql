DROP TABLE IF EXISTS secret_rotations;
