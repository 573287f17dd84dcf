package slackfake_test

import (
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

func TestConnectHello(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	b := startBot(t, f, botConfig{})
	hello := b.nextOf(ctx, t, socketmode.EventTypeHello)
	if hello.Request.ConnectionInfo.AppID != slackfake.AppID || hello.Request.NumConnections != 1 {
		t.Errorf("hello = %+v", hello.Request)
	}
	if err := f.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.Opens(); n != 1 {
		t.Errorf("Opens = %d, want 1", n)
	}
	calls := f.Calls("apps.connections.open")
	if len(calls) != 1 || calls[0].Token != f.AppToken() {
		t.Errorf("apps.connections.open calls = %+v", calls)
	}
}

func TestSlashCommandAck(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t, slackfake.WithChannels(slackfake.Channel{ID: "C1", Name: "ops"}))
	b := startBot(t, f, botConfig{})
	sent := time.Now()
	env, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "deploy production"})
	if err != nil {
		t.Fatal(err)
	}
	evt := b.nextOf(ctx, t, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("data = %T", evt.Data)
	}
	if cmd.Command != "/togather" || cmd.Text != "deploy production" || cmd.UserID != "U1" || cmd.ChannelID != "C1" ||
		cmd.ChannelName != "ops" || cmd.TeamID != slackfake.TeamID || cmd.ResponseURL == "" || cmd.TriggerID == "" {
		t.Errorf("slash command = %+v", cmd)
	}
	if evt.Request.EnvelopeID != env || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request = %+v", evt.Request)
	}
	ack, err := f.WaitAck(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if ack.ConnID != 1 || ack.At.Sub(sent) > 3*time.Second || len(ack.Payload) != 0 {
		t.Errorf("ack = %+v", ack)
	}
}

func TestSlashAckPayloadShown(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	startBot(t, f, botConfig{ack: func(socketmode.Request) any {
		return map[string]any{"text": "on it", "response_type": "ephemeral"}
	}})
	if _, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "status"}); err != nil {
		t.Fatal(err)
	}
	m, err := f.WaitMessage(ctx, slackfake.Kind(slackfake.Response), slackfake.TextContains("on it"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ephemeral || m.User != "U1" || m.Channel != "C1" {
		t.Errorf("ack response = %+v", m)
	}
}

func TestQueuedUntilConnected(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	env, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "help"})
	if err != nil {
		t.Fatal(err)
	}
	startBot(t, f, botConfig{})
	if _, err := f.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
}

func TestReconnects(t *testing.T) {
	tests := []struct {
		name   string
		fault  func(*slackfake.Fake)
		queued bool // the fault takes the link down at once, so an envelope sent now waits for the next one
		fake   []slackfake.Option
		client time.Duration
	}{
		{name: "disconnect frame", fault: func(f *slackfake.Fake) { f.Disconnect("refresh_requested") }, queued: true},
		{name: "dropped connection", fault: (*slackfake.Fake).DropConnection, queued: true},
		{
			name:   "stopped pings",
			fault:  (*slackfake.Fake).StopPings,
			fake:   []slackfake.Option{slackfake.WithPingInterval(50 * time.Millisecond)},
			client: 400 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFake(t, tt.fake...)
			startBot(t, f, botConfig{pingInterval: tt.client})
			if err := f.WaitConnected(ctx); err != nil {
				t.Fatal(err)
			}
			slash := func() string {
				env, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "help"})
				if err != nil {
					t.Fatal(err)
				}
				return env
			}
			tt.fault(f)
			var env string
			if tt.queued {
				env = slash()
			}
			if err := f.WaitOpens(ctx, 2); err != nil {
				t.Fatal(err)
			}
			f.ResumePings()
			if !tt.queued {
				env = slash()
			}
			ack, err := f.WaitAck(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			if ack.ConnID < 2 {
				t.Errorf("ack on connection %d, want a new connection", ack.ConnID)
			}
		})
	}
}

func TestRedeliverKeepsEnvelopeID(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	b := startBot(t, f, botConfig{})
	env, err := f.SlashCommand(ctx, slackfake.Slash{User: "U1", Channel: "C1", Command: "/togather", Text: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	first := b.nextOf(ctx, t, socketmode.EventTypeSlashCommand)
	if err := f.Redeliver(ctx, env); err != nil {
		t.Fatal(err)
	}
	second := b.nextOf(ctx, t, socketmode.EventTypeSlashCommand)
	if first.Request.RetryAttempt != 0 || second.Request.EnvelopeID != env ||
		second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" {
		t.Errorf("first = %+v, second = %+v", first.Request, second.Request)
	}
	if string(first.Request.Payload) != string(second.Request.Payload) {
		t.Error("redelivered payload differs")
	}
}

func TestSendRaw(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	b := startBot(t, f, botConfig{})
	frame := `{"envelope_id":"raw-1","type":"events_api","accepts_response_payload":false,"payload":{"type":"event_callback","event":{"type":"app_mention","text":"hi"}}}`
	if err := f.SendRaw(ctx, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	if evt := b.nextOf(ctx, t, socketmode.EventTypeEventsAPI); evt.Request.EnvelopeID != "raw-1" {
		t.Errorf("request = %+v", evt.Request)
	}
	if _, err := f.WaitAck(ctx, "raw-1"); err != nil {
		t.Fatal(err)
	}
}

// TestLinkDisabledIsFatal shows the fault combination for a disabled app:
// slack-go ignores the disconnect reason, so the fake also refuses the
// reconnect with invalid_auth, which ends RunContext.
func TestLinkDisabledIsFatal(t *testing.T) {
	ctx := testCtx(t)
	f := newFake(t)
	sm := socketmode.New(newAPI(f), socketmode.OptionPingInterval(2*time.Second))
	runErr := make(chan error, 1)
	go func() { runErr <- sm.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-sm.Events:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := f.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	f.FailNext("apps.connections.open", "invalid_auth", 1)
	f.Disconnect("link_disabled")
	select {
	case err := <-runErr:
		if slackErr(err) != "invalid_auth" {
			t.Errorf("RunContext = %v, want invalid_auth", err)
		}
	case <-ctx.Done():
		t.Fatal("RunContext kept running after link_disabled")
	}
}
