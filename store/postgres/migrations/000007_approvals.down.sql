DROP TABLE operation_approvals;
