package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// verificationToken is the legacy token Slack still puts in payloads.
const verificationToken = "fake-verification-token"

// Slash is a slash command typed by a user.
type Slash struct {
	User, Channel, Command, Text string
}

// Click is a button click on a stored message. ActionID is required; an
// empty BlockID or Value is taken from the button with ActionID in the
// message. Giving BlockID and Value for a button the message no longer has
// simulates a click on a stale copy of the message.
type Click struct {
	User, Channel, MessageTS, ActionID, BlockID, Value string
}

// ViewSubmit is a modal submission. Values maps block_id → action_id → the
// entered text (plain_text_input and similar) or the selected option value
// (static_select). User defaults to the user the view was opened for.
type ViewSubmit struct {
	User, ViewID string
	Values       map[string]map[string]string
}

// SlashCommand sends a slash_commands envelope with a fresh response_url
// and trigger_id, and returns its envelope_id.
func (f *Fake) SlashCommand(ctx context.Context, s Slash) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.User == "" || s.Channel == "" || !strings.HasPrefix(s.Command, "/") {
		return "", errors.New("slash command: user, channel and a /command are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ru, url := f.newResponseURL(s.Channel, s.User, "")
	payload := map[string]string{
		"token": verificationToken, "team_id": TeamID, "team_domain": TeamDomain,
		"channel_id": s.Channel, "channel_name": f.channel(s.Channel).Name,
		"user_id": s.User, "user_name": f.userName(s.User), "command": s.Command, "text": s.Text,
		"api_app_id": AppID, "is_enterprise_install": "false", "response_url": url,
		"trigger_id": f.newTrigger(s.User),
	}
	env, err := newEnvelope("slash_commands", payload, true)
	if err != nil {
		return "", err
	}
	env.resp = ru
	return f.sendEnvelope(env)
}

// ClickButton sends a block_actions envelope for a click on a button of a
// stored message, with the message copied into the payload, and returns its
// envelope_id.
func (f *Fake) ClickButton(ctx context.Context, c Click) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if c.User == "" || c.ActionID == "" {
		return "", errors.New("click: user and action_id are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.findMessage(c.Channel, c.MessageTS)
	if m == nil {
		return "", fmt.Errorf("click: no message %s in %s", c.MessageTS, c.Channel)
	}
	action, err := findAction(m.Blocks, c)
	if err != nil {
		return "", err
	}
	action["action_ts"] = f.nextTS()
	_, url := f.newResponseURL(m.Channel, c.User, m.TS)
	container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": m.Ephemeral}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
	}
	payload := map[string]any{
		"type": "block_actions", "user": userObject(f, c.User), "api_app_id": AppID, "token": verificationToken,
		"trigger_id": f.newTrigger(c.User), "team": map[string]any{"id": TeamID, "domain": TeamDomain},
		"enterprise": nil, "is_enterprise_install": false, "container": container,
		"channel":      map[string]any{"id": m.Channel, "name": f.channel(m.Channel).Name},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": url, "actions": []any{action},
	}
	if !m.Ephemeral { // Slack does not echo ephemeral messages
		payload["message"] = m.wire()
	}
	env, err := newEnvelope("interactive", payload, false)
	if err != nil {
		return "", err
	}
	return f.sendEnvelope(env)
}

// findAction builds the action object of a click from the message blocks.
func findAction(blocks json.RawMessage, c Click) (map[string]any, error) {
	var decoded []map[string]any
	if len(blocks) > 0 {
		if err := json.Unmarshal(blocks, &decoded); err != nil {
			return nil, fmt.Errorf("click: decode message blocks: %w", err)
		}
	}
	for _, b := range decoded {
		blockID, _ := b["block_id"].(string)
		if c.BlockID != "" && blockID != c.BlockID {
			continue
		}
		elems, _ := b["elements"].([]any)
		for _, e := range append(elems, b["accessory"]) {
			el, _ := e.(map[string]any)
			if el == nil || el["action_id"] != c.ActionID {
				continue
			}
			action := map[string]any{"type": el["type"], "action_id": c.ActionID, "block_id": blockID, "value": el["value"]}
			if el["text"] != nil {
				action["text"] = el["text"]
			}
			if c.Value != "" {
				action["value"] = c.Value
			}
			return action, nil
		}
	}
	if c.BlockID == "" || c.Value == "" {
		return nil, fmt.Errorf("click: the message has no button %q", c.ActionID)
	}
	return map[string]any{
		"type": "button", "action_id": c.ActionID, "block_id": c.BlockID, "value": c.Value,
		"text": map[string]any{"type": "plain_text", "text": c.ActionID},
	}, nil
}

// SubmitView sends a view_submission envelope for an open modal and returns
// its envelope_id. The bot's ack payload is applied as Slack does:
// response_action errors, update, push and clear; an empty ack closes it.
func (f *Fake) SubmitView(ctx context.Context, s ViewSubmit) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.findView(s.ViewID, "")
	if v == nil || v.Closed {
		return "", fmt.Errorf("submit view: no open view %s", s.ViewID)
	}
	user := s.User
	if user == "" {
		user = v.User
	}
	values, err := stateValues(v.Blocks, s.Values)
	if err != nil {
		return "", fmt.Errorf("submit view %s: %w", v.ID, err)
	}
	payload := map[string]any{
		"type": "view_submission", "team": map[string]any{"id": TeamID, "domain": TeamDomain},
		"user": userObject(f, user), "api_app_id": AppID, "token": verificationToken,
		"trigger_id": f.newTrigger(user), "view": v.wire(values), "response_urls": []any{},
		"enterprise": nil, "is_enterprise_install": false,
	}
	env, err := newEnvelope("interactive", payload, true)
	if err != nil {
		return "", err
	}
	env.viewID = v.ID
	return f.sendEnvelope(env)
}

// stateValues builds view.state.values from the view's input blocks.
func stateValues(blocks json.RawMessage, given map[string]map[string]string) (map[string]any, error) {
	var decoded []map[string]any
	if len(blocks) > 0 {
		if err := json.Unmarshal(blocks, &decoded); err != nil {
			return nil, fmt.Errorf("decode view blocks: %w", err)
		}
	}
	state := map[string]any{}
	used := 0
	for _, b := range decoded {
		el, _ := b["element"].(map[string]any)
		if b["type"] != "input" || el == nil {
			continue
		}
		blockID, _ := b["block_id"].(string)
		actionID, _ := el["action_id"].(string)
		val, ok := given[blockID][actionID]
		if ok {
			used++
		}
		entry := map[string]any{"type": el["type"]}
		switch el["type"] {
		case "static_select":
			entry["selected_option"] = nil
			if ok {
				opt := findOption(el, val)
				if opt == nil {
					return nil, fmt.Errorf("%s/%s has no option %q", blockID, actionID, val)
				}
				entry["selected_option"] = opt
			}
		default:
			entry["value"] = nil
			if ok {
				entry["value"] = val
			}
		}
		state[blockID] = map[string]any{actionID: entry}
	}
	if want := countValues(given); used != want {
		return nil, fmt.Errorf("%d of %d values do not name an input block/action", want-used, want)
	}
	return state, nil
}

func countValues(given map[string]map[string]string) int {
	n := 0
	for _, actions := range given {
		n += len(actions)
	}
	return n
}

// findOption returns the option of a select element with value.
func findOption(el map[string]any, value string) any {
	opts, _ := el["options"].([]any)
	groups, _ := el["option_groups"].([]any)
	for _, g := range groups {
		if gm, _ := g.(map[string]any); gm != nil {
			more, _ := gm["options"].([]any)
			opts = append(opts, more...)
		}
	}
	for _, o := range opts {
		if om, _ := o.(map[string]any); om != nil && om["value"] == value {
			return om
		}
	}
	return nil
}

func userObject(f *Fake, id string) map[string]any {
	name := f.userName(id)
	return map[string]any{"id": id, "username": name, "name": name, "team_id": TeamID}
}

func newEnvelope(typ string, payload any, acceptsResponse bool) (*envelope, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return &envelope{ID: randomID(), Type: typ, Payload: raw, AcceptsResponsePayload: acceptsResponse}, nil
}

// applyAck applies what Slack does with an ack: a slash command's payload is
// shown as a response; a view submission's response_action acts on the
// modal. Call with f.mu held.
func (f *Fake) applyAck(env *envelope, payload json.RawMessage) {
	switch {
	case env.resp != nil && len(payload) > 0 && string(payload) != "null":
		var body responseBody
		if err := json.Unmarshal(payload, &body); err != nil {
			f.reject("ack", errCode("invalid_payload", err.Error()))
			return
		}
		if apiErr := f.respond(env.resp, body); apiErr != nil {
			f.reject("ack", apiErr)
		}
	case env.viewID != "":
		f.applyViewResponse(env.viewID, payload)
	}
}

func (f *Fake) applyViewResponse(viewID string, payload json.RawMessage) {
	v := f.findView(viewID, "")
	if v == nil {
		return
	}
	var ra struct {
		ResponseAction string            `json:"response_action"`
		View           json.RawMessage   `json:"view"`
		Errors         map[string]string `json:"errors"`
	}
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &ra); err != nil {
			f.reject("ack", errCode("invalid_payload", err.Error()))
			return
		}
	}
	switch ra.ResponseAction {
	case "":
		f.closeView(v)
	case "errors":
		v.Errors = ra.Errors
		f.publish(Event{Kind: EventViewUpdate, View: v.clone()})
	case "update", "push":
		nv, apiErr := f.parseView(ra.View)
		if apiErr != nil {
			f.reject("ack", apiErr)
			return
		}
		if ra.ResponseAction == "update" {
			f.replaceView(v, nv)
			return
		}
		if f.stackDepth(v) >= maxViewStack {
			f.reject("ack", errCode("push_limit_reached"))
			return
		}
		nv.User, nv.RootViewID, nv.PreviousViewID = v.User, v.RootViewID, v.ID
		f.openView(nv)
	case "clear":
		for _, other := range f.views {
			if other.User == v.User && other.RootViewID == v.RootViewID {
				f.closeView(other)
			}
		}
	default:
		f.reject("ack", errCode("invalid_response_action", ra.ResponseAction))
	}
}
