package slackfake

import (
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiRequest is one parsed Web API call.
type apiRequest struct {
	method string
	form   url.Values // form fields; empty for JSON calls
	body   []byte     // JSON body; empty for form calls
	token  string
	bearer bool // the token came in the Authorization header
	at     time.Time
}

// apiError is an ok:false answer. Unless throttled, it is recorded as a
// rejection: real Slack would have refused what the bot sent.
type apiError struct {
	code      string
	reasons   []string
	throttled bool // 429 from the realistic rate limit
}

func errCode(code string, reasons ...string) *apiError {
	return &apiError{code: code, reasons: reasons}
}

type apiHandler func(*Fake, *apiRequest) (map[string]any, *apiError)

var apiMethods = map[string]apiHandler{
	"apps.connections.open":        (*Fake).appsConnectionsOpen,
	"auth.test":                    (*Fake).authTest,
	"chat.postMessage":             (*Fake).chatPostMessage,
	"chat.update":                  (*Fake).chatUpdate,
	"chat.postEphemeral":           (*Fake).chatPostEphemeral,
	"chat.delete":                  (*Fake).chatDelete,
	"users.info":                   (*Fake).usersInfo,
	"usergroups.users.list":        (*Fake).usergroupsUsersList,
	"conversations.info":           (*Fake).conversationsInfo,
	"conversations.replies":        (*Fake).conversationsReplies,
	"views.open":                   (*Fake).viewsOpen,
	"views.update":                 (*Fake).viewsUpdate,
	"views.push":                   (*Fake).viewsPush,
	"files.getUploadURLExternal":   (*Fake).filesGetUploadURLExternal,
	"files.completeUploadExternal": (*Fake).filesCompleteUploadExternal,
}

// faultKind is what an injected fault does to a call.
type faultKind int

const (
	faultRateLimit faultKind = iota
	faultSlackError
	faultHTTPStatus
)

type fault struct {
	kind       faultKind
	left       int
	retryAfter time.Duration
	slackErr   string
	status     int
}

// RateLimit makes the next n calls of method fail with HTTP 429 and a
// Retry-After header of retryAfter, rounded up to whole seconds.
func (f *Fake) RateLimit(method string, n int, retryAfter time.Duration) {
	f.addFault(method, fault{kind: faultRateLimit, left: n, retryAfter: retryAfter})
}

// FailNext makes the next n calls of method answer {"ok":false,"error":slackError}.
func (f *Fake) FailNext(method, slackError string, n int) {
	f.addFault(method, fault{kind: faultSlackError, left: n, slackErr: slackError})
}

// HTTPStatus makes the next n calls of method answer with the HTTP status code.
func (f *Fake) HTTPStatus(method string, code, n int) {
	f.addFault(method, fault{kind: faultHTTPStatus, left: n, status: code})
}

// Heal drops the faults still pending for method: its next calls succeed.
func (f *Fake) Heal(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.faults, method)
}

func (f *Fake) addFault(method string, flt fault) {
	if flt.left <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], flt)
}

// takeFault consumes one pending fault of method. Call with f.mu held.
func (f *Fake) takeFault(method string) (fault, bool) {
	q := f.faults[method]
	if len(q) == 0 {
		return fault{}, false
	}
	flt := q[0]
	q[0].left--
	if q[0].left == 0 {
		q = q[1:]
	}
	f.faults[method] = q
	return flt, true
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	req, err := parseAPIRequest(r)
	if err != nil {
		writeReply(w, failure(http.StatusBadRequest, "invalid_form_data"))
		return
	}
	writeReply(w, f.handleAPI(req))
}

// reply is an HTTP answer, built under the lock and written after it.
type reply struct {
	status     int
	body       map[string]any
	retryAfter time.Duration // sent as Retry-After with status 429
}

func failure(status int, code string) reply {
	return reply{status: status, body: map[string]any{"ok": false, "error": code}}
}

func rateLimited(retryAfter time.Duration) reply {
	r := failure(http.StatusTooManyRequests, "ratelimited")
	r.retryAfter = retryAfter
	return r
}

func (f *Fake) handleAPI(req *apiRequest) reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	call := Call{Method: req.method, Params: req.form, Body: req.body, Token: req.token, At: req.at}
	f.calls = append(f.calls, call)

	if flt, ok := f.takeFault(req.method); ok {
		switch flt.kind {
		case faultRateLimit:
			return rateLimited(flt.retryAfter)
		case faultSlackError:
			return failure(http.StatusOK, flt.slackErr)
		default:
			return failure(flt.status, "fatal_error")
		}
	}
	handler, ok := apiMethods[req.method]
	if !ok {
		f.unknown = append(f.unknown, call.clone())
		f.cfg.logf("slackfake: unknown Web API method %q", req.method)
		return failure(http.StatusOK, "unknown_method")
	}
	var res map[string]any
	apiErr := f.checkToken(req)
	if apiErr == nil {
		res, apiErr = handler(f, req)
	}
	switch {
	case apiErr == nil:
		if res == nil {
			res = map[string]any{}
		}
		res["ok"] = true
		return reply{status: http.StatusOK, body: res}
	case apiErr.throttled:
		return rateLimited(time.Second)
	default:
		f.reject(req.method, apiErr)
		rep := failure(http.StatusOK, apiErr.code)
		if len(apiErr.reasons) > 0 {
			rep.body["errors"] = apiErr.reasons
			rep.body["response_metadata"] = map[string]any{"messages": apiErr.reasons}
		}
		return rep
	}
}

// reject records a rejection. Call with f.mu held.
func (f *Fake) reject(method string, e *apiError) {
	rj := Rejection{Method: method, Error: e.code, Reason: strings.Join(e.reasons, "; "), At: time.Now()}
	f.rejections = append(f.rejections, rj)
	f.cfg.logf("slackfake: %s rejected: %s %s", method, rj.Error, rj.Reason)
}

func parseAPIRequest(r *http.Request) (*apiRequest, error) {
	req := &apiRequest{method: r.PathValue("method"), form: url.Values{}, at: time.Now()}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token, req.bearer = tok, true
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return nil, err
		}
		req.body = body
		return req, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	req.form = r.Form
	if tok := req.form.Get("token"); tok != "" && req.token == "" {
		req.token = tok
	}
	req.form.Del("token")
	return req, nil
}

// checkToken enforces Slack's token rules: apps.connections.open takes the
// app-level token in the Authorization header, everything else the bot token.
func (f *Fake) checkToken(req *apiRequest) *apiError {
	want := f.cfg.botToken
	if req.method == "apps.connections.open" {
		want = f.cfg.appToken
		if req.token != "" && !req.bearer {
			return errCode("not_authed", "the app-level token must be sent in the Authorization header")
		}
	}
	switch {
	case req.token == "":
		return errCode("not_authed")
	case req.token == want:
		return nil
	case tokenType(req.token) != tokenType(want):
		return errCode("not_allowed_token_type")
	default:
		return errCode("invalid_auth")
	}
}

func tokenType(tok string) string {
	t, _, _ := strings.Cut(tok, "-")
	return t
}

// writeReply writes a JSON answer; Slack always sends application/json.
func writeReply(w http.ResponseWriter, rep reply) {
	body, err := json.Marshal(rep.body)
	if err != nil {
		rep.status, body = http.StatusInternalServerError, []byte(`{"ok":false,"error":"internal_error"}`)
	}
	if rep.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rep.retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

// bucket is a token bucket for the realistic chat.postMessage limit.
type bucket struct {
	tokens float64
	last   time.Time
}

const (
	rateBurst     = 3
	ratePerSecond = 1
)

// allowPost takes a token from channel's bucket. Call with f.mu held.
func (f *Fake) allowPost(channel string) bool {
	if !f.cfg.realisticRate {
		return true
	}
	now := time.Now()
	b, ok := f.buckets[channel]
	if !ok {
		b = &bucket{tokens: rateBurst, last: now}
		f.buckets[channel] = b
	}
	b.tokens = min(rateBurst, b.tokens+now.Sub(b.last).Seconds()*ratePerSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
