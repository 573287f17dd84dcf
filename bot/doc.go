// Package bot is the chat-agnostic heart of togather-chatops: the command
// grammar, the handlers, authorization, audit and the message model. It knows
// nothing of Slack: bot/slack turns Socket Mode envelopes into Requests and
// renders Messages to Block Kit.
package bot
