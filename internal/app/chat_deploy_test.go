package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

const deploys = "CDEPLOYS"

// chatRoles: alice deploys, bob approves and rolls back, carol may only
// read the status.
const chatRoles = `roles:
  - {name: deployers, users: [UALICE], commands: [status, deploy, preflight, rollback, lock, unlock, unlock.force, locks, history, "snapshot.*", "incident.*", "db.*"], environments: ["*"]}
  - {name: approvers, users: [UBOB], commands: [status, approve, rollback, lock], environments: ["*"]}
  - {name: readers, users: [UCAROL], commands: [status], environments: ["*"]}
`

// chatEnv is a real environment driven through the fake Slack.
type chatEnv struct {
	*apptest.DeployEnv
	fake *slackfake.Fake
	app  *app.App // the first replica
}

func startChat(t *testing.T, approval bool) *chatEnv {
	t.Helper()
	return startChatWith(t, approval, "")
}

// startChatWith adds extra top-level YAML to the configuration, then
// applies opts.
func startChatWith(t *testing.T, approval bool, extra string, opts ...apptest.Option) *chatEnv {
	t.Helper()
	e := apptest.NewDeployEnv(t, append([]apptest.Option{func(yaml *string, _ *apptest.DeployEnv) {
		*yaml = strings.Replace(*yaml, "roles: []\n", chatRoles+extra, 1)
		if approval {
			*yaml = strings.Replace(*yaml, "policy: {", "policy: {require_approval: true, approvals: 1, ", 1)
		}
	}}, opts...)...)
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	cfg := e.Cfg
	cfg.Secrets.SlackAppToken, cfg.Secrets.SlackBotToken = fake.AppToken(), fake.BotToken()
	cfg.Slack.APIURL = fake.APIURL()
	cfg.HTTP.Listen = "127.0.0.1:0"
	a := apptest.RunBot(t, fake, cfg)
	return &chatEnv{DeployEnv: e, fake: fake, app: a}
}

func (c *chatEnv) slash(t *testing.T, user, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := c.fake.SlashCommand(ctx, slackfake.Slash{User: user, Channel: channel, Command: "/togather", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.fake.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
}

func (c *chatEnv) click(t *testing.T, user string, msg slackfake.Message, action string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := c.fake.ClickButton(ctx, slackfake.Click{User: user, Channel: msg.Channel, MessageTS: msg.TS, ActionID: action})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.fake.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
}

func (c *chatEnv) waitMessage(t *testing.T, preds ...slackfake.Pred) slackfake.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := c.fake.WaitMessage(ctx, preds...)
	if err != nil {
		var seen []string
		for _, ch := range []string{deploys, channel} {
			for _, m := range c.fake.Messages(ch) {
				seen = append(seen, slackfake.Render(m))
			}
		}
		for _, r := range c.fake.Responses() {
			seen = append(seen, r.User+": "+r.Text)
		}
		t.Fatalf("waiting for a message: %v\nmessages so far:\n%s", err, strings.Join(seen, "\n---\n"))
	}
	return m
}

func (c *chatEnv) waitEdit(t *testing.T, msg slackfake.Message, text string) slackfake.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := c.fake.WaitEdit(ctx, msg.Channel, msg.TS, slackfake.TextContains(text))
	if err != nil {
		got, _ := c.fake.Message(msg.Channel, msg.TS)
		t.Fatalf("message never edited to %q: %v\nnow: %s", text, err, slackfake.Render(got))
	}
	return m
}

// waitResponse waits for a reply to user (through the response URL) that
// contains text.
func (c *chatEnv) waitResponse(t *testing.T, user, text string) slackfake.ResponsePost {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, r := range c.fake.Responses() {
			if r.User == user && strings.Contains(r.Text, text) {
				return r
			}
		}
	}
	t.Fatalf("no reply to %s contains %q", user, text)
	return slackfake.ResponsePost{}
}

func (c *chatEnv) deploysIn(t *testing.T, state ops.Step) int {
	t.Helper()
	hist, err := c.Store.History(context.Background(), "staging", 50)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range hist {
		if op.Kind == ops.KindDeploy && op.State == state {
			n++
		}
	}
	return n
}

func TestChatDeployWithApproval(t *testing.T) {
	c := startChat(t, true)
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+` --reason "ship it"`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	if !strings.Contains(slackfake.Render(req), "Pre-flight of v2.0.0 on staging") {
		t.Fatalf("the request does not show the report:\n%s", slackfake.Render(req))
	}

	c.click(t, "UALICE", req, "op.approve")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("someone else must approve"))
	c.click(t, "UCAROL", req, "op.approve")
	c.waitMessage(t, slackfake.ForUser("UCAROL"), slackfake.TextContains("not allowed to run approve"))
	if n := c.deploysIn(t, ops.StepRequested); n != 1 {
		t.Fatalf("%d deploys waiting after refused approvals, want 1", n)
	}

	// Bob double-clicks: one deploy.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); c.click(t, "UBOB", req, "op.approve") }()
	}
	wg.Wait()
	done := c.waitEdit(t, req, "done")
	c.WantServing(ops.Green, apptest.V2)
	if n := c.deploysIn(t, ops.StepDone); n != 1 {
		t.Errorf("%d deploys done, want exactly 1", n)
	}
	if !strings.Contains(slackfake.Render(done), "Roll back") {
		t.Errorf("the outcome has no Roll back button:\n%s", slackfake.Render(done))
	}
	thread := c.fake.Thread(req.Channel, req.TS)
	if len(thread) < 2 || !strings.Contains(slackfake.Render(thread[len(thread)-1]), "verified") {
		t.Errorf("no progress in the thread: %d messages", len(thread))
	}

	// The Roll back button, clicked twice, rolls back once.
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); c.click(t, "UBOB", done, "deploy.rollback") }()
	}
	wg.Wait()
	c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("rollback of staging to "+apptest.V1+" — done"))
	c.WantServing(ops.Blue, apptest.V1)
	hist, _ := c.Store.History(context.Background(), "staging", 50)
	rollbacks := 0
	for _, op := range hist {
		if op.Kind == ops.KindRollback {
			rollbacks++
		}
	}
	if rollbacks != 1 {
		t.Errorf("%d rollbacks from a double click, want 1", rollbacks)
	}
	if r := c.fake.Rejections(); len(r) > 0 {
		t.Errorf("Slack would reject: %+v", r)
	}
}

func TestChatDeployWithoutApprovalAndNeverHealthy(t *testing.T) {
	c := startChat(t, false)
	c.slash(t, "UALICE", "deploy staging "+apptest.VBad)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to deploy"))
	if strings.Contains(slackfake.Render(req), "Approve") {
		t.Fatalf("staging needs no approval, but the request has buttons")
	}
	out := c.waitEdit(t, req, "failed")
	if !strings.Contains(slackfake.Render(out), "blue keeps serving") {
		t.Errorf("the outcome does not say what serves:\n%s", slackfake.Render(out))
	}
	c.WantServing(ops.Blue, apptest.V1)
	c.WantNoLock()
}

func TestChatRollbackNeedsConfirmation(t *testing.T) {
	c := startChat(t, false)
	if _, err := c.Deploy(apptest.V2); err != nil {
		t.Fatal(err)
	}
	c.slash(t, "UBOB", `rollback staging --reason "errors up"`)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.confirm"))
	c.WantServing(ops.Green, apptest.V2) // nothing happens before the click
	c.click(t, "UCAROL", req, "op.confirm")
	c.waitMessage(t, slackfake.ForUser("UCAROL"), slackfake.TextContains("not allowed to run rollback"))
	c.click(t, "UBOB", req, "op.confirm")
	c.waitEdit(t, req, "done")
	c.WantServing(ops.Blue, apptest.V1)

	c.slash(t, "UBOB", "rollback staging --force")
	forced := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("asks to roll back"), func(m slackfake.Message) bool { return m.TS != req.TS })
	c.waitEdit(t, forced, "done")
	c.WantServing(ops.Green, apptest.V2)
}

func TestChatApprovalVoidWhenTheImageChanges(t *testing.T) {
	c := startChat(t, true)
	const version = "v2.1.0"
	ctx := context.Background()
	testenv.TestappImage(t, c.Cli, version, "healthy")
	t.Cleanup(func() {
		_, _ = c.Cli.ImageRemove(context.Background(), "togather-server:"+version, image.RemoveOptions{})
	})

	c.slash(t, "UALICE", "deploy staging "+version)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	// Someone pushes another image under the same tag before the approval.
	if err := c.Cli.ImageTag(ctx, "togather-server:"+apptest.V1, "togather-server:"+version); err != nil {
		t.Fatal(err)
	}
	c.click(t, "UBOB", req, "op.approve")
	c.waitEdit(t, req, "approval of")
	void, _ := c.fake.Message(req.Channel, req.TS)
	if !strings.Contains(slackfake.Render(void), "the image changed") || !strings.Contains(slackfake.Render(void), "Nothing was deployed") {
		t.Errorf("the void message does not say why:\n%s", slackfake.Render(void))
	}
	c.waitMessage(t, slackfake.InThread(req.TS), slackfake.TextContains("Fresh report"))
	c.WantServing(ops.Blue, apptest.V1)
	if n := c.deploysIn(t, ops.StepDone); n != 0 {
		t.Errorf("%d deploys ran on a void approval", n)
	}
}

func TestChatRequestsExpire(t *testing.T) {
	c := startChatWith(t, true, "policy:\n  approval_ttl: 2s\n")
	c.slash(t, "UALICE", "deploy staging "+apptest.V2)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))
	time.Sleep(2500 * time.Millisecond) // the approval deadline passes
	c.click(t, "UBOB", req, "op.approve")
	c.waitMessage(t, slackfake.ForUser("UBOB"), slackfake.TextContains("expired"))
	c.waitEdit(t, req, "expired without approval")
	c.WantServing(ops.Blue, apptest.V1)
}

func TestChatLockRefusesDeployNamingTheOwner(t *testing.T) {
	c := startChat(t, false)
	c.slash(t, "UALICE", `lock staging "db maintenance"`)
	c.waitMessage(t, slackfake.TextContains("locked by <@UALICE>"))
	c.slash(t, "UALICE", "deploy staging "+apptest.V2)
	rep := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("Pre-flight of"))
	text := slackfake.Render(rep)
	if !strings.Contains(text, "UALICE") || !strings.Contains(text, "db maintenance") || strings.Contains(text, "Approve") {
		t.Errorf("the report should fail naming the lock's owner and reason, without buttons:\n%s", text)
	}
	c.WantServing(ops.Blue, apptest.V1)
}

func TestChatSnapshotsAndForcedUnlock(t *testing.T) {
	c := startChat(t, false)
	c.slash(t, "UALICE", `snapshot create staging --reason "before cleanup"`)
	made := c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("before-cleanup"))
	c.slash(t, "UALICE", "snapshot list staging")
	list := c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains(".sql.gz"), func(m slackfake.Message) bool { return m.TS != made.TS })
	if !strings.Contains(slackfake.Render(list), "before-cleanup") {
		t.Errorf("the list lacks the new snapshot:\n%s", slackfake.Render(list))
	}

	c.slash(t, "UBOB", "lock staging investigating errors")
	c.waitMessage(t, slackfake.TextContains("locked by <@UBOB>"))
	c.slash(t, "UALICE", "unlock staging")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("--force"))
	if _, held, _ := c.Store.Locks().Get(context.Background(), "staging", time.Now()); !held {
		t.Fatal("an unlock without --force released someone else's lock")
	}
	c.slash(t, "UALICE", "unlock staging --force")
	ann := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.TextContains("<@UBOB>"))
	if !strings.Contains(slackfake.Render(ann), "UALICE") || !strings.Contains(slackfake.Render(ann), "investigating errors") {
		t.Errorf("the forced unlock announcement lacks who forced it or the lock's reason:\n%s", slackfake.Render(ann))
	}
	c.WantNoLock()
}

func TestChatRestoreNeedsApprovalAndRestores(t *testing.T) {
	c := startChat(t, false)
	ctx := context.Background()
	if _, err := c.Deploy(apptest.V2); err != nil { // its migration creates events with two rows
		t.Fatal(err)
	}
	snap, err := c.Env.Snapshots.Create(ctx, "before-change", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := appDB(ctx, t, c.AppDSN, "DELETE FROM events")

	c.slash(t, "UALICE", "snapshot restore staging "+snap.Name)
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"), slackfake.TextContains("restore"))
	c.click(t, "UALICE", req, "op.approve")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("someone else must approve"))
	c.click(t, "UBOB", req, "op.approve")
	c.waitEdit(t, req, "restore of staging from "+snap.Name+": done")
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil || n != 2 {
		t.Errorf("events after the restore: %d (%v), want the 2 rows of the snapshot", n, err)
	}
	c.WantNoLock()
}

// TestChatDBMaintenanceNeedsApproval: on an environment whose deploys need
// approval, VACUUM waits for an approver other than the requester, runs on
// the real app database once approved, and is journaled as an operation.
func TestChatDBMaintenanceNeedsApproval(t *testing.T) {
	c := startChatWith(t, true, "")
	ctx := context.Background()
	db := appDB(ctx, t, c.AppDSN, "CREATE TABLE churn (id int); INSERT INTO churn SELECT generate_series(1, 100)")

	c.slash(t, "UALICE", "db staging vacuum")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("needs approval"))
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"), slackfake.TextContains("VACUUM (ANALYZE)"))
	c.click(t, "UALICE", req, "op.approve")
	c.waitMessage(t, slackfake.ForUser("UALICE"), slackfake.TextContains("someone else must approve"))
	c.click(t, "UBOB", req, "op.approve")
	c.waitEdit(t, req, "VACUUM (ANALYZE) on staging's database: done")
	var vacuumed bool
	if err := db.QueryRow(ctx, "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'churn'").Scan(&vacuumed); err != nil || !vacuumed {
		t.Errorf("churn vacuumed: %v (%v), want true", vacuumed, err)
	}
	hist, err := c.Store.History(ctx, "staging", 5)
	if err != nil || len(hist) != 1 || hist[0].Kind != ops.KindDB || hist[0].State != ops.StepDone || hist[0].Requester != "UALICE" {
		t.Errorf("history = %+v (%v), want one done db operation requested by UALICE", hist, err)
	}
}

// Text people type is shown as written and mentions no one: "<!channel>"
// in a deploy's reason, a rollback's reason or a lock's reason (typed
// literally, so Slack sends it escaped and the adapter unescapes it for
// the parser) is escaped again wherever the bot shows it.
func TestUserTextCannotMention(t *testing.T) {
	c := startChat(t, true)
	c.slash(t, "UALICE", "deploy staging "+apptest.V2+` --reason "&lt;!channel&gt; big release"`)
	shown := []slackfake.Message{c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"))}
	c.slash(t, "UALICE", `rollback staging --reason "&lt;!here&gt; undo"`)
	shown = append(shown, c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.confirm")))
	c.slash(t, "UALICE", "lock staging &lt;!everyone&gt; freeze")
	c.slash(t, "UBOB", "lock staging mine")
	texts := []string{slackfake.Render(shown[0]), slackfake.Render(shown[1]),
		c.waitResponse(t, "UALICE", "freeze").Text, c.waitResponse(t, "UBOB", "is locked by").Text}

	for i, want := range []string{"&lt;!channel&gt; big release", "&lt;!here&gt; undo", "&lt;!everyone&gt; freeze", "&lt;!everyone&gt; freeze"} {
		text := texts[i]
		if !strings.Contains(text, want) || strings.Contains(text, "<!") {
			t.Errorf("user text reaches Slack as markup; want it escaped as %q:\n%s", want, text)
		}
	}
}

// TestChatDBMaintenanceHoldsTheLock: an approved VACUUM, held up by a
// lock the test takes in PostgreSQL, holds staging's lease while it runs
// and renews it: a deploy meanwhile is refused naming the requester, and
// recovery, even after a lease has passed, leaves it running; once the
// statement can go on it ends done and leaves no lock.
func TestChatDBMaintenanceHoldsTheLock(t *testing.T) {
	c := startChatWith(t, true, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := appDB(ctx, t, c.AppDSN, "CREATE TABLE churn (id int); INSERT INTO churn SELECT generate_series(1, 100)")
	// VACUUM needs SHARE UPDATE EXCLUSIVE on churn: it waits for this
	// transaction, while pg_dump (ACCESS SHARE) can still read.
	hold, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := hold.Exec(ctx, "LOCK TABLE churn IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	c.slash(t, "UALICE", "db staging vacuum")
	req := c.waitMessage(t, slackfake.InChannel(deploys), slackfake.HasButton("op.approve"), slackfake.TextContains("VACUUM (ANALYZE)"))
	c.click(t, "UBOB", req, "op.approve")
	watch, err := pgx.Connect(ctx, c.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	for waiting := false; !waiting; {
		if err := watch.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'VACUUM%' AND wait_event_type = 'Lock'").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the VACUUM never started")
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Past one lease (5 s): a lease that was not renewed, or a journal
	// quiet that long, would have let recovery take the VACUUM for dead.
	time.Sleep(c.Env.Env.Policy.Lease + time.Second)

	dep, err := c.Deploy(apptest.V2)
	var le *ops.LockError
	if !errors.As(err, &le) || le.Held.Holder != "UALICE" || !strings.Contains(err.Error(), "VACUUM") {
		t.Errorf("deploy during the VACUUM: %s, %v; want refused by UALICE's VACUUM", dep.State, err)
	}
	_, err = c.Env.Deployer.Recover(ctx)
	hist, herr := c.Store.History(ctx, "staging", 5)
	if herr != nil {
		t.Fatal(herr)
	}
	var vacuum ops.Operation
	for _, op := range hist {
		if op.Kind == ops.KindDB {
			vacuum = op
		}
	}
	if !errors.Is(err, ops.ErrStillRunning) || vacuum.State != ops.StepLocked {
		t.Errorf("recovery during the VACUUM: %v; the VACUUM is %s, want left running (locked)\n%s", err, vacuum.State, journal(vacuum))
	}

	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitEdit(t, req, "VACUUM (ANALYZE) on staging's database: done")
	if got, err := c.Store.Get(ctx, vacuum.ID); err != nil || got.State != ops.StepDone {
		t.Errorf("the VACUUM ended %s (%v), want done", got.State, err)
	}
	e := c.DeployEnv
	e.WantServing(ops.Blue, apptest.V1)
	e.WantNoLock()
}

// appDB connects to the application database at dsn for the test and runs
// setup on it.
func appDB(ctx context.Context, t *testing.T, dsn, setup string) *pgx.Conn {
	t.Helper()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	if _, err := db.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	return db
}
