package bot

// routes maps each command with a handler in this version to it. Commands
// without one are parsed and answered as not available yet.
func (b *Bot) routes() map[Name]handler {
	r := map[Name]handler{NameStatus: b.handleStatus}
	for n, h := range b.adminRoutes() {
		r[n] = h
	}
	return r
}
