package bot

import (
	"context"
	"fmt"
	"strings"
)

// help lists the commands the caller may run, or the usage of one command.
func (b *Bot) help(ctx context.Context, user string, cmd Command) Message {
	var lines []string
	topic := strings.Join(cmd.Args, " ")
	for _, c := range Commands() {
		if topic != "" && c.Name != topic {
			continue
		}
		if c.Permission == "help" || !b.authz.Permitted(ctx, user, c.Permission) {
			continue
		}
		lines = append(lines, fmt.Sprintf("`/togather %s`\n      %s", c.Usage, c.Summary))
	}
	note := "Environments: " + strings.Join(b.envs, ", ") + " · `/togather help <command>` shows how to use one."
	switch {
	case len(lines) == 0 && topic != "":
		return Textf(fmt.Sprintf("You may not run `%s`, or it does not exist. `/togather help` lists what you can run.", topic))
	case len(lines) == 0:
		return Textf("You may not run any command yet. Ask an admin to add your user or group to a role.")
	}
	title := "What you can run"
	if topic != "" {
		title = "Usage of " + topic
	}
	blocks := []Block{Header{Text: title}}
	for _, chunk := range pack(lines, 2500) {
		blocks = append(blocks, Section{Text: chunk})
	}
	blocks = append(blocks, Context{Text: note})
	return Message{Text: title, Blocks: blocks}
}

// pack joins lines into chunks of at most limit characters, so a long list
// becomes several sections instead of one that Slack would cut.
func pack(lines []string, limit int) []string {
	var out []string
	var cur strings.Builder
	for _, l := range lines {
		if cur.Len() > 0 && cur.Len()+1+len(l) > limit {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
