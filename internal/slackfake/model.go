package slackfake

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"time"
)

// Identity of the fake workspace and of the bot installed in it.
const (
	TeamID     = "T0FAKE"
	TeamDomain = "fake"
	AppID      = "A0FAKE"
	BotUserID  = "U0BOT"
	BotID      = "B0BOT"
)

// User is a workspace member served by users.info.
type User struct {
	ID, Name, RealName, Email, TZ string
	IsBot, Deleted                bool
}

// Channel is a conversation served by conversations.info.
type Channel struct {
	ID, Name  string
	IsPrivate bool
}

// MessageKind tells how a message came to exist.
type MessageKind string

// Message kinds.
const (
	Post      MessageKind = "post"      // chat.postMessage
	Ephemeral MessageKind = "ephemeral" // chat.postEphemeral
	Response  MessageKind = "response"  // a new message posted through a response_url
)

// Message is a message the bot posted, in its current state.
type Message struct {
	Kind     MessageKind
	Channel  string
	TS       string
	ThreadTS string
	// User is the author (BotUserID) of a channel message and the only
	// recipient of an ephemeral one.
	User      string
	Text      string
	Blocks    json.RawMessage // the blocks array as posted; nil when none
	Edits     []Edit          // every update applied, oldest first
	Deleted   bool
	Ephemeral bool // visible to User only
	At        time.Time
}

func (m Message) clone() Message {
	m.Edits = slices.Clone(m.Edits)
	return m
}

// Edit is one update of a message, holding the content it set.
type Edit struct {
	Via    string // "chat.update" or "response_url"
	Text   string
	Blocks json.RawMessage
	At     time.Time
}

// ResponsePost is one JSON post the bot made to a response_url.
type ResponsePost struct {
	URL             string
	Channel, User   string
	Text            string
	Blocks          json.RawMessage
	ResponseType    string
	ThreadTS        string
	ReplaceOriginal bool
	DeleteOriginal  bool
	At              time.Time
}

// Call is one request the bot made to a Web API method.
type Call struct {
	Method string
	Params url.Values      // form fields (token removed)
	Body   json.RawMessage // JSON body, for JSON methods
	Token  string
	At     time.Time
}

func (c Call) clone() Call {
	c.Params = maps.Clone(c.Params)
	return c
}

// Rejection is a request the fake answered with ok:false (or an HTTP error)
// because the bot did something real Slack refuses. Injected faults are not
// rejections.
type Rejection struct {
	Method string
	Error  string // the Slack error code
	Reason string // detail, e.g. which block limit was broken
	At     time.Time
}

// Ack is an envelope acknowledgement the bot wrote on the socket.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	At         time.Time
	ConnID     int
}

// View is a modal the bot opened, in its current state.
type View struct {
	ID              string
	User            string
	Type            string
	CallbackID      string
	ExternalID      string
	PrivateMetadata string
	Hash            string
	Title           string
	RootViewID      string
	PreviousViewID  string
	Blocks          json.RawMessage
	Updates         int               // views.update calls and response_action updates applied
	Errors          map[string]string // from the last response_action "errors"
	Closed          bool
}

func (v View) clone() View {
	v.Errors = maps.Clone(v.Errors)
	return v
}

// Upload is a file uploaded with files.getUploadURLExternal, the upload URL
// and files.completeUploadExternal.
type Upload struct {
	FileID         string
	Filename       string
	Title          string
	Length         int // as declared to files.getUploadURLExternal
	Content        []byte
	Channel        string
	ThreadTS       string
	InitialComment string
	Completed      bool
}

func (u Upload) clone() Upload {
	u.Content = slices.Clone(u.Content)
	return u
}

// EventKind names something the bot did.
type EventKind string

// Event kinds published by Subscribe.
const (
	EventPost       EventKind = "post"
	EventEphemeral  EventKind = "ephemeral"
	EventResponse   EventKind = "response"
	EventEdit       EventKind = "edit"
	EventDelete     EventKind = "delete"
	EventViewOpen   EventKind = "view_open"
	EventViewUpdate EventKind = "view_update"
	EventViewClose  EventKind = "view_close"
	EventUpload     EventKind = "upload"
)

// Event is one thing the bot did. Message is set for message events, View
// for view events and Upload for uploads.
type Event struct {
	Kind    EventKind
	Message Message
	View    View
	Upload  Upload
	At      time.Time
}
