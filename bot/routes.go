package bot

import "context"

// routes maps each command to its handler.
func (b *Bot) routes() map[Name]handler {
	return map[Name]handler{
		NameStatus: b.handleStatus, NameDeploy: b.handleDeploy, NamePreflight: b.handlePreflight, NameRollback: b.handleRollback,
		NameIncident: b.handleIncident, NameDB: b.handleDB, NameSecrets: b.handleSecrets, NameMaintenance: b.handleMaintenance,
		NameLock: b.handleLock, NameUnlock: b.handleUnlock, NameLocks: b.handleLocks, NameHistory: b.handleHistory,
		NameSnapshot: func(ctx context.Context, req Request, cmd Command, rw Responder) error {
			if cmd.Sub == "restore" {
				return b.handleRestore(ctx, req, cmd, rw)
			}
			return b.handleSnapshot(ctx, req, cmd, rw)
		},
	}
}
