package bot

import "context"

// routes maps each command with a handler in this version to it. Commands
// without one are parsed and answered as not available yet.
func (b *Bot) routes() map[Name]handler {
	r := map[Name]handler{NameStatus: b.handleStatus, NameDeploy: b.handleDeploy, NamePreflight: b.handlePreflight, NameRollback: b.handleRollback, NameIncident: b.handleIncident, NameDB: b.handleDB, NameSecrets: b.handleSecrets}
	for n, h := range b.adminRoutes() {
		r[n] = h
	}
	snapshot := r[NameSnapshot]
	r[NameSnapshot] = func(ctx context.Context, req Request, cmd Command, rw Responder) error {
		if cmd.Sub == "restore" {
			return b.handleRestore(ctx, req, cmd, rw)
		}
		if snapshot == nil {
			return rw.Reply(ctx, Textf("`snapshot "+cmd.Sub+"` is not available yet in this version of the bot."))
		}
		return snapshot(ctx, req, cmd, rw)
	}
	return r
}
