// Package schedule runs the leader's periodic jobs on cron schedules, in one
// time zone's wall-clock time. Runs are claimed through a Claimer (the
// PostgreSQL store in production) before they start, so each due time runs
// once across replicas and restarts, and a run missed while the bot was down
// is caught up once when it starts again.
package schedule
