package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Lifetimes Slack gives to interaction handles.
const (
	triggerTTL      = 3 * time.Second
	responseURLTTL  = 30 * time.Minute
	responseURLUses = 5
	maxViewStack    = 3
)

// responseURL is a response_url handed out with a slash command or click.
type responseURL struct {
	channel, user string
	originTS      string // the message clicked; empty for slash commands
	uses          int
	created       time.Time
}

// trigger is a trigger_id handed out with an interaction.
type trigger struct {
	user    string
	created time.Time
}

func (f *Fake) appsConnectionsOpen(*apiRequest) (map[string]any, *apiError) {
	host := strings.TrimPrefix(f.url, "http://")
	return map[string]any{"url": fmt.Sprintf("ws://%s/link/?ticket=%s&app_id=%s", host, randomID(), AppID)}, nil
}

func (f *Fake) authTest(*apiRequest) (map[string]any, *apiError) {
	return map[string]any{
		"url": "https://" + TeamDomain + ".slack.com/", "team": "Fake", "user": "togather",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID,
	}, nil
}

func (f *Fake) chatPostMessage(req *apiRequest) (map[string]any, *apiError) {
	ch := req.form.Get("channel")
	if !f.channelKnown(ch) {
		return nil, errCode("channel_not_found")
	}
	if !f.allowPost(ch) {
		return nil, &apiError{code: "ratelimited", throttled: true}
	}
	text, blocks, apiErr := f.messageContent(req)
	if apiErr != nil {
		return nil, apiErr
	}
	m := &Message{Kind: Post, Channel: ch, ThreadTS: req.form.Get("thread_ts"), User: BotUserID, Text: text, Blocks: blocks}
	f.addMessage(m, EventPost)
	return map[string]any{"channel": ch, "ts": m.TS, "message": m.wire()}, nil
}

func (f *Fake) chatPostEphemeral(req *apiRequest) (map[string]any, *apiError) {
	ch, user := req.form.Get("channel"), req.form.Get("user")
	if !f.channelKnown(ch) {
		return nil, errCode("channel_not_found")
	}
	if !f.userKnown(user) {
		return nil, errCode("user_not_found")
	}
	text, blocks, apiErr := f.messageContent(req)
	if apiErr != nil {
		return nil, apiErr
	}
	m := &Message{Kind: Ephemeral, Ephemeral: true, Channel: ch, ThreadTS: req.form.Get("thread_ts"), User: user, Text: text, Blocks: blocks}
	f.addMessage(m, EventEphemeral)
	return map[string]any{"message_ts": m.TS}, nil
}

func (f *Fake) chatUpdate(req *apiRequest) (map[string]any, *apiError) {
	ch, ts := req.form.Get("channel"), req.form.Get("ts")
	m := f.findMessage(ch, ts)
	if m == nil || m.Deleted || m.Ephemeral {
		return nil, errCode("message_not_found")
	}
	text, blocks, apiErr := f.messageContent(req)
	if apiErr != nil {
		return nil, apiErr
	}
	if !req.form.Has("text") {
		text = m.Text
	}
	if !req.form.Has("blocks") {
		blocks = m.Blocks
	}
	f.applyEdit(m, "chat.update", text, blocks)
	return map[string]any{"channel": ch, "ts": ts, "text": m.Text, "message": m.wire()}, nil
}

func (f *Fake) chatDelete(req *apiRequest) (map[string]any, *apiError) {
	ch, ts := req.form.Get("channel"), req.form.Get("ts")
	m := f.findMessage(ch, ts)
	if m == nil || m.Deleted || m.Ephemeral {
		return nil, errCode("message_not_found")
	}
	f.deleteMessage(m)
	return map[string]any{"channel": ch, "ts": ts}, nil
}

// messageContent reads and validates text and blocks of a chat.* call.
func (f *Fake) messageContent(req *apiRequest) (string, json.RawMessage, *apiError) {
	text := req.form.Get("text")
	if apiErr := checkText(text); apiErr != nil {
		return "", nil, apiErr
	}
	blocks, apiErr := f.parseBlocks([]byte(req.form.Get("blocks")), maxMessageBlocks)
	if apiErr != nil {
		return "", nil, apiErr
	}
	if text == "" && blocks == nil && req.form.Get("attachments") == "" {
		return "", nil, errCode("no_text")
	}
	return text, blocks, nil
}

func (f *Fake) usersInfo(req *apiRequest) (map[string]any, *apiError) {
	id := req.form.Get("user")
	u, ok := f.cfg.users[id]
	if id == BotUserID {
		u, ok = User{ID: BotUserID, Name: "togather", RealName: "Togather", IsBot: true}, true
	}
	if !ok {
		return nil, errCode("user_not_found")
	}
	return map[string]any{"user": map[string]any{
		"id": u.ID, "team_id": TeamID, "name": u.Name, "real_name": u.RealName, "tz": u.TZ,
		"is_bot": u.IsBot, "deleted": u.Deleted,
		"profile": map[string]any{"email": u.Email, "display_name": u.Name, "real_name": u.RealName},
	}}, nil
}

func (f *Fake) usergroupsUsersList(req *apiRequest) (map[string]any, *apiError) {
	members, ok := f.cfg.groups[req.form.Get("usergroup")]
	if !ok {
		return nil, errCode("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, members...)}, nil
}

func (f *Fake) conversationsInfo(req *apiRequest) (map[string]any, *apiError) {
	id := req.form.Get("channel")
	if !f.channelKnown(id) {
		return nil, errCode("channel_not_found")
	}
	ch := f.channel(id)
	return map[string]any{"channel": map[string]any{
		"id": ch.ID, "name": ch.Name, "is_channel": !ch.IsPrivate, "is_group": ch.IsPrivate,
		"is_private": ch.IsPrivate, "is_member": true, "created": f.tsBase,
	}}, nil
}

func (f *Fake) conversationsReplies(req *apiRequest) (map[string]any, *apiError) {
	ch, ts := req.form.Get("channel"), req.form.Get("ts")
	thread := f.thread(ch, ts)
	if len(thread) == 0 {
		return nil, errCode("thread_not_found")
	}
	wire := make([]map[string]any, len(thread))
	for i, m := range thread {
		wire[i] = m.wire()
	}
	return map[string]any{"messages": wire, "has_more": false, "response_metadata": map[string]any{"next_cursor": ""}}, nil
}

// viewCall is the JSON body of views.open, views.push and views.update.
type viewCall struct {
	TriggerID  string          `json:"trigger_id"`
	View       json.RawMessage `json:"view"`
	ViewID     string          `json:"view_id"`
	ExternalID string          `json:"external_id"`
	Hash       string          `json:"hash"`
}

// triggeredView decodes a views.open or views.push call: its trigger must
// be fresh and its view valid.
func (f *Fake) triggeredView(req *apiRequest) (*View, string, *apiError) {
	var call viewCall
	if err := json.Unmarshal(req.body, &call); err != nil {
		return nil, "", errCode("invalid_json", err.Error())
	}
	trig, apiErr := f.checkTrigger(call.TriggerID)
	if apiErr != nil {
		return nil, "", apiErr
	}
	v, apiErr := f.parseView(call.View)
	if apiErr != nil {
		return nil, "", apiErr
	}
	return v, trig.user, nil
}

func (f *Fake) viewsOpen(req *apiRequest) (map[string]any, *apiError) {
	v, user, apiErr := f.triggeredView(req)
	if apiErr != nil {
		return nil, apiErr
	}
	v.User = user
	v.RootViewID = v.ID
	return f.openView(v), nil
}

func (f *Fake) viewsPush(req *apiRequest) (map[string]any, *apiError) {
	v, user, apiErr := f.triggeredView(req)
	if apiErr != nil {
		return nil, apiErr
	}
	top := f.topView(user)
	if top == nil {
		return nil, errCode("not_found", "no open modal to push onto")
	}
	if f.stackDepth(top) >= maxViewStack {
		return nil, errCode("push_limit_reached")
	}
	v.User, v.RootViewID, v.PreviousViewID = user, top.RootViewID, top.ID
	return f.openView(v), nil
}

func (f *Fake) viewsUpdate(req *apiRequest) (map[string]any, *apiError) {
	var call viewCall
	if err := json.Unmarshal(req.body, &call); err != nil {
		return nil, errCode("invalid_json", err.Error())
	}
	target := f.findView(call.ViewID, call.ExternalID)
	if target == nil {
		return nil, errCode("not_found")
	}
	if call.Hash != "" && call.Hash != target.Hash {
		return nil, errCode("hash_conflict")
	}
	v, apiErr := f.parseView(call.View)
	if apiErr != nil {
		return nil, apiErr
	}
	f.replaceView(target, v)
	return map[string]any{"view": target.wire(nil)}, nil
}

// parseView validates a view object and returns its content, with a fresh
// ID and hash.
func (f *Fake) parseView(raw json.RawMessage) (*View, *apiError) {
	generic, err := decodeJSON(raw)
	obj, ok := generic.(map[string]any)
	if err != nil || !ok {
		return nil, errCode("invalid_arguments", "view must be a JSON object")
	}
	if errs := validateView(obj); len(errs) > 0 {
		return nil, errCode("invalid_arguments", errs...)
	}
	blocksRaw, _ := json.Marshal(obj["blocks"])
	blocks, apiErr := f.parseBlocks(blocksRaw, maxViewBlocks)
	if apiErr != nil {
		return nil, errCode("invalid_arguments", apiErr.reasons...)
	}
	var content struct {
		Type            string `json:"type"`
		CallbackID      string `json:"callback_id"`
		ExternalID      string `json:"external_id"`
		PrivateMetadata string `json:"private_metadata"`
		Title           struct {
			Text string `json:"text"`
		} `json:"title"`
	}
	_ = json.Unmarshal(raw, &content) // validated above
	return &View{
		ID: f.nextID("V"), Hash: f.nextID("h"), Type: content.Type, CallbackID: content.CallbackID,
		ExternalID: content.ExternalID, PrivateMetadata: content.PrivateMetadata,
		Title: content.Title.Text, Blocks: blocks,
	}, nil
}

// openView stores a new view. Call with f.mu held.
func (f *Fake) openView(v *View) map[string]any {
	f.views = append(f.views, v)
	f.publish(Event{Kind: EventViewOpen, View: v.clone()})
	return map[string]any{"view": v.wire(nil)}
}

// replaceView gives target the content of v. Call with f.mu held.
func (f *Fake) replaceView(target, v *View) {
	target.Type, target.CallbackID, target.ExternalID = v.Type, v.CallbackID, v.ExternalID
	target.PrivateMetadata, target.Title, target.Blocks, target.Hash = v.PrivateMetadata, v.Title, v.Blocks, v.Hash
	target.Errors = nil
	target.Updates++
	f.publish(Event{Kind: EventViewUpdate, View: target.clone()})
}

// closeView closes v. Call with f.mu held.
func (f *Fake) closeView(v *View) {
	if v.Closed {
		return
	}
	v.Closed = true
	f.publish(Event{Kind: EventViewClose, View: v.clone()})
}

// wire is the view object as Slack returns and sends it.
func (v *View) wire(values map[string]any) map[string]any {
	blocks := v.Blocks
	if blocks == nil {
		blocks = json.RawMessage("[]")
	}
	if values == nil {
		values = map[string]any{}
	}
	return map[string]any{
		"id": v.ID, "team_id": TeamID, "type": v.Type, "title": map[string]any{"type": "plain_text", "text": v.Title},
		"blocks": blocks, "private_metadata": v.PrivateMetadata, "callback_id": v.CallbackID,
		"external_id": v.ExternalID, "state": map[string]any{"values": values}, "hash": v.Hash,
		"root_view_id": v.RootViewID, "previous_view_id": v.PreviousViewID,
		"app_id": AppID, "bot_id": BotID, "clear_on_close": false, "notify_on_close": false,
	}
}

func (f *Fake) findView(id, externalID string) *View {
	for i := len(f.views) - 1; i >= 0; i-- {
		if v := f.views[i]; (id != "" && v.ID == id) || (id == "" && externalID != "" && v.ExternalID == externalID) {
			return v
		}
	}
	return nil
}

func (f *Fake) topView(user string) *View {
	for i := len(f.views) - 1; i >= 0; i-- {
		if v := f.views[i]; v.User == user && !v.Closed {
			return v
		}
	}
	return nil
}

func (f *Fake) stackDepth(v *View) int {
	depth := 1
	for v.PreviousViewID != "" {
		if v = f.findView(v.PreviousViewID, ""); v == nil {
			break
		}
		depth++
	}
	return depth
}

// checkTrigger checks a trigger_id. Call with f.mu held.
func (f *Fake) checkTrigger(id string) (trigger, *apiError) {
	trig, ok := f.triggers[id]
	switch {
	case !ok:
		return trigger{}, errCode("invalid_trigger_id")
	case time.Since(trig.created) > triggerTTL:
		return trigger{}, errCode("expired_trigger_id", "trigger_id is older than 3s")
	}
	return trig, nil
}

func (f *Fake) filesGetUploadURLExternal(req *apiRequest) (map[string]any, *apiError) {
	name := req.form.Get("filename")
	length, err := strconv.Atoi(req.form.Get("length"))
	if name == "" || err != nil || length <= 0 {
		return nil, errCode("invalid_arguments", "filename and a positive length are required")
	}
	u := &Upload{FileID: f.nextID("F"), Filename: name, Length: length}
	f.uploads = append(f.uploads, u)
	return map[string]any{"upload_url": f.url + "/upload/" + u.FileID, "file_id": u.FileID}, nil
}

func (f *Fake) filesCompleteUploadExternal(req *apiRequest) (map[string]any, *apiError) {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(req.form.Get("files")), &files); err != nil || len(files) == 0 {
		return nil, errCode("invalid_arguments", "files must be a non-empty JSON array")
	}
	ch := req.form.Get("channel_id")
	if ch == "" {
		ch, _, _ = strings.Cut(req.form.Get("channels"), ",")
	}
	if ch != "" && !f.channelKnown(ch) {
		return nil, errCode("channel_not_found")
	}
	done := make([]map[string]any, 0, len(files))
	for _, fl := range files {
		u := f.findUpload(fl.ID)
		if u == nil || u.Content == nil {
			return nil, errCode("file_not_found", fmt.Sprintf("file %q was not uploaded", fl.ID))
		}
		u.Title, u.Channel, u.ThreadTS = fl.Title, ch, req.form.Get("thread_ts")
		u.InitialComment, u.Completed = req.form.Get("initial_comment"), true
		f.publish(Event{Kind: EventUpload, Upload: u.clone()})
		done = append(done, map[string]any{"id": u.FileID, "title": u.Title})
	}
	return map[string]any{"files": done}, nil
}

func (f *Fake) findUpload(id string) *Upload {
	for _, u := range f.uploads {
		if u.FileID == id {
			return u
		}
	}
	return nil
}

// serveUpload receives the file at the URL files.getUploadURLExternal gave.
func (f *Fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, "expected multipart/form-data", http.StatusBadRequest)
		return
	}
	var content []byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, "bad multipart body", http.StatusBadRequest)
			return
		}
		if part.FormName() == "file" {
			if content, err = io.ReadAll(part); err != nil {
				http.Error(w, "bad file part", http.StatusBadRequest)
				return
			}
		}
	}
	if content == nil || !f.storeUpload(r.PathValue("id"), content) {
		http.Error(w, "unknown upload or no file part", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

// storeUpload keeps the content of a pending upload; content != nil marks
// it as received.
func (f *Fake) storeUpload(id string, content []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.findUpload(id)
	if u == nil || u.Completed {
		return false
	}
	u.Content = content
	f.notify()
	return true
}

// responseBody is what slack-go posts to a response_url (and what a slash
// command ack payload holds).
type responseBody struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// serveResponse handles posts to a response_url.
func (f *Fake) serveResponse(w http.ResponseWriter, r *http.Request) {
	var body responseBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body); err != nil {
		writeReply(w, failure(http.StatusBadRequest, "invalid_payload"))
		return
	}
	writeReply(w, f.handleResponse(r.PathValue("id"), body))
}

func (f *Fake) handleResponse(id string, body responseBody) reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	ru, ok := f.respURLs[id]
	var apiErr *apiError
	switch {
	case !ok:
		apiErr = errCode("no_service", "unknown response_url")
	case time.Since(ru.created) > responseURLTTL:
		apiErr = errCode("expired_url")
	case ru.uses >= responseURLUses:
		apiErr = errCode("used_url", "a response_url takes at most 5 posts")
	default:
		ru.uses++
		apiErr = f.respond(ru, body)
	}
	if apiErr != nil {
		f.reject("response_url", apiErr)
		return failure(http.StatusOK, apiErr.code)
	}
	var blocks json.RawMessage
	if string(body.Blocks) != "null" {
		blocks = body.Blocks
	}
	f.responses = append(f.responses, ResponsePost{
		URL: f.url + "/response/" + id, Channel: ru.channel, User: ru.user, Text: body.Text, Blocks: blocks,
		ResponseType: body.ResponseType, ThreadTS: body.ThreadTS,
		ReplaceOriginal: body.ReplaceOriginal, DeleteOriginal: body.DeleteOriginal, At: time.Now(),
	})
	return reply{status: http.StatusOK, body: map[string]any{"ok": true}}
}

// respond applies a response_url post (or a slash command ack payload) the
// way Slack does. Call with f.mu held.
func (f *Fake) respond(ru *responseURL, body responseBody) *apiError {
	if apiErr := checkText(body.Text); apiErr != nil {
		return apiErr
	}
	blocks, apiErr := f.parseBlocks(body.Blocks, maxMessageBlocks)
	if apiErr != nil {
		return apiErr
	}
	if !body.DeleteOriginal && body.Text == "" && blocks == nil {
		return errCode("no_text")
	}
	var orig *Message
	if ru.originTS != "" {
		orig = f.findMessage(ru.channel, ru.originTS)
	}
	switch {
	case body.DeleteOriginal:
		if orig != nil && !orig.Deleted {
			f.deleteMessage(orig)
		}
	case body.ReplaceOriginal && orig != nil:
		f.applyEdit(orig, "response_url", body.Text, blocks)
	default:
		m := &Message{Kind: Response, Channel: ru.channel, ThreadTS: body.ThreadTS, Text: body.Text, Blocks: blocks}
		if body.ResponseType == "in_channel" {
			m.User = BotUserID
		} else {
			m.User, m.Ephemeral = ru.user, true
		}
		f.addMessage(m, EventResponse)
	}
	return nil
}

// newResponseURL registers a response_url. Call with f.mu held.
func (f *Fake) newResponseURL(channel, user, originTS string) (*responseURL, string) {
	id := f.nextID("R")
	ru := &responseURL{channel: channel, user: user, originTS: originTS, created: time.Now()}
	f.respURLs[id] = ru
	return ru, f.url + "/response/" + id
}

// newTrigger registers a trigger_id. Call with f.mu held.
func (f *Fake) newTrigger(user string) string {
	id := fmt.Sprintf("%d.%d.%s", f.seq.Add(1), time.Now().UnixNano(), randomID()[:8])
	f.triggers[id] = trigger{user: user, created: time.Now()}
	return id
}
