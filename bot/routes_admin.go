package bot

// adminRoutes are the handlers of the lock, history and snapshot commands.
func (b *Bot) adminRoutes() map[Name]handler {
	return map[Name]handler{
		NameLock:     b.handleLock,
		NameUnlock:   b.handleUnlock,
		NameLocks:    b.handleLocks,
		NameHistory:  b.handleHistory,
		NameSnapshot: b.handleSnapshot,
	}
}
