// Package prometheus reads the Togather server's request metrics from a
// Prometheus server's HTTP API, for the error-rate and latency rules and
// the post-deploy watch summaries.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Queries over the Togather server's metrics (reference: togather-deploy.md
// §5): the share of 5xx answers and the p95 latency over the last 5 minutes.
const (
	ErrorRateQuery = `sum(rate(togather_http_requests_total{status=~"5.."}[5m])) / sum(rate(togather_http_requests_total[5m]))`
	P95Query       = `histogram_quantile(0.95, sum(rate(togather_http_request_duration_seconds_bucket[5m])) by (le))`
)

// ErrNoData is returned when a query has no sample (no traffic yet).
var ErrNoData = errors.New("no data")

// Client queries one Prometheus server.
type Client struct {
	URL  string // e.g. http://127.0.0.1:9090
	HTTP *http.Client
}

// RequestRates runs both queries: the share of failing requests (0–1) and
// the p95 latency in seconds.
func (c Client) RequestRates(ctx context.Context) (errorRate, p95Seconds float64, err error) {
	if errorRate, err = c.Query(ctx, ErrorRateQuery); err != nil {
		return 0, 0, fmt.Errorf("error rate: %w", err)
	}
	if p95Seconds, err = c.Query(ctx, P95Query); err != nil {
		return 0, 0, fmt.Errorf("p95: %w", err)
	}
	return errorRate, p95Seconds, nil
}

// Query evaluates an instant query that yields one number.
func (c Client) Query(ctx context.Context, promql string) (float64, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	u := strings.TrimSuffix(c.URL, "/") + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("prometheus: %w", err)
	}
	var r struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]json.RawMessage `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("prometheus answered HTTP %d with non-JSON: %w", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" || len(r.Data.Result) == 0 {
		return 0, ErrNoData
	}
	var s string
	if err := json.Unmarshal(r.Data.Result[0].Value[1], &s); err != nil {
		return 0, fmt.Errorf("prometheus: value: %w", err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v { // NaN: no requests in the window
		return 0, ErrNoData
	}
	return v, nil
}
