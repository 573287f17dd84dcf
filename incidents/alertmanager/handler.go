package alertmanager

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/togather-foundation/togather-chatops/incidents"
)

// DefaultMaxBody is the body size limit when Options.MaxBody is not set.
const DefaultMaxBody = 1 << 20

// Options configures a Handler.
type Options struct {
	// Token is the bearer token Alertmanager must send
	// (http_config.authorization.credentials). When empty, every request
	// is refused with 503: the intake is misconfigured, not open.
	Token string
	// MaxBody limits the request body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// Sink receives each webhook as one Alert for the whole group. It is
	// required; an error makes the handler answer 500 so that Alertmanager
	// retries.
	Sink func(ctx context.Context, a incidents.Alert) error
	// Logf logs refusals and malformed bodies (never the token); nil
	// discards.
	Logf func(format string, args ...any)
}

// Handler is an http.Handler for POST /alertmanager, Alertmanager's
// webhook_config endpoint.
type Handler struct {
	opts      Options
	tokenHash [sha256.Size]byte
}

// NewHandler returns a Handler for o. It panics if o.Sink is nil, which is
// a wiring bug.
func NewHandler(o Options) *Handler {
	if o.Sink == nil {
		panic("alertmanager: NewHandler needs a Sink")
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &Handler{opts: o, tokenHash: sha256.Sum256([]byte(o.Token))}
}

// ServeHTTP checks the method, the bearer token, the content type and the
// size, decodes the body with Decode and hands the alert to the Sink. Every
// answer is JSON: {"status":"ok"} or {"status":"error","error":"…"}.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, "only POST is allowed")
		return
	}
	if h.opts.Token == "" {
		h.refuse(w, r, http.StatusServiceUnavailable, "alertmanager intake is not configured: no token set")
		return
	}
	if code, msg := h.authorize(r); code != 0 {
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertmanager"`)
		}
		h.refuse(w, r, code, msg)
		return
	}
	if !jsonContentType(r.Header.Get("Content-Type")) {
		h.refuse(w, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.opts.MaxBody))
			return
		}
		h.refuse(w, r, http.StatusBadRequest, "could not read body")
		return
	}
	a, err := Decode(body)
	if err != nil {
		h.opts.Logf("alertmanager: malformed body from %s (%d bytes, %.200q): %v", r.RemoteAddr, len(body), body, err)
		reply(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.opts.Sink(r.Context(), a); err != nil {
		h.opts.Logf("alertmanager: sink %s: %v", a.Key, err)
		reply(w, http.StatusInternalServerError, "could not record the alert; retry later")
		return
	}
	reply(w, http.StatusOK, "")
}

// authorize checks the bearer token in constant time (hashing first, so
// the length does not leak either). It returns 0 when the request may
// pass, else the status code and reason to refuse it with.
func (h *Handler) authorize(r *http.Request) (int, string) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return http.StatusUnauthorized, "a bearer token is required"
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) != 1 {
		return http.StatusForbidden, "wrong bearer token"
	}
	return 0, ""
}

// jsonContentType accepts a missing Content-Type, application/json and
// application/*+json, with any parameters.
func jsonContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// refuse logs a refused request and answers it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.opts.Logf("alertmanager: refused %s from %s: %d %s", r.Method, r.RemoteAddr, code, msg)
	reply(w, code, msg)
}

// response is the JSON body of every answer.
type response struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// reply writes a JSON answer; an empty msg means success.
func reply(w http.ResponseWriter, code int, msg string) {
	resp := response{Status: "ok"}
	if msg != "" {
		resp = response{Status: "error", Error: msg}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp) // the client is gone if this fails
}
